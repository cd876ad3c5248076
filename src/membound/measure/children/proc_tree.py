"""Reading processes from ``/proc``: one process's RSS and peak, a process tree, and the tree's
summed RSS (psutil where there is no /proc).

Standard library only: the sampler process (``sampler_process.py``) runs this file by path, without
the package; the package imports it as a module (``probes.py``).
"""

from __future__ import annotations

import contextlib
import os
import runpy
import signal
import time
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

__all__ = [
    "HAS_PROC",
    "SamplerFilter",
    "StatmReader",
    "TreeReader",
    "children_of",
    "is_sampler",
    "kill_descendants",
    "read_hwm",
    "read_rss",
    "reset_hwm",
    "tree_of",
    "tree_rss",
]


if TYPE_CHECKING:
    import membound._proc as _PROC
else:
    # ``membound/_proc.py``, the one reader of ``statm``, ``status`` and ``cmdline`` (the
    # imported module where there is one), loaded by ``siblings.py`` beside this file.
    _PROC = runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "siblings.py"))[
        "load"
    ]("membound._proc")
HAS_PROC = _PROC.HAS_PROC


def _psutil_rss(pid: int) -> int | None:
    try:
        import psutil

        return int(psutil.Process(pid).memory_info().rss)
    except Exception:  # psutil missing or the process is gone: no sample
        return None


_PAGE = _PROC.PAGE


def read_rss(pid: int) -> int | None:
    """Resident set size of ``pid`` in bytes from ``/proc/PID/statm``; None when it is gone.

    Where there is no /proc the sampler runs with site-packages and psutil answers instead.
    """
    if not HAS_PROC:
        return _psutil_rss(pid)
    return _resident_bytes(_PROC.statm(pid))


def _resident_bytes(fields: list[int] | None) -> int | None:
    # A zombie reports 0 pages: its memory is already gone, and so is the process for us.
    return fields[1] * _PAGE if fields and fields[1] else None


def read_hwm(pid: int) -> int | None:
    """Peak resident set size (``VmHWM``) of ``pid`` in bytes; None when unavailable."""
    return _PROC.status_bytes(pid, b"VmHWM:")


def reset_hwm(pid: int | str = "self") -> bool:
    """Reset the peak RSS (``VmHWM``) of ``pid`` to its current RSS; False where refused."""
    return _PROC.reset_peak(pid)


class StatmReader:
    """Re-reads one process's ``statm`` through a file descriptor kept open: one ``pread`` per
    sample instead of open/read/close, which keeps the sampler's own cost per tick minimal."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._kept = _PROC.KeptStatm(pid)

    def read(self) -> int | None:
        """Current RSS in bytes, or None when the process is gone."""
        if not HAS_PROC:
            return _psutil_rss(self.pid)
        return _resident_bytes(self._kept.fields())


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
_SAMPLER_ARG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sampler_process.py")
#: How long a forked process that has not called exec is left out before it counts as a
#: process of its own (a fork worker): until it execs, its command line is its parent's (a
#: sampler about to start cannot be told apart). After that, until it execs, it counts by the
#: pages it wrote since the fork (``Private_Dirty``), never by its RSS: its other pages are its
#: parent's, counted there (a 600 MiB process spawning ``true`` through fork read 1.2 GiB when
#: they were counted twice; a loaded machine keeps a child from its exec longer than this).
#: One that shares its parent's memory (vfork) is left out until it execs, however long.
_SETTLE_S = 0.1


class SamplerFilter:
    """Leaves out of a tree's sum what is not the run's own: membound's sampler processes (a
    sampler is a child of the process it watches, ``track``, and of every process that
    measures another run inside the measured one), a child between its fork and its exec
    for its first ``_SETTLE_S``, and one between its vfork and its exec all along.

    ``root`` (the watched process) is always kept. A process is settled once it has called exec
    and is not a sampler; until then its command line (and its flags) are read at every call:
    samplers are few, and a fork worker that never execs may still become one. Bounded: one
    entry per process alive at the last call.
    """

    def __init__(self, root: int | None = None) -> None:
        self._root = root
        self._first_seen: dict[int, float] = {}
        self._settled: set[int] = set()

    def copied(self, pid: int) -> bool:
        """Whether ``pid``, kept by the last :meth:`keep`, was forked and has not called exec
        (its pages its parent's but for those it wrote since)."""
        return pid != self._root and pid not in self._settled

    def keep(self, pids: list[int]) -> list[int]:
        """``pids`` without samplers (the one that calls this included) and without children
        still in their first ``_SETTLE_S`` between fork and exec."""
        now = time.monotonic()
        first_seen: dict[int, float] = {}
        settled: set[int] = set()
        kept = []
        for p in pids:
            first_seen[p] = first = self._first_seen.get(p, now)
            if p in self._settled or p == self._root:
                settled.add(p)
            elif is_sampler(p):
                continue
            elif _PROC.forked_not_executed(p):
                # One that shares its parent's memory (vfork: how ``subprocess`` starts a
                # program) owns no page and will exec or exit: never a process of its own,
                # however long a loaded machine keeps it from its exec.
                if now - first < _SETTLE_S or _PROC.shares_parents_memory(p):
                    continue
            else:
                settled.add(p)
            kept.append(p)
        self._first_seen, self._settled = first_seen, settled
        return kept


def is_sampler(pid: int) -> bool:
    """True when ``pid`` is a membound sampler process (by its command line)."""
    return os.fsencode(_SAMPLER_ARG) in _PROC.cmdline(pid).split(b"\0")


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
        self._filter = SamplerFilter(pid)
        self.max_hwm: int | None = None
        self.processes_seen = 0
        self._live: set[int] = set()

    def read(self) -> int | None:
        """The tree's summed RSS in bytes, or None when no process of it is left."""
        total = 0
        now_live: set[int] = set()
        for p in self._filter.keep(self._pids()):
            copied = self._filter.copied(p)
            rss = read_rss(p)
            if rss is None:
                continue
            if copied:
                # Its RSS and its peak count its parent's pages: only what it wrote is its own.
                written = _PROC.private_dirty(p)
                rss = min(rss, written) if written is not None else rss
            now_live.add(p)
            total += rss
            hwm = None if copied else read_hwm(p)
            if hwm is not None and (self.max_hwm is None or hwm > self.max_hwm):
                self.max_hwm = hwm
        self.processes_seen += len(now_live - self._live)
        self._live = now_live
        return total if now_live else None


def kill_descendants(root: int) -> int:
    """SIGKILL every live descendant of ``root`` until none is left; how many there were.

    With ``root`` a subreaper (:func:`adopt_orphans`) that includes the orphans of its tree.
    """
    killed: set[int] = set()
    for _ in range(200):  # a killed process cannot fork again: a few rounds empty any tree
        rest = [p for p in tree_of(root)[1:] if read_rss(p) is not None]
        if not rest:
            break
        killed.update(rest)
        for p in rest:
            with contextlib.suppress(OSError):
                os.kill(p, signal.SIGKILL)
        time.sleep(0.001)
    return len(killed)
