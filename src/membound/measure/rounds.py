"""Rounds of calls in this process, with the heap, RSS and allocated blocks after each: the
measurements leak hunting decides on (``judge/leaks.py``).

Each round ends with a full ``gc.collect()``, so what the figures show is what is still
reachable. Tracing costs time (tracemalloc slows allocation-heavy code 4× with one frame and
20× with 25 frames on this project's reference machine), so each kind of round traces only as
deep as its question needs.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import traceback
import tracemalloc
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from membound._errors import ChildFailed, StopRequested, failure_words
from membound.measure import allocator, probes
from membound.measure.heap import gc_paused, own_filters, tracing, type_counts
from membound.results.leaks import LeakRound

__all__ = [
    "AttributionRound",
    "Guarded",
    "Trend",
    "TrendRecorder",
    "attribution_round",
    "cycles_per_call",
    "guarded",
]


def _clear_interpreter_caches() -> None:
    """Empty CPython's type attribute cache before a reading.

    The cache (4,096 entries in 3.10–3.11) keeps a reference to each attribute name it saw, so
    code that looks up fresh strings (``reprlib``'s ``hasattr(self, "repr_" + name)``, reached
    by every ``asyncio.run`` through the SIGINT handler's repr) fills it over thousands of calls:
    a bounded cache that reads as a slow leak of a block per call. Clearing it is what
    ``gc.collect()`` is for objects: what stays is what the code keeps.

    Versions differ: 3.13 added ``sys._clear_internal_caches`` (the type cache and the
    specializing interpreter's caches) and deprecated ``sys._clear_type_cache`` for it; 3.10–3.12
    have the latter only.
    """
    clear = getattr(sys, "_clear_internal_caches", None) or getattr(sys, "_clear_type_cache", None)
    if clear is not None:
        clear()


def collect() -> None:
    """A full collection, with CPython's bounded interpreter caches emptied first."""
    _clear_interpreter_caches()
    gc.collect()


class Guarded:
    """A target called for leak hunting: its exceptions turned into :class:`ChildFailed`
    carrying the traceback (the original is its ``__cause__``), its calls counted (a report
    says how many calls had been made when it counted a container's entries)."""

    def __init__(self, func: Callable[[], Any], label: str) -> None:
        self.func = func
        self.label = label
        self.calls = 0
        """Calls made so far, the failed one included."""

    def __call__(self) -> Any:
        self.calls += 1
        try:
            return self.func()
        except (KeyboardInterrupt, StopRequested):
            raise  # a stop asked of membound, not a failure of the measured code
        except BaseException as exc:  # SystemExit and the code's own BaseExceptions too
            # The traceback starts at the measured code: this frame is membound's own (kept
            # where the call itself failed, a missing argument: then it is the only frame).
            start = exc.__traceback__
            if start is not None and start.tb_next is not None:
                start = start.tb_next
            raise ChildFailed(
                f"{self.label} {failure_words(exc)} while being called for leak hunting",
                traceback="".join(traceback.format_exception(type(exc), exc, start)),
                hint="the measured code itself failed; its traceback is shown above",
            ) from exc


def guarded(func: Callable[[], Any], label: str) -> Guarded:
    """``func`` as a :class:`Guarded` target."""
    return Guarded(func, label)


@dataclass(frozen=True)
class Trend:
    """Figures before the first round and after each round (after a full collection)."""

    calls: tuple[int, ...]
    """Calls made at each point (0 first)."""
    held: tuple[int, ...] | None
    """Bytes the allocators hold (pymalloc and malloc; see ``allocator.py``), or None when
    they cannot be read here and the heap was traced instead."""
    heap: tuple[int, ...] | None
    """Traced Python heap, bytes (only when ``held`` cannot be read)."""
    rss: tuple[int, ...]
    """Resident set size, bytes."""
    blocks: tuple[int, ...]
    """Allocated memory blocks (``sys.getallocatedblocks()``): objects and buffers, counted."""
    rounds: tuple[LeakRound, ...]
    """One record per round."""

    @property
    def series(self) -> tuple[int, ...]:
        """The figures to judge: ``held``, else ``heap``."""
        series = self.held if self.held is not None else self.heap
        assert series is not None
        return series


class TrendRecorder:
    """Rounds of ``per_round`` plain calls, with a full collection and the figures after each,
    up to ``most_rounds`` rounds: ``with TrendRecorder(...) as rec: rec.run(10); rec.trend()``.

    Untraced where the allocators can be read (calls run at full speed); traced with one frame
    for the whole block elsewhere. The figures go into arrays allocated before the first
    reading, so that recording them adds nothing to what is measured, and more rounds can be
    run after a first judgement without a break in the series.
    """

    def __init__(self, func: Callable[[], Any], per_round: int, most_rounds: int) -> None:
        self._func = func
        self._per_round = per_round
        self._untraced = allocator.untraced_available()
        size = 8 * (most_rounds + 1)
        self._blocks, self._pymalloc, self._malloc, self._rss, self._heap = (
            array("q", bytes(size)) for _ in range(5)
        )
        self._points = 0
        self._tracing: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
        #: Called after each round as ``on_round(rounds_done)`` (a progress display), or None.
        self.on_round: Callable[[int], None] | None = None

    def __enter__(self) -> TrendRecorder:
        if not self._untraced:
            self._tracing = tracing(1)
        collect()  # the warm-up's garbage goes before the first reading
        self._tracing.__enter__()
        self._record()
        return self

    def __exit__(self, *exc: object) -> None:
        self._tracing.__exit__(None, None, None)

    def _record(self) -> None:
        i = self._points
        collect()
        self._blocks[i] = sys.getallocatedblocks()
        if self._untraced:
            now = allocator.held()
            self._pymalloc[i], self._malloc[i] = now.pymalloc, now.malloc
        else:
            self._heap[i] = tracemalloc.get_traced_memory()[0]
        self._rss[i] = probes.rss()
        self._points += 1

    def run(self, rounds: int) -> None:
        """``rounds`` more rounds (within ``most_rounds`` in all)."""
        if self._points + rounds > len(self._blocks):
            raise ValueError("more rounds than the recorder was made for")
        for _ in range(rounds):
            for _ in range(self._per_round):
                self._func()
            self._record()
            if self.on_round is not None:
                self.on_round(self._points - 1)

    def trend(self) -> Trend:
        """The rounds so far; the later half of them labelled ``late``."""
        points = self._points
        untraced = self._untraced
        calls = tuple(self._per_round * i for i in range(points))
        held = (
            tuple(self._pymalloc[i] + self._malloc[i] for i in range(points)) if untraced else None
        )
        late_from = points // 2
        history = tuple(
            LeakRound(
                calls[i],
                "late" if i > late_from else "trend",
                self._blocks[i],
                self._rss[i],
                None if untraced else self._heap[i],
                held=held[i] if held else None,
                malloc=self._malloc[i] if untraced else None,
            )
            for i in range(1, points)
        )
        return Trend(
            calls,
            held,
            None if untraced else tuple(self._heap[:points]),
            tuple(self._rss[:points]),
            tuple(self._blocks[:points]),
            history,
        )


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
    native_growth: int | None
    """Growth over the round of memory the allocators hold beyond what tracemalloc traced
    (and beyond tracemalloc's own memory): native memory; None where the allocators cannot be
    read."""


def _large_traced(snapshot: tracemalloc.Snapshot) -> int:
    """Bytes of the traced blocks malloc serves (those over pymalloc's limit)."""
    limit = allocator.SMALL_REQUEST_LIMIT
    return sum(trace.size for trace in snapshot.traces if trace.size > limit)


def _malloc_beyond_tracing() -> int:
    """malloc's bytes in use minus tracemalloc's own memory (which it takes from malloc)."""
    return allocator.malloc_in_use() - tracemalloc.get_tracemalloc_memory()


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
        collect()
        type_counts()  # once before the snapshots: counting fills caches of its own (ABCs)
        before = tracemalloc.take_snapshot()
        counts_before = type_counts()
        # malloc's growth over the round, read while the snapshot above exists at both ends:
        # what tracemalloc did not trace of it is native memory.
        readable = allocator.untraced_available()
        malloc_before = _malloc_beyond_tracing() if readable else 0
        for _ in range(calls):
            func()
        collect()
        malloc_after = _malloc_beyond_tracing() if readable else 0
        counts_after = type_counts()
        after = tracemalloc.take_snapshot()
    native = None
    if readable:
        traced_large = _large_traced(after) - _large_traced(before)
        native = malloc_after - malloc_before - traced_large
    return AttributionRound(
        before.filter_traces(filters),
        after.filter_traces(filters),
        counts_before,
        counts_after,
        calls,
        native,
    )


def malloc_growth_per_call(func: Callable[[], Any], calls: int) -> float:
    """malloc's growth per call over one untraced round of ``calls`` calls, each end after a
    full collection (0 where the allocators cannot be read)."""
    if not allocator.untraced_available():
        return 0.0
    collect()
    before = allocator.malloc_in_use()
    for _ in range(calls):
        func()
    collect()
    return (allocator.malloc_in_use() - before) / calls


def cycles_per_call(func: Callable[[], Any], calls: int) -> float:
    """Objects per call that only the cyclic GC reclaims (the collector is paused meanwhile)."""
    with gc_paused():
        for _ in range(calls):
            func()
        found = gc.collect()
    return found / calls
