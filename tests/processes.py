"""Finding the processes a test started, wherever they went: each run is tagged by an
environment variable its descendants inherit, and ``/proc/PID/environ`` is searched for it
(a process that ``setsid``s or double-forks keeps its environment)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid

TAG_VARIABLE = "MEMBOUND_TEST_TAG"


def new_tag() -> str:
    """A tag no other run carries."""
    return uuid.uuid4().hex


def tagged_env(tag: str) -> dict[str, str]:
    """This process's environment with ``tag`` added."""
    return {**os.environ, TAG_VARIABLE: tag}


def tagged(tag: str) -> list[int]:
    """Pids of live processes (not zombies) whose environment carries ``tag``."""
    needle = f"{TAG_VARIABLE}={tag}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle not in f.read():
                    continue
            with open(f"/proc/{entry}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    continue
        except (OSError, IndexError):  # gone, or a kernel thread
            continue
        found.append(int(entry))
    return found


def wait_for_tagged(tag: str, count: int, timeout: float = 20.0) -> list[int]:
    """Wait until at least ``count`` tagged processes run; their pids."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = tagged(tag)
        if len(found) >= count:
            return found
        time.sleep(0.02)
    raise AssertionError(f"{count} tagged process(es) never appeared (saw {tagged(tag)})")


def settle(tag: str, timeout: float = 5.0) -> list[str]:
    """The tagged processes left once ``timeout`` passed or none is left (processes being
    killed take a moment to go), each as ``pid state parent command`` so that a failing
    assertion says which process stayed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not tagged(tag):
            return []
        time.sleep(0.02)
    return [describe(pid) for pid in tagged(tag)]


def describe(pid: int) -> str:
    """``pid``, its state letter, its parent and its command line, read from ``/proc``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            command = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except (OSError, IndexError):
        return f"{pid} (gone)"
    return f"{pid} {fields[0].decode()} parent {fields[1].decode()}: {command}"


def kill_tagged(tag: str) -> None:
    """SIGKILL every tagged process: never leave them to the next test."""
    for pid in tagged(tag):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def default_sigint() -> None:
    """``preexec_fn`` for a process a test will send SIGINT: the default disposition, as under
    a terminal. A test runner started in the background (``make test &``, some CI shells)
    ignores SIGINT, and every process it starts would inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
