"""What runs inside the measured interpreter: counting garbage collections and tracemalloc's own
memory while it traces (memray's heap engine and the sites are ``where_capture.py``).

Standard library only and importing nothing of membound: the isolated-run child
(``isolated_call.py``) and the heap runner of commands (``heap_runner.py``) run by path without
the package and load this file by its path; ``track`` and ``probes`` load it by path too
(``measure/child_code.py``).
"""

from __future__ import annotations

import gc
import threading
import time
import tracemalloc
from typing import Any

__all__ = ["SOURCES", "GcMonitor", "TracingOverhead"]

#: ``heap_source`` of each engine: where the heap figures came from.
SOURCES = {
    "tracemalloc": "tracemalloc (Python allocations only)",
    "memray": "memray (Python allocators and native allocations)",
}


class GcMonitor:
    """Counts garbage collections and their total pause time through ``gc.callbacks``."""

    def __init__(self) -> None:
        self.collections = 0
        self.pause_s = 0.0
        self._started: float | None = None
        self._active = False

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            self.pause_s += time.perf_counter() - self._started
            self.collections += 1
            self._started = None

    def start(self) -> GcMonitor:
        """Begin counting; returns self."""
        if not self._active:
            gc.callbacks.append(self._callback)
            self._active = True
        return self

    def stop(self) -> GcMonitor:
        """Stop counting; returns self."""
        if self._active:
            gc.callbacks.remove(self._callback)
            self._active = False
        return self


class TracingOverhead:
    """The largest amount of memory tracemalloc itself held while it traced.

    tracemalloc keeps a record per live traced block (about 80 bytes each with one frame), so at
    the heap's peak its own memory can come near the heap's size, and all of it is resident: it
    counts in RSS. It falls again as blocks are freed, so the peak is found by polling
    ``tracemalloc.get_tracemalloc_memory()`` from a thread every ``interval`` seconds. Best
    effort: a thread waits for the GIL, so a peak between two polls is missed; the figure is a
    lower bound of the peak.
    """

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            self._read()

    def _read(self) -> None:
        if tracemalloc.is_tracing():
            self.peak = max(self.peak, tracemalloc.get_tracemalloc_memory())

    def start(self) -> TracingOverhead:
        """Begin polling (tracing must already be on); returns self."""
        self._read()
        self._thread = threading.Thread(target=self._poll, name="membound-tracemalloc", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> int:
        """Stop polling (before tracing stops) and return the largest figure seen, bytes."""
        self._read()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.peak
