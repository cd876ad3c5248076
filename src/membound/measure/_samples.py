"""What the sampler keeps of its samples and decides from them: a bounded timeline, the
largest value, the live status line, and the stop at a memory limit.

Standard library only, run by path from ``_sampler_child.py``: the sampler runs with
``-E -s -S`` and cannot import the package (so ``results/downsample.py`` is run by path here too).
"""

from __future__ import annotations

import os
import runpy
import signal
import time
from collections.abc import Callable
from typing import Any

__all__ = ["STATUS_BYTES", "STATUS_EVERY_S", "LimitStop", "Samples"]

_DOWNSAMPLE = runpy.run_path(
    os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results", "downsample.py"
    )
)
#: ``_stack_dump.py`` beside this file, loaded at the first limit stop that reads a stack (it
#: imports subprocess: no cost to a sampler's start).
_STACK_DUMP: dict[str, Any] = {}

#: The live status line: rewritten this often at most, and this long (fixed, so a rewrite in place
#: never leaves a tail of an older, longer line).
STATUS_EVERY_S = 0.1
STATUS_BYTES = 64


class Samples:
    """The samples taken so far: a bounded timeline, the largest value, the limit crossing."""

    def __init__(
        self, start: float, max_points: int, limit: int | None, status: str | None = None
    ) -> None:
        self.start = start
        self.limit = limit
        self.timeline = _DOWNSAMPLE["Downsampler"](max_points)
        self.max_rss = 0
        self.limit_hit: dict[str, float] | None = None
        # The live figures for a progress display, rewritten in place (one fixed-size line at
        # offset 0) at most every STATUS_EVERY_S: the parent reads them, the measured process
        # never sees them.
        self._status_fd = os.open(status, os.O_WRONLY | os.O_CREAT, 0o600) if status else None
        self._status_at = 0.0

    def add(self, now: float, value: int, kill: Callable[[], object] | None) -> None:
        """Record one sample; call ``kill`` the first time the value crosses the limit."""
        self.timeline.add(now - self.start, value)
        self.max_rss = max(self.max_rss, value)
        if self._status_fd is not None and now - self._status_at >= STATUS_EVERY_S:
            self._status_at = now
            line = f"{now - self.start:.3f} {value} {self.max_rss}"
            os.pwrite(self._status_fd, line.ljust(STATUS_BYTES - 1).encode() + b"\n", 0)
        if self.limit is not None and self.limit_hit is None and value > self.limit:
            self.limit_hit = {"t": now - self.start, "rss": value}
            if kill is not None:
                kill()

    def report(self) -> dict[str, object]:
        """The JSON-ready part of the report that the samples make."""
        down = self.timeline
        return {
            "start": self.start,
            "times": list(down.times),
            "lows": list(down.lows),
            "highs": list(down.highs),
            "samples": down.samples,
            "stride": down.stride,
            "max_rss": self.max_rss,
            "limit_hit": self.limit_hit,
        }


def _resident(pid: int) -> int:
    """Resident pages of ``pid`` (0 when it cannot be read)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0


class LimitStop:
    """Stops a spawned run at its memory limit: at once, or (with ``grace``) after asking the
    spawned process to write what it captured of its memory (SIGUSR2) and waiting at most
    ``grace`` seconds for it to end by itself.

    With ``stack_tool`` (py-spy's path), the largest process of the run (``pids`` lists them;
    a shell's Python child, a pool's worker) is first frozen and its Python stack read from
    outside (``_stack_dump.py``): the line that was running when the limit was crossed, even
    inside one long C call that no capture request can interrupt. ``stack`` holds what was read.
    """

    def __init__(
        self,
        pid: int,
        kill: Callable[[], object],
        grace: float | None,
        stack_tool: str | None = None,
        pids: Callable[[], list[int]] | None = None,
    ) -> None:
        self.pid = pid
        self.kill = kill
        self.grace = grace
        self.deadline: float | None = None
        self.stack_tool = stack_tool
        self.pids = pids
        self.stack: dict[str, object] | None = None

    def begin(self) -> None:
        """The limit was crossed."""
        frozen = None
        if self.stack_tool:
            processes = (self.pids() if self.pids is not None else []) or [self.pid]
            frozen = max(processes, key=_resident) if len(processes) > 1 else self.pid
            if not _STACK_DUMP:
                here = os.path.dirname(os.path.abspath(__file__))
                _STACK_DUMP.update(runpy.run_path(os.path.join(here, "_stack_dump.py")))
            self.stack = _STACK_DUMP["freeze_and_read"](frozen, self.stack_tool)
            self.stack["processes"] = len(processes)
        if self.grace is None:
            self.kill()
            return
        try:
            if frozen is not None:
                os.kill(frozen, signal.SIGCONT)  # frozen to read its stack: it must answer
            os.kill(self.pid, signal.SIGUSR2)
        except OSError:
            self.kill()
            return
        self.deadline = time.monotonic() + self.grace

    def check(self) -> None:
        """Kill the run once the grace has run out."""
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.deadline = None
            self.kill()
