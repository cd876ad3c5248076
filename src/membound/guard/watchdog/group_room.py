"""What the processes of one memory group have mapped and not yet written: room about to go.

The backstop (``backstop.py``) gives its process's cap the room the kernel has left. The
kernel counts memory once it is written, not when it is mapped: a gunicorn worker that maps a
150 MiB temporary and writes it over 50 ms holds, for those 50 ms, memory the group's usage
does not show yet, and a second worker's cap, set from that usage, let its own 150 MiB through
too — both were charged, and the OOM killer ended one. So the room is the kernel's less what
is mapped lately and not yet written, in this process and in every other process of the group.

For each process, :class:`Unsettled` follows its data size and anonymous resident memory
(``/proc/PID/statm``) from reading to reading, in a few fixed buckets: what was mapped within
the last ``SETTLE_S`` and not written since may be written any moment. Memory that
stays untouched longer (a thread's stack, an arena mapped and never filled) is settled: no
longer counted. The other processes are read from outside, every reading, from the group's
``cgroup.procs`` (the groups below it listed again once a second): nothing in them has to
cooperate, so a worker busy in one long C call that holds the GIL — which is when it writes a
big block — is seen as well as an idle one (a ledger each process published to missed exactly
those).

A process that appears in the group after the first reading (a fresh worker, whose first
request may map a temporary before anyone has read it) counts what it has mapped and not
written at its first reading as mapped lately; the processes found at the first reading are
taken as they are.

What it cannot see: two processes that map big blocks within one reading of each other both
pass, and the kernel counts them only as they are written. The watchdog reads every 10 ms
while the group has other processes (``pace.py`` says what a reading costs), else every
``interval``, 0.1 s. Guarded processes close that window by sharing the room ahead of time
(``turns.py``); what unguarded ones map is seen here only.

Bounded: at most ``MOST_PROCESSES`` processes are read, each with a fixed number of buckets.
"""

from __future__ import annotations

import os
import time
from collections import deque

from membound._proc import KeptStatm
from membound.measure.cgroup.memory import MemoryGroup

__all__ = ["MOST_PROCESSES", "SETTLE_S", "GroupRoom", "Unsettled"]

#: Memory mapped but not yet touched counts as settled (a thread's stack, an array never
#: written) once it has been there this long; until then it is taken for memory about to be
#: filled (a 64 MiB block is mapped at once and then written page by page: a reading in the
#: middle must not count the rest as room).
SETTLE_S = 0.5
_BUCKET_S = 0.05
#: The other processes of a group read at most (a group of more is judged on these).
MOST_PROCESSES = 64
#: How often the group's members are listed again.
_LIST_EVERY_S = 1.0
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class Unsettled:
    """One process's memory mapped lately and not yet written.

    From one reading to the next, what the data size grew by was mapped, and what anonymous
    resident memory grew by was written — out of what was mapped first. What was mapped within
    the last ``SETTLE_S`` and is not written yet is about to be; older, it is settled. Memory
    written and then given back (``MADV_DONTNEED``: glibc shrinking a thread's heap,
    ``malloc_trim``) stays mapped and untouched but was not mapped lately: nobody is about to
    write it (judged as untouched memory above its least, a worker that had just freed a 150
    MiB temporary seemed to hold 136 MiB about to be written for half a second, and the retry
    of a refused request met the same refusal).
    """

    def __init__(self, *, new: bool = False) -> None:
        # [bucket number, bytes mapped in it and not yet written], oldest first.
        self._mapped: deque[list[int]] = deque(maxlen=int(SETTLE_S / _BUCKET_S) + 1)
        self._last: tuple[int, int] | None = None
        #: A process born (or moved in) since the last reading: what it has mapped and not
        #: written at its first reading was mapped lately.
        self._new = new

    def add(self, data: int, anon: int, now: float | None = None) -> int:
        """Take a reading of the process's data size and anonymous resident memory; return
        what was mapped within ``SETTLE_S`` and is not written yet."""
        bucket = int((time.monotonic() if now is None else now) / _BUCKET_S)
        mapped = self._mapped
        oldest = bucket - (mapped.maxlen or 1) + 1
        while mapped and mapped[0][0] < oldest:
            mapped.popleft()
        if self._last is None and self._new:
            mapped.append([bucket, max(0, data - anon)])
        if self._last is not None:
            grown, written = data - self._last[0], anon - self._last[1]
            if grown > 0:
                if mapped and mapped[-1][0] == bucket:
                    mapped[-1][1] += grown
                else:
                    mapped.append([bucket, grown])
            elif grown < 0:
                self._take(-grown, newest_first=True)  # unmapped: the latest mappings first
            if written > 0:
                self._take(written, newest_first=False)
        self._last = (data, anon)
        return min(sum(entry[1] for entry in mapped), max(0, data - anon))

    def _take(self, size: int, *, newest_first: bool) -> None:
        entries = reversed(self._mapped) if newest_first else iter(self._mapped)
        for entry in entries:
            if size <= 0:
                break
            taken = min(size, entry[1])
            entry[1] -= taken
            size -= taken

    def settled(self, added: int) -> None:
        """``added`` bytes were mapped that stay untouched (a thread's stack): they were not
        mapped to be written, so the next reading does not count them."""
        if self._last is not None:
            self._last = (self._last[0] + added, self._last[1])


def _procs(path: str) -> list[int]:
    try:
        with open(path, "rb") as f:
            return [int(pid) for pid in f.read().split()]
    except (OSError, ValueError):
        return []


class GroupRoom:
    """The other processes of a memory group, as one process's backstop sees them.

    Args:
        group: the cgroup whose limit the OOM killer enforces (None: nothing to read, as for
            the machine's RAM).
    """

    def __init__(self, group: MemoryGroup | None) -> None:
        self.group = group
        self._pids: list[int] = []
        self._listed_at = float("-inf")
        # Each other process's memory so far, and its ``statm`` kept open: a reading every
        # 10 ms opened, read and closed one file per process (three GIL releases each, and
        # ~40 µs of CPU: with three others, most of a busy worker's watchdog cost).
        self._seen: dict[int, tuple[Unsettled, KeptStatm]] = {}
        self._procs_path = os.path.join(group.path, "cgroup.procs") if group is not None else ""
        self._first = True
        #: How many other processes the last reading found in the group.
        self.members = 0
        #: The group's processes at the last reading, this one included.
        self.pids: frozenset[int] = frozenset()

    def _members(self, now: float) -> list[int]:
        """The group's processes: its own ``cgroup.procs`` read at every reading (a server's
        fresh worker maps its first temporary within a second of its birth), the groups below
        it listed once a second."""
        if self.group is None:
            return []
        if now - self._listed_at >= _LIST_EVERY_S:
            self._listed_at = now
            below: list[int] = []
            for folder, _dirs, files in os.walk(self.group.path):
                if folder != self.group.path and "cgroup.procs" in files:
                    below += _procs(os.path.join(folder, "cgroup.procs"))
                if len(below) >= MOST_PROCESSES:
                    break
            self._pids = below
        # Opened again each time: cgroup v1 lists a group's processes once per open file and
        # keeps serving that list while it is read within a second (a descriptor kept open and
        # read every 10 ms never saw a new worker).
        own = _procs(self._procs_path)
        return (own + self._pids)[:MOST_PROCESSES]

    def others(self) -> int:
        """What the group's other processes have mapped lately and not yet written, bytes."""
        now = time.monotonic()
        me = os.getpid()
        listed = self._members(now)
        self.pids = frozenset(listed) | {me}
        members = [pid for pid in listed if pid != me]
        total = 0
        for pid in members:
            seen = self._seen.get(pid)
            if seen is None:
                # Seen after the first reading: born or moved in since the last one, so a
                # temporary it mapped at once (a fresh worker's first request) is about to go.
                seen = self._seen[pid] = (Unsettled(new=not self._first), KeptStatm(pid))
            fields = seen[1].fields()
            if fields is None or len(fields) < 6:
                # Gone (a descriptor outlives its process and then reads nothing): forgotten,
                # so that a process given the same pid is read as the new one it is.
                self._forget(pid)
                continue
            total += seen[0].add(fields[5] * _PAGE, (fields[1] - fields[2]) * _PAGE, now)
        self._first = False
        self.members = len(members)
        if len(self._seen) > len(members):
            alive = set(members)
            for pid in [p for p in self._seen if p not in alive]:
                self._forget(pid)
        return total

    def _forget(self, pid: int) -> None:
        seen = self._seen.pop(pid, None)
        if seen is not None:
            seen[1].close()

    def close(self) -> None:
        """Close the files kept open; the next reading starts afresh (the processes it finds
        then are taken as they are, as at the first reading)."""
        for pid in list(self._seen):
            self._forget(pid)
        self._first = True
