"""Check that a result read from a file holds what its type says, before anything renders it.

A JSON file can hold anything: a string where a peak belongs, ``NaN``, an integer of 400 digits.
Rendering such a value fails far from its cause (a comparison of ``str`` and ``int`` inside a
table) or, worse, prints a figure that means nothing. :func:`check_result` walks the result's
dataclass fields against their annotations and names the first field that is wrong.

Written here rather than taken from a library: typeguard or pydantic would check the types, but
each is a dependency for one call, and neither knows the rules that matter most here — numbers
finite, counts and sizes within 64 bits.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from membound.results.plausible import check_plausible

__all__ = ["LIMIT", "check_result"]

#: The largest magnitude of an integer field (sizes, counts): 64 bits, as the kernel counts.
LIMIT = 2**63


def check_result(result: object) -> None:
    """Raise ``ValueError`` naming the first field of ``result`` (a result dataclass, nested
    ones included) whose value does not match its annotation, or is not finite, or is an
    integer beyond 64 bits, or that no run can produce (``plausible.py``: time running
    backwards, a negative peak)."""
    _check(result, type(result), type(result).__name__)
    check_plausible(result)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _check(value: object, kind: Any, where: str) -> None:
    if kind is Any:
        _check_plain(value, where)
        return
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:  # X | None: X's own message says what is wrong
            _check(value, options[0], where)
            return
        for option in options:
            try:
                _check(value, option, where)
            except ValueError:
                continue
            return
        raise ValueError(_bad(value, " or ".join(_name(a) for a in options), where))
    if origin is typing.Literal:
        if value not in args:
            raise ValueError(f"{where} is {_shown(value)}, expected one of {list(args)}")
        return
    if kind is type(None):
        if value is not None:
            raise ValueError(_bad(value, "None", where))
        return
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        if not isinstance(value, kind):
            raise ValueError(_bad(value, kind.__name__, where))
        for name, hint in _hints(kind).items():
            _check(getattr(value, name), hint, f"{where}.{name}")
        return
    if origin in (tuple, list, Sequence) or kind in (tuple, list):
        if not isinstance(value, tuple | list):
            raise ValueError(_bad(value, "a list", where))
        if (len(args) == 2 and args[1] is Ellipsis) or origin in (list, Sequence):
            for i, item in enumerate(value):
                _check(item, args[0] if args else Any, f"{where}[{i}]")
        elif args:
            if len(value) != len(args):
                raise ValueError(f"{where} has {len(value)} items, expected {len(args)}")
            for i, (item, hint) in enumerate(zip(value, args, strict=True)):
                _check(item, hint, f"{where}[{i}]")
        return
    if origin in (dict, Mapping) or kind is dict:
        if not isinstance(value, dict):
            raise ValueError(_bad(value, "an object", where))
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(_bad(key, "a string key", where))
            _check(item, args[1] if args else Any, f"{where}[{key!r}]")
        return
    _check_scalar(value, kind, where)


def _check_scalar(value: object, kind: Any, where: str) -> None:
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(_bad(value, "true or false", where))
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(_bad(value, "a whole number", where))
        if abs(value) >= LIMIT:
            raise ValueError(f"{where} is a {len(str(abs(value)))}-digit integer, beyond 64 bits")
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(_bad(value, "a number", where))
        _check_plain(value, where)
    elif kind is str:
        if not isinstance(value, str):
            raise ValueError(_bad(value, "a string", where))
    elif isinstance(kind, type) and not isinstance(value, kind):
        raise ValueError(_bad(value, kind.__name__, where))


def _check_plain(value: object, where: str) -> None:
    """Numbers anywhere (``Any`` included) must be finite and within 64 bits."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} is {value}, expected a finite number")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= LIMIT:
        raise ValueError(f"{where} is a {len(str(abs(value)))}-digit integer, beyond 64 bits")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_plain(item, f"{where}[{key!r}]")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")


def _bad(value: object, expected: object, where: str) -> str:
    return f"{where} is {_shown(value)}, expected {_name(expected)}"


def _name(kind: object) -> str:
    return kind if isinstance(kind, str) else str(getattr(kind, "__name__", kind))


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"a {type(value).__name__} ({len(text)} characters)"
