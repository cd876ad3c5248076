"""What ``membound watch`` shows and keeps while it runs: the live view (state, usage and peak
against the limit, a fixed-width sparkline, the leak trend), one line per transition off a
terminal, and the summary. Everything it keeps is bounded however long it runs (DESIGN §5.4): a
fixed number of sparkline points, a Downsampler of min–max buckets, the watchdog's last
transitions, the last action results."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from typing import Any

import click
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from membound._units import format_size
from membound.cli.commands.watch.actions import Actions
from membound.cli.commands.watch.target import Target, read_status
from membound.cli.commands.watch.tree import TreeLimit
from membound.guard.limit import Limit
from membound.guard.watchdog.core import Watchdog
from membound.measure.cgroup.memory import Usage
from membound.measure.isolate.outcome import exit_words
from membound.results import Timeline
from membound.results.downsample import Downsampler

#: Points of the live sparkline (fixed: the view never grows), each the highest usage read
#: in ``_SPARK_STEP_S`` seconds.
_SPARK_POINTS = 60
_SPARK_STEP_S = 1.0
_SPARK_BARS = "▁▂▃▄▅▆▇█"
#: Min–max buckets kept for ``--plot`` and ``--json`` (even, as the Downsampler wants).
_TIMELINE_POINTS = 2000
#: The main loop looks at the watchdog and the process this often (within the interval).
_TICK_MIN_S, _TICK_MAX_S = 0.05, 0.25
#: How long a process whose memory is gone may take to be seen as ended (its exit after it
#: gave its memory back: closing files, telling its parent) before it is called unreadable.
EXITING_GRACE_S = 2.0
#: The live view is redrawn at most this often.
_REDRAW_S = 0.25
_STATE_STYLE = {"ok": "bold green", "soft": "bold yellow", "hard": "bold red"}


def counts(limit: Limit) -> str:
    """What the judged usage is, for ``limit``."""
    kind = limit.kind
    if isinstance(limit, TreeLimit):
        return "RssAnon + RssShmem of the process and its descendants"
    if kind.startswith("cgroup") or limit.group is not None:
        return "the cgroup's charge less reclaimable page cache"
    if kind == "rlimit-as":
        return "VmSize, the address space RLIMIT_AS bounds"
    if kind == "rlimit-data":
        return "VmData, what RLIMIT_DATA bounds"
    return "RssAnon + RssShmem of the process"


def _duration_words(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def sparkline(values: Iterable[float]) -> str:
    """Bars from lowest to highest of ``values`` (flat values give a flat line)."""
    kept = list(values)
    if not kept:
        return ""
    lo, hi = min(kept), max(kept)
    if hi - lo < 1:
        return _SPARK_BARS[0] * len(kept)
    top = len(_SPARK_BARS) - 1
    return "".join(_SPARK_BARS[round((v - lo) / (hi - lo) * top)] for v in kept)


# --- the watch --------------------------------------------------------------------------------


class Watch:
    """The main loop: read what the watchdog decided, keep a bounded history, show it."""

    def __init__(
        self,
        dog: Watchdog,
        target: Target,
        actions: Actions,
        *,
        started: float,
        duration: float | None,
        mode: str,
    ) -> None:
        self.dog, self.target, self.actions = dog, target, actions
        self.started = started
        self.started_wall = time.time()
        self.duration = duration
        self.mode = mode  # "live", "lines" or "quiet"
        self.down = Downsampler(_TIMELINE_POINTS)
        self.spark: deque[float] = deque(maxlen=_SPARK_POINTS - 1)
        self._spark_open: tuple[float, float] | None = None  # (start, highest) of the last bar
        self.usage: Usage | None = None
        self.rss: int | None = None
        self.hwm: int | None = None
        #: What the watchdog judges: the process, or the command's whole tree (and how).
        self.judged = "the process"
        #: OOM kills the kernel made in the cgroup made for the command (None: no such group).
        self.oom_kills: int | None = None
        self.readings_seen = -1
        self.last_transition_at = 0.0
        self.transition_count = 0
        self.state_since = 0.0
        self.hard_at: float | None = None
        self.ended = "running"
        self.end_words = ""
        self.stopped_by = "SIGTERM"
        self.elapsed = 0.0
        self.live: Live | None = None
        self._drawn = 0.0

    # reading

    def observe(self, *, record: bool = True) -> None:
        """Take in what happened since the last tick; the reading too when ``record`` (not
        once the process has exited: a cgroup's usage goes on being read after it)."""
        now = time.monotonic()
        self.elapsed = now - self.started
        dog = self.dog
        usage = dog.usage
        if record and dog.readings != self.readings_seen and usage is not None:
            self.readings_seen = dog.readings
            self.usage = usage
            self.down.add(self.elapsed, float(usage.judged))
            self._spark_add(float(usage.judged))
            rss, hwm = read_status(self.target.pid)
            if rss is not None:
                self.rss, self.hwm = rss, hwm
        if record and usage is not None:
            self.actions.tick(usage.judged, dog.recover_bytes)
        transitions = dog.snapshot()["transitions"]
        assert isinstance(transitions, list)
        for t in transitions:
            at = float(t["at"])
            if at <= self.last_transition_at:
                continue
            self.last_transition_at = at
            self.transition_count += 1
            since = at - self.started_wall
            self.state_since = since
            if t["to"] == "hard" and self.hard_at is None:
                self.hard_at = since
            self.say(self._transition_line(t, since), style=_STATE_STYLE.get(str(t["to"]), ""))
        while self.actions.notes:
            self.say(self.actions.notes.popleft())

    def _spark_add(self, value: float) -> None:
        opened = self._spark_open
        if opened is not None and self.elapsed - opened[0] < _SPARK_STEP_S:
            self._spark_open = (opened[0], max(opened[1], value))
            return
        if opened is not None:
            self.spark.append(opened[1])
        self._spark_open = (self.elapsed, value)

    def recent(self) -> list[float]:
        """The sparkline's points: one per ``_SPARK_STEP_S`` seconds, the newest still open."""
        opened = self._spark_open
        return [*self.spark, *([] if opened is None else [opened[1]])]

    def _transition_line(self, t: dict[str, Any], since: float) -> str:
        usage = int(t["usage_bytes"])
        limit = self.dog.limit.bytes
        return (
            f"+{since:.1f} s {t['from']} → {t['to']}: {format_size(usage)} of "
            f"{format_size(limit)} ({100 * usage / limit:.0f} %)"
        )

    def say(self, line: str, style: str = "", *, always: bool = False) -> None:
        """A line above the live view, or on its own (nothing when quiet unless ``always``)."""
        if self.mode == "quiet" and not always:
            return
        if self.live is not None:
            self.live.console.print(Text(f"membound: {line}", style=style))
        else:
            click.echo(f"membound: {line}", err=True)

    def run(self) -> None:
        """Watch until the process ends or the duration passes (Ctrl-C propagates)."""
        if self.mode != "live":
            self._loop()
            return
        console = Console(stderr=True)
        with Live(self.view(), console=console, auto_refresh=False, transient=True) as live:
            self.live = live
            try:
                self._loop()
            finally:
                self.live = None

    def _ends_soon(self) -> bool:
        """Whether the target has ended, or ends within ``EXITING_GRACE_S``: a process gives
        its memory back early in its exit and is a zombie only later (files closed, its
        parent told), so a watchdog can find its memory gone while it still looks alive (a
        process killed by --on-hard's signal read "cannot be read any more", exit 2)."""
        deadline = time.monotonic() + EXITING_GRACE_S
        while not self.target.ended():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def _loop(self) -> None:
        tick = min(max(self.dog.interval, _TICK_MIN_S), _TICK_MAX_S)
        deadline = None if self.duration is None else self.started + self.duration
        while True:
            ended = self.target.ended()
            self.observe(record=not ended)
            self.draw()
            if ended:
                self.ended = "exited"
                return
            if self.dog.gone:
                # The watchdog could read nothing more: the process exited after the check
                # above (its memory went with it), or it still runs and cannot be read.
                self.ended = "exited" if self._ends_soon() else "unreadable"
                return
            if deadline is not None and time.monotonic() >= deadline:
                self.ended = "duration"
                return
            wait = tick if deadline is None else min(tick, max(0.0, deadline - time.monotonic()))
            time.sleep(wait)

    # showing

    def draw(self, force: bool = False) -> None:
        if self.live is None:
            return
        now = time.monotonic()
        if not force and now - self._drawn < _REDRAW_S:
            return
        self._drawn = now
        self.live.update(self.view(), refresh=True)

    def view(self) -> RenderableType:
        """The live view: state, usage against the limit, RSS, the sparkline, the growth."""
        dog = self.dog
        limit = dog.limit.bytes
        judged = self.usage.judged if self.usage is not None else 0
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold", justify="right")
        grid.add_column()
        who = f"pid {self.target.pid}" + (f"  {self.target.label}" if self.target.label else "")
        grid.add_row("watching", Text(f"{who}  ·  {self.elapsed:.0f} s"))
        state = Text(dog.state.upper(), style=_STATE_STYLE[dog.state])
        if self.transition_count:
            state.append(f"  since +{self.state_since:.1f} s", style="")
        grid.add_row("state", state)
        width = 30
        filled = min(width, round(width * judged / limit)) if limit else 0
        bar = Text("█" * filled, style=_STATE_STYLE[dog.state].replace("bold ", ""))
        bar.append("░" * (width - filled), style="dim")
        bar.append(
            f"  {format_size(judged)} of {format_size(limit)} ({100 * judged / limit:.1f} %)"
            f" · peak {format_size(dog.peak_bytes)}"
        )
        grid.add_row("usage", bar)
        grid.add_row("", Text(counts(dog.limit), style="dim"))
        grid.add_row(
            "limit",
            Text(
                f"{dog.limit.describe()} · soft {format_size(dog.soft_bytes)} · hard "
                f"{format_size(dog.hard_bytes)}"
            ),
        )
        if self.rss is not None:
            grid.add_row(
                "RSS",
                Text(f"{format_size(self.rss)} · kernel peak {format_size(self.hwm)} (VmHWM)"),
            )
        recent = self.recent()
        if recent:
            line = Text(sparkline(recent), style="cyan")
            line.append(
                f"  {format_size(min(recent))} – {format_size(max(recent))}, the last "
                f"{len(recent) * _SPARK_STEP_S:.0f} s",
                style="dim",
            )
            grid.add_row("recent", line)
        verdict = dog.verdict
        grid.add_row("growth", Text(verdict.explanation))
        if verdict.time_to_limit_s is not None:
            grid.add_row("to limit", Text(_duration_words(verdict.time_to_limit_s)))
        elif verdict.pattern != "unknown":
            grid.add_row("to limit", Text("not approaching it (the floor is not rising)"))
        return Group(grid)

    # the end

    def reached_hard(self) -> bool:
        return self.dog.peak_bytes >= self.dog.hard_bytes

    def exit_code(self) -> int:
        if self.ended == "unreadable":
            return 2
        return 1 if self.reached_hard() or self.actions.leak_alarm else 0

    def timeline(self) -> Timeline:
        down = self.down
        return Timeline(
            times=tuple(down.times),
            lows=tuple(down.lows),
            highs=tuple(down.highs),
            interval=self.dog.interval,
            samples=down.samples,
            stride=down.stride,
            metric="usage",
            source=f"membound watch: the watchdog's readings ({counts(self.dog.limit)})",
        )

    def summary(self, exit_code: int) -> dict[str, object]:
        dog = self.dog
        usage = self.usage
        timeline = self.timeline()
        snapshot = dog.snapshot()
        return {
            "pid": self.target.pid,
            "command": self.target.label if self.target.popen is not None else None,
            "process": self.target.label,
            "started_at": self.started_wall,
            "duration_s": round(self.elapsed, 3),
            "ended": self.ended,
            "ended_words": self.end_words,
            "exit_status": self.target.returncode,
            "exit_code": exit_code,
            "limit": dog.limit.to_dict(),
            "judged": self.judged,
            "oom_kills": self.oom_kills,
            "thresholds": snapshot["thresholds"],
            "interval_s": dog.interval,
            "events": dog.events_kind,
            "readings": dog.readings,
            "state": dog.state,
            "reached_hard": self.reached_hard(),
            "reached_hard_at_s": None if self.hard_at is None else round(self.hard_at, 3),
            "leak_alarm": self.actions.leak_alarm is not None,
            "peak_bytes": dog.peak_bytes,
            "peak_source": "largest judged usage the watchdog read (sampled)",
            "peak_rss_bytes": self.hwm,
            "peak_rss_source": "VmHWM of /proc/PID/status, since the process started",
            "last": {
                "usage_bytes": None if usage is None else usage.judged,
                "counts": counts(dog.limit),
                "charged_bytes": None if usage is None else usage.charged,
                "anon_bytes": None if usage is None else usage.anon,
                "file_bytes": None if usage is None else usage.file,
                "shmem_bytes": None if usage is None else usage.shmem,
                "rss_bytes": self.rss,
                "source": None if usage is None else usage.source,
            },
            "transitions": snapshot["transitions"],
            "transition_count": self.transition_count,
            "growth": dog.verdict.to_dict(),
            "actions": list(self.actions.done),
            "action_runs": self.actions.runs,
            "samples_kept": len(timeline),
            "timeline": timeline.to_dict(),
        }

    def ending(self, stopped: str | None, waited: int) -> None:
        """Say how the watch ended: the process exited, the duration passed, Ctrl-C."""
        t = self.target
        if self.ended == "exited":
            rc = t.returncode
            how = "" if rc is None else f" ({f'status {rc}' if rc >= 0 else exit_words(rc)})"
            self.end_words = f"process {t.pid} exited after {self.elapsed:.1f} s{how}"
        elif self.ended == "unreadable":
            self.end_words = f"the memory of pid {t.pid} cannot be read any more"
        else:
            why = {"duration": "--duration", "interrupted": "Ctrl-C"}.get(
                self.ended, self.stopped_by
            )
            self.end_words = f"stopped watching after {self.elapsed:.1f} s ({why})"
            if stopped:
                self.end_words += f"; {stopped}"
            elif t.popen is None:
                self.end_words += f"; pid {t.pid} keeps running"
        self.say(self.end_words, always=True)
        if waited:
            self.say(f"waited for {waited} action command(s) to finish")

    def summary_lines(self) -> list[str]:
        dog = self.dog
        usage = self.usage
        t = self.target
        who = f"pid {t.pid}" + (f" ({t.label})" if t.label else "")
        lines = [
            f"membound watch: {who}: {self.elapsed:.1f} s, {dog.readings} readings every "
            f"{dog.interval:g} s",
            f"  judged      {self.judged}",
            f"  limit       {dog.limit.describe()}",
            f"  thresholds  soft {format_size(dog.soft_bytes)} · hard "
            f"{format_size(dog.hard_bytes)} · recover {format_size(dog.recover_bytes)}",
            f"  usage       last {format_size(None if usage is None else usage.judged)} · peak "
            f"{format_size(dog.peak_bytes)} (sampled; {counts(dog.limit)})",
            f"  RSS         last {format_size(self.rss)} · kernel peak {format_size(self.hwm)} "
            "(VmHWM, since the process started)",
        ]
        state = f"  state       {dog.state}"
        if self.hard_at is not None:
            state += f" (reached hard at +{self.hard_at:.1f} s)"
        elif self.reached_hard():
            state += " (reached hard)"
        n = self.transition_count
        lines.append(f"{state}; {n} transition{'' if n == 1 else 's'}")
        lines.append(f"  growth      {dog.verdict.explanation}")
        if self.oom_kills is not None:
            lines.append(f"  oom kills   {self.oom_kills} in the cgroup made for the command")
        for a in self.actions.done:
            what = "alarm" if a["option"] == "leak alarm" else "action"
            lines.append(f"  {what:<11} {a['option']} +{a['at_s']:.1f} s: {a['result']}")
        lines.append(f"  ended       {self.end_words}")
        return lines
