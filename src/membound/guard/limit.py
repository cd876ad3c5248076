"""``memory_limit()``: the tightest memory limit that applies to a process, and where it came from.

The candidates (``measure/cgroup/memory.py`` reads them): cgroup v2 ``memory.max`` and
``memory.high`` of the process's own group and every group above it, cgroup v1
``memory.limit_in_bytes`` up the path and ``hierarchical_memory_limit``, the soft ``RLIMIT_AS`` and
``RLIMIT_DATA``, and physical RAM. The smallest wins; ``memory.low``/``memory.min`` are never read
(they protect memory, they do not cap it). Each :class:`Limit` also knows how to read the usage it
bounds (:meth:`Limit.usage`): a cgroup's charge less reclaimable page cache for a cgroup limit,
``VmSize``/``VmData`` for the rlimits, the process's anonymous RSS for RAM.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from membound._errors import MemboundError
from membound._proc import pid_exists, running
from membound._units import format_size, parse_size
from membound.measure.cgroup.memory import (
    KeptFiles,
    LimitKind,
    MemoryGroup,
    RawLimit,
    Usage,
    group_usage,
    limits,
    process_usage,
)

__all__ = ["Limit", "memory_limit"]


@dataclass(frozen=True)
class Limit:
    """A memory limit of a process.

    Attributes:
        bytes: the limit in bytes.
        source: the file or setting it was read from (``/sys/fs/cgroup/…/memory.max``,
            ``RLIMIT_AS (soft)``, ``/proc/meminfo MemTotal``, or ``given``).
        kind: ``cgroup-v2-max``, ``cgroup-v2-high``, ``cgroup-v1``, ``rlimit-as``,
            ``rlimit-data`` or ``ram``.
        pid: the process it was read for (``"self"`` for this one).
    """

    bytes: int
    source: str
    kind: LimitKind
    pid: int | str = "self"
    group: MemoryGroup | None = field(default=None, repr=False, compare=False)
    """The cgroup the limit bounds (None for rlimits and RAM)."""
    _files: KeptFiles = field(default_factory=KeptFiles, repr=False, compare=False)

    def usage(self) -> Usage | None:
        """The memory this limit counts, now; None when it cannot be read (the process or the
        group is gone). The files stay open between readings (one system call each).

        For another process the reading is None once that process is gone, even when its
        cgroup lives on (its limit no longer concerns anyone being watched)."""
        if self.pid != "self" and not running(self.pid):
            return None
        if self.group is not None:
            found = group_usage(self.group, self._files.read)
            if found is not None:
                return found
        return process_usage(self.pid, self.kind, self._files.read)

    def describe(self) -> str:
        """``512.0 MiB (cgroup-v1, /sys/fs/cgroup/memory/…/memory.limit_in_bytes)``."""
        return f"{format_size(self.bytes)} ({self.kind}, {self.source})"

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {"bytes": self.bytes, "source": self.source, "kind": self.kind}


def _of(raw: RawLimit, pid: int | str) -> Limit:
    return Limit(raw.bytes, raw.source, raw.kind, pid, raw.group)


def memory_limit(pid: int | None = None) -> Limit:
    """The tightest memory limit that applies to this process (or to ``pid``).

    Returns:
        A :class:`Limit`; physical RAM when nothing tighter applies.

    Raises:
        MemboundError: ``pid`` names no running process.
    """
    who: int | str = "self" if pid is None or pid == os.getpid() else pid
    if who != "self" and not pid_exists(who):
        raise MemboundError(f"no process with pid {pid}", hint="give the pid of a running process")
    found = limits(who)
    best = min(found, key=lambda raw: raw.bytes)
    return _of(best, who)


def given_limit(size: int | str, pid: int | None = None) -> Limit:
    """A limit the caller states (``limit="2 GB"``), judged like RAM: against the process's
    anonymous and shared resident memory."""
    n = parse_size(size)
    if n <= 0:
        raise MemboundError(f"a memory limit must be positive, got {size!r}")
    who: int | str = "self" if pid is None or pid == os.getpid() else pid
    return Limit(n, "given", "ram", who)
