"""Growth over time: is a timeline flat, a sawtooth, a ramp, a leak, a spike, or memory retained?

A pure function of numbers (no measuring here), so that measure can attach a ``Growth`` to each
``Measurement`` and tests can feed synthetic timelines.

The word is drawn from figures that sampling jitter does not move: the rise to the peak and
the end over the start, from the run's headline figures (:class:`Anchors`) when known, else from
levels that are medians of the first and last samples. Each is held against its threshold with
a dead band: it must pass the threshold by more than ``MARGIN`` of it (within the band the word
on the near side holds), so the same deterministic job gets the same word in every run, whenever
the sampler ticked, whichever samples it lost. What only the samples show (how long a rise
lasted, whether the last quarter still rose, whether a sample caught a short peak) shapes the
words, and decides a ``leak`` only over repeated units of work. With ``tol`` the tolerance
(default: the largest of 1 MiB, 2 % of the median and six robust standard deviations of the
samples' own noise, so that noisier readings need more to count as movement; a regular cycle is
movement, not noise, see ``_noise``):

- ``flat``: the rise to the peak is not past ``tol``, and neither is the kernel's peak over the
  samples; worded by where it ended (within the tolerance, or fell).
- ``sawtooth``: two or more rise-and-fall cycles whose troughs stay level (checked first: where
  the last cycle happens to stop says nothing), looked for between the run's first and last
  peak, so that cycles over a level the run built (or before what it freed at its end) count
  too, and only when the run spends a good share of that time on each side of them. Troughs
  that rise (the lowest of their later half past the tolerance over the lowest of their
  earlier half: a sampled trough is never below the true floor, often above it) are worded
  beside the verdict below (``a sawtooth whose troughs rose …``), and are a ``leak`` over
  units of work.
- ``spike``: rose past ``tol``, and the end is not past the larger of ``tol`` and a tenth of
  the rise over the start (it gave its memory back; over ``units``, not past ``tol``); also
  when the samples stayed flat but the kernel's peak (given in ``anchors``) shows a rise
  between two samples.
- ``retained``: the end is past ``tol`` over the start and holds most of the rise (what it gave
  back of the peak is not past the larger of ``tol`` and a tenth of the rise). Worded by how it
  came to hold it: level for its last stretch, one rise it ended on, "it kept growing up to its
  end" (a loop that appends on every iteration, a load that streams to its end), or level over
  all samples (the build came before the first). With fewer than ten samples (no shape is
  judged), also when the headline figures show the end holding most of the peak's rise. A
  one-shot block that builds something and keeps it (a notebook cell loading a DataFrame,
  ``data = bytearray(200_000_000)`` kept to the end): worded ``+190.7 MiB held at the end``.
- ``ramp``: the end is past that over the start but fell part of the way back from the peak
  (grew, then gave part back: what survives of a load-everything-then-work, big temporaries
  around a smaller result).
- ``leak``: only with ``units=True``, a timeline over repeated units of work that should each
  give their memory back (requests, tasks, rounds of a service loop, calls of a leak hunt): the
  end is past ``tol`` and ends near its highest level, the last quarter still adds more than
  ``tol / 2`` and the rise it ended on has lasted more than half the run; or the troughs of a
  sawtooth rose. One run of a script, function or block that builds and keeps a result, however
  it builds it, is never a leak: one pass cannot show that its memory should have come back.

Too short to judge: fewer than ``MIN_SAMPLES`` samples, counted no denser than the sampling
interval (samples that bunched up after a starved sampler's late ticks add points, not time): the
shape is not judged and the pattern is ``unjudged`` (``Growth.label``: ``too short to judge``).
A timeline from a process's birth to its exit (``membound run``) is judged by ``lifespan.py``
between its start-up and its exit.

Words and figures: given the run's headline figures (:class:`Anchors`: RSS at start, the peak
and where it came from, RSS at the end), the explanation quotes those as the table beside it
shows them ("at its peak" is Δ peak RSS), names the levels growth was measured between when they
are not the RSS at start and at end (a command's level after its start-up and before its exit,
also in ``Growth.level_start``/``level_end`` for the table), and names the sampled figure beside
them where the samples saw less; without anchors it says its figures are sampled.

Slopes are Theil–Sen (the median of pairwise slopes), robust to single outliers. It is written
here rather than taken from SciPy (``scipy.stats.theilslopes``) to keep SciPy and NumPy out of the
core dependencies; it runs on at most ``_MAX_SLOPE_POINTS`` evenly spaced points.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from membound._units import format_size
from membound.results.timeline import Timeline

__all__ = [
    "EDGE_SAMPLES",
    "MARGIN",
    "MIN_SAMPLES",
    "Anchors",
    "Growth",
    "GrowthPattern",
    "classify",
    "default_tolerance",
    "effective_samples",
    "seconds",
    "theil_sen",
]

GrowthPattern = Literal["flat", "sawtooth", "ramp", "leak", "spike", "retained", "unjudged"]

_MAX_SLOPE_POINTS = 200
_MIN_TOLERANCE = 1 << 20
#: Fewer samples than this (counted no denser than the sampling interval) are too few to judge.
MIN_SAMPLES = 10
#: The first and last few samples, whose median is the level at the start and at the end.
EDGE_SAMPLES = 3
#: Python allocator blocks over the start that still count as "about as many as at the start".
_FEW_BLOCKS = 1000
#: The end "holds most of the rise" when it is within this fraction of the rise (or within the
#: tolerance) of the peak.
_HELD_SHARE = 0.1
#: A rise counts as begun once the level is this fraction of the rise (or half the tolerance)
#: over the start.
_RISE_BEGUN = 0.1
#: The dead band around every threshold, as a share of it: a figure must pass a threshold by
#: more than this to take the word beyond it (within the band, the word on the near side holds,
#: whatever the sampler did), so that sampling jitter smaller than the band never moves a word.
MARGIN = 0.25
#: The tolerance is at least this many robust standard deviations of the samples' own noise
#: (the spread of one sample's step from the next): noisier readings need more to count as
#: movement, so that noise alone never reads as a rise or a cycle.
_NOISE_SIGMAS = 6.0
#: The median distance of a Gaussian sample from the median of it and its two neighbours, in
#: standard deviations (measured over 200,000 samples: 0.316; a third of the distances are 0).
_NEIGHBOUR_MEDIAN_SIGMA = 0.316
#: The least share of the samples between a run's first and last peak that cycles spend below
#: their middle band, and above it: a sawtooth spends a good part of its time on each side
#: (a quarter to a half in the jobs measured), a level with a dip or two one sample long does
#: not (3 %).
_CYCLE_SHARE = 0.1
#: The share of the samples between a run's first and last peak left out at each end when
#: placing the cycles' middle band: a lone dip (a process pool's two workers idle at the same
#: instant, one sample at 64 MiB under troughs of 231 MiB) or a lone top is no trough or peak
#: that sets it.
_CYCLE_QUANTILE = 0.05
#: Troughs needed to estimate how they scatter (see :func:`_trough_scatter`).
_SCATTER_TROUGHS = 4
#: Troughs rose only past this many robust standard deviations of where the sampler caught
#: each one (:func:`_trough_scatter`), as well as past the tolerance: a thread pool's troughs
#: scatter by 5 to 10 MiB around a level whose samples are within 1.5 MiB.
_TROUGH_SIGMAS = 3.0
#: The share of the cycles' span troughs must rise by to have risen over one run, not over
#: units of work (half the middle band, see ``_cycles``).
_ONE_RUN_TROUGH_SHARE = 1 / 16
#: The share of the cycles' span two troughs must rise by to have risen (see ``_cycles``).
_TWO_TROUGHS_SHARE = 0.25


def _past(value: float, threshold: float) -> bool:
    """``value`` is beyond ``threshold`` by more than the dead band (``MARGIN`` of it)."""
    return value > threshold * (1 + MARGIN)


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
    level: float | None = None
    """The level the run's work rose from when that is not ``start`` (a command's level after
    its start-up, ``lifespan.py``): growth is measured from it, and the words say so."""
    level_end: float | None = None
    """The level the run's work ended on when that is not ``end`` (a command's level before its
    exit fall), bytes."""

    @property
    def base(self) -> float:
        """What growth is measured from: ``level`` when given, else ``start``."""
        return self.start if self.level is None else self.level

    @property
    def last(self) -> float:
        """Where the run's work ended: ``level_end`` when given, else ``end``."""
        return self.end if self.level_end is None else self.level_end

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
    """One of ``flat``, ``sawtooth``, ``ramp``, ``leak``, ``spike``, ``retained``, or
    ``unjudged`` when the run was too short to judge (JSON written before 0.x said ``flat`` with
    ``samples`` under ten: :meth:`from_dict` reads that as ``unjudged``). ``leak`` only for a
    timeline of repeated units of work (``classify(..., units=True)``)."""
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
    """Points the verdict was drawn from, counted no denser than the sampling interval (-1: not
    recorded). Under ten, the shape is not judged: the pattern is ``unjudged``, or
    ``retained`` when the run's headline figures show it held most of its rise at the end. (A
    run from its process's birth that is too short to judge, ``lifespan.py``, records nine at
    most, whatever it needed.)"""
    level_start: float | None = None
    """The level growth was measured from when it is not the run's RSS at start (a command's
    level after its start-up), bytes; None otherwise. Reports show it beside the figures."""
    level_end: float | None = None
    """The level the run's work ended on when it is not the run's RSS at end (a command's level
    before its exit fall), bytes; None otherwise."""

    @property
    def judged(self) -> bool:
        """False when the timeline was too short to judge; ``retained`` is drawn from the
        headline figures, whatever the number of samples."""
        if self.pattern == "unjudged":
            return False
        return self.samples < 0 or self.samples >= MIN_SAMPLES or self.pattern == "retained"

    @property
    def label(self) -> str:
        """The pattern, or ``too short to judge``."""
        return self.pattern if self.judged else "too short to judge"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Growth:
        """Inverse of :meth:`to_dict`; a ``flat`` with under ten samples, as written before the
        ``unjudged`` pattern existed, reads as ``unjudged``."""
        growth = cls(**data)
        if growth.pattern == "flat" and not growth.judged:
            growth = replace(growth, pattern="unjudged")
        return growth


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


def _troughs(values: Sequence[float], low: float, high: float) -> tuple[list[float], int]:
    """The lowest value of each stretch below ``low`` between excursions above ``high``, and
    how many of them the values rose from again past ``high`` (complete cycles; hysteresis
    between ``low`` and ``high`` keeps small back-and-forth from counting)."""
    troughs: list[float] = []
    complete = 0
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
                complete += 1
            else:
                current = min(current, v)
    if not above:
        troughs.append(current)
    return troughs, complete


def _floor_rise(troughs: Sequence[float]) -> float:
    """How far the floor of the troughs rose while the cycles went on: the smaller of the rise
    of the later half's floor over the earlier half's, and (from three troughs) of the last
    third's over the middle third's: their lowest values; 0 with fewer than two troughs.

    A trough is the lowest sample the sampler caught of a fall, never below the memory's true
    floor and often above it: a thread pool's batches freed in full read troughs of 33 to 64
    MiB in one run, and a line fitted through them rose 10 to 20 MiB by chance, one run in
    three. The lowest of each part comes near the true floor when it is level, and rises with
    it when it rises. A floor that keeps rising rises in the later thirds too; one that rose
    over the first cycles and then held did not keep anything per cycle: a process pool's two
    workers start one after the other (its first troughs hold one worker's arrays, 64 and 132
    MiB, the rest both workers', 231 to 244 MiB), and an allocator keeps arenas its first cycle
    had not yet made (a loop's first trough 12 MiB, the next five 14 to 16)."""
    n = len(troughs)
    if n < 2:
        return 0.0
    halves = min(troughs[(n + 1) // 2 :]) - min(troughs[: n // 2])
    third = n // 3
    if not third:
        return halves
    return min(halves, min(troughs[n - third :]) - min(troughs[third : n - third]))


def _trough_scatter(troughs: Sequence[float]) -> float:
    """A robust standard deviation of where the sampler caught each trough: the median absolute
    deviation of one trough's step from the next around the median step (a steady rise adds
    nothing). 0 with fewer than ``_SCATTER_TROUGHS`` troughs: the two steps of three troughs
    tell how the rise slowed, not how the troughs scatter (a build that keeps 15 MB a step
    read troughs of 29, 57 and 72 MiB)."""
    if len(troughs) < _SCATTER_TROUGHS:
        return 0.0
    return _step_sigma(troughs)


def _step_sigma(values: Sequence[float]) -> float:
    """A robust standard deviation of one value's noise from the median absolute deviation of
    its step to the next around the median step (two values, so the step's spread is √2 times
    one value's); at least two values."""
    steps = [b - a for a, b in itertools.pairwise(values)]
    centre = statistics.median(steps)
    return 1.4826 * statistics.median(abs(d - centre) for d in steps) / math.sqrt(2)


def _first_peak(values: Sequence[float], swing: float) -> int | None:
    """The index of the highest sample before the first fall of ``swing`` or more from the
    highest so far (where the run's first rise ended), or None when it never fell that far."""
    top = 0
    for i, v in enumerate(values):
        if v > values[top]:
            top = i
        elif values[top] - v >= swing:
            return top
    return None


def _cycling_part(values: Sequence[float], swing: float) -> Sequence[float]:
    """The samples from the run's first peak to its last: the end of its first rise (past a
    fall of ``swing``) up to the start of its last fall (the same, read from the end). What the
    run rose from before its cycles (a level it built) and what it fell to after them (what a
    function measured in a fresh interpreter frees as it returns) are no part of its cycles."""
    first = _first_peak(values, swing)
    if first is None:
        return []
    last = len(values) - 1 - (_first_peak(values[::-1], swing) or 0)
    return values[first : last + 1]


def _cycles(
    values: Sequence[float], lo: float, hi: float, tol: float, units: bool = False
) -> tuple[GrowthPattern, str] | None:
    """The verdict on two or more rise-and-fall cycles, or None when there are fewer.

    Cycles are looked for between the run's first and last peak (:func:`_cycling_part`, moves
    of the larger of the tolerance and an eighth of the run's range), between the low and the
    high of that part: a sawtooth over a level the run built first (50 MB kept, a 20 MB
    temporary every 40 ms) sits above the middle of the whole run's range, and was missed. Its
    low and high leave out ``_CYCLE_QUANTILE`` of the part's samples at each end (a lone dip
    set the middle under most troughs, and a pool's cycles read sawtooth in one run and
    "retained" in the next); when the rest spans less than that swing there are no cycles. A
    cycle falls below an eighth of that span under its middle and rises back above an
    eighth over it, and the part spends at least ``_CYCLE_SHARE`` of its samples on each side:
    short dips from a level (a pool's two workers between two tasks, caught by one sample in
    one run and by none in the next) are no cycles. Repeated cycles are judged by their
    troughs, not by where the last cycle happened to stop: level troughs are a sawtooth; rising
    troughs come back as ``leak``, which ``_decide`` keeps for repeated units of work and
    otherwise words beside the run's own verdict. Over units of work (``units``) any rise past
    the troughs' own scatter counts (a leak of 1 MiB a request under 100 MiB temporaries is
    one); over one run, troughs rose only by ``_ONE_RUN_TROUGH_SHARE`` of the cycles' span or
    more: a numpy pool's troughs stepped up 5 MiB once in cycles of 115, one run in six, and
    the word that describes the run is its cycles.
    """
    swing = max(tol, (hi - lo) / 8)
    part = _cycling_part(values, swing)
    if len(part) < 3:
        return None
    ranked = sorted(part)
    edge = int(_CYCLE_QUANTILE * len(ranked))
    band_lo, band_hi = ranked[edge], ranked[-1 - edge]
    if band_hi - band_lo < swing:
        return None  # all but a few samples within one swing: a level with dips, no cycles
    mid, band = (band_lo + band_hi) / 2, (band_hi - band_lo) / 8
    troughs, complete = _troughs(part, mid - band, mid + band)
    below = sum(v < mid - band for v in part)
    above = sum(v > mid + band for v in part)
    if complete < 2 or min(below, above) < _CYCLE_SHARE * len(part):
        return None
    floor_rise = _floor_rise(troughs)
    needed = max(tol, _TROUGH_SIGMAS * _trough_scatter(troughs))
    if not units:
        needed = max(needed, _ONE_RUN_TROUGH_SHARE * (ranked[-1] - ranked[0]))
    if len(troughs) == 2:
        # Two troughs have no third to show the rise goes on, nor a scatter to measure: one
        # rise must be a good part of the cycles' span (a process pool's two gaps between
        # rounds of tasks read 48 and 86 MiB in cycles of 262, a worker still busy in one).
        needed = max(needed, _TWO_TROUGHS_SHARE * (ranked[-1] - ranked[0]))
    if _past(floor_rise, needed):
        return "leak", (
            f"a sawtooth whose troughs rose {format_size(floor_rise)} over {complete} cycles "
            "(the lowest of the later half over the lowest of the earlier, and of the last "
            "third over the middle one, sampled)"
        )
    troughs_moved = (
        f"troughs rose {format_size(floor_rise)}, less than the {format_size(needed)} a rise "
        "needs here"
        if _past(floor_rise, tol)
        else "troughs level"
    )
    return "sawtooth", (
        f"{complete} rise-and-fall cycles of up to {format_size(ranked[-1] - ranked[0])} "
        f"(sampled), {troughs_moved}"
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
        """The rise at the peak: the headline figure with its source (``Δ peak RSS``, the peak
        over the RSS at start), over the level after a start-up when growth is measured from
        one, and what the samples saw when that was less."""
        a = self.anchors
        if a is None:
            return f"{format_size(self.hi - self.start_level, signed=True)} at its highest sample"
        source = a.peak_source
        if self.kernel_saw_more():
            source += (
                f"; the highest sample judged was {format_size(self.hi - a.start, signed=True)}"
            )
        words = f"{format_size(a.peak - a.start, signed=True)} at its peak ({source})"
        if a.level is not None:
            words += (
                f", {format_size(a.peak - a.level, signed=True)} over its "
                f"{format_size(a.level)} after start-up"
            )
        return words

    def end(self) -> str:
        """Where the run ended, over its start."""
        a = self.anchors
        if a is None:
            change = self.end_level - self.start_level
            return f"ended {format_size(change, signed=True)} over its start (sampled)"
        if a.level is not None:
            return (
                f"ended {format_size(self.net(), signed=True)} over its "
                f"{format_size(a.level)} after start-up{self._before_exit()}"
            )
        return f"ended {format_size(a.end - a.start, signed=True)} over its start"

    def _before_exit(self) -> str:
        a = self.anchors
        if a is None or a.level_end is None:
            return ""
        return f", at {format_size(a.level_end)} before its exit"

    def net(self) -> float:
        """Where the run ended over its start: the headline figures when known (the last sample
        can come before the last frees), else the samples."""
        a = self.anchors
        return a.last - a.base if a is not None else self.end_level - self.start_level

    def rise(self) -> float:
        """The peak over the start: the headline figures when known (the first sample can come
        after the run's first allocation), else the samples."""
        a = self.anchors
        return a.peak - a.base if a is not None else self.hi - self.start_level

    def holds(self) -> bool:
        """The end still holds most of the rise to the peak (past the dead band)."""
        return _holds(self.net(), self.rise(), self.tol)

    def held(self) -> str:
        """What the run held at its end, over its start."""
        a = self.anchors
        if a is None:
            return f"{format_size(self.net(), signed=True)} held at the end (sampled)"
        if a.level is not None:
            return (
                f"{format_size(self.net(), signed=True)} held at the end, over its "
                f"{format_size(a.level)} after start-up{self._before_exit()}"
            )
        return f"{format_size(self.net(), signed=True)} held at the end"

    def ends_high(self) -> bool:
        """Still at (or within the tolerance of) its highest when the run ended: the headline
        end against the headline peak when known, else the last samples against the highest.
        A run whose memory fell back at the end was not growing when it ended."""
        a = self.anchors
        if a is not None:
            return a.last >= a.peak - self.tol
        return self.end_high >= self.hi - self.tol

    def kernel_saw_more(self) -> bool:
        """The kernel's peak rose more than the tolerance above anything the samples saw."""
        a = self.anchors
        return a is not None and a.peak - self.hi > self.tol

    def retained(self) -> str:
        """Why RSS stayed up at the end, when the figures say; else an empty string."""
        return _why_held(self.anchors, self.tol)


def _why_held(a: Anchors | None, tol: float) -> str:
    """Why RSS stayed up at the end, when the figures say; else an empty string.

    About as many allocator blocks as at the start means either that the objects made were
    freed or that a few large ones (a buffer, an array) hold the memory: the block count
    cannot tell which, so the words name both unless ``malloc_trim`` settled it."""
    if a is None or a.last - a.base <= tol:
        return ""
    held = a.last - a.base
    few = a.blocks_delta is not None and a.blocks_delta <= _FEW_BLOCKS
    parts = []
    if few:
        parts.append(
            f"Python's allocator held {a.blocks_delta:+,} blocks over its start: the objects "
            "made were freed, or a few large ones hold it"
        )
    trim = "gc.collect() and malloc_trim(0), what release_memory() does,"
    if a.released is not None:
        given = max(0.0, a.end - a.released)
        if given > max(tol, held / 2):
            parts.append(f"{trim} gave back {format_size(given)}: the allocator had kept it")
        elif few:
            parts.append(
                f"{trim} gave back only {format_size(given)}: live large objects or free "
                "space in partly used allocator pages hold the rest"
            )
        else:
            parts.append(
                f"{trim} gave back only {format_size(given)}: its pages still hold live objects"
            )
    elif few:
        parts.append("if they were freed, release_memory() may give their pages back")
    return "".join(f"; {p}" for p in parts)


def _holds(net: float, rise: float, tol: float) -> bool:
    """The end (``net`` over the start) still holds most of ``rise``, the peak over the start:
    it is past the tolerance (by the dead band), and what it gave back is not past the larger of
    ``tol`` and a tenth of the rise (within the band, it holds)."""
    return _past(net, tol) and not _past(rise - net, max(tol, _HELD_SHARE * rise))


def _smoothed(values: Sequence[float]) -> list[float]:
    """Each value replaced by the median of it and its neighbours (one outlier is not a level)."""
    return [statistics.median(values[max(0, i - 1) : i + 2]) for i in range(len(values))]


def _rise_began(values: Sequence[float], times: Sequence[float], shape: _Shape) -> float:
    """When the rise the run ended on began: the last time the level was still near its start
    (within the larger of half the tolerance and a tenth of the rise), else the first sample."""
    rise = max(0.0, shape.end_level - shape.start_level)
    near = shape.start_level + max(shape.tol / 2, _RISE_BEGUN * rise)
    smooth = _smoothed(values)
    for i in range(len(values) - 1, -1, -1):
        if smooth[i] <= near:
            return times[i]
    return times[0]


def _level_since(values: Sequence[float], times: Sequence[float], shape: _Shape) -> float:
    """Since when the level has stayed near where it ended (within the tolerance)."""
    smooth = _smoothed(values)
    for i in range(len(values) - 1, -1, -1):
        if abs(smooth[i] - shape.end_level) > shape.tol:
            return times[min(i + 1, len(times) - 1)]
    return times[0]


def classify(
    timeline: Timeline,
    tolerance: float | None = None,
    *,
    anchors: Anchors | None = None,
    units: bool = False,
    span: str = "run",
) -> Growth:
    """Judge how memory moved over ``timeline``.

    Args:
        timeline: the samples (any metric: RSS or heap).
        tolerance: bytes of movement to treat as noise; default max(1 MiB, 2 % of the median,
            six robust standard deviations of the samples' own noise).
        anchors: the run's headline figures (start, peak, end), quoted by the explanation.
        units: the timeline spans repeated units of work that should each give their memory
            back (requests, tasks, rounds of a service loop, calls of a leak hunt): only then is
            memory that keeps growing a ``leak``. One run of a script, function or block that
            grows up to its end is ``retained`` (``ramp`` when it gave part back), worded "kept
            growing up to its end".
        span: what the words call the span of ``timeline`` ("the last 0.30 s of the 0.57 s
            run"): a caller that judges part of a run names that part, so that no duration in
            the words reads as the run's wall time.

    Returns:
        A :class:`Growth` with the pattern, robust slopes, the tolerance used and an explanation.
    """
    values = list(timeline.values)
    times = list(timeline.times)
    n = len(values)
    if effective_samples(timeline) < MIN_SAMPLES:
        return _too_short(timeline, tolerance, anchors)
    lo, hi = min(timeline.lows), max(timeline.highs)
    rng = hi - lo
    tol = float(
        tolerance
        if tolerance is not None
        else max(default_tolerance(values), _NOISE_SIGMAS * _noise(values))
    )
    slope_t = theil_sen(times, values)
    # The first and last few samples: a wider window would reach into a fast first step (an
    # allocation right after start) and call it the starting level.
    shape = _Shape(
        statistics.median(values[:EDGE_SAMPLES]),
        statistics.median(values[-EDGE_SAMPLES:]),
        max(timeline.highs[-EDGE_SAMPLES:]),
        hi,
        tol,
        anchors,
    )
    tail_from = n - max(3, n // 4)
    tail_t, tail_v = times[tail_from:], values[tail_from:]
    tail_slope = theil_sen(tail_t, tail_v)
    tail_rise = tail_slope * (tail_t[-1] - tail_t[0]) if len(tail_t) > 1 else 0.0
    tail = _Tail(tail_t[0], tail_slope, tail_rise)
    pattern, text = _decide(shape, values, times, lo, rng, tail, slope_t, units, span)
    return Growth(
        pattern,
        slope_t,
        theil_sen(range(n), values),
        rng,
        tol,
        tail_slope,
        f"{pattern}: {text} (tolerance {format_size(tol)})",
        n,
        None if anchors is None else anchors.level,
        None if anchors is None else anchors.level_end,
    )


def _noise(values: Sequence[float]) -> float:
    """A robust standard deviation of the samples' noise, the smaller of two estimates that
    each read random jitter as itself (both are one standard deviation for Gaussian noise) but
    fail on different regular movement, so that a regular cycle, which is movement and not
    noise, inflates at most one of them:

    - the median absolute deviation of one sample's step from the next around the median step
      (a steady ramp or a few steps add nothing; a cycle's uneven steps do: a temporary made
      and freed every 40 ms, steps of +3, +12, -15 and 0 MiB, read as 13 MiB of noise);
    - the median distance of a sample from the median of it and its two neighbours (a ramp or
      a step adds nothing, nor a cycle that holds its level for two samples or more; samples
      that alternate up and down at every reading do, as they do the first estimate: such
      readings cannot be told from noise)."""
    if len(values) < 3:
        return 0.0
    by_steps = _step_sigma(values)
    apart = statistics.median(
        abs(values[i] - sorted(values[i - 1 : i + 2])[1]) for i in range(1, len(values) - 1)
    )
    return min(by_steps, apart / _NEIGHBOUR_MEDIAN_SIGMA)


def effective_samples(timeline: Timeline) -> int:
    """The samples a verdict can draw on: the points of ``timeline``, but never more than the
    sampling intervals its time spans allow (samples that bunched up after late ticks of a
    starved sampler add points, not time)."""
    n = len(timeline)
    if n < 2 or timeline.interval <= 0:
        return n
    return min(n, round(timeline.duration_s / timeline.interval) + 1)


def default_tolerance(values: Sequence[float]) -> float:
    """The tolerance used unless one is given: the larger of 1 MiB and 2 % of the median."""
    return float(max(_MIN_TOLERANCE, 0.02 * statistics.median(values) if values else 0.0))


def _too_short(timeline: Timeline, tolerance: float | None, anchors: Anchors | None) -> Growth:
    """The verdict on fewer than ``MIN_SAMPLES`` samples: no shape is judged. ``retained`` when
    the headline figures show the end holding most of the peak's rise (a block that is one
    allocation lasts a few samples), else ``flat`` by default."""
    n = effective_samples(timeline)
    tol = float(tolerance if tolerance is not None else _MIN_TOLERANCE)
    text = f"too short to judge: too few samples ({n}) to judge growth"
    if anchors is None:
        return Growth("unjudged", 0.0, 0.0, 0.0, tol, 0.0, text, n)
    rise = anchors.peak - anchors.start
    peak = f"{format_size(rise, signed=True)} at its peak ({anchors.peak_source})"
    held = anchors.end - anchors.start
    # The tolerance the full verdict would use: 2 % of the level, at least 1 MiB.
    level = statistics.median(timeline.values) if n else anchors.end
    held_tol = tol if tolerance is not None else max(tol, 0.02 * level)
    if not _holds(held, rise, held_tol):
        return Growth("unjudged", 0.0, 0.0, 0.0, tol, 0.0, f"{text}; {peak}", n)
    text = (
        f"retained: {format_size(held, signed=True)} held at the end; {peak}; too few samples "
        f"({n}) to judge the shape{_why_held(anchors, held_tol)}"
    )
    return Growth(
        "retained",
        0.0,
        0.0,
        max(timeline.highs) - min(timeline.lows) if n else 0.0,
        held_tol,
        0.0,
        f"{text} (tolerance {format_size(held_tol)})",
        n,
    )


def _how_held(
    values: Sequence[float], times: Sequence[float], shape: _Shape, *, rising: bool, span: str
) -> str:
    """How the run came to hold its end level: level for its last stretch, or (still rising in
    its last quarter, or in its last few samples) one rise that the run ended on."""
    since = _level_since(values, times, shape)
    if not rising and sum(t >= since for t in times) >= EDGE_SAMPLES:
        return f"level for its last {seconds(times[-1] - since)}"
    began = _rise_began(values, times, shape)
    lasted = times[-1] - times[0]
    last = f"the last {seconds(times[-1] - began)} of the {seconds(lasted)} {span}"
    if times[-1] - began > lasted / 2:
        return f"it kept growing up to its end, over {last}"
    return f"the rise came in {last}, up to its end"


def seconds(span: float) -> str:
    """A duration for a sentence: hundredths under ten seconds, whole seconds above."""
    return f"{span:.2f} s" if span < 10 else f"{span:.0f} s"


@dataclass(frozen=True)
class _Tail:
    """The last quarter of the run."""

    start: float
    """Time of its first sample."""
    slope: float
    """Its robust slope, bytes per second."""
    rise: float
    """What that slope adds over the quarter, bytes."""


def _decide(
    shape: _Shape,
    values: Sequence[float],
    times: Sequence[float],
    lo: float,
    rng: float,
    tail: _Tail,
    slope_t: float,
    units: bool,
    span: str,
) -> tuple[GrowthPattern, str]:
    """The pattern and its words.

    The word is drawn from figures that sampling jitter does not move: the rise to the peak and
    the end over the start (the headline figures when known, else levels that are medians of
    several samples), each against its threshold with a dead band (:data:`MARGIN`). What only
    the samples show (how long a rise lasted, whether the last quarter still rose, whether a
    sample caught a short peak) shapes the words, and decides ``leak`` only for repeated units
    of work (``units``), where the caller knows the memory should have come back each time."""
    tol, net, rise = shape.tol, shape.net(), shape.rise()
    cycles = _cycles(values, lo, shape.hi, tol, units) if _past(rng, tol) else None
    if cycles is not None and cycles[0] == "sawtooth":
        return "sawtooth", f"{cycles[1]}; {shape.peak()}"
    troughs = "" if cycles is None else f"; {cycles[1]}"
    if not _past(rise, tol) and not shape.kernel_saw_more():
        if rng <= tol:
            lasted = times[-1] - times[0]
            return "flat", (
                f"stayed within {format_size(rng)} over the {lasted:.2f} s {span}; {shape.peak()}"
            )
        if net < 0:
            return "flat", (
                f"no growth: it fell {format_size(-net)} from its start; {shape.peak()}"
            )
        return "flat", f"no growth: {shape.end()}, within the tolerance; {shape.peak()}"
    # One run gave its memory back when what it kept is a small share of what it rose by (a
    # 250 MiB temporary list leaving 1.7 MiB is no ramp, whether 1.1 or 1.7 MiB stayed); over
    # units of work any growth kept past the tolerance is worth its word.
    if not _past(net, tol if units else max(tol, _HELD_SHARE * rise)):
        # Below its start by more than the tolerance is no return "near" it: a command whose
        # level after start-up was data it later freed ends far under that level.
        back = "fell below its start" if _past(-net, tol) else "returned near its start"
        return "spike", f"rose {shape.peak()}, then {back}: {shape.end()}"
    rising = tail.rise > tol / 2
    if units and (cycles is not None or (rising and shape.ends_high())):
        began = _rise_began(values, times, shape)
        if cycles is not None or times[-1] - began > (times[-1] - times[0]) / 2:
            still = (
                cycles[1]
                if cycles is not None
                else (
                    f"still growing when it ended: {shape.end()}, "
                    f"{format_size(tail.slope, signed=True)}/s over the last quarter "
                    f"({format_size(slope_t, signed=True)}/s overall)"
                )
            )
            return "leak", f"{still}; {shape.peak()}"
    if shape.holds():
        if not _past(rng, tol):
            # Level samples, yet the headline figures rose and held: the build came before the
            # first sample (the sampler starts a moment after the block does).
            how = f"level over all {len(values)} samples (the rise came before the first)"
        else:
            how = _how_held(values, times, shape, rising=rising and shape.ends_high(), span=span)
        return "retained", f"{shape.held()}, {how}{troughs}; {shape.peak()}{shape.retained()}"
    return "ramp", (
        f"rose {shape.peak()}, then fell part of the way back: {shape.end()}{troughs}"
        f"{shape.retained()}"
    )
