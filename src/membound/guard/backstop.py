"""The Watchdog's backstop: the kernel refuses the allocation that would jump past ``hard``.

A watchdog thread reads memory every few milliseconds and acts on what it reads, so it cannot
stop one allocation that is already past the line: a 64 MiB block made at 240 MiB of a 300 MiB
cgroup is charged page by page within milliseconds, and the OOM killer ends the process before
the next reading. The backstop makes the kernel say no first. At every reading the watchdog sets
the process's soft ``RLIMIT_DATA`` (through :mod:`membound.bound.data_cap`, shared with
``memory_budget``) to its data size now plus the headroom left to ``hard``:

* one mapping that would take memory past ``hard`` fails inside ``malloc``/``mmap`` and Python
  raises ``MemoryError`` in the thread that asked, before any of that memory exists;
* while the watchdog is ``hard`` (memory got there by writing to pages mapped earlier), the cap
  no longer rises with new readings: only memory given back makes room again, beyond a little
  slack for the hard action itself.

Why at ``hard`` and not nearer the limit: the limit also counts page cache and the kernel's
memory for the process, and the program's own mapped files must stay resident; a cap halfway
from ``hard`` (85 %) to a 300 MiB limit let a ramp reach 277 MiB anonymous, and the OOM killer
still came in some runs on 3.13.

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

What it counts is mapped memory, not resident memory (see ``data_cap``). Memory mapped and
never touched is room the cap keeps giving once it has stayed untouched for ``_SETTLE_S``; and
a new thread's stack (8 MiB mapped, a few KiB used; 50 idle threads map 400 MiB) is let through
and counted as settled at once: while a backstop is in force, ``threading`` starts threads
through a wrapper that lifts the cap by one stack for the start. What it still refuses below
``hard``: one fresh mapping bigger than the headroom that would never be touched (a huge
``numpy.zeros`` or ``bytearray`` left unwritten), and many such mappings made within
``_SETTLE_S``. ``backstop=False`` is for programs that do that near their limit.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any

from membound.bound.data_cap import CAP_WORKS, data_and_anon, drop_cap, set_cap

__all__ = ["AVAILABLE", "Backstop"]

#: Whether a backstop can work here: Linux ≥ 4.7 holds mappings to RLIMIT_DATA; CPython, whose
#: ``PyExc_MemoryError`` the refusal notice relies on.
AVAILABLE = CAP_WORKS and platform.python_implementation() == "CPython"
#: While ``hard``, the cap still leaves this much (or a quarter of the room above ``hard``, if
#: less) for the hard action itself: logging, a callback, unwinding.
_HARD_SLACK = 4 << 20
#: Memory mapped but not yet touched counts as settled (a thread's stack, an array never
#: written) once it has been there this long; until then it is taken for memory about to be
#: filled (a 64 MiB block is mapped at once and then written page by page: a reading in the
#: middle must not count the rest as room). In buckets, so what is kept stays fixed.
_SETTLE_S = 0.5
_BUCKET_S = 0.05
#: The least room the cap leaves outside ``hard``: for the program to handle the
#: ``MemoryError`` (and CPython to make it) after a refusal close to ``hard``.
_RESERVE = 1 << 20
#: What a new thread maps for its own start-up, beyond its stack, allowed until the next reading.
_THREAD_START = 1 << 20
#: A refusal runs ``on_hard`` at most this often (a loop that retries after ``MemoryError``
#: would otherwise run it once per attempt).
_REFUSAL_EVERY_S = 1.0

_lock = threading.Lock()
_armed: set[Backstop] = set()


class Backstop:
    """The data cap one watchdog keeps in force while it runs.

    Args:
        hard: the watchdog's ``hard`` threshold, in bytes of judged usage.
        limit: the limit it judges against, in bytes.
        on_refusal: called (from any thread, quickly: it should only wake the watchdog) when an
            allocation failed while the cap was in force.
        on_uncaught: called in the thread whose ``MemoryError`` was not caught, before Python
            prints it and (in the main thread) exits: the hard action must run before that.
    """

    def __init__(
        self,
        hard: int,
        limit: int,
        on_refusal: Callable[[], None],
        on_uncaught: Callable[[], None],
    ) -> None:
        self.hard_bytes = hard
        self.limit_bytes = limit
        #: Judged usage past which one allocation is refused: ``hard``.
        self.point_bytes = hard
        self._slack = min(_HARD_SLACK, max(0, (limit - hard) // 4))
        self._on_refusal = on_refusal
        self._on_uncaught = on_uncaught
        #: The data size the cap allows now (None: no cap in force).
        self.cap_bytes: int | None = None
        #: Allocations that failed while the cap was in force.
        self.refusals = 0
        self._reported = 0
        self._last_report = -_REFUSAL_EVERY_S
        # (bucket number, least untouched mapped memory seen in it), newest last.
        self._untouched: deque[tuple[int, int]] = deque(maxlen=int(_SETTLE_S / _BUCKET_S) + 1)

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

    def sizes(self) -> tuple[int, int] | None:
        """This process's data size and anonymous resident memory now (before a reading)."""
        return data_and_anon() if self in _armed else None

    def update(self, judged: int, hard_state: bool, sizes: tuple[int, int] | None) -> None:
        """Re-set the cap after a reading: data size now plus the headroom to ``hard``, less
        what was mapped lately and not yet touched, and at least ``_RESERVE`` (while ``hard``:
        a little slack, and never more than the cap already allows)."""
        if self not in _armed or sizes is None:
            return
        data, anon = sizes
        room = self.point_bytes - judged - self._unsettled(max(0, data - anon))
        cap = data + max(room, _RESERVE)
        if hard_state:
            cap = data + self._slack
            if self.cap_bytes is not None:
                cap = min(cap, self.cap_bytes)  # no new room while hard: only memory given back
        self.cap_bytes = set_cap(id(self), cap)

    def _unsettled(self, untouched: int) -> int:
        """How much of the mapped-but-untouched memory is new (above its least in the last
        ``_SETTLE_S``): it may be written any moment, so it is no room for more."""
        bucket = int(time.monotonic() / _BUCKET_S)
        window = self._untouched
        oldest = bucket - (window.maxlen or 1) + 1
        while window and window[0][0] < oldest:
            window.popleft()
        if window and window[-1][0] == bucket:
            window[-1] = (bucket, min(window[-1][1], untouched))
        else:
            window.append((bucket, untouched))
        return untouched - min(least for _, least in window)

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
        cap moved, for :meth:`lift` to take back."""
        sizes = data_and_anon()
        if self.cap_bytes is None or sizes is None:
            return 0
        raised = max(0, sizes[0] + need - self.cap_bytes)
        self.lift(raised)
        return raised

    def mapped_untouched(self, added: int) -> None:
        """``added`` bytes were mapped that stay untouched (a thread's stack): count them as
        settled, so that the next reading leaves them out of the room."""
        self._untouched = deque(
            ((bucket, least + added) for bucket, least in self._untouched),
            maxlen=self._untouched.maxlen,
        )


def _load_unwinder() -> None:
    """Load ``libgcc_s`` now. glibc loads it on a thread's first ``pthread_exit`` (CPython 3.12
    ends every thread with one), and its writable segments count in the data size: at the cap,
    that load failed and glibc aborted the process ("libgcc_s.so.1 must be installed for
    pthread_exit to work") right after a refusal. Loaded once, later loads map nothing."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libgcc_s.so.1")


def _notify_refusal() -> None:
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
    raised = [backstop.lift_for(stack + _THREAD_START) for backstop in backstops]
    settled = threading.Event()

    def settle() -> None:
        if settled.is_set():
            return
        settled.set()
        after = data_and_anon()
        added = stack if before is None or after is None else max(0, after[0] - before[0])
        added = min(added, stack)
        for backstop, lifted in zip(backstops, raised, strict=True):
            backstop.mapped_untouched(added)
            backstop.lift(added - lifted)

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
