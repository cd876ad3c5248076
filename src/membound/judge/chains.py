"""Reference chains as people read them:
``module app.handlers → ._SESSIONS (dict) → [41] (Session)``.

Each step names how the previous object reaches the next: ``.name`` for a module's, class's or
instance's attribute, ``[key]`` for a dict entry, ``[3]`` for a list or tuple item. A namespace
dict between an owner and its attribute is left out (the attribute names it).
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from typing import Any

from membound.measure.heap import instance_dict

__all__ = ["holder_name", "label_chain"]


def _namespace_of(owner: Any, ns: Any) -> bool:
    """True when ``ns`` is the attribute dict of ``owner`` (module, class or instance)."""
    if issubclass(type(owner), types.ModuleType | type):
        return True
    if type(owner) is types.FunctionType:
        return owner.__globals__ is ns
    return instance_dict(owner) is ns


def _edge(owner: Any, prev: Any, obj: Any) -> str:
    """How ``prev`` refers to ``obj`` (``owner`` is the step before ``prev``). Types are read
    with ``type()`` and attribute dicts from their slot: a step may be a lazy proxy, which
    ``isinstance`` or ``getattr`` would evaluate."""
    if issubclass(type(prev), dict):
        key = next((k for k, v in prev.items() if v is obj), None)
        if key is None:
            return ""
        return f".{key}" if owner is not None and _namespace_of(owner, prev) else f"[{key!r}]"
    if issubclass(type(prev), list | tuple):
        index = next((j for j, v in enumerate(prev) if v is obj), None)
        return "" if index is None else f"[{index}]"
    attrs = instance_dict(prev)
    if attrs is not None and attrs is not obj:
        key = next((k for k, v in attrs.items() if v is obj), None)
        if key is not None:
            return f".{key}"
    return ""


def label_chain(chain: Sequence[Any], *, last_type: bool = True) -> tuple[str, ...]:
    """Labels for a chain of objects from a module; the last step's type is left out when
    ``last_type`` is False (the caller names it apart)."""
    out: list[str] = []
    for i, obj in enumerate(chain):
        if issubclass(type(obj), types.ModuleType):
            out.append(f"module {obj.__name__}")
            continue
        if i == 0 and type(obj) is types.FunctionType:  # a root: its globals come next
            out.append(f"globals of {obj.__qualname__}()")
            continue
        prev = chain[i - 1] if i else None
        owner = chain[i - 2] if i >= 2 else None
        edge = _edge(owner, prev, obj) if prev is not None else ""
        last = i + 1 == len(chain)
        if issubclass(type(obj), dict) and not last and edge == "":
            continue  # a namespace dict: the next step names the attribute
        name = type(obj).__qualname__
        if last and not last_type and edge:
            out.append(edge)
        else:
            out.append(f"{edge} ({name})" if edge else name)
    return tuple(out)


def holder_name(path: str) -> str:
    """The short name of a holder from its path: ``_SESSIONS`` from ``module app → ._SESSIONS``."""
    last = path.rsplit(" → ", 1)[-1]
    return last[1:] if last.startswith(".") else last
