"""Growth over a process's whole life: a timeline from its birth to its exit (``membound run``).

Such a timeline begins and ends with memory the program's work never made. A process is born
holding next to nothing and rises while its program loads (an interpreter starting and importing,
a shell starting another program: measured here, ``python3 -c 1`` rises 0 → 13 MiB in 85 ms, all
of it start-up); at its exit it falls as it tears down (CPython frees its objects on the way out).
Judged whole, the start-up reads as a leak (it is "still growing" when a short program ends) and
the exit as a spike or a ramp. So the verdict is drawn between the two, by
:func:`~membound.results.growth.classify`:

- **start-up**: up to the first level the memory holds (samples within the tolerance of each
  other, above the tolerance, for ``MIN_SAMPLES`` samples and at least as long as the rise
  before them took: a program that pauses while it loads, or a shell that starts it, soon rises
  again; one that has loaded stays). A program that starts growing at once never holds one:
  then the first half of the run counts as its start-up (a start-up longer than the rest of the
  run cannot be told from it), and the second half is judged only when it holds
  ``NO_LEVEL_SAMPLES`` samples or more: a start-up that runs several programs one after the
  other (``python3`` through a pyenv shim: bash, then pyenv, then the interpreter) rises and
  falls without a level for twenty samples and more on a busy machine, and only a longer run
  tells it from growth.
- **exit**: a fall of more than the tolerance over the last samples (a teardown may tick up a
  little on its way down) is the process ending, unless the run sat at its lowest for longer
  than the fall took (it freed its memory, then went on).
- **too short**: fewer than ``MIN_SAMPLES`` samples left between them (``NO_LEVEL_SAMPLES``
  without a level; counted no denser than the sampling interval,
  :func:`~membound.results.growth.effective_samples`): the run was its start-up, or too brief,
  and the pattern is ``too short to judge`` (never ``retained``: what a program holds once
  loaded is its size, not something its run kept).

The run's start is then the first level (not 0) and its end the level before the exit, so the
words ("held at the end", "ended … over its start") speak of the program's work.
"""

from __future__ import annotations

import statistics
from dataclasses import replace
from itertools import takewhile

from membound._units import format_size
from membound.results.growth import (
    EDGE_SAMPLES,
    MIN_SAMPLES,
    Anchors,
    Growth,
    classify,
    default_tolerance,
    effective_samples,
    seconds,
)
from membound.results.timeline import Timeline

__all__ = ["NO_LEVEL_SAMPLES", "classify_lifespan", "exit_start", "startup_end"]

#: Samples the second half of a run that never held a level must have to be judged.
NO_LEVEL_SAMPLES = 5 * MIN_SAMPLES


def startup_end(timeline: Timeline, tolerance: float) -> tuple[int, bool]:
    """Where the start-up of a timeline from birth ends: the index of the first sample of its
    first level, or (when no level begins in the first half) of the first sample of the second
    half; and whether a level was found.

    A level: samples within ``tolerance`` of each other, above ``tolerance``, for at least
    ``MIN_SAMPLES`` samples and at least as long as the rise before it took (a pause while a
    program loads, or a shell that starts the program, is shorter; a program that has loaded
    stays).
    """
    lows, highs, times = timeline.lows, timeline.highs, timeline.times
    n = len(timeline)
    if not n:
        return 0, False
    half = times[0] + timeline.duration_s / 2
    cap = next((i for i, t in enumerate(times) if t >= half), n - 1)
    for i in range(cap + 1):
        rose = times[i] - times[0]
        end = next((j for j in range(i + MIN_SAMPLES - 1, n) if times[j] - times[i] >= rose), n)
        if end == n:
            break  # no later level can last long enough either
        low = min(lows[i : end + 1])
        if low > tolerance and max(highs[i : end + 1]) - low <= tolerance:
            return i, True
    return cap, False


def exit_start(timeline: Timeline, tolerance: float, first: int = 0) -> int:
    """The index of the last sample before the exit fall, or of the last sample when the run
    did not end falling by more than ``tolerance``.

    Walking back from the last sample, the fall goes on as long as no sample is lower than the
    highest seen so far by more than the tolerance (a teardown may tick up a little on its
    way down); its top is the last sample within the tolerance of that highest one. A run
    that sat at its lowest for longer than it took to fall there did not fall as it ended: it
    freed its memory, then went on.
    """
    highs, times = timeline.highs, timeline.times
    last = len(highs) - 1
    if last < 0:
        return last
    i, high = last, highs[last]
    while i > first and highs[i - 1] > high - tolerance:
        i -= 1
        high = max(high, highs[i])
    top = max(j for j in range(i, last + 1) if highs[j] >= high - tolerance)
    bottom = last - sum(
        1 for _ in takewhile(lambda h: h <= highs[last] + tolerance, reversed(highs[top:]))
    )
    bottom += 1
    fell = highs[top] - highs[last] > tolerance
    if fell and times[last] - times[bottom] <= times[bottom] - times[top]:
        return top
    return last


def classify_lifespan(
    timeline: Timeline, tolerance: float | None = None, *, anchors: Anchors | None = None
) -> Growth:
    """Judge how memory moved over a timeline from its process's birth to its exit, between its
    start-up and its exit (see the module docstring).

    Args:
        timeline: the samples, the first one taken as the process was born.
        tolerance: bytes of movement to treat as noise; default max(1 MiB, 2 % of the median).
        anchors: the run's headline figures; its start and end are replaced by the level after
            the start-up and the level before the exit.

    Returns:
        A :class:`~membound.results.growth.Growth`; ``too short to judge`` (pattern ``flat``,
        ``samples`` under ``MIN_SAMPLES``) when too little is left between the two.
    """
    tol = float(tolerance if tolerance is not None else default_tolerance(timeline.values))
    if not len(timeline):
        return _unjudged(0, MIN_SAMPLES, tol, "no samples")
    first, level_found = startup_end(timeline, tol)
    last = exit_start(timeline, tol, first)
    times = timeline.times
    judged = timeline.window(times[first], times[last])
    if level_found:
        level = statistics.median(judged.values[:EDGE_SAMPLES])
        startup = (
            f"after its start-up (the first {seconds(times[first] - times[0])}, "
            f"to {format_size(level)})"
        )
    else:
        startup = (
            "over the second half of its run (its memory held no level before: the first "
            f"{seconds(times[first] - times[0])} count as its start-up)"
        )
    ending = (
        ""
        if last == len(timeline) - 1
        else (
            f", up to its exit (it fell from {format_size(timeline.highs[last])} over its "
            f"last {seconds(times[-1] - times[last])} as it ended)"
        )
    )
    kept = effective_samples(judged)
    needed = MIN_SAMPLES if level_found else NO_LEVEL_SAMPLES
    if kept < needed:
        return _unjudged(kept, needed, tol, f"{kept} samples {startup}{ending}")
    moved = None
    if anchors is not None:
        start = statistics.median(judged.values[:EDGE_SAMPLES])
        end = float(timeline.highs[last]) if ending else anchors.end
        moved = replace(anchors, start=start, end=end)
    growth = classify(judged, tolerance, anchors=moved)
    words = growth.explanation.removeprefix(f"{growth.pattern}: ")
    return replace(growth, explanation=f"{growth.pattern}: {startup}{ending}: {words}")


def _unjudged(kept: int, needed: int, tol: float, why: str) -> Growth:
    """``too short to judge``: ``kept`` samples, fewer than the ``needed`` ones. Its
    ``samples`` stay under ``MIN_SAMPLES``, so that ``Growth.judged`` is False."""
    text = f"too short to judge growth: {why}, fewer than {needed}"
    return Growth(
        "flat",
        0.0,
        0.0,
        0.0,
        tol,
        0.0,
        f"{text} (tolerance {format_size(tol)})",
        min(kept, MIN_SAMPLES - 1),
    )
