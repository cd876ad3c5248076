"""Memory sizes: parse what people type, print what they can read.

Convention (one, everywhere): decimal prefixes are decimal and binary prefixes are binary, as in
IEC 80000-13. ``kB``/``KB``/``k`` = 10^3, ``MB``/``M`` = 10^6, ``GB``/``G`` = 10^9, ``TB`` = 10^12;
``KiB`` = 2^10, ``MiB`` = 2^20, ``GiB`` = 2^30, ``TiB`` = 2^40. Output always uses binary units
(``MiB``) so that a printed number is never ambiguous.

Written here rather than taken from a library: the candidates (``humanfriendly``, ``bitmath``)
either guess binary for "MB" or pull in a dependency larger than these forty lines.
"""

from __future__ import annotations

import math
import re

from membound._errors import SizeError

__all__ = ["MAX_SIZE", "SIZE_CONVENTION", "format_size", "parse_duration", "parse_size"]

SIZE_CONVENTION = "1 MB = 10^6 bytes, 1 MiB = 2^20 bytes"

_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}

_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*$")

_ACCEPTED = (
    "a whole number of bytes or a number with a unit, e.g. 1048576, '24 MB', '1.5GiB', '512MB', "
    f"'300k' ({SIZE_CONVENTION})"
)


def parse_size(value: int | float | str) -> int:
    """Turn a size such as ``"24 MB"``, ``"1.5GiB"``, ``"300k"`` or ``1024`` into bytes.

    Args:
        value: an int or float of bytes, or a string of a number and an optional unit.

    Returns:
        The size in whole bytes (rounded to the nearest byte).

    Raises:
        SizeError: the value is negative, not finite, or not a size; the message lists the
            accepted forms.
    """
    if isinstance(value, bool):
        raise SizeError(f"not a size: {value!r}; expected {_ACCEPTED}")
    if isinstance(value, int):
        if value < 0:
            raise SizeError(f"a size cannot be negative: {value!r}")
        if value > MAX_SIZE:
            raise SizeError(f"size too large: {value!r}; the largest is {MAX_SIZE:,} bytes (8 EiB)")
        return value
    if isinstance(value, float):
        return _checked(value, value)
    if not isinstance(value, str):
        raise SizeError(f"not a size: {value!r}; expected {_ACCEPTED}")
    match = _SIZE_RE.match(value)
    if match is None and _SIZE_RE.match(value.strip().removeprefix("-")) is not None:
        raise SizeError(f"a size cannot be negative: {value!r}")
    if match is None or match.group(2).lower() not in _UNITS:
        raise SizeError(f"not a size: {value!r}; expected {_ACCEPTED}")
    return _checked(float(match.group(1)) * _UNITS[match.group(2).lower()], value)


#: The largest size taken (2^63 − 1 bytes, 8 EiB): beyond it no counter of the kernel reaches.
MAX_SIZE = 2**63 - 1


def _checked(size: float, value: object) -> int:
    """``size`` in whole bytes, or an error naming ``value`` when it is no usable size."""
    if math.isnan(size) or size < 0:
        raise SizeError(f"not a size: {value!r}; expected {_ACCEPTED}")
    if size > MAX_SIZE:  # infinity too
        raise SizeError(f"size too large: {value!r}; the largest is {MAX_SIZE:,} bytes (8 EiB)")
    return round(size)


_DURATION_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*$")
_SECONDS: dict[str, float] = {
    "": 1.0,
    "ms": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
}
#: The longest duration taken: a year, well past any window or lease that makes sense.
MAX_DURATION_S = 366 * 86400.0


def parse_duration(value: int | float | str, *, name: str = "duration") -> float:
    """Turn ``"30 min"``, ``"60 s"``, ``"250ms"``, ``"2h"`` or a number of seconds into seconds.

    Raises:
        SizeError: not a positive, finite duration of at most a year (the message names ``name``
            and the accepted forms).
    """
    accepted = "seconds as a number, or a number with a unit: '250 ms', '60 s', '30 min', '2 h'"
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match is not None and match.group(2).lower() in _SECONDS:
            seconds = float(match.group(1)) * _SECONDS[match.group(2).lower()]
    if seconds is None or math.isnan(seconds) or seconds <= 0 or seconds > MAX_DURATION_S:
        raise SizeError(f"{name} is not a usable duration: {value!r}; expected {accepted}")
    return seconds


def format_size(n: int | float | None, *, signed: bool = False) -> str:
    """Render a byte count with a binary unit, e.g. ``format_size(3_500_000) == "3.3 MiB"``.

    Args:
        n: bytes (may be negative for deltas); ``None`` renders as ``"-"``.
        signed: prefix positive values with ``+`` (for deltas).
    """
    if n is None:
        return "-"
    sign = "-" if n < 0 else ("+" if signed and n > 0 else "")
    size = float(abs(n))
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if size < 1024 or unit == "EiB":
            if unit == "B":
                return f"{sign}{int(size)} B"
            return f"{sign}{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover
