"""A child memory cgroup for a test: made under this process's own memory cgroup, with a limit,
and always removed (what still runs in it is killed first).

cgroup v1 here (``/sys/fs/cgroup/memory/…``: ``memory.limit_in_bytes``, ``memory.oom_control``'s
``oom_kill``); v2 where its memory controller is on (``memory.max``, ``memory.events``). Tests
that need one skip with the reason when no group can be made (not root, read-only cgroupfs).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

from membound.measure.cgroup.memory import memory_groups, parse_flat_keyed


class MemoryCgroup:
    """A memory cgroup made for a test."""

    def __init__(self, path: str, version: int) -> None:
        self.path = path
        self.version = version

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def oom_kills(self) -> int:
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        with open(self.file(name)) as f:
            return parse_flat_keyed(f.read()).get("oom_kill", 0)

    def usage(self) -> int:
        """What the group is charged now."""
        name = "memory.current" if self.version == 2 else "memory.usage_in_bytes"
        with open(self.file(name)) as f:
            return int(f.read().strip())

    def peak(self) -> int:
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        with open(self.file(name)) as f:
            return int(f.read().strip())

    def enter_argv(self, argv: list[str]) -> list[str]:
        """``argv`` started inside the group: a shell moves itself in, then execs it."""
        procs = self.file("cgroup.procs")
        return ["sh", "-c", f'echo $$ > "{procs}" && exec "$@"', "sh", *argv]

    def run(
        self, argv: list[str], *, timeout: float = 60, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """``argv`` run inside the group to its end, its output captured as text."""
        return subprocess.run(
            self.enter_argv(argv), capture_output=True, text=True, timeout=timeout, check=check
        )

    def pids(self) -> list[int]:
        with open(self.file("cgroup.procs")) as f:
            return [int(x) for x in f.read().split()]

    def remove_child(self, name: str) -> None:
        """Remove a group made inside this one (killing what runs there)."""
        MemoryCgroup(os.path.join(self.path, name), self.version).remove()

    def remove(self) -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            pids = self.pids() if os.path.exists(self.path) else []
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.02)


@contextlib.contextmanager
def memory_cgroup(limit_bytes: int) -> Iterator[MemoryCgroup]:
    """A fresh memory cgroup with ``limit_bytes``, removed afterwards; skips when none can be
    made here."""
    groups = memory_groups()
    if not groups:
        pytest.skip("no memory cgroup hierarchy is mounted for this process")
    home = groups[-1]  # v1 when both are there: this machine's memory controller is v1
    path = os.path.join(home.path, f"membound-test-{uuid.uuid4().hex[:12]}")
    try:
        os.mkdir(path)
    except OSError as exc:
        pytest.skip(f"cannot create a memory cgroup in {home.path}: {exc.strerror}")
    group = MemoryCgroup(path, home.version)
    try:
        limit_file = "memory.max" if home.version == 2 else "memory.limit_in_bytes"
        with open(group.file(limit_file), "w") as f:
            f.write(str(limit_bytes))
        if home.version == 1:
            with contextlib.suppress(OSError), open(group.file("memory.swappiness"), "w") as f:
                f.write("0")  # no swap: the limit is the limit
        yield group
    finally:
        group.remove()
