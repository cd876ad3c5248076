"""Check that a result read from a file could have been measured, after its types are checked.

``checked.py`` makes sure every field has the type its annotation says; this module refuses
values of the right type that no run can produce: a timeline whose time runs backwards, a peak
or a duration below zero, a range whose low is above its high. Rendered, such a file shows
figures that mean nothing (a chart drawn back over itself, "peak -1.0 MiB") as if they were
measured. :func:`check_plausible` names the first such field.

Only what is impossible is refused, never what is merely unusual: deltas (``rss_peak_delta``,
``heap_current``, slopes, per-call growth) may be negative, and a heap timeline's values are
left alone (they may be counted from a baseline).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

__all__ = ["check_plausible"]

#: Fields that count or measure something, per result class: never below zero.
NON_NEGATIVE: dict[str, tuple[str, ...]] = {
    "Measurement": (
        "duration_s",
        "rss_start",
        "rss_end",
        "rss_peak",
        "rss_after_release",
        "heap_overhead",
        "gc_collections",
        "gc_pause_s",
        "limit",
    ),
    "Timeline": ("samples",),
    "ScenarioStats": ("runs",),
    "ComplexityPoint": ("n", "seconds", "runs"),
    "Complexity": ("noise_floor", "confidence"),
    "LeakReport": ("iterations", "warmup", "tolerance", "noise_bytes"),
    "LeakRound": ("calls", "blocks", "rss", "held", "malloc"),
    "Site": ("line",),
    "Holder": ("size", "capacity"),
    "PeakSite": ("line", "bytes", "share"),
}
#: Fields that must be above zero: sampling intervals, strides, repeats.
POSITIVE: dict[str, tuple[str, ...]] = {
    "Measurement": ("interval",),
    "Timeline": ("interval", "stride"),
    "Comparison": ("repeat",),
}
#: ``Spread`` fields of a comparison row whose every value is a size or a time (not a delta).
NON_NEGATIVE_SPREADS = ("rss_peak", "duration_s", "heap_overhead")


def check_plausible(result: object) -> None:
    """Raise ``ValueError`` naming the first field of ``result`` (a result dataclass whose
    types are already checked) whose value no run can produce."""
    _walk(result, type(result).__name__)


def _walk(value: object, where: str) -> None:
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _walk(item, f"{where}[{i}]")
        return
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        return
    name = type(value).__name__
    for field in NON_NEGATIVE.get(name, ()):
        _at_least(getattr(value, field, None), f"{where}.{field}", positive=False)
    for field in POSITIVE.get(name, ()):
        _at_least(getattr(value, field, None), f"{where}.{field}", positive=True)
    if name == "Timeline":
        _timeline(value, where)
    elif name == "Spread":
        _spread(value, where)
    elif name == "ScenarioStats":
        for field in NON_NEGATIVE_SPREADS:
            spread = getattr(value, field, None)
            if spread is not None:
                _at_least(spread.low, f"{where}.{field}.low", positive=False)
    elif name == "LeakReport":
        _calls_in_order(value, where)
    for item in dataclasses.fields(value):
        _walk(getattr(value, item.name), f"{where}.{item.name}")


def _at_least(value: Any, where: str, *, positive: bool) -> None:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return
    if value < 0 or (positive and value == 0):
        bound = "above 0" if positive else "0 or more"
        raise ValueError(f"{where} is {value}, expected {bound}")


def _timeline(timeline: Any, where: str) -> None:
    times, lows, highs = timeline.times, timeline.lows, timeline.highs
    for i in range(1, len(times)):
        if times[i] < times[i - 1]:
            raise ValueError(
                f"{where}.times[{i}] is {times[i]}, before times[{i - 1}] ({times[i - 1]}): "
                "time runs backwards"
            )
    for i, (low, high) in enumerate(zip(lows, highs, strict=True)):
        if low > high:
            raise ValueError(f"{where}.lows[{i}] is {low}, above highs[{i}] ({high})")
        if timeline.metric == "rss" and low < 0:
            raise ValueError(f"{where}.lows[{i}] is {low}, expected 0 or more (an RSS)")


def _spread(spread: Any, where: str) -> None:
    low, median, high = spread.low, spread.median, spread.high
    # A median is computed from the same values as low and high; allow for rounding only.
    slack = 1e-9 * max(1.0, abs(low), abs(high))
    if not (low - slack <= median <= high + slack) or not math.isfinite(median):
        raise ValueError(
            f"{where} has median {median} outside its range {low} to {high}",
        )


def _calls_in_order(report: Any, where: str) -> None:
    rounds = report.rounds
    for i in range(1, len(rounds)):
        if rounds[i].calls < rounds[i - 1].calls:
            raise ValueError(
                f"{where}.rounds[{i}].calls is {rounds[i].calls}, fewer than the round before "
                f"({rounds[i - 1].calls})"
            )
