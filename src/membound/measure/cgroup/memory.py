"""Memory limits and usage as the kernel keeps them: cgroup v2 and v1, rlimits, RAM.

The production guard (``guard/limit.py``, ``guard/watchdog/``) and ``membound watch`` judge a
process against the tightest limit that applies to it, and judge it with the usage that limit
bounds:

* a **cgroup** limit bounds the whole group (every process in it and below it), charged with
  anonymous memory *and* page cache; the OOM killer fires only when reclaim cannot bring the charge
  under the limit, and page cache that is not shared memory can be reclaimed. So a group's usage
  is reported as ``charged`` (what the kernel charged), ``anon``, ``file`` (page cache) and
  ``shmem`` apart, and judged as ``charged - (file - shmem)``: what reclaim cannot take back
  without swap.
* ``RLIMIT_AS`` bounds the address space (``VmSize``), ``RLIMIT_DATA`` private writable mappings
  (``VmData``): each is judged with the figure it bounds.
* physical RAM bounds a process's resident memory; judged as ``RssAnon + RssShmem``.

``memory.low`` and ``memory.min`` are protections, not caps, and are never read as limits (Dask
took ``memory.low`` for a cap). Inside a container only the cgroup's figures count; the host's
RAM is the last resort.

Parsers take the text of a file so that the kernel's exact formats are tested without a kernel
that has them (cgroup v2's memory controller is not mounted on every machine).

Why not a library: psutil reports host-wide memory inside containers and reads no cgroup files;
no well-kept library reads cgroup v1 and v2 limits, events and pressure together.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from membound._data_cap import soft_limit_of_its_own
from membound._proc import status_fields
from membound.measure.cgroup.groups import memory_hierarchies

__all__ = [
    "UNLIMITED_V1",
    "KeptFiles",
    "LimitKind",
    "MemoryGroup",
    "RawLimit",
    "Usage",
    "group_usage",
    "limits",
    "memory_groups",
    "memory_room",
    "oom_kills",
    "parse_flat_keyed",
    "parse_limit_value",
    "parse_pressure",
    "pressure",
    "process_usage",
    "ram_available",
    "ram_bytes",
    "read_text",
]

LimitKind = Literal[
    "cgroup-v2-max", "cgroup-v2-high", "cgroup-v1", "rlimit-as", "rlimit-data", "ram"
]

#: cgroup v1 writes "no limit" as the largest page-aligned 63-bit number; anything from 2**62 up
#: is no limit on any machine that exists.
UNLIMITED_V1 = 1 << 62


def read_text(path: str) -> str | None:
    """The text of a small kernel file, or None when it cannot be read."""
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read(65536)
    except OSError:
        return None


class KeptFiles:
    """Kernel files kept open and read with one ``pread`` each.

    A watchdog reads the same two files every few milliseconds. Opening, reading and closing
    them is four system calls, and each one releases the GIL: in a process whose other thread
    is busy, getting the GIL back takes up to the switch interval (5 ms) every time, so a
    reading that releases it once instead of four times reacts sooner. At most ``size`` files
    are kept (the oldest is closed first).
    """

    def __init__(self, size: int = 8) -> None:
        self._fds: dict[str, int] = {}
        self._size = size
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def __copy__(self) -> KeptFiles:
        return KeptFiles(self._size)  # a copy opens its own: closing one must not close both

    def __deepcopy__(self, memo: dict[int, object]) -> KeptFiles:
        return KeptFiles(self._size)

    def __reduce__(self) -> tuple[type[KeptFiles], tuple[int]]:
        return (KeptFiles, (self._size,))

    def read(self, path: str) -> str | None:
        """The file's text, or None when it cannot be read (it is then opened again next time)."""
        with self._lock:
            if self._pid != os.getpid():
                # A forked child: the descriptors are the parent's (``/proc/self`` was opened as
                # the parent's); forget them without closing what the parent still uses.
                self._fds, self._pid = {}, os.getpid()
            return self._read(path)

    def _read(self, path: str) -> str | None:
        fd = self._fds.get(path)
        try:
            if fd is None:
                if len(self._fds) >= self._size:
                    self._close(next(iter(self._fds)))
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                self._fds[path] = fd
            return os.pread(fd, 65536, 0).decode("ascii", "replace")
        except OSError:
            self._close(path)
            return None

    def close(self, path: str | None = None) -> None:
        """Close one file, or all of them."""
        with self._lock:
            if self._pid == os.getpid():
                self._close(path)

    def _close(self, path: str | None) -> None:
        for name in [path] if path is not None else list(self._fds):
            fd = self._fds.pop(name, None) if name is not None else None
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def parse_limit_value(text: str | None) -> int | None:
    """A limit file's value in bytes (``memory.max``, ``memory.high``, ``limit_in_bytes``);
    None for ``max``, for v1's "unlimited" and for anything unreadable."""
    if text is None:
        return None
    value = text.strip()
    if value == "max" or not value.isdigit():
        return None
    n = int(value)
    return None if n >= UNLIMITED_V1 else n


def parse_flat_keyed(text: str | None, keys: tuple[str, ...] | None = None) -> dict[str, int]:
    """``key value`` lines (``memory.stat``, ``memory.events``, ``memory.oom_control``); with
    ``keys``, only those keys (the same values, found by one compiled pattern: a watchdog reads
    three of ``memory.stat``'s ~40 lines every 10 ms, and splitting them all cost it ~40 µs)."""
    if keys is not None:
        return {k: int(v) for k, v in _keys_pattern(keys).findall(text or "")}
    found: dict[str, int] = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            found[parts[0]] = int(parts[1])
    return found


@functools.lru_cache(maxsize=16)
def _keys_pattern(keys: tuple[str, ...]) -> re.Pattern[str]:
    """A line of one of ``keys`` and a whole number, as ``parse_flat_keyed`` splits the
    kernel's lines (``\\n``-ended; spaces or tabs around and between)."""
    names = "|".join(re.escape(k) for k in keys)
    return re.compile(rf"^[ \t]*({names})[ \t]+(-?[0-9]+)[ \t]*$", re.M | re.A)


def parse_pressure(text: str | None) -> dict[str, dict[str, float]] | None:
    """A PSI file (``memory.pressure``, ``/proc/pressure/memory``) as
    ``{"some": {"avg10": …, "avg60": …, "avg300": …, "total": …}, "full": {…}}``; the averages
    are percentages of wall time, ``total`` microseconds stalled. None when unreadable."""
    if text is None:
        return None
    found: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        if kind not in ("some", "full"):
            continue
        fields: dict[str, float] = {}
        for item in rest.split():
            key, _, value = item.partition("=")
            try:
                fields[key] = float(value)
            except ValueError:
                continue
        found[kind] = fields
    return found or None


@dataclass(frozen=True)
class MemoryGroup:
    """A memory cgroup directory of a process.

    Attributes:
        version: 2 (unified hierarchy) or 1 (the v1 ``memory`` controller).
        path: the group's directory.
        root: the hierarchy's mount point (walks up stop there).
    """

    version: int
    path: str
    root: str

    def file(self, name: str) -> str:
        """Path of one of the group's files."""
        return os.path.join(self.path, name)

    def parents(self) -> list[MemoryGroup]:
        """This group and every group above it, up to and including the mount point: inside a
        container with a cgroup namespace the mount point *is* the container's own group, with
        its limit. (The host's real root group has no limit files, or v1's "unlimited".)"""
        found: list[MemoryGroup] = []
        path = os.path.normpath(self.path)
        root = os.path.normpath(self.root)
        while path == root or path.startswith(root + os.sep):
            found.append(MemoryGroup(self.version, path, self.root))
            if path == root:
                break
            path = os.path.dirname(path)
        return found

    def holds(self, pid: int | str = "self") -> bool:
        """Whether ``pid`` runs in this group or in one below it: its memory is charged here."""
        here = os.path.normpath(self.path)
        return any(
            group.version == self.version
            and any(os.path.normpath(up.path) == here for up in group.parents())
            for group in memory_groups(pid)
        )


def memory_groups(pid: int | str = "self") -> list[MemoryGroup]:
    """The memory cgroups ``pid`` is in: the unified (v2) group when its memory controller is
    enabled there, and the v1 ``memory`` controller's group; empty without cgroups."""
    groups: list[MemoryGroup] = []
    for version, path, root in memory_hierarchies(pid):
        if version == 2 and not _v2_has_memory(path, root):
            continue
        groups.append(MemoryGroup(version, path, root))
    return groups


def _v2_has_memory(path: str, root: str) -> bool:
    # The memory controller is on for a group when its parent enables it for children; a group
    # that has it shows ``memory.current`` (the host's root group never does; a container's
    # namespaced root, which is its own group, does).
    return any(
        os.path.exists(g.file("memory.current")) for g in MemoryGroup(2, path, root).parents()
    )


@dataclass(frozen=True)
class RawLimit:
    """One limit that applies to a process.

    Attributes:
        bytes: the limit in bytes.
        kind: which mechanism sets it (see :data:`LimitKind`).
        source: the file or setting it was read from.
        group: the cgroup it bounds (None for rlimits and RAM).
    """

    bytes: int
    kind: LimitKind
    source: str
    group: MemoryGroup | None = None


def _v1_limits(group: MemoryGroup) -> list[RawLimit]:
    found: list[RawLimit] = []
    for g in group.parents():
        own = parse_limit_value(read_text(g.file("memory.limit_in_bytes")))
        if own is not None:
            found.append(RawLimit(own, "cgroup-v1", g.file("memory.limit_in_bytes"), g))
    # ``hierarchical_memory_limit`` also covers ancestors above the visible root (a container
    # sees its own group as the root of the mount, and the host's limit above it).
    stat = parse_flat_keyed(read_text(group.file("memory.stat")))
    hier = stat.get("hierarchical_memory_limit")
    if hier is not None and hier < UNLIMITED_V1 and all(x.bytes != hier for x in found):
        found.append(
            RawLimit(
                hier, "cgroup-v1", group.file("memory.stat") + ":hierarchical_memory_limit", group
            )
        )
    return found


def _v2_limits(group: MemoryGroup) -> list[RawLimit]:
    found: list[RawLimit] = []
    for g in group.parents():
        for name, kind in (("memory.max", "cgroup-v2-max"), ("memory.high", "cgroup-v2-high")):
            value = parse_limit_value(read_text(g.file(name)))
            if value is not None:
                found.append(RawLimit(value, kind, g.file(name), g))  # type: ignore[arg-type]
    return found


def _rlimits(pid: int | str) -> list[RawLimit]:
    found: list[RawLimit] = []
    if pid == "self" or pid == os.getpid():
        if sys.platform != "linux":
            return found
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY and soft > 0:
            found.append(RawLimit(soft, "rlimit-as", "RLIMIT_AS (soft)", None))
        # Not a cap membound's own backstop or budget keeps in force: that is no limit.
        data = soft_limit_of_its_own()
        if data is not None and data > 0:
            found.append(RawLimit(data, "rlimit-data", "RLIMIT_DATA (soft)", None))
        return found
    # Another process: its /proc/PID/limits says the same ("Max address space", "Max data size").
    text = read_text(f"/proc/{pid}/limits") or ""
    for line in text.splitlines():
        for label, name, kind in (
            ("Max address space", "RLIMIT_AS", "rlimit-as"),
            ("Max data size", "RLIMIT_DATA", "rlimit-data"),
        ):
            if line.startswith(label):
                word = line[len(label) :].split()[0]
                if word.isdigit():
                    found.append(RawLimit(int(word), kind, f"{name} (soft)", None))  # type: ignore[arg-type]
    return found


def ram_bytes() -> int:
    """Physical RAM of the machine (``MemTotal``), bytes."""
    found = _meminfo("MemTotal:", read_text)
    if found is not None:
        return found
    import psutil

    return int(psutil.virtual_memory().total)


def ram_available(read: Reader = read_text) -> int | None:
    """What the machine could still give before its OOM killer acts (``MemAvailable``: free
    memory and the page cache reclaim can take back), bytes; None where it is not told."""
    return _meminfo("MemAvailable:", read)


def _meminfo(field: str, read: Reader) -> int | None:
    text = read("/proc/meminfo")
    if text:
        for line in text.splitlines():
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    return None


def limits(pid: int | str = "self") -> list[RawLimit]:
    """Every memory limit that applies to ``pid``, the physical RAM last (always present)."""
    found: list[RawLimit] = []
    for group in memory_groups(pid):
        found.extend(_v2_limits(group) if group.version == 2 else _v1_limits(group))
    found.extend(_rlimits(pid))
    found.append(RawLimit(ram_bytes(), "ram", "/proc/meminfo MemTotal", None))
    return found


@dataclass(frozen=True)
class Usage:
    """Memory that a limit counts, read at one moment.

    Attributes:
        judged: the figure compared with the limit (see the module docstring): for a cgroup,
            charged memory less reclaimable page cache; for ``rlimit-as`` ``VmSize``; for
            ``rlimit-data`` ``VmData``; for RAM ``RssAnon + RssShmem`` of the process.
        charged: what the kernel charged (a cgroup's usage with page cache; the process's RSS).
        anon: anonymous memory.
        file: page cache (cgroup) or file-backed resident pages (process).
        shmem: shared memory (tmpfs, shared anonymous mappings).
        source: which files the figures came from.
    """

    judged: int
    charged: int
    anon: int
    file: int
    shmem: int
    source: str


Reader = Callable[[str], "str | None"]


#: The lines of ``memory.stat`` a group's usage is judged from, per cgroup version.
_V2_USAGE_KEYS = ("anon", "file", "shmem")
_V1_USAGE_KEYS = ("total_rss", "rss", "total_cache", "cache", "total_shmem", "shmem")


def group_usage(group: MemoryGroup, read: Reader = read_text) -> Usage | None:
    """The group's usage (the group and every group below it); None when unreadable.
    ``read`` reads a file (a :meth:`KeptFiles.read` to keep them open)."""
    keys = _V2_USAGE_KEYS if group.version == 2 else _V1_USAGE_KEYS
    stat = parse_flat_keyed(read(group.file("memory.stat")), keys)
    if group.version == 2:
        charged = parse_limit_value(read(group.file("memory.current")))
        if charged is None or not stat:
            return None
        anon, file, shmem = stat.get("anon", 0), stat.get("file", 0), stat.get("shmem", 0)
        source = group.file("memory.current") + " + memory.stat"
    else:
        usage_text = read(group.file("memory.usage_in_bytes"))
        charged = int(usage_text) if usage_text and usage_text.strip().isdigit() else None
        if charged is None or not stat:
            return None
        # ``total_*`` include the groups below (``use_hierarchy`` is always on since 5.x).
        anon = stat.get("total_rss", stat.get("rss", 0))
        file = stat.get("total_cache", stat.get("cache", 0))
        shmem = stat.get("total_shmem", stat.get("shmem", 0))
        source = group.file("memory.usage_in_bytes") + " + memory.stat"
    judged = max(0, charged - max(0, file - shmem))
    return Usage(judged, charged, anon, file, shmem, source)


def process_usage(
    pid: int | str = "self", kind: LimitKind = "ram", read: Reader = read_text
) -> Usage | None:
    """The process's own memory, judged as the limit ``kind`` counts it (from its
    ``/proc/PID/status``, read with ``read``); None when the process is gone."""
    fields = status_fields(pid, read)
    if not fields or "VmRSS" not in fields:
        return None
    anon, file, shmem = (
        fields.get("RssAnon", 0),
        fields.get("RssFile", 0),
        fields.get("RssShmem", 0),
    )
    judged = anon + shmem
    if kind == "rlimit-as":
        judged = fields.get("VmSize", judged)
    elif kind == "rlimit-data":
        judged = fields.get("VmData", judged)
    return Usage(judged, fields["VmRSS"], anon, file, shmem, f"/proc/{pid}/status")


def memory_room(pid: int | str = "self") -> tuple[int, RawLimit | None] | None:
    """How much more memory new processes started by ``pid`` could use before an OOM killer
    acts, and the limit that decides it (None for the machine's ``MemAvailable``): the least
    of what the machine has available and, for each memory cgroup limit over ``pid``, the limit
    less what its group is judged to use. rlimits are left out: each process has its own.
    None when nothing can be read."""
    rooms: list[tuple[int, RawLimit | None]] = []
    available = ram_available()
    if available is not None:
        rooms.append((available, None))
    for limit in limits(pid):
        if limit.group is None or limit.kind == "cgroup-v2-high":  # high throttles, kills not
            continue
        usage = group_usage(limit.group)
        if usage is not None:
            rooms.append((max(0, limit.bytes - usage.judged), limit))
    return min(rooms, key=lambda room: room[0]) if rooms else None


def oom_kills(group: MemoryGroup) -> int | None:
    """Processes the OOM killer killed in the group (``oom_kill``), or None where the kernel does
    not count them (v1 before Linux 4.13)."""
    name = "memory.events" if group.version == 2 else "memory.oom_control"
    return parse_flat_keyed(read_text(group.file(name))).get("oom_kill")


def pressure(group: MemoryGroup | None) -> dict[str, dict[str, float]] | None:
    """Memory pressure stall information: the group's (v2) or the machine's
    (``/proc/pressure/memory``); None where the kernel has no PSI."""
    if group is not None and group.version == 2:
        found = parse_pressure(read_text(group.file("memory.pressure")))
        if found is not None:
            return found
    return parse_pressure(read_text("/proc/pressure/memory"))
