"""Leak hunting: is memory kept per call, what keeps it, and which lines add and allocate it?

``find_leaks(target)`` calls ``target()`` repeatedly, in phases that each cost only what their
question needs:

1. **warm-up** (plain calls): caches, freelists and lazy imports settle.
2. **trend** (plain calls, untraced): ``iterations`` calls in ``rounds`` rounds; after each, a
   full collection and the bytes the allocators hold (pymalloc's and malloc's, so native
   memory counts too; ``measure/allocator.py``). ``judge/retained.py`` decides from the whole
   series against the noise measured in it: flat, levelled (a cache filled), sawtooth (falls back
   to a floor), a steady rise (a leak), or too little run to tell (``undecided``, with the run
   that would decide). Where the allocators cannot be read, the trend is traced instead.
3. **attribution**, only when the trend is not clean: one round traced with
   ``ATTRIBUTION_FRAMES`` frames names the lines that allocate what is kept and the types that
   grew in number; the containers that grew are found and sized (``measure/holders.py``), with
   their bound if they have one and the line that adds to them; a container with a bound that is
   still filling is not a leak. When the traced Python heap explains less than half of the
   growth, the rest is native memory, and one round under memray (when installed) names the
   Python line that leads into it. A rise that the attribution does not see again (no Python
   objects, no native memory, no container kept) was not the target's — another thread's
   allocations landed in the rounds — and the trend is measured once more; that run decides.

Separately, ``cycles_per_call`` counts objects per call that only the cyclic garbage collector
reclaims (measured with the collector off for a few calls): not a leak while the collector runs,
but one under ``gc.disable()`` and a source of GC pauses.

The measuring is done by ``measure/`` (rounds, heap, holders, native); this module decides and
explains. ``isolate=True`` runs the same hunt in a fresh interpreter (``judge/isolated_leaks.py``).
"""

from __future__ import annotations

import math
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from membound._errors import TargetError
from membound._lazy import preload
from membound._units import parse_size
from membound.judge.chains import label_chain
from membound.judge.leak_words import explain
from membound.judge.retained import QUANTUM, Retention, judge_retention
from membound.measure.deadline import deadline
from membound.measure.heap import LIBRARY_DIRS, OWN_DIRS, backref_chain, chain_to, frozen_heap
from membound.measure.holders import Growing, adding_line, growing_holders
from membound.measure.isolate.outcome import check_timeout
from membound.measure.rounds import (
    AttributionRound,
    Guarded,
    Trend,
    TrendRecorder,
    attribution_round,
    cycles_per_call,
    guarded,
    malloc_growth_per_call,
)
from membound.measure.target import Target, load_target
from membound.measure.where.malloc_lines import malloc_lines
from membound.measure.where.native import native_sites, native_tracking_available
from membound.results.leaks import Holder, LeakReport, LeakRound, Site, TypeGrowth

__all__ = ["ATTRIBUTION_FRAMES", "LeakReport", "LeakRound", "Site", "TypeGrowth", "find_leaks"]

ATTRIBUTION_FRAMES = 16
_MIN_ROUNDS = 4
_MIN_CALLS_PER_ROUND = 10
_CYCLE_CALLS = 50
#: Where only RSS shows native memory (no malloc statistics), growth under this is not judged.
_NATIVE_MIN_GROWTH = 1 << 20
#: Native growth a traced round must show before it counts (16 quanta).
_NATIVE_MIN_ROUND = 16 * QUANTUM
#: Growth in a step is storage, not kept objects, when under one new block per this many calls.
_STEP_BLOCKS_PER_CALL = 50
#: The smallest change of the allocated-block count treated as more than rounding.
_BLOCKS_QUANTUM = 2.0
#: A run that cannot decide is doubled up to this many times (so up to 4× the iterations) ...
_EXTENSIONS = 2
#: ... and on to 16× while doubling again costs little: while the rounds so far took under
#: ``_CHEAP_S`` seconds (the next doubling takes about as long again). Interpreter storage that
#: settles slowly (Python 3.10's frame free list under pytest's deep stacks grows in bursts for
#: about a thousand calls) would otherwise be ``undecided`` in a fast test.
_MORE_EXTENSIONS = 4
_CHEAP_S = 5.0
_SKIP_PARTS = (*OWN_DIRS, tracemalloc.__file__, "<frozen importlib", "importlib/")


def _skipped(filename: str) -> bool:
    return any(part in filename for part in _SKIP_PARTS if part)


def _site_frame(trace: tracemalloc.Traceback) -> tracemalloc.Frame | None:
    """The user's line in ``trace``: the innermost frame outside membound, tracemalloc and
    importlib, preferring one outside the standard library and site-packages. None for
    membound's own allocations: a membound frame reached, from the innermost, before any frame
    outside the standard library."""
    for frame in reversed(trace):
        if frame.filename.startswith(OWN_DIRS):
            return None
        if not frame.filename.startswith(LIBRARY_DIRS) and not frame.filename.startswith("<"):
            break
    frames = [f for f in reversed(trace) if not _skipped(f.filename)]
    for frame in frames:
        if not frame.filename.startswith(LIBRARY_DIRS):
            return frame
    return frames[0] if frames else None


def _sites(
    before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, calls: int, limit: int = 10
) -> list[Site]:
    """Allocation sites of what grew from ``before`` to ``after``, grouped by the user's line."""
    grouped: dict[tuple[str, int], list[Any]] = {}
    for stat in after.compare_to(before, "traceback"):
        if not stat.size_diff:
            continue
        frame = _site_frame(stat.traceback)
        if frame is None:
            continue
        # What a line freed counts against what it allocated: a list that grows reallocates
        # its array at the same line under another stack (the warm-up's, a round's), and
        # only the net is kept (the new array alone read 112 B a call for 8).
        key = (frame.filename, frame.lineno)
        entry = grouped.setdefault(key, [0, 0, stat.traceback, 0])
        entry[0] += stat.size_diff
        entry[1] += stat.count_diff
        if stat.size_diff > entry[3]:
            entry[2], entry[3] = stat.traceback, stat.size_diff
    kept = [(key, entry) for key, entry in grouped.items() if entry[0] > 0]
    ranked = sorted(kept, key=lambda kv: -kv[1][0])[:limit]
    return [
        Site(
            file,
            line,
            size / calls,
            count / calls,
            tuple(f"{f.filename}:{f.lineno}" for f in reversed(trace) if not _skipped(f.filename))[
                :8
            ],
        )
        for (file, line), (size, count, trace, _) in ranked
    ]


def _check_counts(iterations: int, warmup: int, rounds: int) -> int:
    """Calls per round; rejects numbers too small to tell a leak from noise."""
    if rounds < _MIN_ROUNDS or warmup < 0:
        raise TargetError(
            f"need rounds >= {_MIN_ROUNDS} and warmup >= 0",
            hint="the late half of the rounds decides; the early half lets caches fill",
        )
    per_round = iterations // rounds
    if per_round < _MIN_CALLS_PER_ROUND:
        raise TargetError(
            f"{iterations} iterations in {rounds} rounds is under {_MIN_CALLS_PER_ROUND} calls "
            "per round: too few to tell a leak from noise",
            hint=f"use at least {_MIN_CALLS_PER_ROUND * rounds} iterations"
            + (" or fewer rounds" if rounds > _MIN_ROUNDS else ""),
        )
    return per_round


def find_leaks(
    target: Target,
    iterations: int = 1000,
    warmup: int = 50,
    rounds: int = 10,
    tolerance: float | str | None = None,
    isolate: bool = False,
    timeout: float | None = None,
    *,
    label: str | None = None,
    on_round: Callable[[int, int], None] | None = None,
) -> LeakReport:
    """Call ``target()`` repeatedly and decide whether memory is kept per call.

    Args:
        target: a callable taking no arguments, or ``"package.module:function"`` (or
            ``"path/file.py:function"``).
        iterations: calls judged, after the warm-up (split into ``rounds``).
        warmup: calls before anything is counted.
        rounds: rounds of calls, each followed by a full collection and a reading.
        tolerance: growth per call treated as noise (bytes, or a size like ``"64 B"``); by
            default derived from the noise measured in the same run.
        isolate: run the hunt in a fresh interpreter (the target must then be importable:
            a module-level function or a ``"module:function"`` string).
        timeout: seconds after which the hunt is stopped (:class:`LimitExceeded`).
        label: name for the report.
        on_round: called after each round as ``on_round(done, planned)`` (a progress display;
            ``planned`` grows when an undecided run is lengthened).

    Raises:
        TargetError: the target cannot be imported or the numbers do not make sense.
        ChildFailed: the target raised.
        LimitExceeded: the hunt did not finish within ``timeout``.
    """
    check_timeout(timeout)
    per_round = _check_counts(iterations, warmup, rounds)
    tol = None if tolerance is None else float(parse_size(tolerance))
    if isolate:
        from membound.judge.isolated_leaks import hunt_isolated

        return hunt_isolated(target, iterations, warmup, rounds, tol, timeout, label, on_round)
    raw, name = load_target(target)
    label = label or name
    preload()  # what membound imports on first use, not in the first rounds (``_lazy.py``)
    with deadline(timeout, f"the leak hunt of {label}"):
        return _hunt(
            guarded(raw, label), label, iterations, warmup, rounds, per_round, tol, on_round
        )


@dataclass(frozen=True)
class _Attribution:
    sites: list[Site]
    types: list[TypeGrowth]
    chain: tuple[str, ...]
    python_per_call: float
    native_per_call: float | None
    holders: list[Holder]


def _hunt(
    func: Guarded,
    label: str,
    iterations: int,
    warmup: int,
    rounds: int,
    per_round: int,
    tol: float | None,
    on_round: Callable[[int, int], None] | None = None,
) -> LeakReport:
    for _ in range(warmup):
        func()
    judged = _judge(func, warmup, rounds, per_round, tol, on_round)
    if judged.unconfirmed:
        # The rounds rose, but a round of the same calls run again kept nothing: no Python
        # objects (traced), no native memory (malloc, untraced), no container. What rose was
        # not the target's: another thread's allocations, or arenas they pinned (a test
        # runner's I/O thread under load). The run is made once more and its judgement
        # stands: a leak rises again, a disturbance seldom lands twice.
        del judged
        judged = _judge(func, warmup, rounds, per_round, tol, on_round)
    with frozen_heap():
        cycles = cycles_per_call(func, min(per_round, _CYCLE_CALLS))
    report = judged.report(label, rounds, per_round, warmup, cycles)
    late = int(judged.trend.calls[-1] - judged.retention.late_from)
    return replace(
        report,
        explanation=explain(report, judged.retention, late, tol is not None),
        calls=func.calls,
    )


@dataclass(frozen=True)
class _Judged:
    """One run of the trend rounds and, where they were not clean, of the attribution."""

    trend: Trend
    retention: Retention
    done: int
    verdict: str
    shape: str
    native_per_call: float
    found: _Attribution | None
    native_found: list[Site]
    hint: str
    sites_by: str
    #: A leak by the rounds that the attribution's rounds did not see again.
    unconfirmed: bool

    def report(
        self, label: str, rounds: int, per_round: int, warmup: int, cycles: float
    ) -> LeakReport:
        """The report of this run (its explanation still to be written)."""
        trend, retention, found, verdict = self.trend, self.retention, self.found, self.verdict
        series = trend.series
        mid = len(series) // 2
        done = self.done
        return LeakReport(
            label=label,
            verdict=verdict,
            leaking=verdict == "leak",
            bytes_per_call=retention.per_unit,
            tolerance=retention.tolerance,
            sites=tuple(self.native_found + (found.sites if found else [])),
            types=tuple(found.types if found else ()),
            cycles_per_call=cycles,
            chain=found.chain if found else (),
            rounds=trend.rounds,
            iterations=done * per_round,
            warmup=warmup,
            early_growth_bytes=float(series[mid] - series[0]) if self.shape == "levelled" else 0.0,
            explanation="",
            holders=tuple(found.holders if found else ()),
            shape=self.shape,
            period=retention.period,
            noise_bytes=retention.noise,
            needed_iterations=_iterations(retention.needed, done)
            if verdict == "undecided"
            else None,
            python_bytes_per_call=found.python_per_call if found else None,
            native_bytes_per_call=self.native_per_call,
            native_site_hint=self.hint,
            native_sites_by=self.sites_by,
            extended_from=rounds * per_round if done > rounds else None,
        )


def _judge(
    func: Guarded,
    warmup: int,
    rounds: int,
    per_round: int,
    tol: float | None,
    on_round: Callable[[int, int], None] | None,
) -> _Judged:
    """The trend rounds (lengthened while they cannot decide), then, unless clean, the
    attribution round and what it says of the verdict."""
    planned = rounds
    with frozen_heap(), TrendRecorder(func, per_round, rounds * 2**_MORE_EXTENSIONS) as recorder:
        if on_round is not None:
            recorder.on_round = lambda done_now: on_round(done_now, planned)
        started = time.perf_counter()
        recorder.run(rounds)
        done = rounds
        while True:
            trend = recorder.trend()
            retention = judge_retention(trend.calls, trend.series, tolerance=tol, quantum=QUANTUM)
            cheap = time.perf_counter() - started < _CHEAP_S
            most = rounds * 2 ** (_MORE_EXTENSIONS if cheap else _EXTENSIONS)
            if not (_unsure(trend, retention) and done * 2 <= most):
                break
            # The judgement's own objects go before the rounds that follow measure the heap:
            # alive, they would be a step in the series at the first of those rounds.
            del trend, retention
            planned = done * 2
            recorder.run(done)  # as many rounds again: the run doubles
            done *= 2
    verdict: str = retention.verdict
    shape: str = retention.shape
    native_per_call, native_rss = _rss_native(trend, retention)
    if native_rss:
        verdict, shape = "leak", "steady"
    found = None
    native_found: list[Site] = []
    hint = sites_by = ""
    unconfirmed = False
    if verdict != "no leak":
        found = _attribute(func, per_round, warmup + done * per_round)
        threshold = max(retention.tolerance, 0.5 * retention.per_unit)
        if found.native_per_call is not None and _malloc_grew(trend, retention):
            native_per_call = max(0.0, found.native_per_call)
            if max(native_per_call, found.python_per_call) <= threshold and shape == "steady":
                # Neither Python's growth nor native growth explains the steady growth the
                # untraced rounds saw: the traced round's reading is one sample, and another
                # thread's frees land in it. An untraced round right after it says whether
                # malloc still grows (not for growth in steps: a step may land in that round).
                untraced = malloc_growth_per_call(func, per_round)
                native_per_call = max(native_per_call, untraced - max(found.python_per_call, 0))
            late_malloc = _late_malloc(trend)
            if late_malloc is not None:
                # Native memory is malloc's: it cannot grow faster than malloc did untraced
                # (the traced round adds tracemalloc's own bookkeeping to its reading).
                native_per_call = min(native_per_call, late_malloc[0] / late_malloc[1])
        # A few hundred bytes of malloc growth in a round are a reallocated buffer or
        # tracemalloc's bookkeeping, not evidence: native memory must also add up over the round.
        native = native_rss or (
            native_per_call > threshold and native_per_call * per_round >= _NATIVE_MIN_ROUND
        )
        if native and verdict == "leak":
            native_found, sites_by, hint = _native(func, per_round)
        unbounded = [h for h in found.holders if h.capacity is None]
        bounded = [h for h in found.holders if h.capacity is not None]
        if bounded and not unbounded and not native:
            verdict, shape = "no leak", "bounded"
        elif shape == "step":
            verdict = _one_step(trend, unbounded)
        if not native:
            native_per_call = 0.0
        unconfirmed = (
            verdict == "leak"
            and not native
            and not unbounded
            and found.python_per_call <= threshold
        )
    return _Judged(
        trend,
        retention,
        done,
        verdict,
        shape,
        native_per_call,
        found,
        native_found,
        hint,
        sites_by,
        unconfirmed,
    )


def _new_blocks_are_few(trend: Trend) -> bool:
    """True when the late half kept under one new allocated block per 50 calls: no objects kept
    per call (what grew, if anything, is the size of objects already there)."""
    mid = len(trend.blocks) // 2
    new_blocks = trend.blocks[-1] - trend.blocks[mid]
    return new_blocks * _STEP_BLOCKS_PER_CALL < trend.calls[-1] - trend.calls[mid]


def _unsure(trend: Trend, retention: Retention) -> bool:
    """Whether a longer run is worth it: the judge could not decide; or memory held rose
    steadily while no new objects were kept (objects already there got bigger: one growing
    buffer leaks, but entries of a bounded cache replaced by larger ones stop); or the bytes
    look clean while the count of allocated blocks does not (storage resizes can hide a small
    leak in the bytes' noise; a longer late half shows it)."""
    if retention.verdict == "undecided":
        return True
    if retention.verdict == "leak":
        return retention.shape == "steady" and trend.held is not None and _new_blocks_are_few(trend)
    counted = judge_retention(trend.calls, trend.blocks, quantum=_BLOCKS_QUANTUM)
    return counted.verdict != "no leak"


def _one_step(trend: Trend, unbounded: list[Holder]) -> str:
    """The verdict on growth that came in a step rather than round after round.

    A leak keeps new objects (allocated blocks rise with it) or fills a container; a step with
    neither is a container's storage resized once (a dict rehashed after churn), not a leak.
    """
    if unbounded:
        return "leak"
    return "no leak" if _new_blocks_are_few(trend) else "undecided"


def _iterations(needed: float | None, rounds: int) -> int | None:
    """A round number of iterations at least ``needed``."""
    if needed is None:
        return None
    step = 10 * rounds
    return int(math.ceil(needed / step) * step)


def _late_malloc(trend: Trend) -> tuple[int, int] | None:
    """malloc's growth over the late untraced rounds and the calls they made; None where the
    allocators were not read (the heap was traced instead)."""
    rounds = trend.rounds
    if trend.held is None or len(rounds) < 2:
        return None
    first, last = rounds[len(rounds) // 2], rounds[-1]
    if first.malloc is None or last.malloc is None or last.calls <= first.calls:
        return None
    return last.malloc - first.malloc, last.calls - first.calls


def _malloc_grew(trend: Trend, retention: Retention) -> bool:
    """Whether malloc's share of the held bytes (what pymalloc does not serve: native buffers,
    large objects) grew over the late rounds by more than the tolerance allows. The traced
    attribution round's own estimate of native growth is noisier (tracing allocates); where the
    untraced rounds show malloc flat, the memory kept is Python's, however the round read it."""
    late = _late_malloc(trend)
    if late is None:
        return True  # no malloc figures: only the attribution round can tell
    growth, calls = late
    return growth > max(retention.tolerance * calls, QUANTUM)


def _rss_native(trend: Trend, retention: Retention) -> tuple[float, bool]:
    """Where the heap was traced (no malloc statistics), native memory shows only in RSS: its
    late growth per call, and whether it rose in every late round by at least 1 MiB in all."""
    if trend.held is not None:
        return 0.0, False
    mid = len(trend.rss) // 2
    late = [b - a for a, b in zip(trend.rss[mid:], trend.rss[mid + 1 :], strict=False)]
    per_call = sum(late) / (trend.calls[-1] - trend.calls[mid])
    steady = all(d > 0 for d in late) and sum(late) >= _NATIVE_MIN_GROWTH
    return per_call, retention.verdict == "no leak" and steady


def _type_growth(measured: AttributionRound, limit: int = 10) -> list[TypeGrowth]:
    """Types whose live count grew over the attribution round, most new objects per call first."""
    before, after = measured.counts_before, measured.counts_after
    grown = (
        TypeGrowth(t, (after[t] - before.get(t, 0)) / measured.calls)
        for t in after
        if after[t] - before.get(t, 0) > 0
    )
    return sorted(grown, key=lambda g: -g.per_call)[:limit]


def _traced_total(snapshot: tracemalloc.Snapshot) -> int:
    return sum(stat.size for stat in snapshot.statistics("filename"))


def _attribute(func: Guarded, calls: int, made: int) -> _Attribution:
    """Where the kept memory was allocated, which types grew, what keeps one of them, and which
    containers grew (``made``: calls so far, to size the containers worth watching)."""
    with frozen_heap():
        measured = attribution_round(func, calls, ATTRIBUTION_FRAMES)
    sites = _sites(measured.before, measured.after, calls)
    python = (_traced_total(measured.after) - _traced_total(measured.before)) / calls
    native = None if measured.native_growth is None else measured.native_growth / calls
    growth = _type_growth(measured)
    del measured
    # Prefer a user-defined type for the chain: builtins say less about who keeps them.
    top = next((g for g in growth if not g.type_name.startswith("builtins.")), None)
    top = top or (growth[0] if growth else None)
    chain = backref_chain(func, top.type_name) if top else []
    labels = label_chain(chain) if chain else ()
    chain.clear()
    grown, watched_calls = growing_holders(func, calls, min_size=max(4, made // 100))
    counted = func.calls  # the entries were counted then; finding the adding lines calls again
    holders = [_holder(func, g, watched_calls, counted) for g in grown]
    return _Attribution(sites, growth, labels, python, native, holders)


def _holder(func: Callable[[], Any], grown: Growing, calls: int, made: int) -> Holder:
    """``grown`` as a report's holder: ``calls`` calls grew it, ``made`` had been made in all
    when its entries were counted."""
    chain = chain_to(grown.holder)
    path = " → ".join(label_chain(chain, last_type=False)) if chain else ""
    chain.clear()
    where = adding_line(func, grown.holder)
    return Holder(
        path=path or f"({grown.type_name})",
        type_name=grown.type_name,
        file=where.file if where else None,
        line=where.line if where else None,
        per_call=(grown.after - grown.before) / calls,
        size=grown.after,
        capacity=grown.capacity,
        function=where.function if where else None,
        trace=where.trace if where else (),
        caller=where.caller if where else None,
        calls=made,
    )


def _native(func: Callable[[], Any], calls: int) -> tuple[list[Site], str, str]:
    """Native allocation sites from one round under memray; where memray is missing or saw no
    kept ``malloc`` (a pointer to it looked up by the caller: ctypes), from one round that
    reads malloc's total line by line. Returns the sites, what named them, and else a hint."""
    hint = "install membound[memray] (Linux, macOS) to name the line that allocates it"
    if native_tracking_available():
        hint = "memray saw no kept malloc under a Python line"
        try:
            found = native_sites(func, calls)
        except (RuntimeError, OSError) as exc:
            hint = f"memray could not track this process ({exc})"
        else:
            sites = [
                Site(s.file, s.line, s.size / calls, s.count / calls, s.trace, kind="native")
                for s in found
            ]
            if sites:
                return sites, "memray", ""
    lines = malloc_lines(func, calls)
    if lines:
        sites = [
            Site(s.file, s.line, s.size / calls, s.count / calls, s.trace, kind="native")
            for s in lines
        ]
        return sites, "read from malloc's total line by line", ""
    return [], "", hint
