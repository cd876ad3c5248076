"""Targets: the one set of rules for what membound calls, in this process or in a fresh one.

A target is a callable, a ``functools.partial`` of one, or a string ``"package.module:function"``
/ ``"path/to/file.py:function"`` (``function`` may be ``Class.method``). :func:`resolve_target`
turns it into a :class:`TargetRef` that a fresh interpreter can import
(``measure/children/isolated_call.py`` imports it there); :func:`load_target` imports it here.
Both read a string the same way and fail with the same messages. Modules in the current folder
are importable, as with ``python -m``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import pickle
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from membound._errors import StopRequested, TargetError, describe_exception

__all__ = [
    "Target",
    "TargetRef",
    "import_error",
    "import_file",
    "load_ref",
    "load_target",
    "resolve_target",
]

Target = Callable[..., Any] | str

_IMPORT_HINT = "check the module path and that the function exists at module level"
#: What a name looked up and not found gives back (``getattr``'s default).
_MISSING = object()
#: Set on a script's module while membound's child imports it as ``__mp_main__``.
REIMPORT_MARK = "__membound_reimport__"
_RERUN = (
    "the script's top level ran again when membound's fresh interpreter imported it to find "
    "the function, and measured again"
)
_GUARD_HINT = (
    'put the lines that run the measurement under `if __name__ == "__main__":` (a fresh '
    "interpreter imports the script to find the function, which runs its top level), or pass "
    "isolate=False to measure in this process"
)


@dataclass(frozen=True)
class TargetRef:
    """A callable the child can import: by module name, or by file path."""

    module: str
    """Importable module name (or a name to load ``path`` under)."""
    qualname: str
    """Attribute path inside the module, e.g. ``func`` or ``Class.method``."""
    path: str | None = None
    """Source file to load by path (scripts and ``__main__``), or None to import ``module``."""
    args: tuple[Any, ...] = ()
    """Arguments bound by ``functools.partial``, passed before the call's own."""
    kwargs: tuple[tuple[str, Any], ...] = ()
    """Keyword arguments bound by ``functools.partial``."""
    pickled: bytes | None = None
    """The callable itself, pickled by value with cloudpickle, for one defined where no other
    interpreter can import it (a notebook's or an interactive session's ``__main__``)."""

    @property
    def display(self) -> str:
        """``module:qualname`` or ``path:qualname``."""
        return f"{self.path or self.module}:{self.qualname}"


def _parse(text: str) -> TargetRef:
    """A ``"module:function"`` or ``"file.py:function"`` string as a reference (no import)."""
    spec, sep, qualname = text.rpartition(":")
    if not sep or not spec or not qualname or not qualname.replace(".", "").isidentifier():
        raise TargetError(
            f"target {text!r} is not of the form 'package.module:function' "
            "or 'path/to/file.py:function'"
        )
    if spec.endswith(".py") or os.sep in spec:
        path = Path(spec)
        if not path.is_file():
            raise TargetError(f"target file not found: {spec}")
        return TargetRef(f"__membound_{path.stem}__", qualname, str(path.resolve()))
    return TargetRef(spec, qualname)


def _callable_ref(target: Callable[..., Any]) -> TargetRef:
    """Where a callable lives, so that another interpreter can import it."""
    module = getattr(target, "__module__", None)
    qual = getattr(target, "__qualname__", None)
    if not module or not qual:
        raise TargetError(f"cannot locate {target!r}: give it as 'package.module:function'")
    if module == "__main__" and not getattr(sys.modules["__main__"], "__file__", None):
        return _by_value(target, qual)
    if "<locals>" in qual or "<lambda>" in qual:
        raise TargetError(
            f"{qual} is defined inside a function or is a lambda; a fresh interpreter "
            "can only import module-level functions",
            hint="move it to module level, or pass isolate=False to measure in this process",
        )
    # The function's own globals, not ``sys.modules``: importing ``multiprocessing`` (the
    # script may, or a library it imports) rebinds ``sys.modules["__mp_main__"]`` to the
    # running ``__main__``, which in membound's child is not the script being imported.
    home: dict[str, Any] = getattr(target, "__globals__", None) or getattr(
        sys.modules.get(module), "__dict__", {}
    )
    if module == "__mp_main__" and home.get(REIMPORT_MARK, False):
        # membound's child is importing the script to find a function, and the script's top
        # level asks to measure again: it runs at import, with no ``__main__`` guard.
        raise TargetError(f"{qual}: {_RERUN}", hint=_GUARD_HINT)
    main_file = home.get("__file__") if module in ("__main__", "__mp_main__") else None
    if module in ("__main__", "__mp_main__") and main_file:
        # A script's function (also from a multiprocessing child, where the script runs as
        # ``__mp_main__``): the fresh interpreter loads the script by path under that name.
        return TargetRef("__mp_main__", qual, str(Path(main_file).resolve()))
    return TargetRef(module, qual)


def _by_value(target: Callable[..., Any], qual: str) -> TargetRef:
    """A reference carrying the callable itself: a notebook's functions live in an interactive
    ``__main__`` that no fresh interpreter can import, so they travel by value
    (``measure/by_value.py``)."""
    from membound.measure.by_value import dumps_by_value

    pickled = dumps_by_value(
        target, qual, "put the function in a module or file, or pass isolate=False"
    )
    return TargetRef("__main__", qual, pickled=pickled)


def resolve_target(target: Target) -> TargetRef:
    """Turn a target into a reference a fresh interpreter can import.

    Raises:
        TargetError: the target is not a module-level callable or the string is malformed.
    """
    if isinstance(target, functools.partial):
        inner = resolve_target(target.func)
        return TargetRef(
            inner.module,
            inner.qualname,
            inner.path,
            inner.args + tuple(target.args),
            inner.kwargs + tuple(target.keywords.items()),
            inner.pickled,
        )
    if isinstance(target, str):
        return _parse(target)
    if not callable(target):
        raise TargetError(f"target {target!r} is neither callable nor a 'module:function' string")
    return _callable_ref(target)


def import_file(path: str | Path, module_name: str) -> types.ModuleType:
    """Import the Python file ``path`` as ``module_name`` (registered in ``sys.modules`` so that
    its classes pickle and its dataclasses resolve their module).

    Raises:
        ImportError: the file cannot be loaded as Python; any error the module raises.
    """
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as Python")
    module = importlib.util.module_from_spec(spec)
    if module_name == "__mp_main__":
        setattr(module, REIMPORT_MARK, True)  # a script imported to find a function in it
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def _import(ref: TargetRef) -> Any:
    if ref.pickled is not None:
        return pickle.loads(ref.pickled)  # cloudpickle's output: needs cloudpickle importable
    if ref.path is not None:
        obj: Any = sys.modules.get(ref.module) or import_file(ref.path, ref.module)
    else:
        # As ``python -m`` would: modules in the current folder are importable.
        if os.getcwd() not in sys.path and "" not in sys.path:
            sys.path.insert(0, os.getcwd())
        obj = importlib.import_module(ref.module)
    where = os.path.basename(ref.path) if ref.path is not None else f"module {ref.module}"
    for depth, part in enumerate(ref.qualname.split(".")):
        # One lookup per name: a module's ``__getattr__`` or a property may do work each time.
        found = getattr(obj, part, _MISSING)
        if found is _MISSING:
            # Named as the user named it: a file is imported under a module name of membound's
            # making (``__membound_jobs__``), which would mean nothing to them.
            missing = ".".join(ref.qualname.split(".")[: depth + 1])
            raise AttributeError(f"{where} has no attribute {missing!r}")
        obj = found
    return obj


def load_target(target: Target) -> tuple[Callable[..., Any], str]:
    """The callable ``target`` names, imported into this process, and its display name.

    A callable (``functools.partial`` included) is returned as it is; a string is imported by
    the same rules as in a fresh interpreter.

    Raises:
        TargetError: the string is malformed, the import fails, or the object is not callable.
    """
    if callable(target):
        func = target.func if isinstance(target, functools.partial) else target
        return target, str(getattr(func, "__qualname__", None) or repr(target))
    if not isinstance(target, str):
        raise TargetError(f"target {target!r} is neither callable nor a 'module:function' string")
    ref = _parse(target)
    try:
        obj = _import(ref)
    except (KeyboardInterrupt, StopRequested):
        raise
    except BaseException as exc:  # SystemExit on import too: the module's failure, not ours
        raise TargetError(
            f"cannot import {target}: {describe_exception(exc)}", hint=_IMPORT_HINT
        ) from None
    if not callable(obj):
        raise TargetError(f"{target} is not callable")
    return obj, target


def load_ref(ref: TargetRef) -> Callable[..., Any]:
    """The callable ``ref`` names, with its bound arguments, imported into this process.

    Raises:
        TargetError: the import fails, or the object is not callable.
    """
    try:
        obj = _import(ref)
    except (KeyboardInterrupt, StopRequested):
        raise
    except BaseException as exc:  # SystemExit on import too: the module's failure, not ours
        raise import_error(ref, describe_exception(exc)) from None
    if not callable(obj):
        raise TargetError(f"{ref.display} is not callable")
    if ref.args or ref.kwargs:
        return functools.partial(obj, *ref.args, **dict(ref.kwargs))
    return obj  # type: ignore[no-any-return]


def import_error(ref: TargetRef, message: str) -> TargetError:
    """The error for a target that a fresh interpreter could not import (same text as here).

    A script's function (``__mp_main__``) is found by importing the script, which runs its
    top level: a script without an ``if __name__ == "__main__":`` guard measures again there,
    or fails there, and the words say so and what to do.
    """
    if ref.module != "__mp_main__":
        return TargetError(f"cannot import {ref.display}: {message}", hint=_IMPORT_HINT)
    script = os.path.basename(ref.path or "") or "the script"
    if _RERUN in message:
        return TargetError(
            f'cannot measure {ref.display}: {script} has no `if __name__ == "__main__":` '
            "guard, so importing it in membound's fresh interpreter ran the measurement again; "
            "put the measurement under that guard, or pass isolate=False",
            hint=_GUARD_HINT,
        )
    return TargetError(
        f"cannot import {ref.display}: {message}",
        hint=f"importing {script} runs its top level: if that is where it does its work, "
        + _GUARD_HINT,
    )
