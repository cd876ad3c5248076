"""Is growth kept? The judge of one series of memory figures taken after garbage collection (bytes
after each round of calls, or post-collection minima over time), deciding from the series alone.

A leak is growth that is kept: the floor under the series rises steadily to the end of the run.
The judge tells it from what people mistake for one:

- **flat**: the late half grows no more than the noise measured in the same series;
- **levelled**: it grew early, then stopped (a cache filled, a pool warmed up);
- **sawtooth**: it falls back to a floor, whatever the period, and the floor does not rise (one
  fall in the early half is no rhythm: what follows it is judged instead);
- **slowing** or **faint** growth, or growth in one step: the run cannot tell; the verdict is
  ``undecided`` with the length of run that would decide.

The noise is the robust spread of the late half's round-to-round changes (1.4826 × their
median absolute deviation), never less than ``quantum`` (one step of the measurement). Unless the
caller gives a ``tolerance`` (growth per unit treated as noise), growth of the late half counts
when it exceeds four times the noise, and is called a leak when it exceeds eight times, rises in
most late rounds and has not slowed within the late half. Slopes are Theil–Sen (median of
pairwise slopes), so one odd round moves nothing.

The production watchdog judges post-collection minima over time with the same function.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from membound.results.growth import theil_sen

__all__ = ["QUANTUM", "Retention", "judge_retention"]

#: The smallest change of the held bytes the leak judge treats as more than rounding: a few
#: small objects, or one step of a container's storage.
QUANTUM = 64.0

#: Growth of the late half over this many noise widths counts as growth at all.
_SEEN = 4.0
#: ... and over twice that (with the other checks) is a leak; in between, undecided.
_SURE = 2.0
#: A drop larger than this share of the series' range is a fall back to the floor.
_DROP_SHARE = 0.25
#: Growth is steady when at least this share of late rounds rose.
_RISING_SHARE = 0.6
#: Growth has slowed when the last quarter grew less than this share of the quarter before.
_SLOWED = 1 / 3

Verdict = Literal["leak", "no leak", "undecided"]
Shape = Literal["flat", "levelled", "sawtooth", "steady", "slowing", "faint", "step"]


@dataclass(frozen=True)
class Retention:
    """What one series shows about kept growth."""

    verdict: Verdict
    """``leak``, ``no leak`` or ``undecided``."""
    shape: Shape
    """How the series moved: flat, levelled, sawtooth, steady, slowing, faint or step."""
    per_unit: float
    """Kept growth per unit of x (per call, per second): the late half's slope, or the slope of
    the floor under a sawtooth."""
    early_per_unit: float
    """Slope of the early half, per unit of x."""
    tolerance: float
    """Growth per unit of x treated as noise (given, or four noise widths over the late half)."""
    noise: float
    """Spread of the round-to-round changes, in y units."""
    period: float | None
    """Units of x between falls back to the floor (sawtooth with two falls or more)."""
    drops: int
    """Falls back to the floor seen."""
    first_drop: float | None
    """x at the first fall back (sawtooth)."""
    needed: float | None
    """Length of run (in x from the first point) that would likely decide (undecided only)."""
    late_from: float
    """x where the late half starts."""


def _noise(changes: Sequence[float], quantum: float) -> float:
    centre = statistics.median(changes)
    mad = statistics.median(abs(c - centre) for c in changes)
    return max(1.4826 * mad, quantum)


def _drops(changes: Sequence[float], noise: float, span: float) -> list[int]:
    """Indices ``i`` (into the points) reached by a fall back: ``y[i] - y[i-1]`` is a drop."""
    bar = max(_SEEN * noise, _DROP_SHARE * span)
    return [i + 1 for i, c in enumerate(changes) if c < -bar]


def judge_retention(
    xs: Sequence[float],
    ys: Sequence[float],
    *,
    tolerance: float | None = None,
    quantum: float = 64.0,
) -> Retention:
    """Judge whether ``ys`` (measured after collection at ``xs``, increasing) keeps growing.

    Args:
        xs: calls made (or seconds) at each point, increasing; at least five points.
        ys: bytes held at each point.
        tolerance: growth per unit of x treated as noise; None derives it from the series.
        quantum: the smallest change the measurement can show, y units.
    """
    if len(xs) != len(ys) or len(xs) < 5:
        raise ValueError("need at least five points, as many xs as ys")
    changes = [b - a for a, b in itertools.pairwise(ys)]
    mid = len(xs) // 2
    # Noise from the late half: early changes hold real growth (caches filling) more often.
    noise = _noise(changes[mid:], quantum)
    drops = _drops(changes, noise, max(ys) - min(ys))
    early = theil_sen(xs[: mid + 1], ys[: mid + 1])
    late_span = xs[-1] - xs[mid]
    tol = tolerance if tolerance is not None else _SEEN * noise / late_span
    base = Retention("no leak", "flat", 0.0, early, tol, noise, None, 0, None, None, xs[mid])
    if len(drops) == 1 and drops[0] <= mid and len(xs) - drops[0] >= 5:
        # One fall in the early half is no rhythm (garbage of the warm-up going, a cache
        # cleared once): judge what came after it.
        return judge_retention(xs[drops[0] :], ys[drops[0] :], tolerance=tolerance, quantum=quantum)
    if drops:
        return _sawtooth(xs, ys, changes, drops, tol, base)
    late = theil_sen(xs[mid:], ys[mid:])
    growth = late * late_span
    seen = tol * late_span
    if growth <= seen:
        rose = ys[mid] - ys[0] > max(seen, _SEEN * noise)
        shape: Shape = "levelled" if rose else "flat"
        return replace(base, shape=shape, per_unit=late)
    late_changes = changes[mid:]
    rising = sum(c > noise / 2 for c in late_changes) / len(late_changes)
    quarter = (mid + len(xs) - 1) // 2
    first, last = ys[quarter] - ys[mid], ys[-1] - ys[quarter]
    run = xs[-1] - xs[0]
    if rising < _RISING_SHARE:
        shape, needed = "step", 2 * run
    elif last < _SLOWED * first:
        shape, needed = "slowing", 2 * run
    elif growth < _SURE * seen and tolerance is None:  # a given tolerance is the user's line
        shape, needed = "faint", run * math.ceil(_SURE * seen / growth)
    else:
        return replace(base, verdict="leak", shape="steady", per_unit=late)
    return replace(base, verdict="undecided", shape=shape, per_unit=late, needed=needed)


def _sawtooth(
    xs: Sequence[float],
    ys: Sequence[float],
    changes: Sequence[float],
    drops: Sequence[int],
    tol: float,
    base: Retention,
) -> Retention:
    """A series that falls back: kept growth is the rise of the floor from trough to trough."""
    before = min(range(drops[0]), key=lambda i: ys[i])
    floor = [before, *drops]
    fx, fy = [xs[i] for i in floor], [ys[i] for i in floor]
    slope = theil_sen(fx, fy)
    rise = slope * (fx[-1] - fx[0])
    # A trough is read after a whole round, at any phase of the tooth: it may sit up to one
    # round's usual rise above the true floor.
    rises = [c for c in changes if c > 0]
    phase = statistics.median(rises) if rises else 0.0
    gaps = [xs[b] - xs[a] for a, b in itertools.pairwise(drops)]
    period = statistics.median(gaps) if gaps else None
    kept = rise > max(tol * (fx[-1] - fx[0]), phase, _SEEN * base.noise)
    return replace(
        base,
        verdict="leak" if kept else "no leak",
        shape="sawtooth",
        per_unit=slope,
        period=period,
        drops=len(drops),
        first_drop=xs[drops[0]],
    )
