"""The plugin's markers: their arguments checked and parsed, and their help generated from the
parsers' signatures (the ``MARKERS`` table), as pytest-memray's ``marks.py`` does.

- ``@pytest.mark.limit_memory("24 MB", kind="heap")``: the peak during the test call must stay
  under the limit. ``kind="heap"`` is tracemalloc's peak; ``kind="rss"`` is the kernel's
  ``VmHWM`` after a reset just before the call, so native memory counts too.
- ``@pytest.mark.no_leak(iterations=200, warmup=20, tolerance=None, timeout=None)``: the test is
  called repeatedly with the same fixture values; it fails when memory is kept per call, or
  when the run is too short to decide.
- ``@pytest.mark.memory_complexity("O(1)", sizes=(...), arg="n")``: the test is called with each
  size as its ``arg`` parameter, in this process; it fails unless the verdict matches.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from membound._errors import MemboundError
from membound._units import parse_size
from membound.judge.curves import normalise_big_o

__all__ = [
    "MARKERS",
    "default_limit",
    "limit_memory",
    "marker_options",
    "memory_complexity",
    "no_leak",
]


def limit_memory(limit: str | int, *, kind: str = "heap") -> tuple[int, str]:
    """Fail when the test's peak memory during the call exceeds ``limit``."""
    if kind not in ("heap", "rss"):
        raise MemboundError(f"kind must be 'heap' or 'rss', not {kind!r}")
    size = parse_size(limit)
    if size <= 0:
        raise MemboundError(f"the limit must be positive, not {limit!r}")
    return size, kind


def whole_number(name: str, value: object, minimum: int) -> int:
    """``value`` if it is a whole number (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise MemboundError(f"{name} must be a whole number >= {minimum}, not {value!r}")
    return value


def no_leak(
    iterations: int = 200,
    warmup: int = 20,
    tolerance: str | int | None = None,
    rounds: int = 10,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Run the test repeatedly with the same fixture values; fail when memory is kept per call
    or the run is too short to decide (tolerance: derived from the run's noise unless given)."""
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0
    ):
        raise MemboundError(f"timeout must be a positive number of seconds, not {timeout!r}")
    counted = whole_number("iterations", iterations, 1)
    per_round = whole_number("rounds", rounds, 4)
    opts: dict[str, Any] = {
        "iterations": counted,
        "warmup": whole_number("warmup", warmup, 0),
        "tolerance": None if tolerance is None else parse_size(tolerance),
        "timeout": timeout,
        "rounds": per_round,
    }
    if counted < 10 * per_round:
        raise MemboundError(
            f"iterations={iterations} is under 10 calls per round for rounds={rounds}: "
            "too few to tell a leak from noise"
        )
    return opts


def memory_complexity(
    expected: str,
    sizes: Sequence[float] = (1_000, 10_000, 100_000),
    arg: str = "n",
    metric: str = "heap",
    repeat: int = 1,
) -> dict[str, Any]:
    """Call the test with each size as ``arg``; fail unless its complexity is ``expected``."""
    if metric not in ("heap", "rss"):
        raise MemboundError(f"metric must be 'heap' or 'rss', not {metric!r}")
    if len({int(s) for s in sizes}) < 3 or any(s != int(s) or s < 1 for s in sizes):
        raise MemboundError(f"sizes must be three or more distinct whole numbers >= 1: {sizes!r}")
    if not isinstance(arg, str) or not arg.isidentifier():
        raise MemboundError(f"arg must name a parameter of the test, not {arg!r}")
    return {
        "expected": normalise_big_o(expected),
        "sizes": tuple(int(s) for s in sizes),
        "arg": arg,
        "metric": metric,
        "repeat": whole_number("repeat", repeat, 1),
    }


_PARSERS: dict[str, Callable[..., Any]] = {
    "limit_memory": limit_memory,
    # Always membound's, also beside pytest-memray (whose --memray claims the bare name).
    "membound_limit_memory": limit_memory,
    "no_leak": no_leak,
    "memory_complexity": memory_complexity,
}


def _help(name: str, func: Callable[..., Any]) -> str:
    """``name(arg, *, kw=default): first line of the docstring``, from the parser's signature."""
    parts: list[str] = []
    star = False
    for p in inspect.signature(func).parameters.values():
        if p.kind is p.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        parts.append(p.name if p.default is p.empty else f"{p.name}={p.default!r}")
    doc = (func.__doc__ or "").strip().splitlines()[0]
    return f"{name}({', '.join(parts)}): {doc}"


#: Marker name → help line (generated from the parser signatures above).
MARKERS: dict[str, str] = {name: _help(name, f) for name, f in _PARSERS.items()}


def _parse_marker(where: str, name: str, marker: pytest.Mark) -> Any:
    """The marker's options, or a UsageError that names the test and the marker's signature: a
    typo in a marker must not look like a memory failure."""
    try:
        return _PARSERS[name](*marker.args, **marker.kwargs)
    except (TypeError, ValueError, MemboundError) as exc:
        raise pytest.UsageError(
            f"{where}: bad @pytest.mark.{name}: {exc}\n  usage: {MARKERS[name]}"
        ) from None


def marker_options(item: pytest.Item, name: str) -> Any:
    """The parsed options of marker ``name`` on ``item``, or None when it has none."""
    marker = item.get_closest_marker(name)
    return None if marker is None else _parse_marker(item.nodeid, name, marker)


def default_limit(config: pytest.Config) -> tuple[int, str] | None:
    """The ini default limit (``membound_limit_memory``, kind ``membound_limit_kind``), if set."""
    raw = config.getini("membound_limit_memory")
    if not raw:
        return None
    kind = str(config.getini("membound_limit_kind") or "rss")
    if kind not in ("heap", "rss"):  # named by its own key, not by the limit's
        raise pytest.UsageError(f"membound_limit_kind: must be 'heap' or 'rss', not {kind!r}")
    try:
        return limit_memory(str(raw), kind=kind)
    except MemboundError as exc:
        raise pytest.UsageError(f"membound_limit_memory: {exc}") from None
