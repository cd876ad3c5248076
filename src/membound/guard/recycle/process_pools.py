"""Recycle ``concurrent.futures`` process-pool workers on their *current* memory.

Celery's ``worker_max_memory_per_child`` compares ``ru_maxrss`` — the peak — after each task, so a
worker that once ran a big task, or was born near the limit, is replaced after every task
(celery#4125, #4809). Python 3.11's ``ProcessPoolExecutor`` retires a worker after
``max_tasks_per_child`` tasks, through its own protocol (the worker announces that it exits with
its last result, and the executor starts a replacement: no task is lost and the pool is not
broken). :func:`recycle_above` plugs memory into that protocol: it returns an ``int`` to pass as
``max_tasks_per_child`` whose comparison with the worker's task count is true when the worker's
anonymous (and shared) resident memory *now* is at or above the cap — or when its optional task
count is reached. The worker checks before each task: one whose memory grew past the cap runs
the task it has taken, returns its result, and exits.

Why an ``int`` subclass and not a copy of the worker loop: the executor validates the argument
as an ``int`` and compares it in its worker with ``num_tasks >= max_tasks``; a subclass's reflected
``__le__`` is consulted first, so the stdlib's own loop, and its exit protocol, stay in charge.
Python 3.11 or later (3.10's executor has no ``max_tasks_per_child``), and a ``spawn`` or
``forkserver`` context (the executor refuses ``fork`` with ``max_tasks_per_child``).

:class:`RecyclingProcessPool` is the executor to use: on CPython 3.11 a plain
``ProcessPoolExecutor`` with ``max_tasks_per_child`` hangs once its workers have retired (measured
here: two workers retired after 9 tasks each and the 22 tasks left never ran). Its "is a worker
idle?" counter counts results, not live workers, so after exits it still says a worker is idle and
no replacement is started. The subclass replaces every worker that exited, up to
``max_workers`` (one overridden private method, ``_adjust_process_count``: the stdlib offers no
public hook for it).
"""

from __future__ import annotations

import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.context import BaseContext
from typing import Any

from membound._errors import SizeError
from membound._units import format_size, parse_size
from membound.measure.cgroup.memory import process_usage

__all__ = ["BrokenProcessPool", "MemoryCap", "RecyclingProcessPool", "recycle_above"]

#: A task count no pool reaches: the cap then retires workers on memory alone.
_NO_COUNT = sys.maxsize


class MemoryCap(int):
    """``max_tasks_per_child`` that also retires a worker at ``cap_bytes`` of current memory.

    The integer value is the task count (``sys.maxsize`` when none was asked for).
    """

    cap_bytes: int

    def __new__(cls, cap_bytes: int, max_tasks: int | None = None) -> MemoryCap:
        self = super().__new__(cls, _NO_COUNT if max_tasks is None else max_tasks)
        self.cap_bytes = cap_bytes
        return self

    def __getnewargs__(self) -> tuple[int, int]:  # type: ignore[override]
        return (self.cap_bytes, int(self))

    def __le__(self, tasks_done: Any) -> bool:  # ``tasks_done >= cap`` in the worker
        if not isinstance(tasks_done, int) or tasks_done < 1:
            # The executor's own checks (``max_tasks_per_child <= 0`` in its constructor, in the
            # parent): a plain count, not this process's memory.
            return bool(int(self) <= tasks_done)
        if tasks_done >= int(self):
            return True
        usage = process_usage("self")
        return usage is not None and usage.judged >= self.cap_bytes

    def __repr__(self) -> str:
        count = "" if int(self) == _NO_COUNT else f", max_tasks={int(self)}"
        return f"recycle_above({format_size(self.cap_bytes)!r}{count})"

    __hash__ = int.__hash__


def recycle_above(max_memory: int | str, max_tasks: int | None = None) -> MemoryCap:
    """A ``max_tasks_per_child`` for ``ProcessPoolExecutor`` that retires a worker when its
    current anonymous memory is at or above ``max_memory`` (and after ``max_tasks`` tasks, if
    given).

    Example::

        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        from membound.guard.recycle.process_pools import recycle_above

        pool = ProcessPoolExecutor(
            4,
            mp_context=multiprocessing.get_context("forkserver"),
            max_tasks_per_child=recycle_above("500 MB"),
        )

    Raises:
        SizeError: ``max_memory`` is no positive size, or ``max_tasks`` is no count >= 1.
    """
    cap = parse_size(max_memory)
    if cap <= 0:
        raise SizeError(f"max_memory={max_memory!r} must be more than 0 bytes")
    if max_tasks is not None and (
        isinstance(max_tasks, bool) or not isinstance(max_tasks, int) or max_tasks < 1
    ):
        raise SizeError(f"max_tasks={max_tasks!r} must be a whole number >= 1")
    return MemoryCap(cap, max_tasks)


class RecyclingProcessPool(ProcessPoolExecutor):
    """A ``ProcessPoolExecutor`` whose workers retire at ``max_memory`` of current memory.

    Args:
        max_workers: worker processes (default: the executor's).
        max_memory: a worker whose anonymous memory is at or above this before a task runs
            that task, returns its result and exits; a fresh worker takes its place.
        max_tasks: also retire a worker after this many tasks.
        mp_context: a ``spawn`` or ``forkserver`` context (default ``spawn``).
        initializer: as for ``ProcessPoolExecutor``: called in each worker as it starts.
        initargs: the arguments of ``initializer``.

    Raises:
        SizeError: ``max_memory`` or ``max_tasks`` make no sense.
        RuntimeError: Python is older than 3.11.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        max_memory: int | str,
        max_tasks: int | None = None,
        mp_context: BaseContext | None = None,
        initializer: Any = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        if sys.version_info < (3, 11):
            raise RuntimeError("RecyclingProcessPool needs Python 3.11 (max_tasks_per_child)")
        cap = recycle_above(max_memory, max_tasks)
        context = mp_context if mp_context is not None else multiprocessing.get_context("spawn")
        super().__init__(
            max_workers,
            mp_context=context,
            initializer=initializer,
            initargs=initargs,
            max_tasks_per_child=cap,  # type: ignore[call-arg,unused-ignore]
        )

    def _adjust_process_count(self) -> None:
        processes = getattr(self, "_processes", None)
        if processes is None:  # shut down
            return
        if len(processes) < self._max_workers:  # type: ignore[attr-defined]
            self._spawn_process()  # type: ignore[attr-defined]
