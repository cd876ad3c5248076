"""``memory_budget``: stop a block with an exception before the OOM killer stops the process.

Two mechanisms, because neither alone bounds memory:

1. **A watcher thread** reads this process's RSS every ``interval`` seconds. While RSS is over the
   budget it raises :class:`~membound.MemoryBudgetExceeded` *in the thread that entered the
   block* (``PyThreadState_SetAsyncExc``) at **every** check, not once: the exception is an
   ordinary ``Exception`` (a ``MemboundError``, existing API), so a routine
   ``try: … except Exception: log`` inside the block swallows one raise and carries on growing;
   raising again every ``interval`` keeps interrupting such a loop. ``__exit__`` checks RSS once
   more and raises again if the budget was **ever** exceeded in the block, even when the block
   swallowed every raise, or when the block ended before the watcher got to look.

2. **A data cap.** An asynchronous exception is delivered between bytecodes, and the watcher
   needs the GIL to read RSS, so neither can stop one long C call: a single
   ``bytearray(2_000_000_000)`` or ``list(range(55_000_000))`` used to finish at 2.0–2.2 GB
   against a 300 MB budget. So the block also lowers the soft ``RLIMIT_DATA`` to the process's
   data size at entry plus what the budget has left plus a headroom (a quarter of the budget, at
   least 64 MiB). An allocation that would pass it fails at once inside ``malloc``/``mmap``,
   Python raises ``MemoryError`` right there, and ``__exit__`` turns a ``MemoryError`` leaving
   the block into ``MemoryBudgetExceeded`` (chained: the ``MemoryError`` is its ``__cause__``).
   A loop that swallows ``MemoryError`` too stays at the cap. The old limit comes back at exit.

   Why ``RLIMIT_DATA`` (Linux 4.7 and later count every private writable mapping in it, not just
   the ``brk`` heap) rather than ``RLIMIT_AS``: address space counts reservations that never take
   memory (glibc reserves 64 MiB of ``PROT_NONE`` per malloc arena, so every thread's arena
   would count; runtimes reserve gigabytes), so a cap on it refuses programs that are well
   within their budget. ``RLIMIT_DATA`` counts memory mapped writable, which is what RSS grows
   into. It is mapped, not resident, memory, hence the headroom. Why not signals, tracing or
   checks at batch boundaries: signal handlers run only in the main thread (guarded code is
   often a request handler in a worker thread), ``sys.settrace`` slows every line, and batch
   boundaries exist only in membound's own loops.

What it does not catch, and the trade-offs (also in docs/guides/big-table.md):

* The cap is **process-wide**, like RSS: while a block runs, an allocation in *any* thread that
  would pass the cap fails with ``MemoryError`` in that thread. Several budgets in force at once
  (nested, or in several threads) each register a cap and the lowest holds; each budget's
  exception is raised in its own entering thread. Leave it off (``cap_allocations=False``) for
  blocks whose process must not see ``MemoryError`` elsewhere.
* Mapped memory is not resident memory: each thread started in the block maps a stack (8 MiB by
  default) and ``calloc``/``numpy.zeros`` map memory they may never touch; such a block can be
  refused below its budget. The headroom absorbs a few threads, not dozens.
* Not capped: memory that is not private writable mapping (``MAP_SHARED`` file or ``/dev/shm``
  mappings, memory mapped before the block and first touched inside it). The watcher still sees
  it in RSS, after the C call that touches it returns.
* Only Linux ≥ 4.7 applies the cap (``MemoryBudget.data_cap`` is None elsewhere). Without it
  (elsewhere, or ``cap_allocations=False``) one C call overshoots until it returns; the check
  in ``__exit__`` still reports it.
* A refused allocation whose ``MemoryError`` the block itself swallows is invisible here (no
  counter records it); memory stayed bounded, and ``__exit__`` raises only if RSS crossed.
* Extensions that abort on a failed allocation instead of raising (Rust's default, glib's
  ``g_malloc``) end the process at the cap rather than raise.
* Subprocesses started in the block inherit the lowered limit (``subprocess`` runs no Python in
  the child to undo it); children of ``os.fork`` (``multiprocessing``) get the old one back.
* The exception reaches the guarded thread only between bytecodes: a thread blocked in
  ``time.sleep`` or a read gets it when that call returns.
* The block must run to its end in the thread that entered it: a ``yield`` or ``await`` inside
  it leaves the budget raising into whatever that thread runs next.
"""

from __future__ import annotations

import ctypes
import math
import threading
import time
from types import TracebackType
from typing import Literal

from membound._data_cap import CAP_WORKS, drop_cap, set_cap
from membound._errors import MemoryBudgetExceeded, SizeError
from membound._units import format_size, parse_size
from membound.bound._rss import current_rss, data_size

__all__ = ["MemoryBudget", "memory_budget"]

#: Least headroom of the data cap over the budget: a few thread stacks and malloc's slack.
_MIN_HEADROOM = 64 * 2**20
#: How often ``__exit__`` resumes its cleanup after an asynchronous exception landed in it.
_CLOSE_ATTEMPTS = 100


class _AsyncBudgetExceeded(MemoryBudgetExceeded):
    """Raised asynchronously in the guarded thread; ``__exit__`` replaces it by a detailed error.

    CPython instantiates the raised class without arguments; each budget raises a subclass of its
    own bound to itself, so that the exception says which limit was crossed and by how much (the
    block may log it) and nested budgets recognise only their own.
    """

    _budget: MemoryBudget

    def __init__(self) -> None:
        budget = self._budget
        super().__init__(budget.describe(), limit=budget.limit, observed=budget.observed)

    def __reduce__(self) -> tuple[type[MemoryBudgetExceeded], tuple[str], dict[str, object]]:
        # Pickled (a log record sent to another process) as the public class: the per-budget
        # subclass cannot be found by name.
        return MemoryBudgetExceeded, (str(self),), dict(self.__dict__)


class MemoryBudget:
    """The context manager returned by :func:`memory_budget`.

    Attributes:
        limit: the budget in bytes.
        relative: whether ``limit`` bounds the growth of RSS since entry rather than RSS.
        interval: seconds between the watcher's RSS checks.
        cap_allocations: whether the block lowers ``RLIMIT_DATA`` (see the module docstring).
        baseline: RSS when the block was entered, in bytes.
        observed: the highest RSS (or growth) seen over the limit; None while within it.
        data_cap: the soft ``RLIMIT_DATA`` this block put in force, in bytes; None when it put
            none (turned off, not Linux ≥ 4.7, or a lower limit was already in force).
    """

    def __init__(
        self, limit: int, *, relative: bool, interval: float, cap_allocations: bool = True
    ) -> None:
        self.limit = limit
        self.relative = relative
        self.interval = interval
        self.cap_allocations = cap_allocations
        self.baseline = 0
        self.observed: int | None = None
        self.data_cap: int | None = None
        self._cap_growth = 0
        self._refused = False
        self._thread_id = 0
        self._in_use = False
        self._lock = threading.Lock()
        self._done = False
        self._stop = threading.Event()
        self._watcher = threading.Thread()
        # Named like the public class: the block may log the type name of what it caught.
        self._exc_type: type[_AsyncBudgetExceeded] = type(
            "MemoryBudgetExceeded", (_AsyncBudgetExceeded,), {"_budget": self}
        )

    @property
    def headroom(self) -> int:
        """Bytes the data cap allows beyond the budget: a quarter of it, at least 64 MiB."""
        return max(self.limit // 4, _MIN_HEADROOM)

    def __enter__(self) -> MemoryBudget:
        """Start watching and put the data cap in force; raise at once if already over."""
        if self._in_use:
            raise RuntimeError("this memory_budget is already in use; make one per with block")
        self._thread_id = threading.get_ident()
        self.observed = None
        self.data_cap = None
        self._refused = False
        self._done = False
        self._stop = threading.Event()
        self.baseline = current_rss()
        usage = self._usage()
        if usage > self.limit:  # already over: raise here, no watcher needed
            self.observed = usage
            raise self._error()
        self._in_use = True
        self._watcher = threading.Thread(target=self._watch, name="membound-budget", daemon=True)
        try:
            self._watcher.start()  # first: its stack then counts in the data size below
            self._put_cap(usage)
        except BaseException as exc:
            # Interrupted before the block was entered, so __exit__ will not run: clean up here.
            landed = self._close()
            self._in_use = False
            if isinstance(exc, self._exc_type) or isinstance(landed, self._exc_type):
                raise self._error() from None
            raise
        return self

    def _usage(self) -> int:
        rss = current_rss()
        return rss - self.baseline if self.relative else rss

    def _put_cap(self, usage: int) -> None:
        if not (self.cap_allocations and CAP_WORKS):
            return
        data = data_size()
        if data is None:
            return
        growth = max(self.limit - usage, 0) + self.headroom
        self.data_cap = set_cap(id(self), data + growth)
        self._cap_growth = growth

    def _watch(self) -> None:
        while True:
            try:
                if self._stop.wait(self.interval):
                    return
                usage = self._usage()
                if usage > self.limit:
                    with self._lock:
                        if self._done:
                            return
                        self.observed = max(usage, self.observed or 0)
                        # Again at every check while over: one raise can be swallowed.
                        _set_async_exc(self._thread_id, self._exc_type)
            except MemoryError:
                # At the data cap even the few bytes of a /proc read can be refused; a watcher
                # that died here would stop raising exactly when it matters.
                time.sleep(self.interval)

    def describe(self) -> str:
        """The budget's state in one line, as the exception message says it."""
        what = "RSS growth" if self.relative else "RSS"
        limit = format_size(self.limit)
        refused = (
            "an allocation was refused (MemoryError): RLIMIT_DATA let the block map "
            f"{format_size(self._cap_growth)} of new data"
        )
        if self.observed is None:
            if self._refused:
                return f"memory budget exceeded: {refused}, for its {what} limit of {limit}"
            return f"memory budget of {limit} ({what}) not exceeded"
        text = (
            f"memory budget exceeded: {what} reached {format_size(self.observed)}, over the "
            f"limit of {limit}"
        )
        return f"{text}; {refused}" if self._refused else text

    def _error(self) -> MemoryBudgetExceeded:
        return MemoryBudgetExceeded(self.describe(), limit=self.limit, observed=self.observed)

    def _close(self) -> BaseException | None:
        """Lift the cap and stop the watcher, whatever lands meanwhile; return what landed.

        An asynchronous exception (this budget's, an outer budget's, a signal's) can be delivered
        between any two bytecodes of the cleanup. It is caught and the cleanup resumed, so that
        no lowered limit and no raising watcher outlives the block; the caller decides what to
        raise. Every step can run twice.
        """
        landed: BaseException | None = None
        for _ in range(_CLOSE_ATTEMPTS):
            try:
                self._close_steps()
                return landed
            except BaseException as exc:
                if landed is None or isinstance(landed, self._exc_type):
                    landed = exc  # a foreign exception is kept over our own: it must go on
        self._close_steps()  # still failing: a real error, let it out
        return landed

    def _close_steps(self) -> None:
        drop_cap(id(self))  # first: what follows allocates, and the block may be at the cap
        with self._lock:
            self._done = True  # the watcher raises no more
        self._stop.set()
        if self._watcher.is_alive() and self._watcher is not threading.current_thread():
            self._watcher.join()
        # A raise the watcher made before it stopped may still be pending: let it land here,
        # where _close catches it, not after the block. Not cancelled with
        # PyThreadState_SetAsyncExc(id, NULL): CPython then leaves its eval breaker signalled,
        # and a later sys.settrace'd call spins forever (seen on 3.11).
        _deliver_pending()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        """Lift the cap, stop the watcher, and raise if the budget was ever exceeded."""
        landed = self._close()
        self._in_use = False
        if landed is not None and not isinstance(landed, self._exc_type):
            raise landed  # another budget's exception or a signal's, delivered during cleanup
        if exc is not None and not isinstance(exc, Exception):
            return False  # KeyboardInterrupt, SystemExit, GeneratorExit: never replaced
        if isinstance(exc, MemoryBudgetExceeded) and not isinstance(exc, self._exc_type):
            return False  # another budget's, or the block's own: not masked
        usage = self._usage()  # the last check: a block can end before the watcher looks
        if usage > self.limit:
            self.observed = max(usage, self.observed or 0)
        if isinstance(exc, MemoryError):
            if self.data_cap is None:
                return False  # not our refusal: a MemoryError is not masked
            self._refused = True
            raise self._error() from exc
        if self.observed is None:
            return False
        if exc is None or isinstance(exc, self._exc_type):
            raise self._error() from None
        # The block swallowed the budget's exception and then failed otherwise: the budget's
        # error goes on, with the block's as its cause.
        raise self._error() from exc


def _set_async_exc(thread_id: int, exc_type: type[BaseException]) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc_type)
    )


def _deliver_pending() -> None:
    """Run a few backward jumps: the interpreter checks for pending asynchronous exceptions
    there, so one raised into this thread earlier is delivered now."""
    for _ in range(64):
        pass


def memory_budget(
    limit: int | float | str,
    *,
    relative: bool = False,
    interval: float = 0.01,
    cap_allocations: bool = True,
) -> MemoryBudget:
    """Raise ``MemoryBudgetExceeded`` in this thread while process memory is over ``limit``.

    It is raised at every check (every ``interval``) while RSS is over the limit, again when the
    block ends if the limit was crossed at any time inside it, and in place of a ``MemoryError``
    from an allocation the data cap refused. See the module docstring for what it cannot catch.

    Args:
        limit: bytes or a size string (``"512 MB"``); must be positive.
        relative: compare the growth of RSS since entering the block instead of absolute RSS.
        interval: seconds between RSS checks.
        cap_allocations: also lower ``RLIMIT_DATA`` for the block (Linux ≥ 4.7), so that one
            allocation far over the budget fails at once instead of finishing first. The cap is
            process-wide; turn it off if other threads must never see ``MemoryError``.

    Returns:
        A context manager; the exception leaves the ``with`` block with the observed value.

    Raises:
        SizeError: ``limit`` is not a positive size (``0``, ``-1``, ``nan``, ``"1e300TB"``).
        ValueError: ``interval`` is not a positive number of seconds.

    Example:
        >>> with memory_budget("2 GB"):  # doctest: +SKIP
        ...     handle(request)
    """
    nbytes = parse_size(limit)
    if nbytes <= 0:
        raise SizeError(f"a memory budget must be positive, got {limit!r}")
    if (
        isinstance(interval, bool)
        or not isinstance(interval, int | float)
        or not math.isfinite(interval)
        or not 0 < interval <= threading.TIMEOUT_MAX
    ):
        raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
    return MemoryBudget(
        nbytes, relative=relative, interval=float(interval), cap_allocations=cap_allocations
    )
