"""What ``membound watch --cmd`` judges: the whole process tree the command starts.

A command is often a tree: ``gunicorn`` and its workers, ``sh -c`` and the program it runs,
a job and its ``multiprocessing`` pool. Watching the top pid alone missed the workers' memory
(all of it, for gunicorn). So the command is started in a memory cgroup of its own, made for it
under membound's own group (cgroup v2 where its memory controller is on, else v1), and the
watchdog judges that group's usage: everything the command and its descendants hold, as the
OOM killer counts it. Without ``--limit`` the group gets no limit of its own: the tightest limit
membound itself has applies (the command lives under it), so watching never changes when the
kernel would kill the command. With ``--limit`` that size becomes the group's own limit
(``memory.max`` on v2, ``memory.limit_in_bytes`` on v1), so what is judged is what the kernel
enforces. The group is removed at the end, what is left in it killed first.

Where no group can be made (not root, a read-only cgroup filesystem, v2 without delegation),
the tree is summed instead (each process's anonymous and shared resident memory, read from
``/proc`` at every reading, with ``membound.measure.probes.tree_of``), and the watch says so in
one line; ``--limit`` is then a figure judged against, not enforced. Pages a fork still
shares copy-on-write count once per process there: the sum is an upper bound (PSS would split
them, but reading ``smaps_rollup`` walks every mapping at each reading).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from membound._units import format_size
from membound.cli.commands.watch.errors import WatchError
from membound.guard.limit import Limit, memory_limit
from membound.measure.cgroup.memory import (
    LimitKind,
    MemoryGroup,
    Usage,
    memory_groups,
    oom_kills,
    process_usage,
)
from membound.measure.probes import tree_of

__all__ = ["TreeLimit", "WatchedTree", "tree_for_command"]


@dataclass(frozen=True)
class TreeLimit(Limit):
    """A limit judged against a process and all its descendants, summed from ``/proc``."""

    def usage(self) -> Usage | None:
        """The tree's summed usage now; None once the top process is gone."""
        top = process_usage(self.pid, self.kind)
        if top is None or not isinstance(self.pid, int):
            return None
        judged, rss, anon, file, shmem = (
            top.judged,
            top.charged,
            top.anon,
            top.file,
            top.shmem,
        )
        for pid in tree_of(self.pid):
            if pid == self.pid:
                continue
            found = process_usage(pid, self.kind)
            if found is not None:
                judged += found.judged
                rss += found.charged
                anon += found.anon
                file += found.file
                shmem += found.shmem
        return Usage(judged, rss, anon, file, shmem, f"/proc/{self.pid} and its descendants")


@dataclass
class WatchedTree:
    """Where the command's tree is judged: a group made for it, or the summed tree.

    Attributes:
        group: the cgroup made for the command (None: the tree is summed).
        words: what is judged, for the watch's first line and its summary.
    """

    group: MemoryGroup | None
    words: str

    def enter(self) -> Callable[[], None] | None:
        """What the started child runs before ``exec``: move itself into the group (before it
        can start anything, so that nothing it starts is outside)."""
        group = self.group
        if group is None:
            return None
        procs = group.file("cgroup.procs")

        def move() -> None:
            with open(procs, "w") as f:
                f.write(str(os.getpid()))

        return move

    def limit(self, pid: int, given: int | None) -> Limit:
        """The limit the watchdog judges ``pid``'s tree against."""
        own = memory_limit()
        if self.group is None:
            if given is not None:
                return TreeLimit(given, "given", "ram", pid)
            return TreeLimit(own.bytes, own.source, own.kind, pid)
        if given is not None:
            # Set as the group's own limit by ``tree_for_command``: judged as the cgroup it is
            # (kernel threshold events on its usage, not polling alone).
            version = self.group.version
            return Limit(
                given, self.group.file(_LIMIT_FILE[version]), _KIND[version], pid, self.group
            )
        return Limit(own.bytes, own.source, own.kind, pid, self.group)

    def oom_kills(self) -> int | None:
        """How many processes the kernel OOM-killed in the group so far (``oom_kill`` of v1
        ``memory.oom_control`` or v2 ``memory.events``); None for a summed tree, or where the
        kernel does not count them."""
        return oom_kills(self.group) if self.group is not None else None

    def remove(self) -> None:
        """Kill what is left in the group and remove it (nothing for a summed tree)."""
        group = self.group
        if group is None:
            return
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                with open(group.file("cgroup.procs")) as f:
                    pids = [int(x) for x in f.read().split()]
            except OSError:
                return
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            try:
                os.rmdir(group.path)
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.02)


def tree_for_command(limit_bytes: int | None = None) -> WatchedTree:
    """Make a memory cgroup for a command about to start (with ``limit_bytes`` as its own limit
    when given), or fall back to summing its tree where none can be made.

    Raises:
        WatchError: the group was made but ``limit_bytes`` could not be set on it (the group is
            removed first).
    """
    not_enforced = "" if limit_bytes is None else "; --limit is judged, not enforced"
    groups = memory_groups()
    if not groups:
        return WatchedTree(None, f"the process tree, summed (no memory cgroup here{not_enforced})")
    home = groups[0]  # v2 first where its memory controller is on, else v1
    path = os.path.join(home.path, f"membound-watch-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        os.mkdir(path)
    except OSError as exc:
        why = exc.strerror or str(exc)
        return WatchedTree(
            None, f"the process tree, summed (no cgroup could be made: {why}{not_enforced})"
        )
    group = MemoryGroup(home.version, path, home.root)
    made = WatchedTree(group, f"the cgroup made for it, {path}")
    usage_file = "memory.current" if group.version == 2 else "memory.usage_in_bytes"
    if not os.path.exists(group.file(usage_file)):  # v2 without the controller delegated
        made.remove()
        return WatchedTree(
            None,
            f"the process tree, summed (the cgroup made has no memory files{not_enforced})",
        )
    if limit_bytes is not None:
        limit_file = group.file(_LIMIT_FILE[group.version])
        try:
            with open(limit_file, "w") as f:
                f.write(str(limit_bytes))
        except OSError as exc:
            made.remove()
            raise WatchError(
                f"cannot set --limit {format_size(limit_bytes)} on the cgroup made for the "
                f"command ({limit_file}): {exc.strerror or exc}"
            ) from None
        made.words += f" (its limit set to {format_size(limit_bytes)})"
    return made


#: The file that holds a group's own hard limit, by cgroup version.
_LIMIT_FILE = {1: "memory.limit_in_bytes", 2: "memory.max"}
#: The limit kind of a group's own hard limit, by cgroup version.
_KIND: dict[int, LimitKind] = {1: "cgroup-v1", 2: "cgroup-v2-max"}
