"""Leak hunting: does memory keep growing per call, and where is what is kept allocated?

``find_leaks(target)`` calls ``target()`` repeatedly in this process, in four phases, each only as
expensive as its question needs (tracemalloc slows allocation-heavy code 4× with one frame and
20× with 25 frames on this project's reference machine):

1. **warm-up** (untraced): ``warmup`` calls, so that caches, freelists and lazy imports settle.
2. **trend** (tracemalloc with one frame: only the heap's size is needed): ``iterations`` calls
   in ``rounds`` rounds, then three **late** rounds; after each round a full ``gc.collect()`` and
   the traced heap, allocated blocks and RSS. The late rounds decide ``leaking``: the heap must
   grow per call by more than the tolerance, in at least two of the three. A cache that fills
   during the first rounds (``lru_cache(maxsize=256)``, the ``re`` cache) adds nothing there.
   Tracing starts before the trend so that a bounded cache has turned over all its entries
   (untraced ones replaced by traced ones look like growth) before the late rounds.
3. **attribution** (only when leaking; tracemalloc with ``ATTRIBUTION_FRAMES`` frames): a
   priming round, then one round between two snapshots grouped by traceback, to name the
   user's line that allocates what is kept; per-type object counts; and a reference chain
   (objgraph) from a module to one leaked object of the top type.

Separately, ``cycles_per_call`` counts objects per call that only the cyclic garbage collector
reclaims (measured with the collector disabled for a few calls): not a leak while the collector
runs, but one under ``gc.disable()`` and a source of GC pauses.

The rounds are measured by ``measure/rounds.py`` (and the heap looked into by ``measure/heap.py``);
this module only decides and explains.
"""

from __future__ import annotations

import itertools
import statistics
import sysconfig
import tracemalloc
import types
from collections.abc import Callable, Sequence
from typing import Any

from membound._errors import TargetError
from membound._units import format_size, parse_size
from membound.measure.heap import OWN_DIRS, backref_chain
from membound.measure.rounds import (
    AttributionRound,
    Trend,
    attribution_round,
    cycles_per_call,
    guarded,
    trend_rounds,
)
from membound.measure.target import Target, load_target
from membound.results.leaks import LeakReport, LeakRound, Site, TypeGrowth

__all__ = ["ATTRIBUTION_FRAMES", "LeakReport", "LeakRound", "Site", "TypeGrowth", "find_leaks"]

ATTRIBUTION_FRAMES = 16
_LATE_ROUNDS = 3
_MIN_CALLS_PER_ROUND = 10
_CYCLE_CALLS = 50
_NATIVE_MIN_GROWTH = 1 << 20
_SKIP_PARTS = (*OWN_DIRS, tracemalloc.__file__, "<frozen importlib", "importlib/")
_LIBRARY_DIRS = tuple(
    {p for p in (sysconfig.get_paths().get("stdlib"), sysconfig.get_paths().get("purelib")) if p}
)


def _skipped(filename: str) -> bool:
    return any(part in filename for part in _SKIP_PARTS if part)


def _site_frame(trace: tracemalloc.Traceback) -> tracemalloc.Frame | None:
    """The user's line in ``trace``: the innermost frame outside membound, tracemalloc and
    importlib, preferring one outside the standard library and site-packages."""
    frames = [f for f in reversed(trace) if not _skipped(f.filename)]
    for frame in frames:
        if not frame.filename.startswith(_LIBRARY_DIRS):
            return frame
    return frames[0] if frames else None


def _sites(
    before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, calls: int, limit: int = 10
) -> list[Site]:
    """Allocation sites of what grew from ``before`` to ``after``, grouped by the user's line."""
    grouped: dict[tuple[str, int], list[Any]] = {}
    for stat in after.compare_to(before, "traceback"):
        if stat.size_diff <= 0:
            continue
        frame = _site_frame(stat.traceback)
        if frame is None:
            continue
        key = (frame.filename, frame.lineno)
        entry = grouped.setdefault(key, [0, 0, stat.traceback, 0])
        entry[0] += stat.size_diff
        entry[1] += stat.count_diff
        if stat.size_diff > entry[3]:
            entry[2], entry[3] = stat.traceback, stat.size_diff
    ranked = sorted(grouped.items(), key=lambda kv: -kv[1][0])[:limit]
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


def _label_chain(chain: Sequence[Any]) -> tuple[str, ...]:
    out: list[str] = []
    for i, obj in enumerate(chain):
        if isinstance(obj, types.ModuleType):
            out.append(f"module {obj.__name__}")
            continue
        prev = chain[i - 1] if i else None
        edge = ""
        if isinstance(prev, dict):
            key = next((k for k, v in prev.items() if v is obj), None)
            is_namespace = i >= 2 and isinstance(chain[i - 2], types.ModuleType)
            edge = f".{key}" if is_namespace else f"[{key!r}]"
        elif isinstance(prev, list | tuple):
            index = next((j for j, v in enumerate(prev) if v is obj), None)
            edge = f"[{index}]"
        name = type(obj).__qualname__
        if isinstance(obj, dict) and i + 1 < len(chain) and edge == "":
            continue  # an instance's or module's __dict__: the next step names the attribute
        out.append(f"{edge} ({name})" if edge else name)
    return tuple(out)


def _chain_to(func: Callable[[], Any], type_name: str) -> tuple[str, ...]:
    """The reference chain to one new object of ``type_name``, labelled (empty when none)."""
    chain = backref_chain(func, type_name)
    return _label_chain(chain) if chain else ()


def _check_counts(iterations: int, warmup: int, rounds: int) -> int:
    """Calls per round; rejects numbers too small to tell a leak from noise."""
    if rounds < _LATE_ROUNDS + 1 or warmup < 0:
        raise TargetError(
            f"need rounds >= {_LATE_ROUNDS + 1} and warmup >= 0",
            hint=f"the last {_LATE_ROUNDS} rounds decide; earlier ones let caches fill",
        )
    per_round = iterations // rounds
    if per_round < _MIN_CALLS_PER_ROUND:
        raise TargetError(
            f"{iterations} iterations in {rounds} rounds is under {_MIN_CALLS_PER_ROUND} calls "
            "per round: too few to tell a leak from noise",
            hint=f"use at least {_MIN_CALLS_PER_ROUND * rounds} iterations or fewer rounds",
        )
    return per_round


def _late_growth(values: Sequence[int]) -> list[int]:
    """Growth over each of the late rounds."""
    return [b - a for a, b in itertools.pairwise(values)][-_LATE_ROUNDS:]


def _decide(trend: Trend, per_round: int, tol: float) -> tuple[float, bool, float, bool]:
    """From the late rounds: heap growth per call, whether the heap leaks, RSS growth per call,
    and whether native memory leaks (the heap flat, RSS growing steadily by at least 1 MiB)."""
    late = _late_growth(trend.heap)
    bytes_per_call = statistics.median(late) / per_round
    leaking = bytes_per_call > tol and sum(d > 0 for d in late) >= 2
    late_rss = _late_growth(trend.rss)
    native_per_call = statistics.median(late_rss) / per_round
    native = (
        not leaking
        and native_per_call > tol
        and all(d > 0 for d in late_rss)
        and sum(late_rss) >= _NATIVE_MIN_GROWTH
    )
    return bytes_per_call, leaking, native_per_call, native


def find_leaks(
    target: Target,
    iterations: int = 1000,
    warmup: int = 50,
    rounds: int = 10,
    *,
    tolerance: int | str = 64,
    label: str | None = None,
) -> LeakReport:
    """Call ``target()`` repeatedly and decide whether memory leaks per call.

    Args:
        target: a callable taking no arguments, or ``"package.module:function"``.
        iterations: calls in the trend phase (split into ``rounds``).
        warmup: calls before anything is counted.
        rounds: rounds of the trend phase.
        tolerance: heap growth per call treated as noise (bytes or a size like ``"64 B"``).
        label: name for the report.

    Raises:
        TargetError: the target cannot be imported or the numbers do not make sense.
    """
    raw, name = load_target(target)
    label = label or name
    func = guarded(raw, label)
    tol = float(parse_size(tolerance))
    per_round = _check_counts(iterations, warmup, rounds)
    for _ in range(warmup):
        func()

    trend = trend_rounds(func, rounds, per_round, _LATE_ROUNDS)
    bytes_per_call, leaking, native_per_call, native = _decide(trend, per_round, tol)

    sites: list[Site] = []
    type_growth: list[TypeGrowth] = []
    chain: tuple[str, ...] = ()
    if leaking:
        sites, type_growth, chain = _attribute(func, per_round)
    cycles = cycles_per_call(func, min(per_round, _CYCLE_CALLS))

    heap = trend.heap
    half = len(heap) // 2
    early = 0.0
    if not leaking and heap[half] - heap[0] > tol * per_round * 2:
        early = float(heap[half] - heap[0])

    return LeakReport(
        label=label,
        leaking=leaking or native,
        bytes_per_call=bytes_per_call,
        tolerance=tol,
        sites=tuple(sites),
        types=tuple(type_growth),
        cycles_per_call=cycles,
        chain=chain,
        rounds=trend.rounds,
        iterations=iterations,
        warmup=warmup,
        early_growth_bytes=early,
        native_bytes_per_call=native_per_call,
        explanation=_explain(
            leaking,
            bytes_per_call,
            tol,
            sites,
            type_growth,
            chain,
            cycles,
            early,
            per_round,
            native_per_call if native else None,
        ),
    )


def _type_growth(measured: AttributionRound, limit: int = 10) -> list[TypeGrowth]:
    """Types whose live count grew over the attribution round, most new objects per call first."""
    before, after = measured.counts_before, measured.counts_after
    grown = (
        TypeGrowth(t, (after[t] - before.get(t, 0)) / measured.calls)
        for t in after
        if after[t] - before.get(t, 0) > 0
    )
    return sorted(grown, key=lambda g: -g.per_call)[:limit]


def _attribute(
    func: Callable[[], Any], calls: int
) -> tuple[list[Site], list[TypeGrowth], tuple[str, ...]]:
    """Where the kept memory was allocated, which types grew, and what keeps one of them."""
    measured = attribution_round(func, calls, ATTRIBUTION_FRAMES)
    sites = _sites(measured.before, measured.after, calls)
    growth = _type_growth(measured)
    # Prefer a user-defined type for the chain: builtins say less about who keeps them.
    top = next((g for g in growth if not g.type_name.startswith("builtins.")), None)
    top = top or (growth[0] if growth else None)
    chain = _chain_to(func, top.type_name) if top else ()
    return sites, growth, chain


def _explain(
    leaking: bool,
    per_call: float,
    tol: float,
    sites: Sequence[Site],
    growth: Sequence[TypeGrowth],
    chain: Sequence[str],
    cycles: float,
    early: float,
    per_round: int,
    native: float | None = None,
) -> str:
    def size(v: float) -> str:
        return f"{v:.0f} B" if abs(v) < 1024 else format_size(v)

    if native is not None:
        text = (
            f"leaks native memory: RSS grew {size(native)} per call over the last "
            f"{_LATE_ROUNDS * per_round} calls while the Python heap changed {size(per_call)} "
            f"per call (tolerance {size(tol)}); C extensions or malloc outside tracemalloc's "
            "view, so no allocation site can be named"
        )
    elif leaking:
        text = f"leaks {size(per_call)} per call"
        if sites:
            text += f" at {sites[0].file}:{sites[0].line}"
        if growth:
            g = next((t for t in growth if not t.type_name.startswith("builtins.")), growth[0])
            text += f" ({g.type_name} +{g.per_call:.2g} per call)"
        if chain:
            text += f", kept alive by {' → '.join(chain)}"
        text += f" (tolerance {size(tol)})"
    else:
        text = (
            f"no leak: the heap changed {size(per_call)} per call over the last "
            f"{_LATE_ROUNDS * per_round} calls (tolerance {size(tol)})"
        )
        if early:
            text += "; it grew early and then stopped (a bounded cache filling up, not a leak)"
    if cycles >= 0.5:
        text += (
            f"; {cycles:.1f} objects per call are freed only by the cyclic GC "
            "(a leak under gc.disable(), and GC pauses)"
        )
    return text
