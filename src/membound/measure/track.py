"""``track()``: measure a block or a function in this process.

RSS over time comes from the sampler *process* (not a thread, which the GIL starves); the peak
comes from the kernel's ``VmHWM``, reset at entry; the heap from tracemalloc when ``heap=True``,
with tracemalloc's own memory polled apart (``heap_overhead``), or from memray with
``heap="memray"`` (``_where.MemrayCapture``: Python allocators and native allocations).

Processes the block starts count (a ``multiprocessing`` pool's workers, ``os.fork()``): the
sampler sums the RSS of this process and all its descendants at each sample (membound's own
sampler processes left out), and the peak is the largest of that sum and this process's own
``VmHWM``; the start and the end are the same sum, read then. The sum is what ``membound run``
counts: a forked child's pages still shared with its parent (copy-on-write) count in both (not
in its first 0.1 s between fork and exec), and a descendant's peak between two samples is missed
(the source says so).

Nesting works: before an inner ``track`` resets the process-wide peak marks (``VmHWM`` and
tracemalloc's peak), every enclosing ``track`` folds the current peaks into its own record, so
the outer peak still covers the inner block.

``where=`` adds the lines that held the peak (``where_capture.py``): one memray tracker serves both
``where`` and ``heap="memray"``; memray traces one block at a time, so a nested ``where`` or
memray block is refused in one line.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from membound._errors import TargetError
from membound._lazy import preload
from membound._units import format_size
from membound.measure import child_code, probes
from membound.measure.heap import HeapMode, heap_engine
from membound.measure.sampler.process import Sampler, tree_source
from membound.measure.where.engine import (
    WhereMode,
    kept_by,
    sites_fields,
    where_engine,
    where_mode,
)
from membound.results.growth import Anchors, classify
from membound.results.measurement import Measurement
from membound.results.timeline import STARTED_AFTER, Timeline

if TYPE_CHECKING:
    from membound.measure.children.inside import SOURCES, TracingOverhead
    from membound.measure.children.where_capture import (
        Capture,
        MemrayCapture,
        finish,
        prepare_capture,
    )
else:
    SOURCES = child_code.load("inside").SOURCES
    TracingOverhead = child_code.load("inside").TracingOverhead
    Capture = child_code.load("where_capture").Capture
    MemrayCapture = child_code.load("where_capture").MemrayCapture
    finish = child_code.load("where_capture").finish
    prepare_capture = child_code.load("where_capture").prepare_capture

__all__ = ["SAMPLER_WAIT_S", "track"]

#: How long a block waits at its start for the sampler's first sample (about 20 ms on a quiet
#: machine).
SAMPLER_WAIT_S = 5.0

P = ParamSpec("P")
R = TypeVar("R")

_ACTIVE: list[track] = []
_ACTIVE_LOCK = threading.Lock()


class track:
    """Measure memory of a ``with`` block or of each call of a decorated function.

    Example::

        with mb.track("load all") as t:
            rows = cursor.fetchall()
        print(t.result.rss_peak_delta)

        @mb.track("handler")
        def handle(request): ...
        handle(req); handle.last_measurement  # or the track object's .result

    Args:
        label: name for the result (default: the function's name, or ``"block"``).
        heap: also measure the heap: ``True`` or ``"tracemalloc"`` (Python allocations), or
            ``"memray"`` (Python allocators and native allocations; the ``memray`` extra). Both
            cost time: docs/how-it-measures.md says how much and which to choose.
        interval: sampling interval in seconds for the timeline; ``None`` disables the sampler
            process (the peak still comes from ``VmHWM``).
        where: also say which lines held the memory at the peak and at the end
            (``result.peak_sites``/``end_sites``): ``True`` for Python lines (memray where
            installed, else tracemalloc polled, at its cost), ``"native"`` for Python and native
            lines (memray).
        sites_from: with ``where``, read the lines only when the block's peak rose at least
            this many bytes (RSS, or the heap where it is measured): reading a capture costs
            about 20 ms, most of what ``where`` costs a small block, and a block that rose a
            few KiB has little to name. ``result.where_note`` says when they were not read.
    """

    def __init__(
        self,
        label: str | None = None,
        *,
        heap: HeapMode = False,
        interval: float | None = 0.01,
        where: WhereMode = False,
        sites_from: int = 0,
    ) -> None:
        self.label = label
        self.heap = heap
        self.where = where
        self.sites_from = sites_from
        self._engine = heap_engine(heap)
        self._where = where_mode(where)
        self._capture: Capture | None = None
        self.interval = interval
        self.result: Measurement | None = None
        self._sampler: Sampler | None = None
        self._gc = probes.GcMonitor()
        self._hwm_floor = 0
        self._heap_floor = 0
        self._reset_ok = False
        self._hwm_start: int | None = None
        self._rss_start = 0
        self._heap_start = 0
        self._started_tracing = False
        self._overhead: TracingOverhead | None = None
        self._blocks_start = 0
        self._t0 = 0.0
        self._m0 = 0.0

    # -- nesting -------------------------------------------------------------------------------
    def _fold_peaks(self) -> None:
        hwm, _ = probes.peak_rss()
        if hwm is not None:
            self._hwm_floor = max(self._hwm_floor, hwm)
        heap = probes.heap_now()
        if heap is not None:
            self._heap_floor = max(self._heap_floor, heap.peak)

    # -- context manager -----------------------------------------------------------------------
    def __enter__(self) -> track:
        self.result = None
        preload()  # imports membound defers, done before the baseline (``_lazy.py``)
        self._gc.start()
        with _ACTIVE_LOCK:
            for outer in _ACTIVE:
                outer._fold_peaks()
            _ACTIVE.append(self)
            if self._where is not None or self._engine == "memray":
                # Before tracemalloc starts for the heap: the fallback wants more frames.
                self._prepare_capture()
            self._reset_ok = probes.reset_peak_rss()
            self._hwm_start, _ = probes.peak_rss()
            if self._engine == "tracemalloc":
                if tracemalloc.is_tracing():
                    tracemalloc.reset_peak()
                else:
                    tracemalloc.start(1)
                    self._started_tracing = True
                self._heap_start = tracemalloc.get_traced_memory()[0]
                self._overhead = TracingOverhead().start()
        self._hwm_floor = 0
        self._heap_floor = 0
        # This process and what the block starts: children that ran before it (a test
        # runner's, a pool made earlier) are left out, so one of them ending during the block
        # cannot read as memory the block gave back.
        self._before = frozenset(probes.children())
        self._rss_start = probes.tree_rss(skip=self._before)
        self._blocks_start = sys.getallocatedblocks()
        if self.interval is not None:
            self._sampler = Sampler(
                os.getpid(),
                interval=self.interval,
                tree=True,
                skip=sorted(self._before),
                announce=True,
            ).start()
            # The block begins once the timeline does (else its first tens of milliseconds, or
            # hundreds on a loaded machine, are in no sample); past the wait it begins anyway,
            # and the timeline says when sampling began (``STARTED_AFTER``).
            self._sampler.wait_until_sampling(SAMPLER_WAIT_S)
        if self._capture is not None:
            # Started here, in this frame, so that only this frame returns before the block
            # runs (``MemrayCapture.prepare`` says why that matters).
            try:
                self._capture.enter()
            except RuntimeError as exc:
                if isinstance(self._capture, MemrayCapture):
                    self._capture.discard()  # its capture folder
                with _ACTIVE_LOCK:
                    self._stop_sampler_quietly()
                    self._refuse(exc)
        self._t0 = time.perf_counter()
        self._m0 = time.monotonic()  # the sampler's clock: where the block starts on it
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        duration = time.perf_counter() - self._t0
        blocks_delta = sys.getallocatedblocks() - self._blocks_start
        hwm_end, _ = probes.peak_rss()
        rss_end = probes.tree_rss(skip=self._before)
        # Stopped before the capture is read: that reading runs in a process of its own, which
        # the tree's samples must not count.
        report = self._sampler.stop() if self._sampler is not None else None
        self._sampler = None
        heap_current = heap_peak = heap_overhead = None
        if self._engine == "tracemalloc":
            current, peak = tracemalloc.get_traced_memory()
            if self._overhead is not None:
                heap_overhead = self._overhead.stop()
                self._overhead = None
            heap_current = current - self._heap_start
            heap_peak = max(peak, self._heap_floor) - self._heap_start
            if self._started_tracing:
                tracemalloc.stop()
                self._started_tracing = False
        sampled = report.max_rss if report is not None else 0
        if hwm_end is not None and self._reset_ok:
            # Never under the start: the kernel's RSS counters lag by a few pages, so a
            # high-water mark read after a reset can come out a little below an RSS read later.
            peak = max(hwm_end, self._hwm_floor, sampled, rss_end, self._rss_start)
            source = "VmHWM (reset at start)"
        elif hwm_end is not None and self._hwm_start is not None and hwm_end > self._hwm_start:
            peak = max(hwm_end, sampled, rss_end)
            source = "VmHWM (could not be reset; it grew during the run)"
        else:
            peak = max(sampled, rss_end, self._rss_start)
            source = "sampler max (VmHWM unavailable or not reset; short spikes may be missed)"
        figures = self._read_capture(peak - self._rss_start, heap_peak)
        if self._engine == "memray":
            heap_current, heap_peak = figures.get("heap_current"), figures.get("heap_peak")
            heap_overhead = figures.get("tracer_overhead")  # its table, estimated at the peak
        self._gc.stop()
        with _ACTIVE_LOCK:
            if self in _ACTIVE:
                _ACTIVE.remove(self)

        processes = report.timeline.extra.get("processes_seen", 0) if report is not None else 0
        if processes > 1:
            own = max(hwm_end or 0, self._hwm_floor) if self._reset_ok else hwm_end or 0
            exact = self._reset_ok and hwm_end is not None
            source = tree_source(processes, self.interval or 0.0, sampled, own, source, exact)
        timeline = report.timeline if report is not None else Timeline((), (), (), 0.0)
        if report is not None and report.start > self._m0:
            timeline.extra[STARTED_AFTER] = report.start - self._m0
        label = self.label or "block"
        sites = sites_fields(figures, self._where)
        self.result = Measurement(
            label=label,
            kind="in-process",
            duration_s=duration,
            rss_start=self._rss_start,
            rss_end=rss_end,
            rss_peak=peak,
            rss_peak_delta=peak - self._rss_start,
            rss_peak_source=source,
            heap_current=heap_current,
            heap_peak=heap_peak,
            gc_collections=self._gc.collections,
            gc_pause_s=self._gc.pause_s,
            timeline=timeline,
            growth=kept_by(
                classify(
                    timeline,
                    anchors=Anchors.of(
                        self._rss_start, peak, source, rss_end, blocks_delta=blocks_delta
                    ),
                ),
                sites.get("end_sites", ()),
                rss_end - self._rss_start,
            ),
            outcome="ok" if exc_type is None else "failed",
            outcome_detail="" if exc_type is None else f"raised {exc_type.__name__}",
            interval=self.interval or 0.0,
            heap_overhead=heap_overhead,
            heap_source=SOURCES[self._engine] if self._engine else None,
            blocks_delta=blocks_delta,
            **sites,
        )

    def _read_capture(self, rise: int, heap_peak: int | None) -> dict[str, Any]:
        """The capture's figures: read unless it serves only the lines and the block rose
        less than ``sites_from`` (by RSS or by the heap), when it is dropped unread."""
        capture, self._capture = self._capture, None
        if capture is None:
            return {}
        if self._engine != "memray" and max(rise, heap_peak or 0) < self.sites_from:
            capture.drop()
            return {
                "where_source": capture.source,
                "where_note": (
                    f"the lines were not read: the block rose {format_size(max(0, rise))}, "
                    f"under the {format_size(self.sites_from)} they are read from"
                ),
            }
        return finish(capture.stop())

    def _prepare_capture(self) -> None:
        """Make the sites' capture and/or memray's heap (under ``_ACTIVE_LOCK``)."""
        caller = sys._getframe(2)  # the frame that runs the block (past __enter__)
        outer = (caller.f_code.co_name, caller.f_code.co_filename, caller.f_lineno)
        try:
            self._capture = prepare_capture(
                self._where,
                where_engine(self._where),
                memray_heap=self._engine == "memray",
                outer=outer,
            )
        except RuntimeError as exc:  # memray's "one tracker at a time"
            self._refuse(exc)

    def _refuse(self, exc: BaseException) -> None:
        _ACTIVE.remove(self)
        self._gc.stop()
        what = "where=" if self._where is not None else "heap='memray'"
        raise TargetError(
            f"{what} cannot start: {exc}",
            hint="memray traces one block at a time: ask for where=/heap='memray' on the "
            "outer block only",
        ) from None

    def _stop_sampler_quietly(self) -> None:
        if self._sampler is not None:
            self._sampler.stop()
            self._sampler = None

    # -- decorator -----------------------------------------------------------------------------
    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        """Use as a decorator: each call is measured; ``.result`` holds the last call's."""
        label = self.label or getattr(func, "__qualname__", "function")

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            inner = track(
                label,
                heap=self.heap,
                interval=self.interval,
                where=self.where,
                sites_from=self.sites_from,
            )
            try:
                with inner:
                    return func(*args, **kwargs)
            finally:
                self.result = inner.result
                wrapper.last_measurement = inner.result  # type: ignore[attr-defined]

        wrapper.last_measurement = None  # type: ignore[attr-defined]
        return wrapper

    def __repr__(self) -> str:
        peak = format_size(self.result.rss_peak_delta) if self.result else "running"
        return f"<track {self.label or 'block'!r}: {peak}>"
