"""``Watchdog``: act before the OOM killer does, and see a leak coming.

The watchdog reads the memory that the process's tightest limit counts (``memory_limit()``, or
the ``limit`` given) and steps through three states with hysteresis:

* ``ok`` → ``soft`` at ``soft`` bytes; ``ok``/``soft`` → ``hard`` at ``hard``;
* ``hard`` → ``soft`` below ``hard - (soft - recover)``; ``soft``/``hard`` → ``ok`` below
  ``recover`` (default: ``soft`` less a tenth of the limit, or half of ``soft`` if that is less).

So memory hovering around one threshold does not flap between states (Dask pauses and resumes
workers on one threshold). It judges *current* memory, never the peak (``ru_maxrss``): Celery
compares the peak after each task, and a worker born near its limit then runs one task each.

How it wakes: on kernel events where they exist (``kernel_events.py``: cgroup v1 usage thresholds,
cgroup v2 ``memory.events`` and PSI), and every ``interval`` seconds in any case (faster near the
thresholds while memory rises: ``pace.py``). Its thread sleeps in ``poll()`` (no GIL held)
between readings; a reading is two small file reads. Where it holds, the kernel also refuses
the one allocation that the OOM killer would have ended (the backstop, ``backstop.py``).

Callbacks: ``on_soft``, ``on_hard``, ``on_recover`` (back to ``ok``) and ``on_leak`` get a
:class:`WatchdogEvent`. ``on_hard`` runs first, in the watchdog's own thread, the moment a
reading crosses ``hard`` (or the backstop refuses an allocation): nothing waits in front of it —
no soft action still running, no log line, no hand-over to another thread — so it should be
quick (set a flag, raise in a thread, signal a process). The other callbacks, and the log
lines, run in a second thread, in order, so a slow one never delays the next reading (the
ready-made actions of ``membound.guard.actions`` given as ``on_soft`` run at once too). A
callback that raises is logged and counted, never propagated. At most ``_QUEUE`` callbacks
wait; more are dropped and counted (a callback slower than memory moves must not grow a queue
without end).

Leaks: every reading also feeds a :class:`~.trend.LeakTrend` over ``leak_window``;
``on_leak`` fires once when the floor of memory has kept rising (and again only after the trend
has stopped being a leak). Everything the watchdog keeps is bounded: the trend's slices, the last
``_TRANSITIONS`` transitions, counters.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import select
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from membound._errors import SizeError
from membound._units import format_size, parse_duration, parse_size
from membound.guard.limit import Limit, given_limit, memory_limit
from membound.guard.watchdog import instances
from membound.guard.watchdog.actions import free_memory, refusing, stop_refusing
from membound.guard.watchdog.backstop import AVAILABLE, KERNEL_KINDS, Backstop
from membound.guard.watchdog.event import State, WatchdogEvent
from membound.guard.watchdog.eventlog import log_event, stamp
from membound.guard.watchdog.instances import current
from membound.guard.watchdog.kernel_events import REARM_BYTES, EventSource, arm_points, open_events
from membound.guard.watchdog.pace import Pace, forget_after_fork, prefer_this_thread
from membound.guard.watchdog.refusal import may_take_work
from membound.guard.watchdog.trend import LeakTrend, TrendVerdict
from membound.measure.cgroup.memory import Usage, process_usage

__all__ = ["State", "Watchdog", "WatchdogEvent", "current"]

Callback = Callable[["WatchdogEvent"], object]

_log = logging.getLogger("membound.guard")
#: Transitions kept for health() and the CLI.
_TRANSITIONS = 10
#: A reading's look at this process's sizes counts as one with the usage's when neither size
#: moved more than this around it (a little allocation is always under way somewhere), and
#: is taken again at most this many times (``Watchdog._one_reading``).
_STEADY_BYTES = 1 << 20
_STEADY_TRIES = 3
#: Callbacks that may wait for the callback thread.
_QUEUE = 32
#: The longest poll interval taken (an hour: a watchdog that looks less often is none).
_MAX_INTERVAL = 3600.0
#: How long a thread whose ``MemoryError`` (a backstop refusal) goes uncaught waits for the
#: ``on_hard`` the watchdog already queued for it.
_UNCAUGHT_WAIT_S = 2.0
#: Marks "use the default action" for ``on_soft``.
DEFAULT: Any = object()

#: Every watchdog alive, weakly: a forked child must forget their threads.
_all_dogs: weakref.WeakSet[Watchdog] = weakref.WeakSet()


def _log_event(event: WatchdogEvent) -> None:
    """The line an event is logged with (in the callback thread: a hard action never waits for
    a log handler), once per service for the group's memory (``eventlog.py``)."""
    log_event(event)


def _after_fork_in_child() -> None:
    """A forked child (gunicorn ``preload_app``, ``multiprocessing`` with ``fork``) has none of
    its parent's threads: every watchdog it inherited is stopped there, the GIL switch
    interval is given back, and nothing is "current" until the child starts its own."""
    for dog in list(_all_dogs):
        dog._forget_threads()
    forget_after_fork()
    instances.forget_all()


def _threshold(value: int | str, limit: int, name: str) -> int:
    """``"80%"`` of ``limit``, or a size; a usage error names ``name`` when it is neither."""
    if isinstance(value, str) and value.strip().endswith("%"):
        text = value.strip()[:-1].strip()
        try:
            pct = float(text)
        except ValueError:
            pct = float("nan")
        if not 0 < pct <= 100:
            raise SizeError(
                f"{name}={value!r} is no percentage of the limit: expected 0 < p <= 100"
            )
        return int(limit * pct / 100)
    if isinstance(value, float) and not isinstance(value, bool):
        raise SizeError(
            f"{name}={value!r}: give bytes as a whole number, a size ('1.5 GB') or a percentage "
            "of the limit ('80%')"
        )
    n = parse_size(value)
    if n <= 0:
        raise SizeError(f"{name}={value!r} must be more than 0 bytes")
    return n


class Watchdog:
    """Watch this process's memory against its limit and act at two thresholds.

    Args:
        soft: the first threshold: a size (``"1.5 GB"``, bytes) or a percentage of the limit.
            Default: 80 % of the limit, or ⁸⁄₉ of ``hard`` when ``hard`` is not above that
            (the same ratio as the defaults, so a low ``hard`` alone is enough).
        hard: the second threshold (above ``soft``, at most the limit).
        recover: below this the state is ``ok`` again (below ``soft``; default ``soft`` less a
            tenth of the limit, or half of ``soft`` if that is less).
        limit: the limit to judge against: a size, a :class:`~membound.guard.limit.Limit`, or None
            for :func:`~membound.guard.limit.memory_limit` (the tightest that applies).
        interval: seconds between readings when no kernel event comes (0.001 to 3600).
        on_soft: called when ``soft`` is crossed; default ``actions.free_memory``
            (``gc.collect()``, clear pools and caches, ``release_memory()``); None for nothing.
        on_hard: called when ``hard`` is crossed, at once in the watchdog's thread (see
            ``membound.guard.actions``; keep it quick); default none.
        on_recover: called when memory is back under ``recover``.
        on_leak: called once when the leak trend raises an alarm.
        leak_window: the window the leak trend is judged over (``"30 min"``, seconds).
        pid: watch another process instead of this one (actions that raise in threads then do
            not apply).
        events: wait on kernel memory events where they exist (False: poll only).
        switch_interval: the GIL switch interval while the watchdog runs (None: leave it), so
            that its thread gets the GIL within that time of an event even while the
            application's threads are busy (CPython's default is 5 ms).
        backstop: while the watchdog runs, have the kernel refuse the one allocation that the
            OOM killer would otherwise have ended (a soft ``RLIMIT_DATA`` re-set at every
            reading to what the kernel still has room for; see
            ``membound.guard.watchdog.backstop``): it fails with ``MemoryError`` in the thread
            that asked and ``on_hard`` runs for it, instead of an OOM kill. Its line is the
            kernel's limit (less a small reserve), not ``hard``: a program that peaks under the
            limit is never refused. None (the default): on wherever it holds — Linux, CPython,
            this process (not ``pid``), a limit the OOM killer enforces (a cgroup's, or RAM);
            False: off (a program that maps much more than it touches near its limit).
        share_room: the backstop shares its group's room with the group's other guarded
            processes that share it too, and an allocation bigger than the share waits for a
            turn (``membound.guard.watchdog.turns``): two of them mapping big blocks in the
            same instant no longer both pass to the OOM killer, but work refused under its
            share must be run again for it to succeed (the health middlewares run a GET
            again, Celery's children under ``recycle_children`` a task; a server's own code,
            an event loop's read, cannot). Off by default: a gunicorn sync worker serves one
            request at a time and needs none. On for Celery's children, and in the guide's
            recipe for ``uvicorn --workers``, whose workers have many requests in flight
            (docs/guides/service-leaks.md: 4 OOM kills in 6 stress rounds without, none in 9
            with).
        clock: the clock for the leak trend (tests pass their own).

    Raises:
        SizeError: a threshold, interval or window that makes no sense (``recover >= soft``,
            ``soft >= hard``, ``hard`` above the limit, a percentage outside 0–100 %).
    """

    def __init__(
        self,
        soft: int | str | None = None,
        hard: int | str = "90%",
        recover: int | str | None = None,
        limit: Limit | int | str | None = None,
        interval: float = 0.1,
        on_soft: Callback | None = DEFAULT,
        on_hard: Callback | None = None,
        on_recover: Callback | None = None,
        on_leak: Callback | None = None,
        leak_window: float | str = "30 min",
        *,
        pid: int | None = None,
        events: bool = True,
        switch_interval: float | None = 0.0005,
        backstop: bool | None = None,
        share_room: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(limit, Limit):
            self.limit = limit
        elif limit is None:
            self.limit = memory_limit(pid)
        else:
            self.limit = given_limit(limit, pid)
        top = self.limit.bytes
        self.hard_bytes = _threshold(hard, top, "hard")
        if soft is None:  # 80 % as documented, and 8/9 of a hard below the default 90 %
            soft = "80%"
            self.soft_bytes = _threshold(soft, top, "soft")
            if self.hard_bytes < _threshold("90%", top, "hard"):
                # (compared as truncated bytes: at hard 90 % the 8/9 of a truncated hard was a
                # byte under 80 %)
                self.soft_bytes = min(self.soft_bytes, self.hard_bytes * 8 // 9)
        else:
            self.soft_bytes = _threshold(soft, top, "soft")
        if self.hard_bytes > top:
            raise SizeError(
                f"hard={hard!r} ({format_size(self.hard_bytes)}) is above the limit "
                f"{self.limit.describe()}: the OOM killer would act first"
            )
        if self.soft_bytes >= self.hard_bytes:
            raise SizeError(
                f"soft={soft!r} ({format_size(self.soft_bytes)}) must be below hard={hard!r} "
                f"({format_size(self.hard_bytes)})"
            )
        if recover is None:
            self.recover_bytes = self.soft_bytes - min(top // 10, self.soft_bytes // 2)
        else:
            self.recover_bytes = _threshold(recover, top, "recover")
            if self.recover_bytes >= self.soft_bytes:
                raise SizeError(
                    f"recover={recover!r} ({format_size(self.recover_bytes)}) must be below "
                    f"soft={soft!r} ({format_size(self.soft_bytes)}), or the state never settles"
                )
        self.hard_recover_bytes = self.hard_bytes - (self.soft_bytes - self.recover_bytes)
        self._near_bytes = min(self.recover_bytes, self.soft_bytes // 2)
        if isinstance(interval, bool) or not isinstance(interval, int | float):
            raise SizeError(f"interval={interval!r} must be a number of seconds")
        if not 0.001 <= interval <= _MAX_INTERVAL:
            raise SizeError(f"interval={interval!r} must be from 0.001 to {_MAX_INTERVAL:g} s")
        self.interval = float(interval)
        self.leak_window_s = parse_duration(leak_window, name="leak_window")
        self.pid = pid
        self.on_soft: Callback | None = free_memory if on_soft is DEFAULT else on_soft
        self.on_hard, self.on_recover, self.on_leak = on_hard, on_recover, on_leak
        self._use_events = events
        if switch_interval is not None and (
            isinstance(switch_interval, bool)
            or not isinstance(switch_interval, int | float)
            or not 0 < switch_interval <= 1
        ):
            raise SizeError(f"switch_interval={switch_interval!r} must be a number from 0 to 1 s")
        self.switch_interval = switch_interval
        self._pace = Pace(self._near_bytes, self.interval, switch_interval if pid is None else None)
        if backstop is not None and not isinstance(backstop, bool):
            raise SizeError(f"backstop={backstop!r} must be True, False or None")
        if not isinstance(share_room, bool):
            raise SizeError(f"share_room={share_room!r} must be True or False")
        self.backstop: Backstop | None = None
        if backstop is not False and pid is None and AVAILABLE:
            kernel = self._kernel_limit()
            if kernel is not None:
                self.backstop = Backstop(
                    kernel, self._wake, self._refusal_uncaught, share_room=share_room
                )
        self._clock = clock
        self.trend = LeakTrend(self.leak_window_s)
        self.state: State = "ok"
        self.usage: Usage | None = None
        self.peak_bytes = 0
        self.readings = 0
        self.transitions: deque[dict[str, object]] = deque(maxlen=_TRANSITIONS)
        self.callback_runs = 0
        self.callback_errors = 0
        self.callbacks_dropped = 0
        self.gone = False
        self.events_kind = "not started"
        self._verdict: TrendVerdict | None = None
        self._leak_alarmed = False
        self._no_leak_since: float | None = None
        self._lock = threading.RLock()
        self._queue: queue.Queue[tuple[Callback, WatchdogEvent] | None] = queue.Queue(_QUEUE)
        self._threads: list[threading.Thread] = []
        self._wake_r = self._wake_w = -1
        self._armed_offset = 0
        self._refusal_runs_due = 0  # on_hard runs for refusals decided and not yet finished
        self._stopping = threading.Event()
        _all_dogs.add(self)

    # --- readings and decisions -------------------------------------------------------------

    def _forget_threads(self) -> None:
        """In a forked child: the threads are the parent's; the watchdog can be started again."""
        self._threads = []
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._wake_r = self._wake_w = -1

    def _kernel_limit(self) -> Limit | None:
        """The limit the OOM killer enforces for this process (the backstop's line): the one
        judged when it is such, else the tightest that applies; None when that is an rlimit
        (the kernel fails the allocation by itself) or a cgroup's ``memory.high``."""
        if self.limit.source != "given" and self.limit.kind in KERNEL_KINDS:
            return self.limit
        found = memory_limit()
        return found if found.kind in KERNEL_KINDS else None

    def _next_state(self, judged: int) -> State:
        if judged >= self.hard_bytes:
            return "hard"
        if self.state == "hard":
            if judged < self.recover_bytes:
                return "ok"
            return "soft" if judged < self.hard_recover_bytes else "hard"
        if self.state == "soft":
            return "ok" if judged < self.recover_bytes else "soft"
        return "soft" if judged >= self.soft_bytes else "ok"

    def _one_reading(
        self,
    ) -> tuple[Usage | None, tuple[int, int] | None, tuple[int, int] | None, bool, bool]:
        """The limit's usage, and for the backstop this process's sizes and the kernel's room,
        read as one reading; whether it crossed ``hard`` (then read no further); and whether
        the sizes held still across it (a cap from a reading that did not never lowers the
        last one: ``Backstop.update``).

        The sizes are read *before* the usage, so that what a write in progress adds to the
        usage meanwhile is counted as still to come, not as room (the other order let a 64 MiB
        block through 23 MiB short of hard). But what the program maps and writes between the
        two is then in the usage and still to come: taken from the room twice, and the cap set
        from it refused a program that peaked under its limit (this thread had lost the CPU
        there on a loaded machine while the program wrote 20 MiB). So the sizes are read again
        after the kernel's room, and all of it again (at most ``_STEADY_TRIES`` times) until
        neither size moved more than ``_STEADY_BYTES`` meanwhile; if they never hold still,
        the last reading is taken, and the cap it gives never falls below the one the last
        steady reading set (a ramp that never held still was refused at 252 of 300 MiB)."""
        backstop = self.backstop
        if backstop is None:
            return self.limit.usage(), None, None, False, True
        own = backstop.kernel is self.limit
        steady = False
        for _ in range(_STEADY_TRIES):
            sizes = backstop.sizes()
            usage = self.limit.usage()
            if (
                own
                and usage is not None
                and self.state != "hard"
                and usage.judged >= self.hard_bytes
            ):
                # A crossing of hard: the hard action first. Every file read now hands the GIL
                # to the program, and a ramp that holds it keeps it for up to the switch
                # interval each time (reading its sizes again and the group's other processes,
                # a 1 MiB-piece ramp went 8-18 MiB past hard on a quiet machine). The cap is
                # renewed from this reading and what the others had mapped at the last one.
                return usage, sizes, backstop.room(usage), True, False
            room = backstop.room(usage if own else None) if usage is not None else None
            after = backstop.sizes()
            if sizes is None or after is None or room is None:
                break
            if all(abs(b - a) <= _STEADY_BYTES for a, b in zip(sizes, after, strict=True)):
                steady = True
                break
        return usage, sizes, room, False, steady

    def check(self) -> State:
        """Take one reading, step the state and fire what that calls for; the state after it.

        The watchdog's thread calls this; a server that has no thread to spare (or a test) may
        call it directly.
        """
        with self._lock:
            usage, sizes, room, crossing, steady = self._one_reading()
            if usage is None:
                self.gone = True
                return self.state
            self.usage = usage
            self.readings += 1
            judged = usage.judged
            self.peak_bytes = max(self.peak_bytes, judged)
            if self._threads:
                self._pace.reading(judged, self._next_line(judged))
            previous = self.state
            state = self._next_state(judged)
            self.state = state
            fired: list[tuple[Callback | None, WatchdogEvent]] = []
            if self.backstop is not None:
                self.backstop.update(room, sizes, others_read=not crossing, steady=steady)
                if self.backstop.take_refusals():
                    event = self._event(
                        "hard", previous, judged, self.backstop.point_bytes, cause="backstop"
                    )
                    fired.append((self.on_hard, event))
                    if self.on_hard is not None:
                        self._refusal_runs_due += 1
            if state != previous:
                self.transitions.append(
                    {"from": previous, "to": state, "at": time.time(), "usage_bytes": judged}
                )
                kind, threshold, callback = self._why(previous, state)
                if kind is not None:
                    event = self._event(kind, previous, judged, threshold)
                    fired.append((callback, event))
            if (
                self.pid is None
                and refusing()
                and (
                    judged < self.recover_bytes
                    or (state != "hard" and may_take_work(judged, self.limit.bytes))
                )
            ):
                # Every refusal ends below ``recover``, however it began (a backstop refusal
                # runs ``on_hard`` without the state ever reaching ``hard``, so no recovery
                # transition would come to end it); one that began with a backstop refusal
                # also once the memory that filled the room is given back.
                stop_refusing()
            if self.trend.add(self._clock(), judged):
                self._verdict = self.trend.verdict(self.limit.bytes)
                now = self._clock()
                if self._verdict.leaking:
                    self._no_leak_since = None
                    if not self._leak_alarmed:
                        self._leak_alarmed = True
                        event = self._event("leak", state, judged, self.limit.bytes)
                        fired.append((self.on_leak, event))
                elif self._verdict.pattern != "leak":
                    # One verdict is not the end of a leak: the alarm re-arms only after a
                    # whole window without one.
                    if self._no_leak_since is None:
                        self._no_leak_since = now
                    elif now - self._no_leak_since >= self.leak_window_s:
                        self._leak_alarmed = False
        # The hard action first, here and now, in the thread that read the crossing (no
        # hand-over, no queue behind a soft action still running); then the words, and the
        # other callbacks in the callback thread.
        for callback, event in fired:
            if event.kind == "hard" and callback is not None:
                self._run_callback(callback, event)
        for callback, event in fired:
            self._dispatch(_log_event, event)
            if event.kind != "hard" and callback is not None:
                self._dispatch(callback, event)
        return state

    def _next_line(self, judged: int) -> int:
        """The first line above ``judged`` a rise would cross: ``soft``, ``hard``, the backstop's
        point (the kernel's limit less its reserve), else the limit."""
        point = self.backstop.point_bytes if self.backstop is not None else self.limit.bytes
        above = [x for x in (self.soft_bytes, self.hard_bytes, point) if x > judged]
        return min(above) if above else self.limit.bytes

    def _why(self, previous: State, state: State) -> tuple[Any, int, Callback | None]:
        if state == "hard":
            return "hard", self.hard_bytes, self.on_hard
        if state == "soft" and previous == "ok":
            return "soft", self.soft_bytes, self.on_soft
        if state == "ok":
            return "recover", self.recover_bytes, self.on_recover
        return None, 0, None  # hard → soft: on the way down, nothing to do yet

    def _event(
        self, kind: Any, previous: State, judged: int, threshold: int, cause: Any = "threshold"
    ) -> WatchdogEvent:
        return WatchdogEvent(
            kind,
            self.state,
            previous,
            judged,
            self.limit.bytes,
            threshold,
            time.time(),
            self._verdict,
            cause,
            self.limit.group.path if self.limit.group is not None else None,
        )

    def _refusal_uncaught(self) -> None:
        """A refusal's ``MemoryError`` is leaving a thread uncaught (and, in the main thread,
        the process): run ``on_hard`` for it here and now if the watch thread has not yet, or
        wait (up to ``_UNCAUGHT_WAIT_S``) for the callback it queued to finish."""
        backstop = self.backstop
        if backstop is None:
            return
        with self._lock:
            event = None
            if backstop.take_refusals(now_or_never=True):
                judged = self.usage.judged if self.usage is not None else 0
                event = self._event(
                    "hard", self.state, judged, backstop.point_bytes, cause="backstop"
                )
                if self.on_hard is not None:
                    self._refusal_runs_due += 1
        if event is not None:
            log_event(event)
            if self.on_hard is not None:
                self._run_callback(self.on_hard, event)
            return
        deadline = time.monotonic() + _UNCAUGHT_WAIT_S
        while self._refusal_runs_due > 0 and time.monotonic() < deadline:
            time.sleep(0.01)

    def _wake(self) -> None:
        """Wake the watch thread now (a refused allocation): it reads and runs ``on_hard``."""
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"r")

    def _dispatch(self, callback: Callback, event: WatchdogEvent) -> None:
        if getattr(callback, "_membound_immediate", False) or not self._threads:
            self._run_callback(callback, event)
            return
        try:
            self._queue.put_nowait((callback, event))
        except queue.Full:
            self.callbacks_dropped += 1
            _log.error(
                "membound guard: callback queue full; dropped %r for %s", callback, event.kind
            )

    def _run_callback(self, callback: Callback, event: WatchdogEvent) -> None:
        if callback is _log_event:  # the watchdog's own words: no callback run to count
            with contextlib.suppress(Exception):
                callback(event)
            return
        self.callback_runs += 1
        try:
            callback(event)
        except Exception:
            self.callback_errors += 1
            _log.exception("membound guard: the %s callback %r raised", event.kind, callback)
        finally:
            if event.cause == "backstop":
                with self._lock:
                    self._refusal_runs_due -= 1

    # --- threads -----------------------------------------------------------------------------

    def start(self) -> Watchdog:
        """Start watching in background threads (daemon threads: they never keep the process
        alive); returns the watchdog. Starting a started watchdog does nothing."""
        if self._threads:
            return self
        self._stopping.clear()
        self._queue = queue.Queue(_QUEUE)  # a fresh one: a stopped watchdog may be started again
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)  # a refusal notice must never wait on the pipe
        if self.backstop is not None:
            self.backstop.arm()
        # The first reading comes before the thresholds are asked for, so that they are
        # registered once, raised by the page cache charged now (a cgroup v1 threshold is
        # registered with a synchronize_rcu() each: 60–160 ms for all of them, up to 193 ms
        # with other processes of the group registering too). The source's own thread registers
        # them while the watch reads every FAST_S (``kernel_events.py``): start() returns at
        # once, and the watch is never without a wake-up meanwhile.
        self.check()
        usage = self.usage
        self._say_if_others_hold_hard(usage)
        self._armed_offset = usage.charged - usage.judged if usage is not None else 0
        thresholds = self._arm_points(self._armed_offset)
        source = open_events(self.limit, thresholds) if self._use_events else EventSource("polling")
        self.events_kind = source.kind
        for target, name in (
            (self._watch, "membound-watchdog"),
            (self._callbacks, "membound-callbacks"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True, args=(source,))
            self._threads.append(thread)
        for thread in self._threads:
            thread.start()
        if self.pid is None:  # health() and the middlewares speak of this process only
            instances.make_current(self)
        return self

    def _say_if_others_hold_hard(self, usage: Usage | None) -> None:
        """One line when the group's *other* processes already hold ``hard`` or more: nothing
        this process does (its hard action, refusing work) brings the group back under it."""
        group = self.limit.group
        if usage is None or self.pid is not None or group is None:
            return
        # a group this process is not in (a Limit given for another): all of it is the others'
        own = process_usage("self") if group.holds("self") else None
        others = usage.judged - (own.judged if own is not None else 0)
        if others >= self.hard_bytes:
            _log.warning(
                "membound guard: %s: the other processes in this cgroup already hold %s of its "
                "%s limit, at or above hard %s: this process's hard action alone cannot bring "
                "the group under it (where they run watchdogs too, theirs act on their part; "
                "else raise hard, or give this process a group of its own)",
                stamp(),
                format_size(others),
                format_size(self.limit.bytes),
                format_size(self.hard_bytes),
            )

    def stop(self) -> None:
        """Stop the threads and close the events. The watch takes one last reading first and
        the callbacks it queues run before this returns (a program that crossed ``hard`` in its
        last milliseconds has its ``on_hard`` run, not dropped with the thread)."""
        if not self._threads:
            return
        self._stopping.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        watch, *rest = self._threads
        if watch is not threading.current_thread():
            watch.join(timeout=10)
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        for thread in rest:
            if thread is not threading.current_thread():
                thread.join(timeout=10)
        self._threads.clear()
        with self._lock:  # a check() from another thread is not reading the files it closes
            self._pace.release()
            if self.backstop is not None:
                self.backstop.disarm()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        instances.forget(self)

    def __enter__(self) -> Watchdog:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _watch(self, source: EventSource) -> None:
        prefer_this_thread()
        poller = select.poll()
        generation = -1
        armed_offset = self._armed_offset  # what start() armed the thresholds with
        try:
            while not self._stopping.is_set():
                source.take()  # thresholds the source's thread registered since
                # what the watch waits on now: a registration that failed leaves it polling
                self.events_kind = source.kind
                if source.generation != generation:
                    poller = select.poll()
                    poller.register(self._wake_r, select.POLLIN)
                    for fd, mask in source.fds:
                        poller.register(fd, mask)
                    generation = source.generation
                # Near the thresholds a fast ramp takes the headroom in milliseconds: read often.
                usage = self.usage
                crowded = self.backstop is not None and self.backstop.group.members > 0
                # Until the thresholds asked for are in place no event wakes the watch at them.
                fast = crowded or source.arming
                pause = self._pace.pause(usage.judged if usage is not None else None, fast)
                for fd, _ in poller.poll(max(1, int(pause * 1000))):
                    if fd == self._wake_r:
                        with contextlib.suppress(OSError):
                            os.read(self._wake_r, 64)
                    else:
                        self._pace.event()  # before the first read hands the GIL back
                        source.drain(fd)
                if self._stopping.is_set():
                    break
                try:
                    self.check()
                except Exception:  # a reading must never end the watch
                    _log.exception("membound guard: a reading failed")
                if self.gone:
                    break
                usage = self.usage
                if usage is not None and source.armed is not None:
                    # Charged usage counts page cache; the thresholds are of judged usage.
                    offset = usage.charged - usage.judged
                    if abs(offset - armed_offset) > REARM_BYTES:
                        armed_offset = offset
                        source.request(self._arm_points(offset))  # armed by the source's thread
            if not self.gone:
                # The last reading, whether or not the loop ran (a main thread holding the GIL
                # through its allocations can stop the watchdog before it read once): a
                # crossing since the reading before counts.
                with contextlib.suppress(Exception):
                    self.check()
        finally:
            source.close()

    def _arm_points(self, offset: int) -> list[int]:
        """The charged usages at which cgroup v1 events wake the watch (see ``arm_points``)."""
        thresholds = [self._near_bytes, self.recover_bytes, self.soft_bytes]
        thresholds += [self.hard_recover_bytes, self.hard_bytes]
        return arm_points(thresholds, self.soft_bytes, self.hard_bytes, self.limit.bytes, offset)

    def _callbacks(self, source: EventSource) -> None:
        while True:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._stopping.is_set():
                    return
                continue
            if item is None:
                return
            self._run_callback(*item)

    # --- reporting -----------------------------------------------------------------------------

    @property
    def verdict(self) -> TrendVerdict:
        """The leak trend's latest verdict (``unknown`` before the window has filled)."""
        return self._verdict if self._verdict is not None else self.trend.verdict(self.limit.bytes)

    def snapshot(self) -> dict[str, object]:
        """The watchdog's state for ``health()``: thresholds, state, last transitions, counts."""
        with self._lock:
            return {
                "state": self.state,
                "thresholds": {
                    "soft_bytes": self.soft_bytes,
                    "hard_bytes": self.hard_bytes,
                    "recover_bytes": self.recover_bytes,
                    "hard_recover_bytes": self.hard_recover_bytes,
                },
                "interval_s": self.interval,
                "events": self.events_kind,
                "readings": self.readings,
                "transitions": list(self.transitions),
                "callbacks": {
                    "runs": self.callback_runs,
                    "errors": self.callback_errors,
                    "dropped": self.callbacks_dropped,
                },
                "running": any(t.is_alive() for t in self._threads),
                "backstop": None
                if self.backstop is None
                else {
                    "point_bytes": self.backstop.point_bytes,
                    "cap_bytes": self.backstop.cap_bytes,
                    "refusals": self.backstop.refusals,
                    # refusals under the process's share of its group's room (``turns.py``)
                    "turn_asks": 0 if self.backstop.turns is None else self.backstop.turns.asks,
                    "turns_held": 0 if self.backstop.turns is None else self.backstop.turns.held,
                },
            }

    def __repr__(self) -> str:
        return (
            f"Watchdog({self.state}, soft={format_size(self.soft_bytes)}, "
            f"hard={format_size(self.hard_bytes)}, limit={self.limit.describe()})"
        )


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
