"""How often a Watchdog reads, and how quickly its thread gets the GIL and a CPU.

A watchdog far from its thresholds reads every ``interval`` (0.1 s by default) and costs
nothing measurable. Near them a fast ramp takes the headroom in milliseconds, so it reads every
``FAST_S`` while memory rises (steady memory near a threshold, a service that does not leak at
70 % of its limit, is read every ``interval``), and every ``FAST_S`` whenever other processes
share the limit and the backstop is on: each reading renews the backstop's cap from what they
mapped (``group_room.py``), and 0.1 s between readings let two workers' temporaries through
together. That is its main cost: a reading with three others in the group takes ~0.15 ms of CPU
run back to back, but ~0.9 ms in all when the thread wakes every 10 ms on a shared 2-CPU
machine (caches cold, the wake-up counted), 8 % of a core at ``FAST_S``. It lowers the GIL
switch interval only while memory rises fast enough to reach its next line (``soft``, ``hard``, the
backstop's point) within ``_SOON_S`` at the rate it rose over the last ``_RISE_S``: a slow leak
(6 MB/s with 40 MB to go) leaves it alone. Fast reading and a 0.5 ms switch interval from half
of ``soft`` up, whatever memory did, roughly doubled a gunicorn worker's p99; with the switch
interval lowered at any rise, a leaking service had it low all the time (p99 1.6-1.9x the
server's own recycling).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time

__all__ = ["FAST_S", "Pace", "prefer_this_thread"]

#: Seconds between readings near the thresholds while memory rises.
FAST_S = 0.01
#: Memory "rises" when a reading is this much above the least of the last ``_RISE_S``; it stays
#: "rising" for ``_RISE_S`` after the last such reading, and "rising fast" when at the rate it
#: rose since that least it would reach the next line within ``_SOON_S``.
_RISE_BYTES = 1 << 20
_RISE_S = 1.0
_SOON_S = 2.0
#: The least time a rate is taken over: a leak that steps (2 MiB every 0.25 s) read 10 ms after
#: the least was taken looked like 200 MiB/s; over 0.1 s it reads 20 MiB/s, and a real ramp
#: (hundreds of MiB/s) still reads fast from its first step.
_MIN_SPAN_S = 0.1
#: The watch thread's nice value where the process may raise a thread's priority (root, or
#: CAP_SYS_NICE): woken by a kernel event while every CPU is busy, it must run before the ramp
#: it watches takes the last of the headroom.
_WATCH_NICE = -10

_switch_lock = threading.Lock()
#: Paces holding the GIL switch interval low now, and the value to restore after them.
_fast_holders: set[Pace] = set()
_saved_switch = [0.005]


class Pace:
    """One watchdog's pace.

    Args:
        near_bytes: usage from which a crossing may come fast (half of ``soft``, or
            ``recover`` if lower).
        interval: seconds between readings otherwise.
        switch_interval: the GIL switch interval while near and rising (None: leave it).
    """

    def __init__(self, near_bytes: int, interval: float, switch_interval: float | None) -> None:
        self.near_bytes = near_bytes
        self.interval = interval
        self.switch_interval = switch_interval
        self._floor = 0
        self._floor_at: float | None = None
        self._rising_until = 0.0
        self._fast_until = 0.0

    def near(self, judged: int) -> bool:
        """Whether usage is in the zone where a crossing may come fast."""
        return judged >= self.near_bytes

    def fast(self, judged: int | None) -> bool:
        """Whether to read often: near while memory rises (or rose within ``_RISE_S``)."""
        return judged is not None and self.near(judged) and time.monotonic() < self._rising_until

    def pause(self, judged: int | None, crowded: bool = False) -> float:
        """Seconds to wait for the next reading: ``FAST_S`` near the thresholds while memory
        rises, and whenever — ``crowded`` — other processes share the limit: each reading
        tells the backstop what they mapped, and two workers' temporaries mapped between two
        readings both pass, far from the thresholds as well (three fresh gunicorn workers at
        half of the limit, two 150 MiB temporaries in a 400 MiB group); the watchdog also passes
        ``crowded`` while its kernel thresholds are being registered (no event wakes it yet)."""
        fast = self.fast(judged) or crowded
        return min(self.interval, FAST_S) if fast else self.interval

    def reading(self, judged: int, line: int | None = None) -> None:
        """Take a reading into account (from the watch thread): note whether memory rises
        (above its least of the last ``_RISE_S`` by ``_RISE_BYTES``) and whether fast enough
        to reach ``line``, the next threshold above it, within ``_SOON_S`` (any rise, when no
        line is given), and lower or give back the switch interval to match."""
        now = time.monotonic()
        if self._floor_at is None or now - self._floor_at >= _RISE_S or judged < self._floor:
            self._floor, self._floor_at = judged, now
        elif judged - self._floor >= _RISE_BYTES:
            self._rising_until = now + _RISE_S
            rate = (judged - self._floor) / max(now - self._floor_at, _MIN_SPAN_S)
            if line is None or judged >= line or (line - judged) <= rate * _SOON_S:
                self._fast_until = now + _RISE_S
        self._switch_interval(self.fast(judged) and now < self._fast_until)

    def event(self) -> None:
        """A kernel event woke the watch (memory crossed a line, or pressure rose): hand the
        GIL over every ``switch_interval`` for the reading it calls for, which then decides
        (:meth:`reading`) whether to keep it so. Each file that reading reads hands the GIL
        back to the program: at CPython's 5 ms a 1 MiB-piece ramp holding it was read up to
        57 MiB past the ``soft`` line whose event woke the watch, at 0.5 ms up to 12 MiB."""
        self._switch_interval(True)

    def release(self) -> None:
        """The watchdog stops: give the switch interval back if this pace holds it low."""
        self._switch_interval(False)

    def _switch_interval(self, fast: bool) -> None:
        """Near the thresholds while memory rises, hand the GIL over every ``switch_interval``.

        Every reading releases the GIL (``poll`` and each ``pread``), and while another thread
        is busy in Python, getting it back takes up to the switch interval each time: with
        CPython's 5 ms a reading took 15–50 ms under a busy main thread, and a ramp at 1 GiB/s
        moves 15–50 MiB in that time; at 0.5 ms the soft crossing was seen within 3 MiB. A
        shorter interval costs CPU-bound threaded programs a few per cent (more hand-overs), so
        it is lowered only in the zone from half of ``soft`` up and while memory rises; the old
        value comes back otherwise and when the watchdog stops. Several watchdogs share one
        process-wide setting: it is restored when the last of them leaves the zone.
        """
        if self.switch_interval is None:
            return
        with _switch_lock:
            if fast and self not in _fast_holders:
                if not _fast_holders:
                    _saved_switch[0] = sys.getswitchinterval()
                _fast_holders.add(self)
                sys.setswitchinterval(
                    min(_saved_switch[0], *(p.switch_interval or 1 for p in _fast_holders))
                )
            elif not fast and self in _fast_holders:
                _fast_holders.discard(self)
                if not _fast_holders:
                    sys.setswitchinterval(_saved_switch[0])


def forget_after_fork() -> None:
    """In a forked child: its parent's watchdog threads are gone; give the switch interval
    back."""
    global _switch_lock
    _switch_lock = threading.Lock()
    if _fast_holders:
        sys.setswitchinterval(_saved_switch[0])
        _fast_holders.clear()


def prefer_this_thread() -> None:
    """Ask the scheduler to prefer the calling thread (Linux: a thread's own nice value); where
    that is not allowed nothing changes."""
    native_id = getattr(threading, "get_native_id", None)
    setpriority = getattr(os, "setpriority", None)
    if native_id is None or setpriority is None:
        return
    with contextlib.suppress(OSError):
        setpriority(os.PRIO_PROCESS, native_id(), _WATCH_NICE)
