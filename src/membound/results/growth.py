"""Growth over time: is a timeline flat, a sawtooth, a ramp, a leak or a spike?

A pure function of numbers (no measuring here), so that measure can attach a ``Growth`` to each
``Measurement`` and tests can feed synthetic timelines.

The decision, with ``tol`` the tolerance (default: the larger of 1 MiB and 2 % of the median):

- ``flat``: the whole range (max - min) is within ``tol``.
- ``leak``: the level at the end is above the start by more than ``tol`` *and* the robust slope of
  the last quarter still adds more than ``tol / 2`` over that quarter: still growing when it ended.
- ``ramp``: the end is above the start by more than ``tol`` but the last quarter holds
  (grows, then holds: the "hockey stick" of load-everything-then-work).
- ``sawtooth``: two or more rise-and-fall cycles whose troughs stay level (checked first: where
  the last cycle happens to stop says nothing); rising troughs make it a ``leak``.
- ``spike``: ends near where it started, with one rise and fall.

Slopes are Theil–Sen (the median of pairwise slopes), robust to single outliers. It is written
here rather than taken from SciPy (``scipy.stats.theilslopes``) to keep SciPy and NumPy out of the
core dependencies; it runs on at most ``_MAX_SLOPE_POINTS`` evenly spaced points.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from membound._units import format_size
from membound.results.timeline import Timeline

__all__ = ["Growth", "GrowthPattern", "classify", "theil_sen"]

GrowthPattern = Literal["flat", "sawtooth", "ramp", "leak", "spike"]

_MAX_SLOPE_POINTS = 200
_MIN_TOLERANCE = 1 << 20
_MIN_SAMPLES = 10
_EDGE = 3


@dataclass(frozen=True)
class Growth:
    """The verdict on how memory moved over a run."""

    pattern: GrowthPattern
    """One of ``flat``, ``sawtooth``, ``ramp``, ``leak``, ``spike``."""
    slope_bytes_per_s: float
    """Robust (Theil–Sen) slope of the whole timeline, bytes per second."""
    slope_bytes_per_step: float
    """The same slope per sample (per bucket of the timeline)."""
    range_bytes: float
    """Largest minus smallest value."""
    tolerance_bytes: float
    """Movements within this many bytes count as noise."""
    tail_slope_bytes_per_s: float
    """Robust slope of the last quarter of the run: positive at the end means still growing."""
    explanation: str
    """One line a person can read."""
    samples: int = -1
    """Points the verdict was drawn from (-1: not recorded). Under ten, nothing is judged and
    the pattern is ``flat`` only by default."""

    @property
    def judged(self) -> bool:
        """False when the timeline was too short to judge (the pattern is then a default)."""
        return self.samples < 0 or self.samples >= _MIN_SAMPLES

    @property
    def label(self) -> str:
        """The pattern, or ``too short to judge``."""
        return self.pattern if self.judged else "too short to judge"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Growth:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


def theil_sen(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Median of pairwise slopes of ``ys`` over ``xs`` (0.0 with fewer than two distinct xs)."""
    if len(xs) != len(ys):
        raise ValueError("xs and ys differ in length")
    if len(xs) > _MAX_SLOPE_POINTS:
        step = len(xs) / _MAX_SLOPE_POINTS
        idx = [int(i * step) for i in range(_MAX_SLOPE_POINTS)]
        xs = [xs[i] for i in idx]
        ys = [ys[i] for i in idx]
    slopes = [
        (ys[j] - ys[i]) / (xs[j] - xs[i])
        for i in range(len(xs))
        for j in range(i + 1, len(xs))
        if xs[j] != xs[i]
    ]
    return statistics.median(slopes) if slopes else 0.0


def _troughs(values: Sequence[float], low: float, high: float) -> list[float]:
    """The lowest value of each stretch below ``low`` between excursions above ``high``.

    ``len(result) - 1`` is the number of complete rise-and-fall cycles (hysteresis between
    ``low`` and ``high`` keeps noise from counting as cycles).
    """
    troughs: list[float] = []
    above = True
    current = math.inf
    for v in values:
        if above and v < low:
            above = False
            current = v
        elif not above:
            if v > high:
                above = True
                troughs.append(current)
            else:
                current = min(current, v)
    if not above:
        troughs.append(current)
    return troughs


def _cycles(
    values: Sequence[float], lo: float, hi: float, tol: float
) -> tuple[GrowthPattern, str] | None:
    """The verdict on two or more rise-and-fall cycles, or None when there are fewer.

    Repeated cycles are judged by their troughs, not by where the last cycle happened to stop:
    level troughs are a sawtooth, rising troughs a leak under a sawtooth.
    """
    rng = hi - lo
    mid = (lo + hi) / 2
    troughs = _troughs(values, mid - rng / 8, mid + rng / 8)
    if len(troughs) < 3:
        return None
    trough_rise = theil_sen(range(len(troughs)), troughs) * (len(troughs) - 1)
    if trough_rise > tol:
        return "leak", (
            f"a sawtooth whose troughs rose {format_size(trough_rise)} over "
            f"{len(troughs) - 1} cycles"
        )
    return "sawtooth", (
        f"{len(troughs) - 1} rise-and-fall cycles of up to {format_size(rng)}, troughs level"
    )


def classify(timeline: Timeline, tolerance: float | None = None) -> Growth:
    """Judge how memory moved over ``timeline``.

    Args:
        timeline: the samples (any metric: RSS or heap).
        tolerance: bytes of movement to treat as noise; default max(1 MiB, 2 % of the median).

    Returns:
        A :class:`Growth` with the pattern, robust slopes, the tolerance used and an explanation.
    """
    values = list(timeline.values)
    times = list(timeline.times)
    n = len(values)
    if n < _MIN_SAMPLES:
        tol = float(tolerance if tolerance is not None else _MIN_TOLERANCE)
        return Growth(
            "flat", 0.0, 0.0, 0.0, tol, 0.0, f"flat: too few samples ({n}) to judge growth", n
        )
    lo, hi = min(timeline.lows), max(timeline.highs)
    rng = hi - lo
    tol = float(
        tolerance
        if tolerance is not None
        else max(_MIN_TOLERANCE, 0.02 * statistics.median(values))
    )
    slope_t = theil_sen(times, values)
    slope_i = theil_sen(range(n), values)
    # The first and last few samples: a wider window would reach into a fast first step (an
    # allocation right after start) and call it the starting level.
    start_level = statistics.median(values[:_EDGE])
    end_level = statistics.median(values[-_EDGE:])
    net = end_level - start_level
    tail_from = n - max(3, n // 4)
    tail_t, tail_v = times[tail_from:], values[tail_from:]
    tail_slope = theil_sen(tail_t, tail_v)
    tail_rise = tail_slope * (tail_t[-1] - tail_t[0]) if len(tail_t) > 1 else 0.0
    span = times[-1] - times[0]
    per_s = f"{format_size(slope_t, signed=True)}/s"

    def verdict(pattern: GrowthPattern, text: str) -> Growth:
        return Growth(
            pattern,
            slope_t,
            slope_i,
            rng,
            tol,
            tail_slope,
            f"{pattern}: {text} (tolerance {format_size(tol)})",
            n,
        )

    if rng <= tol:
        return verdict("flat", f"stayed within {format_size(rng)} over {span:.2f} s")
    cycles = _cycles(values, lo, hi, tol)
    if cycles is not None:
        return verdict(*cycles)
    if net > tol and tail_rise > tol / 2:
        return verdict(
            "leak",
            f"grew {format_size(net)} and was still growing at the end "
            f"({format_size(tail_slope, signed=True)}/s over the last quarter; {per_s} overall)",
        )
    if net > tol:
        return verdict(
            "ramp",
            f"grew {format_size(net)} then held "
            f"(last quarter within {format_size(abs(tail_rise))})",
        )
    if hi - start_level > tol:
        return verdict(
            "spike", f"rose {format_size(hi - start_level)} then returned near its start"
        )
    return verdict("flat", f"no growth: it fell {format_size(-net)} from its start")
