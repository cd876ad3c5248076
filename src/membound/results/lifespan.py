"""Growth over a process's whole life: a timeline from its birth to its exit (``membound run``).

Such a timeline begins and ends with memory the program's work never made. A process is born
holding next to nothing and rises while its program loads (an interpreter starting and importing,
a shell starting another program: measured here, ``python3 -c 1`` rises 0 → 13 MiB in 85 ms, all
of it start-up); at its exit it falls as it tears down (CPython frees its objects on the way out).
Judged whole, the start-up reads as a leak (it is "still growing" when a short program ends) and
the exit as a spike or a ramp. So the verdict is drawn between the two, by
:func:`~membound.results.growth.classify`:

- **start-up**: up to the first level the memory holds (samples within the tolerance of each
  other, above the tolerance, for ``MIN_SAMPLES`` samples and at least ``LEVEL_OVER_RISE``
  times as long as the rise before them took: a program that pauses while it loads, or a shell
  that starts it, soon rises again; one that has loaded stays), and one a loaded program
  holds: reached from where the program started without rising past it, and never given back
  before the exit (what a program loads it keeps; a level after a big temporary was freed, or
  one the run later falls below, is its work). A program that starts working at once never
  holds one: then its start-up ends where its program started (its lowest reading in the first
  half after the first, the interpreter just loaded, or, through a shell or a pyenv shim, the
  last fall back to it, the last ``exec``), and what follows is judged only when it lasts
  ``NO_LEVEL_SAMPLES`` sampling intervals or more (shorter, it cannot be told from the rest of
  a start-up: ``python3 -c pass`` is all start-up). A busy machine stretches every step of a
  job and none of its sleeps: where the program started is found by where its memory is, and
  a level must outlast its rise by a margin, so that the same job starts its work at the same
  point on both.
- **what its imports hold**: from the samples alone, a program that imports for a second and
  then works within a level, and one that loads 300 MB for a second and holds them for three,
  look alike (the second read "flat, after its start-up to 317.8 MiB" in three runs of four).
  For a Python command, ``measure/loaded_level.py`` measures an idle interpreter with the
  command's imports (DESIGN §5.1) when the start-up ended at a level; a level more than
  ``LOADED_OVER`` of that figure over it (past the tolerance) is the job's work, and the
  start-up ends where the run first reached the figure (within the tolerance). So is work
  with no level that lasted too briefly to be judged (below): a rise that far past what the
  imports hold is no start-up, however brief (:func:`needs_loaded` says when to measure it).
- **a pause, not a level**: a process starved of CPU on a busy machine holds still while it
  loads, for ten samples and more, and its first sample often comes after most of its loading
  (so that no rise is seen before the pause). When the memory leaves its level (by more than the
  tolerance) before the exit, that movement is judged only when the level, or the movement from
  leaving it to the exit, lasted ``NO_LEVEL_SAMPLES`` sampling intervals: shorter, it cannot be
  told from the rest of a start-up that paused there (``python3 -c "import json, …"`` starved
  for 50 ms at 8.5 MiB, then importing up to its exit, is no leak).
- **exit**: a fall of more than the tolerance over the last samples (a teardown may tick up a
  little on its way down) is the process ending, unless the run sat at its lowest for
  ``EXIT_SETTLE_SAMPLES`` sampling intervals or more (it freed its memory, then went on; a few
  samples at the bottom are the rest of the teardown, stretched on a busy machine). Where the
  run was still growing at its last sample before the fall and the kernel's peak is within
  what that growth adds over the unsampled time up to the fall's first sample, the run ended
  at that peak (a starved sampler misses the last steps of a leak, not a fall back from them).
  A level on the way down that lasted longer than the rest of the fall (big temporaries
  freed, a smaller result kept a while, then the teardown) is where the work ended: the fall
  from it is the exit.
- **too short**: fewer than ``MIN_SAMPLES`` samples left between them (counted no denser than
  the sampling interval, :func:`~membound.results.growth.effective_samples`), or the spans
  above too short: the run was its start-up, or too brief, and the pattern is ``too short to
  judge`` (never ``retained``: what a program holds once loaded is its size, not something its
  run kept).

The run's start is then the first level (the median of its samples, not 0: its first samples
may still be the end of the rise) and its end the level before the exit, so the words ("held at
the end, over its 8.8 MiB after start-up, at 152.3 MiB before its exit") speak of the
program's work, while the peak they quote is the table's (``Δ peak RSS``, the peak over the
command's start from nothing); the two levels are in the result (``Growth.level_start``,
``level_end``) and in the table beside the words.
"""

from __future__ import annotations

import statistics
from dataclasses import replace
from itertools import takewhile

from membound._units import format_size
from membound.results.growth import (
    MIN_SAMPLES,
    Anchors,
    Growth,
    classify,
    default_tolerance,
    effective_samples,
    seconds,
    theil_sen,
)
from membound.results.timeline import Timeline

__all__ = [
    "EXIT_SETTLE_SAMPLES",
    "LEVEL_OVER_RISE",
    "LOADED_OVER",
    "NO_LEVEL_SAMPLES",
    "classify_lifespan",
    "exit_start",
    "needs_loaded",
    "startup_end",
    "startup_level",
]

#: Sampling intervals that a movement with no level before it (a run that never held one), or
#: after a level that may be a pause, must last to be judged.
NO_LEVEL_SAMPLES = 5 * MIN_SAMPLES

#: How many times as long as the rise before it a level must last to end the start-up. Twice,
#: not once: a job that builds for 0.27 s and holds for 0.30 s (then frees) was a start-up and
#: a level on a quiet machine, and no level at all on a busy one that stretched the build to
#: 0.75 s; at twice, neither is, and the build is the job's work on both.
LEVEL_OVER_RISE = 2.0

#: How far over what an idle interpreter with a command's imports holds (as a share of it,
#: past the tolerance) a start-up level must sit to be the job's work: that interpreter runs
#: the imports the command's code names, not those a library makes lazily as the job calls it,
#: nor the objects the command's own top-level code makes.
LOADED_OVER = 0.5

#: Sampling intervals the bottom of a fall at the end must be held to be the run going on after
#: freeing, not its exit: a teardown ends the interpreter within a few intervals of freeing what
#: it held (even starved); a job that freed and then went on (slept, wrote, waited) for a fifth
#: of a second and more did. Time, not a ratio to the fall's own length: a large free by a job
#: (200 MB in 1 KB pieces, given back to the kernel over 0.4 s) can take longer than what the job
#: did next.
EXIT_SETTLE_SAMPLES = 2 * MIN_SAMPLES


def startup_end(timeline: Timeline, tolerance: float) -> tuple[int, bool]:
    """Where the start-up of a timeline from birth ends: the index of the first sample of its
    first level, or (when it held none that a loaded program holds) of the sample its program
    started from (see :func:`_restart`); and whether such a level was found.

    A level: samples within ``tolerance`` of each other, above ``tolerance``, for at least
    ``MIN_SAMPLES`` samples and at least ``LEVEL_OVER_RISE`` times as long as the rise before
    it took (a pause while a program loads, or a shell that starts it, is shorter; a program
    that has loaded stays). A process starved on a busy machine can pause longer: what
    :func:`classify_lifespan` judges after a level allows for that. And a level that a loaded
    program holds (:func:`_held_as_loaded`): reached without rising past it from where the
    program started, never given back before the exit.
    """
    first, level = _startup(timeline, tolerance)
    return first, level is not None


def _startup(
    timeline: Timeline, tolerance: float, loaded: float | None = None
) -> tuple[int, tuple[int, int] | None]:
    """:func:`startup_end`'s index, with the first and last index of the level it ends at
    (None when it ends where the program started, or where it reached ``loaded``)."""
    level = _first_level(timeline, tolerance)
    restart = _restart(timeline, tolerance)
    if level is None or not _held_as_loaded(timeline, tolerance, restart, level):
        if loaded is not None and _beyond_loaded(timeline, restart, loaded, tolerance):
            # No level, and it rose far past what its imports hold: that rise is its work.
            reached = (
                i for i in range(restart, len(timeline)) if timeline.highs[i] >= loaded - tolerance
            )
            return next(reached, restart), None
        return restart, None
    if loaded is None or not _past_loaded(timeline, level, loaded, tolerance):
        return level[0], level
    if restart >= level[0]:
        return level[0], level  # nothing before the level: it cannot be told from a start-up
    # The level is the job's: its start-up ended where it first held what its imports hold
    # (before the level), else where its program started.
    highs = timeline.highs
    reached = (i for i in range(restart, level[0]) if highs[i] >= loaded - tolerance)
    return next(reached, restart), None


def _past_loaded(
    timeline: Timeline, level: tuple[int, int], loaded: float, tolerance: float
) -> bool:
    """Whether the level ``level`` sits more than ``LOADED_OVER`` of ``loaded`` (and the
    tolerance) over it: what an idle interpreter with the command's imports holds."""
    held = statistics.median(timeline.values[level[0] : level[1] + 1])
    return held > loaded * (1 + LOADED_OVER) + tolerance


def _beyond_loaded(timeline: Timeline, first: int, loaded: float, tolerance: float) -> bool:
    """Whether the run rose, from ``first`` on, more than ``LOADED_OVER`` of ``loaded`` (and
    the tolerance) over it."""
    return max(timeline.highs[first:], default=0.0) > loaded * (1 + LOADED_OVER) + tolerance


def needs_loaded(timeline: Timeline) -> bool:
    """Whether what an idle interpreter with the command's imports holds (``loaded``) could
    change how :func:`classify_lifespan` reads ``timeline``: its start-up ended at a level
    (which may be the job's), or it held none and its work was too brief to be told from a
    start-up (which it may be far past)."""
    if not len(timeline):
        return False
    tol = default_tolerance(timeline.values)
    first, level = _startup(timeline, tol)
    if level is not None:
        return True
    last = exit_start(timeline, tol, first)
    if not _too_brief(timeline, first, last, None, tol):
        return False
    # Where it started is no more than what an interpreter with any imports holds: a run that
    # never rose far past it cannot rise far past that (``python3 -c pass`` needs no figure).
    started = timeline.values[first]
    return max(timeline.highs[first : last + 1]) > started * (1 + LOADED_OVER) + tol


def startup_level(timeline: Timeline, tolerance: float | None = None) -> float | None:
    """The level a command's start-up ends at (the median of its samples), or None when it
    ends where its program started: where :func:`classify_lifespan` would take a level for the
    start-up, and a ``loaded`` figure could tell it from the job's work."""
    tol = float(tolerance if tolerance is not None else default_tolerance(timeline.values))
    if not len(timeline):
        return None
    _, level = _startup(timeline, tol)
    if level is None:
        return None
    return float(statistics.median(timeline.values[level[0] : level[1] + 1]))


def _held_as_loaded(
    timeline: Timeline, tolerance: float, restart: int, level: tuple[int, int]
) -> bool:
    """Whether the level ``level`` (its first and last index) is what a loaded program holds:
    from the sample its program started at (``restart``) memory rose to it without passing it
    by more than ``tolerance``, and after it memory never fell more than ``tolerance`` below
    it before the exit fall. What a program loads (its interpreter, its imports) it keeps to
    its exit; a level that rose past and came back (a 250 MB array freed, 150 MB kept) or that
    the run later gave back (a pool's workers' arrays, then work at 31 MiB) was the job's work,
    and counted as start-up it read as "flat" or as a "spike" back to where it began."""
    first, end = level
    highs = timeline.highs
    held = statistics.median(timeline.values[first : end + 1])
    if restart < first and max(highs[restart:first]) > held + tolerance:
        return False
    last = exit_start(timeline, tolerance, first)
    return last <= end or min(highs[end : last + 1]) >= held - tolerance


def _half(timeline: Timeline) -> int:
    """The index of the first sample of the second half of the run (the last sample when there
    is none; 0 for an empty timeline)."""
    times = timeline.times
    half = times[0] + timeline.duration_s / 2 if times else 0.0
    return next((i for i, t in enumerate(times) if t >= half), max(0, len(times) - 1))


def _restart(timeline: Timeline, tolerance: float) -> int:
    """The index of the sample a program that held no level started its work from: the lowest
    reading of the first half after the first one, or the last fall in that half back to
    within ``tolerance`` of it.

    A process that starts one program (``python3 job.py``) reads next to nothing, then its
    interpreter's first megabytes, then its work: its lowest reading after the first is the
    interpreter just loaded. One that starts several in turn (``python3`` through a pyenv
    shim: bash, then pyenv, then the interpreter) falls back near that lowest reading at each
    ``exec``: the last such fall is where the program that does the work began. A fall that
    leaves more than the tolerance above that floor (a buffer freed while the work goes on)
    is the work's, not a restart. Where memory is, not how long anything took: the same job
    starts from the same sample on a quiet machine and on a busy one."""
    highs = timeline.highs
    if len(highs) < 2:
        return 0
    half = max(1, _half(timeline))
    floor = min(highs[1 : half + 1])
    lowest = highs.index(floor, 1)
    # Only a fall back to the floor restarts: the samples rising out of it are the work.
    falls = (
        i
        for i in range(lowest + 1, half + 1)
        if highs[i] <= floor + tolerance and highs[i - 1] - highs[i] > tolerance
    )
    return max(falls, default=lowest)


def _first_level(timeline: Timeline, tolerance: float) -> tuple[int, int] | None:
    """The first and last index of the first level (see :func:`startup_end`) that begins in
    the first half of the run, or None."""
    lows, highs, times = timeline.lows, timeline.highs, timeline.times
    n = len(timeline)
    if not n:
        return None
    for i in range(_half(timeline) + 1):
        needed = LEVEL_OVER_RISE * (times[i] - times[0])
        end = next((j for j in range(i + MIN_SAMPLES - 1, n) if times[j] - times[i] >= needed), n)
        if end == n:
            break  # no later level can last long enough either
        low = min(lows[i : end + 1])
        if low > tolerance and max(highs[i : end + 1]) - low <= tolerance:
            return i, end
    return None


def exit_start(timeline: Timeline, tolerance: float, first: int = 0) -> int:
    """The index of the last sample before the exit fall, or of the last sample when the run
    did not end falling by more than ``tolerance``.

    Walking back from the last sample, the fall goes on as long as no sample is lower than the
    highest seen so far by more than the tolerance (a teardown may tick up a little on its
    way down); its top is the last sample within the tolerance of that highest one. A run
    that sat at its lowest for ``EXIT_SETTLE_SAMPLES`` sampling intervals or more did not fall
    as it ended: it freed its memory, then went on.
    """
    highs = timeline.highs
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
    # Sitting at the bottom is going on only as a level of ``EXIT_SETTLE_SAMPLES`` (counted no
    # denser than the interval): a teardown that freed the kept data in one interval spends
    # a few more at the bottom ending the interpreter, more on a loaded machine.
    held = _held_samples(timeline, bottom, last)
    if fell and held < EXIT_SETTLE_SAMPLES:
        level = _level_before_exit(timeline, tolerance, top, last)
        return top if level is None else level
    return last


def _held_samples(timeline: Timeline, first: int, last: int) -> int:
    """How many samples ``first..last`` count as: no more than the intervals their time spans
    (samples bunched after a late tick, or a stalled process read again and again, are not a
    level that lasted)."""
    count = last - first + 1
    if not timeline.interval:
        return count
    spanned = timeline.times[last] - timeline.times[first]
    return min(count, round(spanned / timeline.interval) + 1)


def _level_before_exit(timeline: Timeline, tolerance: float, top: int, last: int) -> int | None:
    """The last sample of the latest level between the top of a fall and the last sample: a
    level held as long as the bottom must be to be the run going on (``EXIT_SETTLE_SAMPLES``
    samples within ``tolerance`` of each other, counted no denser than the interval), more than
    ``tolerance`` above the last sample and lasting at least as long as the fall from it to the
    end (the work ended there, after giving back what it rose to; the teardown came after).
    Shorter, it is a teardown that stalled (descheduled on a busy machine while it unmapped, or
    freeing one object before the next): a job that freed a 114 MiB temporary as it ended held
    the rest 8 to 10 samples before its exit fell, and read "ramp" or "retained" by the run
    against a threshold of 10. None when the fall has no such level."""
    highs, times = timeline.highs, timeline.times
    j = last - 1
    while j > top:
        k = j
        while k > top and abs(highs[k - 1] - highs[j]) <= tolerance:
            k -= 1
        lasted = times[j] - times[k]
        if (
            _held_samples(timeline, k, j) >= EXIT_SETTLE_SAMPLES
            and highs[j] - highs[last] > tolerance
            and lasted >= times[last] - times[j]
        ):
            return j
        j = k - 1 if k < j else j - 1
    return None


def classify_lifespan(
    timeline: Timeline,
    tolerance: float | None = None,
    *,
    anchors: Anchors | None = None,
    loaded: float | None = None,
) -> Growth:
    """Judge how memory moved over a timeline from its process's birth to its exit, between its
    start-up and its exit (see the module docstring).

    Args:
        timeline: the samples, the first one taken as the process was born.
        tolerance: bytes of movement to treat as noise; default max(1 MiB, 2 % of the median).
        anchors: the run's headline figures; its start and end are replaced by the level after
            the start-up and the level before the exit.
        loaded: bytes an idle interpreter holds with the command's imports
            (``measure/loaded_level.py``): a first level more than ``LOADED_OVER`` of it over
            it is the job's work, and the start-up ends where the run first reached it.

    Returns:
        A :class:`~membound.results.growth.Growth`; ``too short to judge`` (pattern
        ``unjudged``, ``samples`` under ``MIN_SAMPLES``) when too little is left between the
        two. Its ``level_start`` and ``level_end`` are the levels growth was judged between.
    """
    tol = float(tolerance if tolerance is not None else default_tolerance(timeline.values))
    if not len(timeline):
        return _unjudged(0, tol, f"no samples, fewer than {MIN_SAMPLES}")
    first, level_at = _startup(timeline, tol, loaded)
    last = exit_start(timeline, tol, first)
    times, values = timeline.times, timeline.values
    judged = timeline.window(times[first], times[last])
    # Far past what its imports hold, however briefly: no start-up rises that far.
    beyond = loaded is not None and level_at is None and _beyond_loaded(judged, 0, loaded, tol)
    if level_at is not None:
        level = statistics.median(values[level_at[0] : level_at[1] + 1])
        startup = (
            f"after its start-up (the first {seconds(times[first] - times[0])}, "
            f"to {format_size(level)})"
        )
    else:
        # The sample the program started from (near the floor, see ``_restart``), or where it
        # reached what its imports hold: the samples after it are already its work, rising.
        level = float(values[first])
        held = startup_level(timeline, tol) if loaded is not None else None
        if loaded is None or (held is None and not beyond):
            before = "no level held before its work"
        elif held is None:
            before = (
                f"an idle interpreter with its imports holds {format_size(loaded)}: what it "
                "rose to past that was its work"
            )
        else:
            before = (
                f"an idle interpreter with its imports holds {format_size(loaded)}: the level "
                f"of {format_size(held)} it held next was its work"
            )
        startup = (
            f"after its start-up (the first {seconds(times[first] - times[0])}, to "
            f"{format_size(level)}; {before})"
        )
    end = _end_before_exit(timeline, judged, last, anchors, tol)
    ending = _ending(timeline, last, end)
    kept = effective_samples(judged)
    if kept < MIN_SAMPLES:
        return _unjudged(kept, tol, f"{kept} samples {startup}{ending}, fewer than {MIN_SAMPLES}")
    why = (
        ""
        if beyond
        else _too_brief(timeline, first, last, level if level_at is not None else None, tol)
    )
    if why:
        return _unjudged(kept, tol, f"{startup}{ending}: {why}")
    moved = None
    if anchors is not None:
        # Growth is measured from the level after the start-up to the level before the exit;
        # the words still quote the run's own figures (Δ peak RSS is the peak over nothing).
        moved = replace(anchors, level=level, level_end=end if ending else None)
    # The words' durations are of the part judged (named before them), not of the whole run
    # the table's wall time counts.
    growth = classify(judged, tolerance, anchors=moved, span="judged")
    words = growth.explanation.removeprefix(f"{growth.pattern}: ")
    return replace(growth, explanation=f"{growth.pattern}: {startup}{ending}: {words}")


def _span_samples(span: float, interval: float) -> int:
    """The samples a span of time is worth at the sampling interval (as
    :func:`~membound.results.growth.effective_samples` counts a timeline's)."""
    return round(span / interval) + 1 if interval > 0 else 0


def _too_brief(timeline: Timeline, first: int, last: int, level: float | None, tol: float) -> str:
    """Why the part between the start-up and the exit cannot be told from the start-up, or an
    empty string: without a level, it lasts fewer than ``NO_LEVEL_SAMPLES`` intervals; after
    a level (at ``level`` bytes) that it leaves, neither the level nor the movement from leaving
    it up to the exit lasted that long (the level may have been a pause in the start-up)."""
    times, interval = timeline.times, timeline.interval
    needed = f"fewer than {NO_LEVEL_SAMPLES} samples' time ({seconds(NO_LEVEL_SAMPLES * interval)})"
    if level is None:
        span = times[last] - times[first]
        if _span_samples(span, interval) >= NO_LEVEL_SAMPLES:
            return ""
        # "Its work", not "it": the command's wall time, in the table, is the whole run.
        return f"its work lasted {seconds(span)}, {needed}"
    left = next(
        (
            j
            for j in range(first, last + 1)
            if timeline.highs[j] > level + tol or timeline.lows[j] < level - tol
        ),
        None,
    )
    if left is None:
        return ""  # it held its level up to its exit: judged as it is
    held, moved = times[left] - times[first], times[last] - times[left]
    if max(_span_samples(held, interval), _span_samples(moved, interval)) >= NO_LEVEL_SAMPLES:
        return ""
    return (
        f"it held its level {seconds(held)}, then moved {seconds(moved)} up to its exit, "
        f"both {needed}: a start-up that paused (a process starved on a busy machine holds "
        "still while it loads) cannot be told from its work"
    )


def _end_before_exit(
    timeline: Timeline, judged: Timeline, last: int, anchors: Anchors | None, tolerance: float
) -> float:
    """The level the run's work ended on, before its exit fall: its last sample before the
    fall, or the kernel's peak (from ``anchors``) when that peak is more than ``tolerance``
    above it and the run was still growing at that sample fast enough to reach it before the
    fall's first sample (within the tolerance, the sample is the end: a run said "it fell from
    its peak, 257.7 MiB … still growing at its last sample before, 257.7 MiB")."""
    highs = timeline.highs
    if last >= len(highs) - 1:
        return float(highs[last]) if len(highs) else 0.0
    end = float(highs[last])
    if anchors is None or anchors.peak <= end:
        return end
    gap = timeline.times[last + 1] - timeline.times[last]
    if tolerance < anchors.peak - end <= _tail_slope(judged) * gap:
        return float(anchors.peak)
    return end


def _tail_slope(timeline: Timeline) -> float:
    """The robust slope of the last quarter of ``timeline`` (as ``classify`` takes it), bytes
    per second."""
    n = len(timeline)
    tail = slice(n - max(3, n // 4), n)
    return theil_sen(timeline.times[tail], timeline.values[tail]) if n > 1 else 0.0


def _ending(timeline: Timeline, last: int, end: float) -> str:
    """The words on the exit fall left out (empty when the run did not end falling)."""
    times, highs = timeline.times, timeline.highs
    if last == len(timeline) - 1:
        return ""
    fell = f"over its last {seconds(times[-1] - times[last])} as it ended"
    if end <= highs[last]:
        return f", up to its exit (it fell from {format_size(highs[last])} {fell})"
    gap = (times[last + 1] - times[last]) * 1000
    return (
        f", up to its exit (it fell from its peak, {format_size(end)}, {fell}: still growing "
        f"at its last sample before, {format_size(highs[last])}, it had {gap:.0f} ms to reach "
        "that peak, unsampled)"
    )


def _unjudged(kept: int, tol: float, why: str) -> Growth:
    """``too short to judge``: ``kept`` samples, or spans too short. Its ``samples`` stay under
    ``MIN_SAMPLES``, so that ``Growth.judged`` is False."""
    text = f"too short to judge growth: {why}"
    return Growth(
        "unjudged",
        0.0,
        0.0,
        0.0,
        tol,
        0.0,
        f"{text} (tolerance {format_size(tol)})",
        min(kept, MIN_SAMPLES - 1),
    )
