"""Probes: one reading of one memory figure, each naming where it came from.

RSS is read from ``/proc/PID/statm`` on Linux (a few microseconds) and from psutil elsewhere. Peak
RSS is the kernel's high-water mark ``VmHWM``; writing ``5`` to ``/proc/PID/clear_refs`` resets it.
``ru_maxrss`` of a subprocess child is never used: it inherits the parent's RSS (DESIGN §5.3).
"""

from __future__ import annotations

import os
import sys
import tracemalloc
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psutil

from membound._proc import HAS_PROC, reset_peak
from membound.measure import child_code

if TYPE_CHECKING:
    from membound.measure.children.inside import GcMonitor
    from membound.measure.children.proc_tree import children_of as proc_children
    from membound.measure.children.proc_tree import read_hwm, read_rss, tree_of
    from membound.measure.children.proc_tree import tree_rss as proc_tree_rss
else:
    GcMonitor = child_code.load("inside").GcMonitor
    proc_children = child_code.load("proc_tree").children_of
    read_hwm = child_code.load("proc_tree").read_hwm
    read_rss = child_code.load("proc_tree").read_rss
    proc_tree_rss = child_code.load("proc_tree").tree_rss
    tree_of = child_code.load("proc_tree").tree_of


__all__ = [
    "GcMonitor",
    "HeapReading",
    "heap_now",
    "peak_rss",
    "reset_peak_rss",
    "rss",
    "tree_of",
    "tree_rss",
    "uss",
]


def rss(pid: int | None = None) -> int:
    """Current resident set size of ``pid`` (default: this process) in bytes.

    Raises:
        psutil.NoSuchProcess: the process does not exist.
    """
    pid = os.getpid() if pid is None else pid
    if HAS_PROC:
        value = read_rss(pid)
        if value is not None:
            return value
    return int(psutil.Process(pid).memory_info().rss)


def peak_rss(pid: int | None = None) -> tuple[int | None, str]:
    """Peak RSS of ``pid`` and the name of its source.

    Returns:
        ``(bytes, "VmHWM")`` on Linux; ``(bytes, "ru_maxrss (self)")`` for this process where there
        is no /proc; ``(None, "unavailable")`` otherwise.
    """
    pid = os.getpid() if pid is None else pid
    if HAS_PROC:
        hwm = read_hwm(pid)
        if hwm is not None:
            return hwm, "VmHWM"
    if pid == os.getpid():
        import resource

        scale = 1 if sys.platform == "darwin" else 1024  # macOS reports bytes, Linux KiB
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale, "ru_maxrss (self)"
    return None, "unavailable"


def reset_peak_rss(pid: int | None = None) -> bool:
    """Reset the kernel's peak-RSS mark of ``pid`` to its current RSS.

    Returns:
        True if the kernel accepted the reset (``/proc/PID/clear_refs``), False where it is not
        permitted or not supported; then peaks cover the process's whole life so far.
    """
    return reset_peak("self" if pid is None else pid)


def trim_heap() -> None:
    """Hand the C allocator's free pages back to the kernel (glibc ``malloc_trim(0)``; nothing
    elsewhere), so that a measured call cannot reuse resident memory an earlier call freed and
    look smaller than it is. (``bound.release_memory`` does the same for users; ``measure`` may
    not import ``bound``, DESIGN §2.)"""
    import contextlib
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)  # libc is loaded: no find_library subprocess


def uss(pid: int | None = None) -> int:
    """Unique set size: memory that would be freed if ``pid`` exited (slower; walks page maps)."""
    return int(psutil.Process(os.getpid() if pid is None else pid).memory_full_info().uss)


def children(pid: int | None = None) -> list[int]:
    """The direct children of ``pid`` (default: this process) now."""
    pid = os.getpid() if pid is None else pid
    if HAS_PROC:
        return proc_children(pid)
    try:
        return [c.pid for c in psutil.Process(pid).children()]
    except psutil.Error:
        return []


def tree_rss(pid: int | None = None, skip: Collection[int] = ()) -> int:
    """Summed RSS of ``pid`` (default: this process) and all its descendants, membound's own
    sampler processes and the children in ``skip`` (with theirs) left out (0 when the process
    is gone). The same sum as the sampler's in tree mode (``TreeReader`` of
    ``children/proc_tree.py``); psutil's ``children(recursive=True)`` without /proc (``skip``
    applies there to the listed processes only).
    """
    pid = os.getpid() if pid is None else pid
    if HAS_PROC:
        return proc_tree_rss(pid, skip)[0]
    total = 0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    for proc in procs:
        try:
            if proc.pid in skip:
                continue
            if proc.pid == pid or not any("sampler_process.py" in a for a in proc.cmdline()):
                total += rss(proc.pid)
        except (psutil.Error, OSError):
            continue
    return total


@dataclass(frozen=True)
class HeapReading:
    """Python heap as tracemalloc sees it."""

    current: int
    """Bytes held by Python allocations now."""
    peak: int
    """Highest ``current`` since tracing started or the last ``tracemalloc.reset_peak()``."""


def heap_now() -> HeapReading | None:
    """tracemalloc's current and peak heap, or None when tracemalloc is not tracing."""
    if not tracemalloc.is_tracing():
        return None
    current, peak = tracemalloc.get_traced_memory()
    return HeapReading(current, peak)
