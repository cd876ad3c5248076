"""Growth over time: is a timeline flat, a sawtooth, a ramp, a leak or a spike?

A pure function of numbers (no measuring here), so that measure can attach a ``Growth`` to each
``Measurement`` and tests can feed synthetic timelines.

The decision, with ``tol`` the tolerance (default: the larger of 1 MiB and 2 % of the median):

- ``flat``: the whole range (max - min) is within ``tol``.
- ``leak``: the level at the end is above the start by more than ``tol``, the robust slope of
  the last quarter still adds more than ``tol / 2`` over that quarter, *and* the run ends near its
  highest level: still growing when it ended (a rise that fell back at the end is no leak).
- ``ramp``: the end is above the start by more than ``tol`` but the last quarter holds
  (grows, then holds: the "hockey stick" of load-everything-then-work).
- ``sawtooth``: two or more rise-and-fall cycles whose troughs stay level (checked first: where
  the last cycle happens to stop says nothing); rising troughs make it a ``leak``.
- ``spike``: ends near where it started, with one rise and fall; also when the samples stayed
  flat but the kernel's peak (given in ``anchors``) shows a rise between two samples.

Words and figures: given the run's headline figures (:class:`Anchors`: RSS at start, the peak
and where it came from, RSS at the end), the explanation quotes those, and names the sampled
figure beside them where the samples saw less; without anchors it says its figures are sampled.

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

__all__ = ["Anchors", "Growth", "GrowthPattern", "classify", "theil_sen"]

GrowthPattern = Literal["flat", "sawtooth", "ramp", "leak", "spike"]

_MAX_SLOPE_POINTS = 200
_MIN_TOLERANCE = 1 << 20
_MIN_SAMPLES = 10
_EDGE = 3
#: Python allocator blocks over the start that still count as "about as many as at the start".
_FEW_BLOCKS = 1000


@dataclass(frozen=True)
class Anchors:
    """The headline figures of the run a timeline belongs to, so that the words quote them."""

    start: float
    """RSS at the start of the run (the baseline), bytes."""
    peak: float
    """Peak RSS of the run, bytes."""
    peak_source: str
    """Where ``peak`` came from (``VmHWM``, ``sampler max``, …)."""
    end: float
    """RSS at the end of the run, bytes."""
    blocks_delta: int | None = None
    """Blocks Python's allocator held at the end minus at the start (``sys.getallocatedblocks``):
    about 0 when the objects made during the run were freed."""
    released: float | None = None
    """RSS after ``gc.collect()`` and ``malloc_trim(0)`` at the end (isolated runs), bytes."""

    @classmethod
    def of(
        cls,
        start: float,
        peak: float,
        peak_source: str,
        end: float,
        *,
        blocks_delta: int | None = None,
        released: float | None = None,
    ) -> Anchors:
        """Anchors from a run's figures; the peak's source is cut to its first words for a
        sentence (``VmHWM (reset at start)`` → ``VmHWM``)."""
        short = peak_source.split(" (", 1)[0].split(";", 1)[0]
        return cls(start, peak, short, end, blocks_delta, released)


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
            f"{len(troughs) - 1} cycles (sampled)"
        )
    return "sawtooth", (
        f"{len(troughs) - 1} rise-and-fall cycles of up to {format_size(rng)} (sampled), "
        "troughs level"
    )


@dataclass(frozen=True)
class _Shape:
    """What the samples show, and the run's headline figures when known."""

    start_level: float
    end_level: float
    end_high: float
    hi: float
    tol: float
    anchors: Anchors | None

    def peak(self) -> str:
        """The rise at the peak: the headline figure with its source, and what the samples saw
        when that was less."""
        a = self.anchors
        if a is None:
            return f"{format_size(self.hi - self.start_level, signed=True)} at its highest sample"
        source = a.peak_source
        if self.kernel_saw_more():
            source += f"; the highest sample was {format_size(self.hi - a.start, signed=True)}"
        return f"{format_size(a.peak - a.start, signed=True)} at its peak ({source})"

    def end(self) -> str:
        """Where the run ended, over its start."""
        a = self.anchors
        if a is None:
            change = self.end_level - self.start_level
            return f"ended {format_size(change, signed=True)} over its start (sampled)"
        return f"ended {format_size(a.end - a.start, signed=True)} over its start"

    def net(self) -> float:
        """Where the run ended over its start: the headline figures when known (the last sample
        can come before the last frees), else the samples."""
        a = self.anchors
        return a.end - a.start if a is not None else self.end_level - self.start_level

    def ends_high(self) -> bool:
        """Still at (or within the tolerance of) its highest when the run ended: the headline
        end against the headline peak when known, else the last samples against the highest.
        A run whose memory fell back at the end was not growing when it ended."""
        a = self.anchors
        if a is not None:
            return a.end >= a.peak - self.tol
        return self.end_high >= self.hi - self.tol

    def kernel_saw_more(self) -> bool:
        """The kernel's peak rose more than the tolerance above anything the samples saw."""
        a = self.anchors
        return a is not None and a.peak - self.hi > self.tol

    def retained(self) -> str:
        """Why RSS stayed up at the end, when the figures say; else an empty string."""
        a = self.anchors
        if a is None or a.end - a.start <= self.tol:
            return ""
        held = a.end - a.start
        freed = a.blocks_delta is not None and a.blocks_delta <= _FEW_BLOCKS
        parts = []
        if freed:
            parts.append(
                f"the Python objects made were freed (Python's allocator held "
                f"{a.blocks_delta:+,} blocks over its start)"
            )
        trim = "gc.collect() and malloc_trim(0), what release_memory() does,"
        if a.released is not None:
            given = max(0.0, a.end - a.released)
            if given > max(self.tol, held / 2):
                parts.append(f"{trim} gave back {format_size(given)}: the allocator had kept it")
            elif freed:
                parts.append(
                    f"{trim} gave back only {format_size(given)}: the rest is free space in "
                    "partly used allocator pages"
                )
            else:
                parts.append(
                    f"{trim} gave back only {format_size(given)}: its pages still hold live objects"
                )
        elif freed:
            parts.append("the allocator kept their pages (release_memory() may give them back)")
        return "".join(f"; {p}" for p in parts)


def classify(
    timeline: Timeline, tolerance: float | None = None, *, anchors: Anchors | None = None
) -> Growth:
    """Judge how memory moved over ``timeline``.

    Args:
        timeline: the samples (any metric: RSS or heap).
        tolerance: bytes of movement to treat as noise; default max(1 MiB, 2 % of the median).
        anchors: the run's headline figures (start, peak, end), quoted by the explanation.

    Returns:
        A :class:`Growth` with the pattern, robust slopes, the tolerance used and an explanation.
    """
    values = list(timeline.values)
    times = list(timeline.times)
    n = len(values)
    if n < _MIN_SAMPLES:
        tol = float(tolerance if tolerance is not None else _MIN_TOLERANCE)
        text = f"flat: too few samples ({n}) to judge growth"
        if anchors is not None:
            rise = format_size(anchors.peak - anchors.start, signed=True)
            text += f"; {rise} at its peak ({anchors.peak_source})"
        return Growth("flat", 0.0, 0.0, 0.0, tol, 0.0, text, n)
    lo, hi = min(timeline.lows), max(timeline.highs)
    rng = hi - lo
    tol = float(
        tolerance
        if tolerance is not None
        else max(_MIN_TOLERANCE, 0.02 * statistics.median(values))
    )
    slope_t = theil_sen(times, values)
    # The first and last few samples: a wider window would reach into a fast first step (an
    # allocation right after start) and call it the starting level.
    shape = _Shape(
        statistics.median(values[:_EDGE]),
        statistics.median(values[-_EDGE:]),
        max(timeline.highs[-_EDGE:]),
        hi,
        tol,
        anchors,
    )
    tail_from = n - max(3, n // 4)
    tail_t, tail_v = times[tail_from:], values[tail_from:]
    tail_slope = theil_sen(tail_t, tail_v)
    tail_rise = tail_slope * (tail_t[-1] - tail_t[0]) if len(tail_t) > 1 else 0.0
    pattern, text = _decide(shape, values, lo, rng, tail_slope, tail_rise, slope_t, times)
    return Growth(
        pattern,
        slope_t,
        theil_sen(range(n), values),
        rng,
        tol,
        tail_slope,
        f"{pattern}: {text} (tolerance {format_size(tol)})",
        n,
    )


def _decide(
    shape: _Shape,
    values: Sequence[float],
    lo: float,
    rng: float,
    tail_slope: float,
    tail_rise: float,
    slope_t: float,
    times: Sequence[float],
) -> tuple[GrowthPattern, str]:
    """The pattern, in the order of the module docstring, and its words."""
    tol, net = shape.tol, shape.net()
    if rng <= tol:
        if shape.kernel_saw_more():
            return "spike", f"rose {shape.peak()}, then returned: {shape.end()}"
        span = times[-1] - times[0]
        return "flat", f"stayed within {format_size(rng)} over {span:.2f} s; {shape.peak()}"
    cycles = _cycles(values, lo, shape.hi, tol)
    if cycles is not None:
        return cycles[0], f"{cycles[1]}; {shape.peak()}"
    ends_high = shape.ends_high()
    if net > tol and tail_rise > tol / 2 and ends_high:
        return "leak", (
            f"still growing when it ended: {shape.end()}, "
            f"{format_size(tail_slope, signed=True)}/s over the last quarter "
            f"({format_size(slope_t, signed=True)}/s overall); {shape.peak()}"
        )
    if net > tol:
        then = "held" if ends_high else "fell part of the way back"
        return "ramp", f"rose {shape.peak()}, then {then}: {shape.end()}{shape.retained()}"
    if shape.hi - shape.start_level > tol or shape.kernel_saw_more():
        return "spike", f"rose {shape.peak()}, then returned near its start: {shape.end()}"
    return "flat", f"no growth: it fell {format_size(-net)} from its start; {shape.peak()}"
