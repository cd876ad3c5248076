"""Kernel memory events that wake the watchdog at once instead of at its next poll.

Polling alone is outrun by fast allocation: at 1 GiB/s a 100 ms poll lets 100 MiB through
(Dask's workers, polled every 100 ms, hang their hosts: dask/distributed#6177). Where the kernel
offers it, the watchdog also sleeps on an event that fires at the crossing itself:

* **cgroup v1**: usage thresholds. An ``eventfd`` registered through ``cgroup.event_control``
  with a byte count fires when the kernel finds ``memory.usage_in_bytes`` on the other side of
  it, up or down. The kernel looks only every 128 page events per CPU, so the watchdog arms its
  thresholds that much early (and raised by the page cache it sees: that usage counts page
  cache, the judged usage does not). An event is a wake-up; the watchdog then reads the judged
  figure, and near the thresholds it reads every 10 ms anyway.
* **cgroup v2**: ``memory.events`` (``high``, ``max``, ``oom`` counters) signals ``POLLPRI`` when
  a counter changes, and a PSI trigger on the group's ``memory.pressure`` (``some 100000
  1000000``: 100 ms of stall within a second) does when reclaim starts to hurt.

Everything else is polled every ``interval``. A source is only a wake-up: the watchdog reads the
usage and decides, so a missed or spurious event changes timing, never a verdict.

Registering a cgroup v1 threshold is slow: the kernel swaps the group's threshold array and
waits for an RCU grace period (``synchronize_rcu()``), under one lock per group, and unregisters
the same way when an eventfd is closed or its process exits. Seven thresholds took 57 ms to
register in a lone process, and a watchdog's start took 126–193 ms in each of three processes
of one group that started theirs together (gunicorn's or Celery's workers at boot, a fresh one
beside a recycled one's unregistering). So the thresholds are registered in a thread of the
source's own (:class:`_Registrar`): the watchdog starts and reads at once, reads every
``pace.FAST_S`` until its thresholds are in place (:attr:`EventSource.arming`), and takes them
from the watch thread (:meth:`EventSource.take`); thresholds armed again (page cache moved)
stay armed until the new ones replace them, so the watch is never without them meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading

from membound.guard.limit import Limit
from membound.measure.cgroup.memory import MemoryGroup

__all__ = ["EVENT_SLACK", "REARM_BYTES", "EventSource", "arm_points", "open_events"]

#: The PSI trigger: a wake-up when tasks stall 100 ms within a 1 s window.
_PSI_TRIGGER = b"some 100000 1000000"
_PSI_TRIGGER_UNPRIVILEGED = b"some 200000 2000000"


class EventSource:
    """Open kernel event descriptors; poll ``fds`` for readiness, then call :meth:`drain`.

    Attributes:
        kind: ``cgroup-v1-thresholds``, ``cgroup-v2-events`` (with ``+psi`` when the PSI
            trigger took) or ``polling`` (no events: nothing to poll but the clock).
        fds: (descriptor, poll mask) pairs to register with ``select.poll``; they change when
            thresholds are armed again (``generation`` counts the changes).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.fds: list[tuple[int, int]] = []
        self.generation = 0
        self.armed: tuple[int, ...] = ()
        self._eventfds: set[int] = set()
        self._rereads: set[int] = set()
        self._keep: list[int] = []
        self._group: MemoryGroup | None = None
        self._threshold_fd = -1
        self._registrar: _Registrar | None = None

    def drain(self, fd: int) -> None:
        """Consume the event on ``fd`` so that the next poll waits for a new one."""
        with contextlib.suppress(OSError):
            if fd in self._eventfds:
                os.read(fd, 8)
            elif fd in self._rereads:
                os.lseek(fd, 0, os.SEEK_SET)
                os.read(fd, 4096)

    def request(self, thresholds: list[int]) -> None:
        """(cgroup v1) Fire when the group's charged usage crosses any of ``thresholds``
        (bytes), once the source's own thread has registered them (slow: see the module's
        docstring): this returns at once, the thresholds armed before stay armed until
        :meth:`take` puts the new ones in their place.

        Charged usage counts page cache, judged usage does not, so the watchdog arms its
        thresholds raised by the page cache it sees, and again when that changes. A threshold
        at or above the limit is left out by the caller: charge never passes the limit
        (reclaim takes page cache back first), so it would never fire."""
        group = self._group
        if group is None or not self._keep:
            return
        wanted = _wanted(thresholds)
        registrar = self._registrar
        in_place = wanted == self.armed and self._threshold_fd >= 0
        if in_place and (registrar is None or not registrar.busy):
            return
        if registrar is None:
            try:
                registrar = self._registrar = _Registrar(group, self._keep[0])
            except (OSError, RuntimeError):  # no descriptor or thread left: poll instead
                self.kind = self.kind.replace("cgroup-v1-thresholds", "polling")
                return
        registrar.ask(wanted)

    @property
    def arming(self) -> bool:
        """Whether thresholds asked for are not in place yet (the watch reads often
        meanwhile: no event would wake it at the new ones)."""
        registrar = self._registrar
        return registrar is not None and registrar.busy

    def take(self) -> bool:
        """From the watch thread: put in place the thresholds the source's thread has
        registered since (True when it did; ``generation`` then changed). Thresholds it could
        not register leave none armed: the watch polls."""
        registrar = self._registrar
        done = registrar.done() if registrar is not None else None
        if done is None:
            return False
        wanted, registered = done
        if registered is None and wanted:  # not ours to register (no permission): poll
            self.kind = self.kind.replace("cgroup-v1-thresholds", "polling")
        if registered is None and self._threshold_fd < 0:
            self.armed = wanted
            return False  # nothing was armed, nothing is: no change
        self._install(wanted, registered)
        return True

    def _install(self, wanted: tuple[int, ...], fd: int | None) -> None:
        """Replace the thresholds armed by those registered on eventfd ``fd`` (None: none)."""
        self._drop_threshold_fd()
        self.armed = wanted
        if fd is None:
            return
        self._threshold_fd = fd
        self._eventfds.add(fd)
        self.fds.append((fd, select.POLLIN))
        self.generation += 1

    def _drop_threshold_fd(self) -> None:
        fd = self._threshold_fd
        if fd < 0:
            return
        self.fds = [(f, m) for f, m in self.fds if f != fd]
        self._eventfds.discard(fd)
        with contextlib.suppress(OSError):
            os.close(fd)  # closing the eventfd unregisters its thresholds
        self._threshold_fd = -1
        self.generation += 1

    def close(self) -> None:
        """Close every descriptor (closing an eventfd also unregisters its v1 thresholds);
        the source's thread, if registering, closes what it registers and ends."""
        if self._registrar is not None:
            self._registrar.stop()
            self._registrar = None
        for fd, _ in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        for fd in self._keep:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds.clear()
        self._keep.clear()
        self._threshold_fd = -1


def _wanted(thresholds: list[int]) -> tuple[int, ...]:
    return tuple(sorted({t for t in thresholds if t > 0}))


def _register(group: MemoryGroup, usage_fd: int, wanted: tuple[int, ...]) -> int | None:
    """A new eventfd that fires when the group's charged usage crosses any of ``wanted``, or
    None when none could be registered (none wanted, no permission). Slow: one RCU grace
    period per threshold, under the group's lock."""
    if not wanted:
        return None
    try:
        efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
    except OSError:
        return None
    registered = 0
    try:
        fd = os.open(group.file("cgroup.event_control"), os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        fd = -1
    if fd >= 0:
        try:
            for threshold in wanted:
                # One write, one registration: the kernel reads each write whole.
                os.write(fd, f"{efd} {usage_fd} {threshold}".encode())
                registered += 1
        except OSError:
            pass  # not ours to write (no permission): poll instead
        finally:
            os.close(fd)
    if not registered:
        os.close(efd)
        return None
    return efd


class _Registrar:
    """The thread that registers a cgroup v1 source's thresholds (see the module's
    docstring). It keeps a descriptor of its own on the group's usage file (the source may be
    closed while it registers), registers the latest thresholds asked for, and holds each
    registration until the watch takes it (an older one not taken is closed). It ends when
    stopped, closing what it registers from then on."""

    #: Seconds :meth:`stop` waits for the thread (a registration in flight waits for the
    #: group's other processes' first; the thread closes what it makes anyway).
    _JOIN_S = 1.0

    def __init__(self, group: MemoryGroup, usage_fd: int) -> None:
        self._group = group
        self._usage_fd = os.dup(usage_fd)  # not inheritable, as dup() makes it
        self._cond = threading.Condition()
        self._asked: tuple[int, ...] | None = None
        self._done: tuple[tuple[int, ...], int | None] | None = None
        self._working = False
        self._stopped = False
        self._thread = threading.Thread(
            target=self._run, name="membound-watchdog-events", daemon=True
        )
        try:
            self._thread.start()
        except RuntimeError:  # no thread left to start
            os.close(self._usage_fd)
            raise

    def ask(self, wanted: tuple[int, ...]) -> None:
        """Register ``wanted`` (replacing an ask not begun yet)."""
        with self._cond:
            if not self._stopped:
                self._asked = wanted
                self._cond.notify()

    @property
    def busy(self) -> bool:
        """An ask not yet registered, being registered, or registered and not taken."""
        with self._cond:
            return self._asked is not None or self._working or self._done is not None

    def done(self) -> tuple[tuple[int, ...], int | None] | None:
        """The latest registration (thresholds, eventfd or None), once; None if none is new."""
        with self._cond:
            done, self._done = self._done, None
            return done

    def stop(self) -> None:
        """Stop: an ask not begun is dropped, a registration not taken or made from now on is
        closed (its thresholds unregistered), and the thread ends — waited for up to
        ``_JOIN_S`` (a registration in flight finishes first), so that a watchdog stopped has
        no thread left in the usual case."""
        with self._cond:
            self._stopped = True
            self._asked = None
            done, self._done = self._done, None
            self._cond.notify()
        if done is not None and done[1] is not None:
            with contextlib.suppress(OSError):
                os.close(done[1])
        if self._thread is not threading.current_thread():
            self._thread.join(self._JOIN_S)

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    self._working = False
                    while self._asked is None and not self._stopped:
                        self._cond.wait()
                    wanted = self._asked
                    if self._stopped or wanted is None:
                        return
                    self._asked = None
                    self._working = True
                fd = _register(self._group, self._usage_fd, wanted)
                with self._cond:
                    if self._stopped:
                        stale = fd
                    else:
                        stale = self._done[1] if self._done is not None else None
                        self._done = (wanted, fd)
                if stale is not None:
                    with contextlib.suppress(OSError):
                        os.close(stale)
        finally:
            with contextlib.suppress(OSError):
                os.close(self._usage_fd)


def _v1_thresholds(limit: Limit, thresholds: list[int]) -> EventSource | None:
    group = limit.group
    if group is None or not hasattr(os, "eventfd"):
        return None
    source = EventSource("cgroup-v1-thresholds")
    source._group = group
    try:
        ufd = os.open(group.file("memory.usage_in_bytes"), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    source._keep.append(ufd)
    try:  # registered later, in the source's thread: here only whether they may be
        os.close(os.open(group.file("cgroup.event_control"), os.O_WRONLY | os.O_CLOEXEC))
    except OSError:
        source.close()
        return None
    source.request([t for t in thresholds if t < limit.bytes])
    # Reclaim at the limit: vmpressure "low" fires while the kernel scans the group's pages.
    opened: list[int] = []
    try:
        pfd = os.open(group.file("memory.pressure_level"), os.O_RDONLY | os.O_CLOEXEC)
        opened.append(pfd)
        efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        opened.append(efd)
        with open(group.file("cgroup.event_control"), "w") as f:
            f.write(f"{efd} {pfd} low")
    except OSError:
        for fd in opened:
            with contextlib.suppress(OSError):
                os.close(fd)
        return source
    source._keep.append(pfd)
    source.fds.append((efd, select.POLLIN))
    source._eventfds.add(efd)
    source.kind += "+pressure"
    return source


def _v2_events(limit: Limit) -> EventSource | None:
    group = limit.group
    if group is None:
        return None
    source = EventSource("cgroup-v2-events")
    try:
        fd = os.open(group.file("memory.events"), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        os.read(fd, 4096)  # a read arms POLLPRI for the next change
    except OSError:
        os.close(fd)
        return None
    source.fds.append((fd, select.POLLPRI | select.POLLERR))
    source._rereads.add(fd)
    try:
        pfd = os.open(group.file("memory.pressure"), os.O_RDWR | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return source
    # Unprivileged processes may only ask for windows that are multiples of 2 s (Linux 6.5+).
    for trigger in (_PSI_TRIGGER, _PSI_TRIGGER_UNPRIVILEGED):
        try:
            os.write(pfd, trigger)
        except OSError:
            continue
        source.fds.append((pfd, select.POLLPRI))
        source.kind += "+psi"
        return source
    os.close(pfd)
    return source


def open_events(limit: Limit, thresholds: list[int]) -> EventSource:
    """Kernel events for ``limit`` at the given usage ``thresholds`` (bytes), or a source of
    kind ``polling`` where the kernel offers none that this process can use."""
    found: EventSource | None = None
    if limit.kind == "cgroup-v1":
        found = _v1_thresholds(limit, thresholds)
    elif limit.kind in ("cgroup-v2-max", "cgroup-v2-high"):
        found = _v2_events(limit)
    return found if found is not None else EventSource("polling")


#: Thresholds are armed this much early: cgroup v1 compares usage with them only every 128
#: page events per CPU, so an event armed at the threshold itself may come late or, when
#: growth stops just past it, not at all. An early wake-up costs one reading, and near the
#: thresholds the watchdog reads every ``pace.FAST_S`` while memory rises; ``soft`` and
#: ``hard`` are armed at the crossing too.
EVENT_SLACK = (
    128 * (os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096) * (os.cpu_count() or 1)
)
#: Page cache must move this much before the v1 thresholds are armed again.
REARM_BYTES = 1 << 20


def arm_points(thresholds: list[int], soft: int, hard: int, limit: int, offset: int) -> list[int]:
    """The charged usages (bytes) at which cgroup v1 events wake a watchdog: each threshold
    ``EVENT_SLACK`` early, raised by the page cache ``offset``; ``soft`` and ``hard`` once more
    at the crossing itself. The early event is spent a little below them, and a ramp then
    crossed ``hard`` with no event, unseen until the next reading (10 ms, 25 ms on a busy
    machine: 15 MiB at 1 GiB/s). A point at or above the limit is left out (charge never passes
    the limit, so it would never fire)."""
    early = [t - EVENT_SLACK for t in thresholds]
    points = {max(1, t + offset) for t in [*early, soft, hard]}
    return sorted(t for t in points if t < limit)
