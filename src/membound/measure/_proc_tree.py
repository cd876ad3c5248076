"""Reading processes from ``/proc``: one process's RSS and peak, a process tree, and the tree's
summed RSS (psutil where there is no /proc).

Standard library only: the sampler process (``_sampler_child.py``) runs this file by path, without
the package; the package imports it as a module (``probes.py``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection

__all__ = [
    "HAS_PROC",
    "SamplerFilter",
    "StatmReader",
    "TreeReader",
    "children_of",
    "is_sampler",
    "read_hwm",
    "read_rss",
    "tree_of",
    "tree_rss",
]

HAS_PROC = os.path.exists("/proc/self/statm")


def _psutil_rss(pid: int) -> int | None:
    try:
        import psutil

        return int(psutil.Process(pid).memory_info().rss)
    except Exception:  # psutil missing or the process is gone: no sample
        return None


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def read_rss(pid: int) -> int | None:
    """Resident set size of ``pid`` in bytes from ``/proc/PID/statm``; None when it is gone.

    Where there is no /proc the sampler runs with site-packages and psutil answers instead.
    """
    if not HAS_PROC:
        return _psutil_rss(pid)
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            resident = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    # A zombie reports 0 pages: its memory is already gone, and so is the process for us.
    return resident * _PAGE if resident else None


def read_hwm(pid: int) -> int | None:
    """Peak resident set size (``VmHWM``) of ``pid`` in bytes; None when unavailable."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class StatmReader:
    """Re-reads one process's ``statm`` through a file descriptor kept open: one ``pread`` per
    sample instead of open/read/close, which keeps the sampler's own cost per tick minimal."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        try:
            self.fd: int | None = os.open(f"/proc/{pid}/statm", os.O_RDONLY)
        except OSError:
            self.fd = None

    def read(self) -> int | None:
        """Current RSS in bytes, or None when the process is gone."""
        if self.fd is None:
            return read_rss(self.pid)
        try:
            resident = int(os.pread(self.fd, 128, 0).split()[1])
        except (OSError, ValueError, IndexError):
            return None
        return resident * _PAGE if resident else None


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` from ``/proc/PID/task/*/children``."""
    kids: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                # a few pids: the whole file is tiny
                kids.extend(int(x) for x in f.read().split())  # noqa: MB103
        except (OSError, ValueError):
            continue
    return kids


def tree_of(pid: int, skip: Collection[int] = ()) -> list[int]:
    """``pid`` and all its descendants, leaving out the processes in ``skip`` and theirs
    (children that ran before a measured block began: not started by it)."""
    seen = [pid]
    i = 0
    while i < len(seen):
        seen.extend(c for c in children_of(seen[i]) if c not in skip)
        i += 1
    return seen


#: How a sampler process is told apart: the sampler's file in its command line.
_SAMPLER_ARG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_sampler_child.py")
#: How long a process's command line is read again before "not a sampler" is taken as settled:
#: a process forked to become a sampler shows its parent's command line until it execs.
_SETTLE_S = 0.1


class SamplerFilter:
    """Tells membound's own sampler processes apart, so that a tree's sum leaves them out: a
    sampler is a child of the process it watches (``track``), and of every process that
    measures another run inside the measured one.

    A sampler's command line is read at every call (samplers are few, and the command a
    sampler spawns shows the sampler's command line until it execs); another process's, until
    it has been seen for ``_SETTLE_S``. Bounded: one entry per process alive at the last call.
    """

    def __init__(self) -> None:
        self._settled: dict[int, float] = {}

    def keep(self, pids: list[int]) -> list[int]:
        """``pids`` without samplers (the one that calls this included)."""
        now = time.monotonic()
        settled: dict[int, float] = {}
        kept = []
        for p in pids:
            first = self._settled.get(p, now)
            if now - first < _SETTLE_S and is_sampler(p):
                continue
            settled[p] = first
            kept.append(p)
        self._settled = settled
        return kept


def is_sampler(pid: int) -> bool:
    """True when ``pid`` is a membound sampler process (by its command line)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return os.fsencode(_SAMPLER_ARG) in f.read().split(b"\0")
    except OSError:
        return False


def tree_rss(pid: int, skip: Collection[int] = ()) -> tuple[int, int]:
    """The summed RSS of ``pid`` and its descendants now (those in ``skip`` and theirs left
    out), membound's samplers left out, and how many processes that is (0 when ``pid`` is
    gone)."""
    total = count = 0
    for p in tree_of(pid, skip):
        rss = read_rss(p)
        if rss is not None and (p == pid or not is_sampler(p)):
            total += rss
            count += 1
    return total, count


class TreeReader:
    """Sums the RSS of a process tree, and keeps the largest ``VmHWM`` seen.

    ``pids`` lists the tree's processes at each read: by default ``pid`` and its descendants;
    a :class:`Tracker` gives every process of the run, orphans included. Sampler processes
    (:class:`SamplerFilter`) are left out: they are membound's, not the run's.

    Bounded whatever the run: the largest VmHWM, the pids alive at the last read (to count new
    processes) and a count, never a record per process.
    """

    def __init__(self, pid: int, pids: Callable[[], list[int]] | None = None) -> None:
        self.pid = pid
        self._pids = pids or (lambda: tree_of(pid))
        self._filter = SamplerFilter()
        self.max_hwm: int | None = None
        self.processes_seen = 0
        self._live: set[int] = set()

    def read(self) -> int | None:
        """The tree's summed RSS in bytes, or None when no process of it is left."""
        total = 0
        now_live: set[int] = set()
        for p in self._filter.keep(self._pids()):
            rss = read_rss(p)
            if rss is None:
                continue
            now_live.add(p)
            total += rss
            hwm = read_hwm(p)
            if hwm is not None and (self.max_hwm is None or hwm > self.max_hwm):
                self.max_hwm = hwm
        self.processes_seen += len(now_live - self._live)
        self._live = now_live
        return total if now_live else None
