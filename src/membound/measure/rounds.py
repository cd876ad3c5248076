"""Rounds of calls in this process, with the heap, RSS and allocated blocks after each: the
measurements leak hunting decides on (``judge/leaks.py``).

Each round ends with a full ``gc.collect()``, so what the figures show is what is still
reachable. Tracing costs time (tracemalloc slows allocation-heavy code 4× with one frame and
20× with 25 frames on this project's reference machine), so each kind of round traces only as
deep as its question needs.
"""

from __future__ import annotations

import gc
import sys
import traceback
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from membound._errors import ChildFailed
from membound.measure import probes
from membound.measure.heap import gc_paused, own_filters, tracing, type_counts
from membound.results.leaks import LeakRound

__all__ = [
    "AttributionRound",
    "Trend",
    "attribution_round",
    "cycles_per_call",
    "guarded",
    "trend_rounds",
]


def guarded(func: Callable[[], Any], label: str) -> Callable[[], Any]:
    """``func``, with its exceptions turned into :class:`ChildFailed` carrying the traceback
    (the original is its ``__cause__``)."""

    def call() -> Any:
        try:
            return func()
        except Exception as exc:
            raise ChildFailed(
                f"{label} raised while being called for leak hunting: {type(exc).__name__}: {exc}",
                traceback=traceback.format_exc(),
                hint="the measured code itself failed; its traceback is shown above",
            ) from exc

    return call


@dataclass(frozen=True)
class Trend:
    """Heap and RSS before the first round and after each round."""

    heap: tuple[int, ...]
    """Traced heap, bytes: the start, then one figure per round."""
    rss: tuple[int, ...]
    """Resident set size, bytes: the start, then one figure per round."""
    rounds: tuple[LeakRound, ...]
    """One record per round."""


def trend_rounds(func: Callable[[], Any], rounds: int, per_round: int, late_rounds: int) -> Trend:
    """``rounds`` rounds of ``per_round`` calls under tracemalloc with one frame (only the heap's
    size is needed); the last ``late_rounds`` are labelled ``late``."""
    heap: list[int] = []
    rss: list[int] = []
    history: list[LeakRound] = []
    calls = 0
    gc.collect()  # the warm-up's garbage goes before tracing starts
    with tracing(1):
        gc.collect()
        heap.append(tracemalloc.get_traced_memory()[0])
        rss.append(probes.rss())
        for r in range(rounds):
            for _ in range(per_round):
                func()
            calls += per_round
            gc.collect()
            heap.append(tracemalloc.get_traced_memory()[0])
            rss.append(probes.rss())
            phase = "late" if r >= rounds - late_rounds else "trend"
            history.append(LeakRound(calls, phase, sys.getallocatedblocks(), rss[-1], heap[-1]))
    return Trend(tuple(heap), tuple(rss), tuple(history))


@dataclass(frozen=True)
class AttributionRound:
    """One traced round between two snapshots, and live objects by type before and after."""

    before: tracemalloc.Snapshot
    """Snapshot before the round (membound's own allocations filtered out)."""
    after: tracemalloc.Snapshot
    """Snapshot after the round, likewise filtered."""
    counts_before: dict[str, int]
    """Live objects by type before the round."""
    counts_after: dict[str, int]
    """Live objects by type after the round."""
    calls: int
    """Calls in the round."""


def attribution_round(func: Callable[[], Any], calls: int, frames: int) -> AttributionRound:
    """A priming round, then one round of ``calls`` calls between two snapshots traced with
    ``frames`` frames.

    The priming round comes first because objects made before tracing and replaced now would
    otherwise look like growth (their frees are not traced, the replacements are).
    """
    filters = own_filters()  # before tracing: importing objgraph must not look like a leak
    with tracing(frames):
        for _ in range(calls):
            func()
        gc.collect()
        before = tracemalloc.take_snapshot()
        counts_before = type_counts()
        for _ in range(calls):
            func()
        gc.collect()
        counts_after = type_counts()
        after = tracemalloc.take_snapshot()
    return AttributionRound(
        before.filter_traces(filters),
        after.filter_traces(filters),
        counts_before,
        counts_after,
        calls,
    )


def cycles_per_call(func: Callable[[], Any], calls: int) -> float:
    """Objects per call that only the cyclic GC reclaims (the collector is paused meanwhile)."""
    with gc_paused():
        for _ in range(calls):
            func()
        found = gc.collect()
    return found / calls
