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
"""

from __future__ import annotations

import contextlib
import os
import select

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

    def drain(self, fd: int) -> None:
        """Consume the event on ``fd`` so that the next poll waits for a new one."""
        with contextlib.suppress(OSError):
            if fd in self._eventfds:
                os.read(fd, 8)
            elif fd in self._rereads:
                os.lseek(fd, 0, os.SEEK_SET)
                os.read(fd, 4096)

    def arm(self, thresholds: list[int]) -> bool:
        """(cgroup v1) Fire when the group's charged usage crosses any of ``thresholds``
        (bytes), replacing the thresholds armed before; False when none could be armed.

        Charged usage counts page cache, judged usage does not, so the watchdog arms its
        thresholds raised by the page cache it sees, and again when that changes. A threshold
        at or above the limit is left out: charge never passes the limit (reclaim takes page
        cache back first), so it would never fire.
        """
        group = self._group
        if group is None or not self._keep:
            return False
        wanted = tuple(sorted({t for t in thresholds if t > 0}))
        if wanted == self.armed and self._threshold_fd >= 0:
            return True
        self._drop_threshold_fd()
        self.armed = wanted
        if not wanted:
            return False
        try:
            efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        except OSError:
            return False
        registered = 0
        for threshold in wanted:
            try:
                with open(group.file("cgroup.event_control"), "w") as f:
                    f.write(f"{efd} {self._keep[0]} {threshold}")
                registered += 1
            except OSError:
                break  # not ours to write (no permission): poll instead
        if not registered:
            os.close(efd)
            return False
        self._threshold_fd = efd
        self._eventfds.add(efd)
        self.fds.append((efd, select.POLLIN))
        self.generation += 1
        return True

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
        """Close every descriptor (closing an eventfd also unregisters its v1 thresholds)."""
        for fd, _ in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        for fd in self._keep:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds.clear()
        self._keep.clear()
        self._threshold_fd = -1


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
    if not source.arm([t for t in thresholds if t < limit.bytes]):
        source.close()
        return None
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
