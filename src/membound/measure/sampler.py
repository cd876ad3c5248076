"""The parent side of the out-of-process sampler (see ``_sampler_child.py`` for the child).

``Sampler(pid).start()`` launches a small stdlib-only Python process that reads the memory of
``pid`` (or of its whole process tree) every ``interval`` seconds; ``stop()`` returns a
:class:`SamplerReport` with a bounded :class:`~membound.measure.timeline.Timeline`. The sampler can
enforce a memory limit itself, killing the watched process group within one interval.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from membound.measure._sampler_child import HAS_PROC, MAX_POINTS_DEFAULT
from membound.measure.timeline import Timeline

__all__ = ["Sampler", "SamplerReport"]

_CHILD = Path(__file__).with_name("_sampler_child.py")
_STOP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class SamplerReport:
    """What the sampler saw."""

    timeline: Timeline
    """RSS over time (bytes), bounded to ``max_points`` buckets."""
    start: float
    """``time.monotonic()`` of the sampler's first sample (system-wide clock)."""
    max_rss: int
    """Largest sampled RSS (of the whole tree in tree mode), bytes."""
    max_hwm: int | None
    """Largest ``VmHWM`` of any single process seen (tree mode only), bytes."""
    limit_hit_at: float | None
    """Seconds after ``start`` when the limit was crossed, or None."""
    limit_hit_rss: int | None
    """The RSS that crossed the limit, or None."""


class Sampler:
    """Samples the RSS of a process from a separate process.

    Args:
        pid: the process to watch; ``None`` to start the sampler first and name the process
            with :meth:`attach` (sampling then begins the instant the process exists).
        interval: seconds between samples.
        tree: sum the RSS of ``pid`` and all its descendants, and track each one's ``VmHWM``.
        limit: bytes; when the sampled RSS crosses it, SIGKILL the process group ``kill_pgid``.
        kill_pgid: the process group to kill at the limit (required with ``limit``).
        max_points: the timeline's bound.
    """

    def __init__(
        self,
        pid: int | None,
        *,
        interval: float = 0.01,
        tree: bool = False,
        limit: int | None = None,
        kill_pgid: int | None = None,
        max_points: int = MAX_POINTS_DEFAULT,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        if limit is not None and kill_pgid is None and pid is not None:
            raise ValueError("a limit needs a process group to kill")
        self.config: dict[str, Any] = {
            "pid": pid or 0,
            "interval": interval,
            "tree": tree,
            "limit": limit,
            "kill_pgid": kill_pgid,
            "max_points": max_points,
        }
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Sampler:
        """Launch the sampler process; returns self."""
        # -E -s -S: no environment, no site: a bare interpreter starts in milliseconds. Without
        # /proc the child needs site-packages for psutil.
        flags = ["-E", "-s", "-S"] if HAS_PROC else []
        self._proc = subprocess.Popen(
            [sys.executable, *flags, str(_CHILD), json.dumps(self.config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        return self

    def attach(self, pid: int, kill_pgid: int | None = None) -> None:
        """Name the process to watch (for a sampler created with ``pid=None``)."""
        if self._proc is None or self._proc.stdin is None:
            raise RuntimeError("sampler was not started")
        line = f"pid {pid}" + (f" {kill_pgid}" if kill_pgid is not None else "") + "\n"
        self._proc.stdin.write(line.encode())
        self._proc.stdin.flush()

    @property
    def running(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return self._proc is not None

    def stop(self) -> SamplerReport:
        """Stop sampling and return the report."""
        proc = self._proc
        if proc is None:
            raise RuntimeError("sampler was not started")
        self._proc = None
        try:
            out, _ = proc.communicate(b"stop\n", timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        try:
            data = json.loads(out or b"{}")
        except ValueError:
            data = {}
        return _report_from(data, float(self.config["interval"]))

    def __del__(self) -> None:  # pragma: no cover - safety net only
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()


def _report_from(data: dict[str, Any], interval: float) -> SamplerReport:
    source = "sampler process reading /proc/PID/statm" if HAS_PROC else "sampler process (psutil)"
    times = data.get("times", [])
    timeline = Timeline(
        times=tuple(times),
        lows=tuple(data.get("lows", [])),
        highs=tuple(data.get("highs", [])),
        interval=interval,
        samples=int(data.get("samples", 0)),
        stride=int(data.get("stride", 1)),
        metric="rss",
        source=source,
        extra={
            "late_ticks": data.get("late_ticks", 0),
            "processes_seen": data.get("processes_seen", 0),
        },
    )
    hit = data.get("limit_hit")
    return SamplerReport(
        timeline=timeline,
        start=float(data.get("start", 0.0)),
        max_rss=int(data.get("max_rss", 0)),
        max_hwm=data.get("max_hwm"),
        limit_hit_at=float(hit["t"]) if hit else None,
        limit_hit_rss=int(hit["rss"]) if hit else None,
    )
