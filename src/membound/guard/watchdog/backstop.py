"""The Watchdog's backstop: the kernel refuses the allocation the OOM killer would have ended.

A watchdog thread reads memory every few milliseconds and acts on what it reads, so it cannot
stop one allocation that is already past the line: a 64 MiB block made at 240 MiB of a 300 MiB
cgroup is charged page by page within milliseconds, and the OOM killer ends the process before
the next reading. The backstop makes the kernel say no first. At every reading the watchdog sets
the process's soft ``RLIMIT_DATA`` (through :mod:`membound._data_cap`, shared with
``memory_budget``) to its data size now plus what the kernel still has room for: one mapping
that would take the group past its limit fails inside ``malloc``/``mmap`` and Python raises
``MemoryError`` in the thread that asked, before any of that memory exists.

**Its line is the kernel's, not ``hard``.** Crossing ``hard`` is the watchdog's job (a reading,
then ``on_hard``); the backstop refuses only what the OOM killer would have ended: an
allocation that would take the memory the kernel counts past the limit it enforces (less a
reserve of ``limit / 64``, at least 4 MiB, for the kernel's own pages and the program's
handling of the error). What the kernel has left is read at every reading: for a cgroup limit,
the limit less the group's usage that reclaim cannot take back — every process of the group,
shared memory included, page cache that can be dropped left out; for the machine's RAM,
``MemAvailable``. Less, too, what the group's other processes have mapped and not yet
written (read from outside at each reading, ``group_room.py``): the kernel counts their next
writes only once they are made. Where several processes of the group share the room
(``Watchdog(share_room=True)``; Celery's children under ``recycle_children``), each cap grants
its share of that room, and one refused under its share takes a turn at the whole of
it (``turns.py``): a refusal under the share is not the hard action, the work runs once more on
its turn (the middleware's and Celery's retries wait for it). A program that peaks under the
limit is never refused (a numpy job that ends at 271 of 300 MiB runs to its end with ``hard``
at 255 MiB). Where the tightest limit is an
rlimit there is nothing to add (the kernel fails that allocation by itself), and a cgroup v2
``memory.high`` throttles rather than kills: no backstop then.

A refusal becomes the hard action: the watchdog runs ``on_hard`` for it (an event with
``cause="backstop"``), whether or not the program catches the ``MemoryError``. How it sees a
``MemoryError`` that the program catches:

* 3.12 and later: a ``sys.monitoring`` RAISE callback (a free tool id), which runs only when an
  exception is raised and looks at nothing but its type;
* 3.10 and 3.11 have no such hook, but there every allocation failure raises the type that the
  C variable ``PyExc_MemoryError`` points to. While a backstop is in force it points to a
  subclass of ``MemoryError`` whose ``__new__`` tells the watchdogs and then makes an ordinary
  instance of a second subclass (named ``MemoryError``, in ``builtins``, pickled as
  ``MemoryError``): every ``except MemoryError`` and C-level ``PyErr_ExceptionMatches`` still
  matches it, and CPython's ``MemoryError`` free list never holds an object of either subclass.
  (3.12 builds the error from that free list directly, hence monitoring there.)

A ``MemoryError`` raised by other means (numpy's ``_ArrayMemoryError``) is seen by monitoring,
or, before 3.12, when it leaves a thread uncaught (``sys.excepthook``/``threading.excepthook``,
which also run ``on_hard`` at once, before the process exits).

What the cap counts is mapped memory, not written memory (see ``_data_cap``). A library maps
buffers it may never write (numpy's import maps 80 MiB, its BLAS threads' stacks and buffers):
between two readings such a mapping takes room from the cap that the kernel still has, so one
allocation made right after it that needs nearly all the room left can be refused although it
would fit (import such libraries before the watchdog starts; the next reading, at most
``interval`` later, counts them, and after ``SETTLE_S`` they are settled room). The other
way round would let a fast ramp's next piece through to the OOM killer.

 Memory mapped and
never touched is room the cap keeps giving once it has stayed untouched for ``SETTLE_S``; and
a new thread's stack (8 MiB mapped, a few KiB used; 50 idle threads map 400 MiB) is let through
and counted as settled at once: while a backstop is in force, ``threading`` starts threads
through a wrapper that lifts the cap by one stack for the start. What it still refuses below
the limit: one fresh mapping bigger than the room left that would never be touched (a huge
``numpy.zeros`` left unwritten), and many such mappings made within ``SETTLE_S``.
``backstop=False`` is for programs that do that near their limit.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from membound._data_cap import CAP_WORKS, data_and_anon, drop_cap, set_cap
from membound.guard.limit import Limit
from membound.guard.watchdog.group_room import GroupRoom, Unsettled
from membound.guard.watchdog.turns import RoomTurns
from membound.measure.cgroup.memory import KeptFiles, Usage, ram_available

__all__ = ["AVAILABLE", "KERNEL_KINDS", "THREAD_START", "Backstop", "refused_so_far"]

#: Whether a backstop can work here: Linux ≥ 4.7 holds mappings to RLIMIT_DATA; CPython, whose
#: ``PyExc_MemoryError`` the refusal notice relies on.
AVAILABLE = CAP_WORKS and platform.python_implementation() == "CPython"
#: Limits the OOM killer enforces: the backstop's line (an rlimit refuses by itself; a cgroup
#: v2 ``memory.high`` throttles).
KERNEL_KINDS = frozenset({"cgroup-v1", "cgroup-v2-max", "ram"})
#: The kernel's line is the limit less this share of it (at least ``_LEAST_RESERVE``): its own
#: pages for the group (page tables, kernel stacks) and room to handle the error.
_RESERVE_SHARE = 64
_LEAST_RESERVE = 4 << 20
#: The least room the cap leaves outside ``hard``: for the program to handle the
#: ``MemoryError`` (and CPython to make it) after a refusal close to ``hard``.
_RESERVE = 1 << 20
#: What a new thread maps for its own start-up, beyond its stack (a malloc arena, the
#: interpreter's first frames), allowed until the next reading.
THREAD_START = 1 << 20
#: A refusal runs ``on_hard`` at most this often (a loop that retries after ``MemoryError``
#: would otherwise run it once per attempt).
_REFUSAL_EVERY_S = 1.0

_lock = threading.Lock()
_armed: set[Backstop] = set()


class Backstop:
    """The data cap one watchdog keeps in force while it runs.

    Args:
        kernel: the limit the OOM killer enforces for this process (a cgroup's, or the
            machine's RAM): see :data:`KERNEL_KINDS`.
        on_refusal: called (from any thread, quickly: it should only wake the watchdog) when an
            allocation failed while the cap was in force.
        on_uncaught: called in the thread whose ``MemoryError`` was not caught, before Python
            prints it and (in the main thread) exits: the hard action must run before that.
        share_room: share the group's room with its other guarded processes that share it
            too, and take turns at all of it (``turns.py``).
    """

    def __init__(
        self,
        kernel: Limit,
        on_refusal: Callable[[], None],
        on_uncaught: Callable[[], None],
        *,
        share_room: bool = False,
    ) -> None:
        self.kernel = kernel
        self.reserve_bytes = max(_LEAST_RESERVE, kernel.bytes // _RESERVE_SHARE)
        #: The kernel's usage past which one allocation is refused, at the last reading: its
        #: limit less the reserve (for RAM: what ``MemAvailable`` left, less the reserve).
        self.point_bytes = kernel.bytes - self.reserve_bytes
        self._on_refusal = on_refusal
        self._on_uncaught = on_uncaught
        self._files = KeptFiles(2)
        #: The data size the cap allows now (None: no cap in force).
        self.cap_bytes: int | None = None
        #: Allocations that failed while the cap was in force.
        self.refusals = 0
        self._reported = 0
        self._last_report = -_REFUSAL_EVERY_S
        self._untouched = Unsettled()
        #: The other processes of the limit's group, read from outside (``group_room.py``).
        self.group = GroupRoom(kernel.group)
        #: Of the room at the last reading, what the others had mapped and not yet written.
        self.others_bytes = 0
        #: The share of the room among the group's guarded processes (``turns.py``; None: no
        #: group to share, as for the machine's RAM).
        self.turns = (
            RoomTurns(kernel.group.path) if share_room and kernel.group is not None else None
        )
        #: Readings that re-set the cap so far (a thread's start tells by it whether its lift
        #: is still in the cap).
        self.renewals = 0
        #: What thread starts under way may still map (their stacks and start-up): a reading
        #: that measured the data size before a stack was mapped must leave room for it.
        self._starting = 0
        self._starting_lock = threading.Lock()

    def room(self, usage: Usage | None) -> tuple[int, int] | None:
        """What the kernel counts now and how much more it allows before its line: ``usage``
        when it is the kernel limit's own reading, else read here; None when unreadable."""
        if self.kernel.kind == "ram":
            available = ram_available(self._files.read)
            if available is None:
                return None
            counted = max(0, self.kernel.bytes - available)
            self.point_bytes = self.kernel.bytes - self.reserve_bytes
            return counted, available - self.reserve_bytes
        if usage is None:
            usage = self.kernel.usage()
            if usage is None:
                return None
        return usage.judged, self.point_bytes - usage.judged

    def arm(self) -> bool:
        """Start keeping the cap (the first :meth:`update` puts it in force); False where no
        backstop works."""
        if not AVAILABLE:
            return False
        _load_unwinder()
        with _lock:
            if not _armed:
                _take_over_memory_errors()
            _armed.add(self)
        return True

    def disarm(self) -> None:
        """Take the cap away and stop listening for refusals."""
        with _lock:
            if self in _armed:
                _armed.discard(self)
                if not _armed:
                    _give_back_memory_errors()
        drop_cap(id(self))
        self.cap_bytes = None
        self.group.close()
        if self.turns is not None:
            self.turns.leave()

    def sizes(self) -> tuple[int, int] | None:
        """This process's data size and anonymous resident memory now (before a reading)."""
        return data_and_anon() if self in _armed else None

    def update(
        self,
        room: tuple[int, int] | None,
        sizes: tuple[int, int] | None,
        others_read: bool = True,
        *,
        steady: bool = True,
    ) -> None:
        """Re-set the cap after a reading: data size now plus the room the kernel has left
        (:meth:`room`), less what was mapped lately and not yet touched here and in the other
        guarded processes of the limit (``group_room.py``; with ``others_read`` False, what
        they had at the last reading), and at least ``_RESERVE`` (room for the program to
        handle the error).

        ``steady`` False is a reading whose sizes moved while the usage was read (a crossing
        of ``hard``, taken fast and not read again, or sizes that never held still,
        ``core.py``): its sizes come from before the usage, and what the program wrote between
        the two is in the usage but not in the data size. That takes the program's own writes
        from the room once more, and on a loaded machine (the reading thread off the CPU while
        the program wrote three 7.6 MiB steps) the cap fell below what the data already was:
        a program that peaked at 271 of 300 MiB was refused at 252 and at 267.5. So such a
        reading never lowers the cap the last steady reading set (which counts this process's
        growth since in its data size); the next steady one re-sets it either way."""
        if self not in _armed or sizes is None or room is None:
            return
        data, anon = sizes
        unsettled = self._untouched.add(data, anon)
        if others_read:
            self.others_bytes = self.group.others()
        left = room[1] - unsettled - self.others_bytes
        if self.turns is not None:
            left = self.turns.plan(left, data, self.group.pids, unsettled)
            self.turns.post(rising_only=True)  # a grant that rises is said before it holds
        cap = data + max(left, _RESERVE) + self._starting
        if not steady and self.turns is None and self.cap_bytes is not None:
            cap = max(cap, self.cap_bytes)
        self.cap_bytes = set_cap(id(self), cap)
        if self.turns is not None:
            self.turns.post()  # one that falls once the cap holds it: a process giving way is
            # below its small share before it says so
        self.renewals += 1

    def take_refusals(self, now_or_never: bool = False) -> int:
        """Refusals not yet reported, if it is time to report them (0 otherwise; with
        ``now_or_never``, whenever there are any)."""
        new = self.refusals - self._reported
        now = time.monotonic()
        if new <= 0 or (now - self._last_report < _REFUSAL_EVERY_S and not now_or_never):
            return 0
        self._reported = self.refusals
        self._last_report = now
        return new

    def _refused(self) -> None:
        try:
            turn = self.turns is not None and self.turns.ask()
        except Exception:  # inside a MemoryError's making: never another error; the hard path
            turn = False
        if turn:
            # Refused under its share of the group's room: a turn, not the kernel's line (the
            # work runs again once the others gave way); the reading is woken to take it.
            with contextlib.suppress(Exception):
                self._on_refusal()
            return
        self.refusals += 1
        with contextlib.suppress(Exception):  # a notice must never turn into another error
            self._on_refusal()

    def lift(self, extra: int) -> None:
        """Move the cap by ``extra`` bytes (negative: down)."""
        if self.cap_bytes is not None:
            self.cap_bytes = set_cap(id(self), self.cap_bytes + extra)

    def lift_for(self, need: int) -> int:
        """Let ``need`` bytes be mapped now beyond the data size, even at or past ``hard`` (a
        thread is starting: its stack and start-up touch next to nothing); returns how far the
        cap moved, for :meth:`lift` to take back. Until :meth:`thread_started`, every reading
        leaves ``need`` beyond its room too (it may have measured before the stack was
        mapped)."""
        sizes = data_and_anon()
        with self._starting_lock:
            self._starting += need
        if self.cap_bytes is None or sizes is None:
            return 0
        raised = max(0, sizes[0] + need - self.cap_bytes)
        self.lift(raised)
        return raised

    def mapped_untouched(self, added: int) -> None:
        """``added`` bytes were mapped that stay untouched (a thread's stack): count them as
        settled, so that the next reading leaves them out of the room."""
        self._untouched.settled(added)

    def thread_started(
        self, added: int, lifted: int, renewals: int, data: int | None, need: int = 0
    ) -> None:
        """A thread whose start :meth:`lift_for` let through (``lifted`` bytes, when the cap
        had been re-set ``renewals`` times) runs: its stack mapped ``added`` bytes that stay
        untouched, and the data size is ``data`` now (None: unknown).

        The cap keeps the stack (settled room) and gives back the rest of the lift, unless a
        reading re-set it since: that reading counted what the start mapped, and taking the
        lift back from its cap would put the cap below the data size. Either way the thread
        keeps :data:`THREAD_START` beyond the data size until the next reading, for its
        start-up, which fails at the cap and leaves ``Thread.start()`` waiting for ever.
        ``need``: what :meth:`lift_for` was asked for this start (no longer under way)."""
        with self._starting_lock:
            self._starting = max(0, self._starting - need)
        self.mapped_untouched(added)
        if self.cap_bytes is None:
            return
        if renewals == self.renewals:
            self.lift(added - lifted)
        if data is not None and self.cap_bytes is not None and self.cap_bytes < data + THREAD_START:
            self.cap_bytes = set_cap(id(self), data + THREAD_START)


def _load_unwinder() -> None:
    """Load ``libgcc_s`` now. glibc loads it on a thread's first ``pthread_exit`` (CPython 3.12
    ends every thread with one), and its writable segments count in the data size: at the cap,
    that load failed and glibc aborted the process ("libgcc_s.so.1 must be installed for
    pthread_exit to work") right after a refusal. Loaded once, later loads map nothing."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libgcc_s.so.1")


#: Allocations refused while a backstop was in force, in this process, so far (the health
#: middlewares tell by it whether an error answer followed a refusal).
_refused_so_far = [0]


def refused_so_far() -> int:
    """How many allocations a backstop has refused in this process so far (a turn asked for or
    the kernel's line; every ``MemoryError`` made while a backstop is in force)."""
    return _refused_so_far[0]


def _notify_refusal() -> None:
    _refused_so_far[0] += 1
    for backstop in list(_armed):
        if backstop.cap_bytes is not None:
            backstop._refused()


def _uncaught(value: BaseException) -> None:
    """A ``MemoryError`` left a thread uncaught: have the watchdogs run their hard action now."""
    if not isinstance(value, MemoryError):
        return
    if not isinstance(value, _RefusedMemoryError):
        _notify_refusal()  # raised by other means (numpy's own MemoryError): not counted yet
    for backstop in list(_armed):
        if backstop.cap_bytes is not None:
            with contextlib.suppress(Exception):
                backstop._on_uncaught()


# --- seeing MemoryError -------------------------------------------------------------------------


class _MemoryErrorNotice(MemoryError):
    """The type ``PyExc_MemoryError`` names while a backstop is in force (3.10/3.11): making
    one tells the watchdogs and returns a :class:`_RefusedMemoryError`."""

    def __new__(cls, *args: object) -> Any:
        if cls is not _MemoryErrorNotice:
            return MemoryError.__new__(cls, *args)
        _notify_refusal()
        return MemoryError.__new__(_RefusedMemoryError, *args)


class _RefusedMemoryError(_MemoryErrorNotice):
    """What a ``MemoryError`` raised while a backstop is in force is an instance of (see the
    module docstring): an instance of the type raised, so that CPython's normalisation keeps
    it; shown and pickled as a plain ``MemoryError``."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (MemoryError, self.args)


for _kind in (_MemoryErrorNotice, _RefusedMemoryError):
    _kind.__name__ = _kind.__qualname__ = "MemoryError"
    _kind.__module__ = "builtins"

_saved_hooks: list[Any] = []
#: ``threading``'s function that starts a thread (3.13 renamed it), and what it was before ours.
_START_NAME = (
    "_start_joinable_thread"
    if hasattr(threading, "_start_joinable_thread")
    else "_start_new_thread"
)
_saved_start: list[Callable[..., Any]] = []


def _stack_bytes() -> int:
    """What a new thread maps for its stack: ``threading.stack_size()``, else the soft stack
    limit glibc uses (8 MiB by default), plus its guard page."""
    size = threading.stack_size()
    if not size:
        try:
            import resource

            soft = resource.getrlimit(resource.RLIMIT_STACK)[0]
            size = soft if 0 < soft < 1 << 30 else 8 << 20
        except (ImportError, OSError, ValueError):
            size = 8 << 20
    return size + (64 << 10)


def _start_thread(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``threading``'s start function while a backstop is in force: the cap is lifted by one
    stack and the new thread's own start-up (a malloc arena, the interpreter's frame stack)
    until the thread runs Python code; the stack then counts as settled untouched memory. A
    thread whose start-up failed at the cap left ``Thread.start()`` waiting for ever."""
    start = _saved_start[0] if _saved_start else getattr(threading, _START_NAME)
    backstops = [b for b in list(_armed) if b.cap_bytes is not None]
    if not backstops:
        return start(function, *args, **kwargs)
    stack = _stack_bytes()
    before = data_and_anon()
    renewals = [backstop.renewals for backstop in backstops]
    need = stack + THREAD_START
    raised = [backstop.lift_for(need) for backstop in backstops]
    settled = threading.Event()

    def settle() -> None:
        if settled.is_set():
            return
        settled.set()
        after = data_and_anon()
        added = stack if before is None or after is None else max(0, after[0] - before[0])
        added = min(added, stack)
        data = None if after is None else after[0]
        for backstop, lifted, then in zip(backstops, raised, renewals, strict=True):
            backstop.thread_started(added, lifted, then, data, need)

    def run(*inner: Any, **named: Any) -> Any:
        # Reading the mappings can raise MemoryError at the cap: the accounting is then lost
        # (the lift stays: the cap is one stack higher), but the thread must start, since
        # Thread.start() waits for it and would wait for ever.
        with contextlib.suppress(Exception):
            settle()
        return function(*inner, **named)

    try:
        return start(run, *args, **kwargs)
    except BaseException:
        settle()
        raise


def _exc_pointer() -> ctypes.c_void_p:
    return ctypes.c_void_p.in_dll(ctypes.pythonapi, "PyExc_MemoryError")


def _on_raise(code: object, offset: int, exception: BaseException) -> None:
    """``sys.monitoring``'s RAISE callback (3.12+): a ``MemoryError`` raised while a backstop
    is in force is a refusal (checked before anything else: it runs for every exception)."""
    if isinstance(exception, MemoryError):
        _notify_refusal()


def _monitoring_tool() -> int | None:
    """A free ``sys.monitoring`` tool id, taken for membound; None before 3.12 or if all are
    taken (debuggers, coverage and profilers use 0–2 and 5)."""
    monitoring = getattr(sys, "monitoring", None)
    if monitoring is None:
        return None
    for tool in (4, 3):
        if monitoring.get_tool(tool) is None:
            monitoring.use_tool_id(tool, "membound backstop")
            monitoring.register_callback(tool, monitoring.events.RAISE, _on_raise)
            monitoring.set_events(tool, monitoring.events.RAISE)
            return tool
    return None


_tool: list[int] = []


def _take_over_memory_errors() -> None:
    tool = _monitoring_tool()
    if tool is not None:
        # 3.12 and later make MemoryError from a free list of the built-in type directly:
        # ``PyExc_MemoryError`` is no longer consulted, but every raise reaches monitoring.
        _tool[:] = [tool]
    else:
        _exc_pointer().value = id(_MemoryErrorNotice)
    previous_sys, previous_threading = sys.excepthook, threading.excepthook

    def sys_hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> Any:
        _uncaught(value)
        return previous_sys(kind, value, tb)

    def threading_hook(args: Any) -> Any:
        _uncaught(args.exc_value)
        return previous_threading(args)

    sys.excepthook = sys_hook
    threading.excepthook = threading_hook
    _saved_hooks[:] = [previous_sys, previous_threading, sys_hook, threading_hook]
    _saved_start[:] = [getattr(threading, _START_NAME)]
    setattr(threading, _START_NAME, _start_thread)


def _give_back_memory_errors() -> None:
    if _tool:
        monitoring = sys.monitoring  # type: ignore[attr-defined,unused-ignore]
        monitoring.set_events(_tool[0], 0)
        monitoring.register_callback(_tool[0], monitoring.events.RAISE, None)
        monitoring.free_tool_id(_tool[0])
        _tool.clear()
    else:
        _exc_pointer().value = id(MemoryError)
    if _saved_hooks:
        previous_sys, previous_threading, sys_hook, threading_hook = _saved_hooks
        # Put the old hooks back only where nobody replaced ours meanwhile.
        if sys.excepthook is sys_hook:
            sys.excepthook = previous_sys
        if threading.excepthook is threading_hook:
            threading.excepthook = previous_threading
        _saved_hooks.clear()
    if _saved_start:
        if getattr(threading, _START_NAME) is _start_thread:
            setattr(threading, _START_NAME, _saved_start[0])
        _saved_start.clear()


def _after_fork_in_child() -> None:
    """A forked child keeps the parent's memory-error type until its own watchdog stops; its
    caps were dropped by ``data_cap``; its backstops belong to the parent's watchdogs."""
    global _lock
    _lock = threading.Lock()
    for backstop in list(_armed):
        backstop.cap_bytes = None
    if _armed:
        _armed.clear()
        _give_back_memory_errors()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
