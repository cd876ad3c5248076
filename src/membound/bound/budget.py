"""``memory_budget``: stop a block with an exception before the OOM killer stops the process.

How: a small watcher thread reads this process's RSS every ``interval`` seconds; when it crosses
the limit, it raises :class:`~membound.MemoryBudgetExceeded` *in the thread that entered the
block* with ``PyThreadState_SetAsyncExc``. Alternatives and why they lose:

* signals (``SIGALRM`` / ``setitimer``) run their handler only in the main thread, but the
  typical guarded code is a request handler in a worker thread;
* ``sys.settrace`` / ``sys.setprofile`` checks would slow every line of the guarded code;
* ``resource.setrlimit(RLIMIT_AS)`` is process-wide, counts address space rather than RSS, and
  turns into a ``MemoryError`` wherever the next allocation happens to be.

Limits of the approach: an asynchronous exception is delivered between bytecodes, so one long C
call (a single huge allocation, ``time.sleep``, a blocking read) finishes before it is raised, and
RSS can overshoot by what is allocated within one polling interval. Keep the interval small and
the budget below the container limit by a margin.
"""

from __future__ import annotations

import ctypes
import threading
from types import TracebackType
from typing import Literal

from membound._errors import MemoryBudgetExceeded
from membound._units import format_size, parse_size
from membound.bound._rss import current_rss

__all__ = ["MemoryBudget", "memory_budget"]


class _AsyncBudgetExceeded(MemoryBudgetExceeded):
    """Raised asynchronously in the guarded thread; replaced by a detailed error at block exit."""


class MemoryBudget:
    """The context manager returned by :func:`memory_budget`."""

    def __init__(self, limit: int, *, relative: bool, interval: float) -> None:
        self.limit = limit
        self.relative = relative
        self.interval = interval
        self.baseline = 0
        self.observed: int | None = None
        self._thread_id = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._done = False
        self._watcher: threading.Thread | None = None
        # A class of its own per budget, so nested budgets in one thread each recognise
        # only the exception their own watcher raised.
        self._exc_type: type[_AsyncBudgetExceeded] = type(
            "_AsyncBudgetExceeded", (_AsyncBudgetExceeded,), {}
        )

    def __enter__(self) -> MemoryBudget:
        self._thread_id = threading.get_ident()
        self.baseline = current_rss()
        usage = self._usage()
        if usage > self.limit:  # already over: raise here, no watcher needed
            self.observed = usage
            raise self._error()
        self._watcher = threading.Thread(target=self._watch, name="membound-budget", daemon=True)
        try:
            self._watcher.start()
            return self
        except self._exc_type:
            # Delivered before the with block was entered (so __exit__ will not run).
            self._shutdown()
            raise self._error() from None

    def _usage(self) -> int:
        rss = current_rss()
        return rss - self.baseline if self.relative else rss

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            usage = self._usage()
            if usage > self.limit:
                with self._lock:
                    if not self._done:
                        self.observed = usage
                        _set_async_exc(self._thread_id, self._exc_type)
                return

    def _error(self) -> MemoryBudgetExceeded:
        what = "RSS growth" if self.relative else "RSS"
        observed = self.observed or 0
        return MemoryBudgetExceeded(
            f"memory budget exceeded: {what} reached {format_size(observed)}, over the limit of "
            f"{format_size(self.limit)}",
            limit=self.limit,
            observed=observed,
        )

    def _shutdown(self, delivered: bool = False) -> bool:
        """Stop the watcher; cancel an exception raised but not delivered. True if tripped."""
        with self._lock:
            self._done = True
            tripped = self.observed is not None
            if tripped and not delivered:
                # Raised but not yet delivered: cancel it so it cannot fire after the block.
                _set_async_exc(self._thread_id, None)
        self._stop.set()
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join()
        return tripped

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        mine = isinstance(exc, self._exc_type)
        try:
            tripped = self._shutdown(delivered=mine)
        except self._exc_type:
            # Delivered at the first bytecodes of __exit__, before the watcher was stopped.
            self._shutdown(delivered=True)
            raise self._error() from None
        if tripped and (exc is None or mine):
            raise self._error() from None
        return False


def _set_async_exc(thread_id: int, exc_type: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc_type) if exc_type is not None else None
    )


def memory_budget(
    limit: int | str, *, relative: bool = False, interval: float = 0.01
) -> MemoryBudget:
    """Raise ``MemoryBudgetExceeded`` in this thread when process memory crosses ``limit``.

    Args:
        limit: bytes or a size string (``"512 MB"``).
        relative: compare the growth of RSS since entering the block instead of absolute RSS.
        interval: seconds between RSS checks.

    Returns:
        A context manager; the exception leaves the ``with`` block with the observed value.

    Example:
        >>> with memory_budget("2 GB"):  # doctest: +SKIP
        ...     handle(request)
    """
    nbytes = parse_size(limit) if isinstance(limit, str) else int(limit)
    if nbytes <= 0:
        raise ValueError(f"limit must be positive, got {limit!r}")
    return MemoryBudget(nbytes, relative=relative, interval=interval)
