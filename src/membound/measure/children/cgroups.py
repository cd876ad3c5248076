"""The child side of control groups, standard library only and run by path: where a process
sits, and a group of its own for every measured run (typed in the package by ``cgroup/groups.py``).

A run's processes can leave the process tree (``setsid`` and a double fork make a daemon that
init adopts), and then no walk from the run's first pid finds them again. The kernel's control
groups do not lose them: a child is born into its parent's cgroup and leaves only when moved. So
each run that can gets a cgroup of its own (:class:`RunGroup`), created beside this process in the
first hierarchy that lets it (cgroup v2, then the v1 ``pids``, ``freezer`` and ``memory``
controllers), and after the run every process still in it is killed and the group removed.

Where no hierarchy can be written (not root, a read-only cgroupfs, no cgroups at all) the caller
falls back to ``PR_SET_CHILD_SUBREAPER`` (see ``sampler_process.py``), which keeps orphans in the
tree as long as the subreaper lives.

A run group is named ``membound-PID`` after the sampler that made it. A sampler killed outright
(SIGKILL) cannot remove its group; the next group made beside it removes every ``membound-PID``
whose maker is gone (no such pid, or one that started after the group was made), killing what
still runs there (:func:`remove_stale`). A run measured inside a run makes its group inside the
outer one; killing, listing and removing a group take the groups below it too.

This file uses the standard library only: the sampler process runs it by path, without the
package (it starts with ``-E -s -S``). Setting ``MEMBOUND_PROCESS_TRACKING=subreaper`` in the
environment turns the cgroups off (the fallback is then used even where they work).

Why not a library: psutil (a dependency) finds processes by walking parent links, which is what
orphans escape; no well-kept library creates and reaps transient cgroups without systemd.
"""

from __future__ import annotations

import contextlib
import os
import runpy
import signal
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import membound._proc as _PROC
else:
    # ``membound/_proc.py``, the one reader of a process's ``stat`` (the imported module where
    # there is one), loaded by ``siblings.py`` beside this file.
    _PROC = runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "siblings.py"))[
        "load"
    ]("membound._proc")

__all__ = [
    "Hierarchy",
    "RunGroup",
    "hierarchies",
    "kill_all",
    "memory_hierarchies",
    "procs",
    "remove",
    "remove_stale",
    "tracking_disabled",
]

#: Name prefix of every run group; the sampler's pid follows.
PREFIX = "membound-"
#: The v1 controllers tried, in order: the lightest first (``pids`` keeps no accounts of memory).
_V1_CONTROLLERS = ("pids", "freezer", "memory")
#: Rounds of SIGKILL before a group that keeps forking is given up on (each round kills every
#: process present; a killed process cannot fork again, so a few rounds empty any group).
_KILL_ROUNDS = 200


class Hierarchy:
    """One mounted cgroup hierarchy and this process's cgroup in it.

    Attributes:
        version: 2 for the unified hierarchy, 1 for a v1 controller's.
        controllers: the v1 controllers mounted there (empty for v2).
        path: this process's own cgroup directory in that hierarchy.
    """

    def __init__(self, version: int, controllers: tuple[str, ...], path: str) -> None:
        self.version = version
        self.controllers = controllers
        self.path = path

    def __repr__(self) -> str:
        return f"Hierarchy(v{self.version}, {','.join(self.controllers) or '-'}, {self.path})"


def tracking_disabled() -> bool:
    """True when the environment asks for the subreaper fallback instead of cgroups."""
    return os.environ.get("MEMBOUND_PROCESS_TRACKING", "").strip().lower() == "subreaper"


def _own_paths(pid: str = "self") -> dict[str, str]:
    """This process's cgroup path per hierarchy key ("" for v2, else the controller list)."""
    paths: dict[str, str] = {}
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            for line in f:
                parts = line.rstrip("\n").split(":", 2)
                if len(parts) == 3:
                    # one line per mounted hierarchy: a dozen at most
                    paths[parts[1]] = parts[2]  # noqa: MB201
    except OSError:
        pass
    return paths


def _mounts() -> list[tuple[str, str, str, tuple[str, ...]]]:
    """The cgroup mounts: (fstype, mount point, root within the hierarchy, v1 controllers)."""
    found: list[tuple[str, str, str, tuple[str, ...]]] = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, sep, right = line.partition(" - ")
                if not sep:
                    continue
                fields, extra = left.split(), right.split()
                if len(fields) < 5 or len(extra) < 3 or extra[0] not in ("cgroup", "cgroup2"):
                    continue
                options = tuple(extra[2].split(","))
                names = tuple(o for o in options if o in _KNOWN_V1 or o.startswith("name="))
                # only the cgroup mounts are kept: one per hierarchy
                mount = (extra[0], _unescape(fields[4]), _unescape(fields[3]), names)
                found.append(mount)  # noqa: MB201
    except OSError:
        pass
    return found


_KNOWN_V1 = frozenset(
    {
        *("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "net_prio"),
        *("blkio", "perf_event", "hugetlb", "pids", "rdma", "misc"),
    }
)


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def hierarchies() -> list[Hierarchy]:
    """The hierarchies this process is in, with its own cgroup directory in each.

    Cgroup v2 first, then the v1 hierarchies of :data:`_V1_CONTROLLERS`, in that order (others
    are left out: a group in them would change how its processes are scheduled).
    A hierarchy whose mount does not show this process's cgroup (a mount of a subtree that
    does not contain it) is left out.
    """
    own = _own_paths()
    found: list[tuple[int, Hierarchy]] = []
    for fstype, mount, root, names in _mounts():
        key: str | None
        if fstype == "cgroup2":
            key, version, rank = "", 2, 0
        else:
            key = next((k for k in own if k and set(k.split(",")) == set(names)), None)
            if key is None:
                continue
            version = 1
            # Only controllers that change nothing for the processes in a new group: a new
            # ``cpu`` group would get its own CPU shares, a ``cpuset`` one no CPUs at all.
            if len(names) != 1 or names[0] not in _V1_CONTROLLERS:
                continue
            rank = 1 + _V1_CONTROLLERS.index(names[0])
        path = own.get(key)
        if path is None:
            continue
        relative = os.path.relpath(path, root) if root != "/" else path.lstrip("/")
        if relative.startswith(".."):
            continue
        directory = os.path.normpath(os.path.join(mount, relative))
        found.append((rank, Hierarchy(version, names if version == 1 else (), directory)))
    found.sort(key=lambda pair: pair[0])
    return [h for _, h in found]


def memory_hierarchies(pid: int | str = "self") -> list[tuple[int, str, str]]:
    """Where ``pid`` sits in the hierarchies that may account its memory: ``(version, its cgroup
    directory, the hierarchy's mount point)`` for the unified hierarchy and for the v1 ``memory``
    controller (whether v2's memory controller is on is for the caller to check)."""
    own = _own_paths(str(pid))
    found: list[tuple[int, str, str]] = []
    for fstype, mount, root, names in _mounts():
        if fstype == "cgroup2":
            key: str | None = ""
            version = 2
        elif "memory" in names:
            key = next((k for k in own if k and "memory" in k.split(",")), None)
            version = 1
        else:
            continue
        path = own.get(key) if key is not None else None
        if path is None:
            continue
        relative = os.path.relpath(path, root) if root != "/" else path.lstrip("/")
        if relative.startswith(".."):
            continue
        found.append((version, os.path.normpath(os.path.join(mount, relative)), mount))
    return found


def _owner_alive(pid: int, group: str) -> bool:
    """Whether the process that made ``group`` still runs: ``pid`` is alive and started before
    the group was made (a later process with that pid is a stranger that reused it)."""
    started = _PROC.started_at(pid)
    if started is None:
        return False
    try:
        made = os.stat(group).st_ctime
    except OSError:
        return False
    return started <= made + 1.0  # start times are in clock ticks and btime in whole seconds


def _subgroups_first(path: str) -> list[str]:
    """``path`` and every cgroup below it, deepest first (a run measured inside a run nests)."""
    found = [path]
    i = 0
    while i < len(found):
        try:
            with os.scandir(found[i]) as entries:
                found.extend(e.path for e in entries if e.is_dir(follow_symlinks=False))
        except OSError:
            pass
        i += 1
    return found[::-1]


def procs(path: str) -> list[int]:
    """The pids in the cgroup at ``path`` and in the groups below it (empty when it is gone)."""
    pids: list[int] = []
    for group in _subgroups_first(path):
        try:
            with open(os.path.join(group, "cgroup.procs"), "rb") as f:
                # the run's own processes: as many as it has, and they are all wanted
                pids.extend(int(x) for x in f.read().split())  # noqa: MB103
        except (OSError, ValueError):
            continue
    return pids


def kill_all(path: str, deadline: float | None = None) -> int:
    """SIGKILL every process in the cgroup at ``path`` (and below) until none is left, or until
    ``deadline`` (``time.monotonic()``; one second from now by default); how many were killed.

    Where the kernel offers ``cgroup.kill`` (v2, Linux 5.14) it kills the group at once, forks in
    flight included; elsewhere rounds of SIGKILL repeat until the group stays empty. A process
    that cannot die (frozen, or in uninterruptible sleep) is given up on at the deadline.
    """
    if deadline is None:
        deadline = time.monotonic() + 1.0
    killed: set[int] = set()
    kill_file = os.path.join(path, "cgroup.kill")
    for _ in range(_KILL_ROUNDS):
        present = procs(path)
        if not present:
            break
        killed.update(present)
        if os.path.exists(kill_file):
            with contextlib.suppress(OSError), open(kill_file, "w") as f:
                f.write("1")
        for pid in present:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            break
        time.sleep(0.001)
    return len(killed)


def remove(path: str, timeout: float = 1.0) -> int:
    """Kill everything in the cgroup at ``path`` and remove it with the groups below it, within
    about ``timeout`` seconds (a group that stays busy is left for a later sweep); how many
    processes were killed."""
    deadline = time.monotonic() + timeout
    killed = kill_all(path, deadline)
    while True:
        busy = False
        for group in _subgroups_first(path):
            try:
                os.rmdir(group)
            except FileNotFoundError:
                continue
            except OSError:
                busy = True  # the last exits are still being torn down for a moment
        if not busy or time.monotonic() > deadline:
            return killed
        kill_all(path, deadline)
        time.sleep(0.005)


def remove_stale(parent: str, keep: str = "") -> int:
    """Remove the run groups in ``parent`` whose maker is gone (all but ``keep``, a name);
    how many processes that killed. Each gets a short time: a group that stays busy is left
    for a later sweep."""
    killed = 0
    try:
        names = os.listdir(parent)
    except OSError:
        return 0
    for name in names:
        if not name.startswith(PREFIX) or name == keep:
            continue
        owner = name[len(PREFIX) :]
        path = os.path.join(parent, name)
        if not owner.isdigit() or _owner_alive(int(owner), path):
            continue
        killed += remove(path, timeout=0.2)
    return killed


class RunGroup:
    """A cgroup of one run, beside this process's own, in the first hierarchy that allows it.

    Make one with :meth:`create`; it is None where no hierarchy can be written.

    Attributes:
        path: the group's directory.
        home: this process's own cgroup directory in that hierarchy (where it returns to after
            spawning into the group).
        stale_killed: processes of earlier, dead runs killed while making this group.
    """

    def __init__(self, path: str, home: str, stale_killed: int) -> None:
        self.path = path
        self.home = home
        self.stale_killed = stale_killed

    @classmethod
    def create(cls, owner: int) -> RunGroup | None:
        """Make ``membound-OWNER`` in the first writable hierarchy; None if none is."""
        if tracking_disabled():
            return None
        for hierarchy in hierarchies():
            home = hierarchy.path
            path = os.path.join(home, f"{PREFIX}{owner}")
            try:
                os.mkdir(path)
            except FileExistsError:
                remove(path)  # a dead sampler's with our pid: reuse is safe once emptied
                try:
                    os.mkdir(path)
                except OSError:
                    continue
            except OSError:
                continue
            group = cls(path, home, 0)
            # Only a group this process can move itself into and back out of is any use.
            try:
                group.enter(os.getpid())
                group.leave(os.getpid())
            except OSError:
                with contextlib.suppress(OSError):
                    os.rmdir(path)
                continue
            group.stale_killed = remove_stale(home, keep=os.path.basename(path))
            return group
        return None

    def enter(self, pid: int) -> None:
        """Move ``pid`` into the group (its children from now on are born in it)."""
        with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
            f.write(str(pid))

    def leave(self, pid: int) -> None:
        """Move ``pid`` back to this process's own cgroup."""
        with open(os.path.join(self.home, "cgroup.procs"), "w") as f:
            f.write(str(pid))

    def pids(self) -> list[int]:
        """The processes in the group now."""
        return procs(self.path)

    def kill_all(self) -> int:
        """SIGKILL everything in the group; how many processes that was."""
        return kill_all(self.path)

    def remove(self) -> int:
        """Kill everything in the group and remove it; how many processes were killed."""
        return remove(self.path)
