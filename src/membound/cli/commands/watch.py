"""``membound watch PID | --cmd "CMD"``: watch a running process's memory against its limit.

Nothing changes in the watched process: membound reads ``/proc/PID`` (and the process's cgroup)
from outside. All judging is the production guard's own :class:`~membound.guard.Watchdog`
(thresholds with hysteresis, kernel events where offered, the leak trend over floors); this
module only shows what it decides, runs the actions asked for, and writes the summary.

What it keeps is bounded however long it runs (DESIGN §5.4): a fixed number of sparkline points,
a :class:`~membound.results.downsample.Downsampler` of min–max buckets for ``--plot`` and
``--json``, the watchdog's last transitions, the last action results.

Exit codes: 0 when the process ended or ``--duration`` passed and it never reached ``hard``;
1 when it reached ``hard`` or the leak alarm fired; 2 for usage or run errors; 130 on Ctrl-C
(the summary is written first).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import math
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import click
import psutil
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from membound._errors import Interrupted, MemboundError, StopRequested
from membound._units import format_size, parse_duration, parse_size
from membound.cli._output import Outputs, _seconds, _writable
from membound.cli.watch_tree import TreeLimit, WatchedTree, tree_for_command
from membound.guard.limit import Limit
from membound.guard.watchdog import Watchdog, WatchdogEvent
from membound.measure.cgroup_memory import Usage, read_text
from membound.measure.outcome import exit_words
from membound.results import Timeline
from membound.results.downsample import Downsampler

__all__ = ["ACTION_TIMEOUT_S", "STOP_GRACE_S", "Action", "command", "parse_action"]

#: Points of the live sparkline (fixed: the view never grows), each the highest usage read
#: in ``_SPARK_STEP_S`` seconds.
_SPARK_POINTS = 60
_SPARK_STEP_S = 1.0
_SPARK_BARS = "▁▂▃▄▅▆▇█"
#: Min–max buckets kept for ``--plot`` and ``--json`` (even, as the Downsampler wants).
_TIMELINE_POINTS = 2000
#: Seconds an action command may run before it is killed.
ACTION_TIMEOUT_S = 30.0
#: Action commands that may run at once; more are skipped (a flapping process must not fork a
#: crowd).
_ACTIONS_RUNNING = 4
#: Action results kept for the summary.
_ACTIONS_KEPT = 20
#: Seconds a command started with ``--cmd`` gets between SIGTERM and SIGKILL.
STOP_GRACE_S = 3.0
#: The main loop looks at the watchdog and the process this often (within the interval).
_TICK_MIN_S, _TICK_MAX_S = 0.05, 0.25
#: The live view is redrawn at most this often.
_REDRAW_S = 0.25
_STATE_NUMBER = {"ok": 0, "soft": 1, "hard": 2}
_STATE_STYLE = {"ok": "bold green", "soft": "bold yellow", "hard": "bold red"}
_MIB = float(2**20)


# --- one-line errors --------------------------------------------------------------------------


class WatchUsageError(click.UsageError):
    """A usage error of ``membound watch``, shown on one line (no usage block)."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"membound watch: error: {self.format_message()}", err=True)


class WatchError(click.ClickException):
    """A run error of ``membound watch`` (no such process, no permission): one line, exit 2."""

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"membound watch: error: {self.format_message()}", err=True)


class _Command(click.Command):
    """Every usage error of the command on one line: ``Invalid value for '--soft': …``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except WatchUsageError:
            raise
        except click.UsageError as exc:
            raise WatchUsageError(
                f"{exc.format_message()} (see 'membound watch --help')", ctx
            ) from None


# --- actions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """What to do when a threshold is crossed.

    Attributes:
        text: the action as given (``signal:TERM``, ``cmd:notify.sh``).
        signum: the signal to send to the watched process (None for a command).
        argv: the command to run (no shell), empty for a signal.
    """

    text: str
    signum: int | None = None
    argv: tuple[str, ...] = ()

    def describe(self) -> str:
        """``send SIGTERM`` or ``run notify.sh --now``."""
        if self.signum is not None:
            return f"send {signal.Signals(self.signum).name}"
        return f"run {shlex.join(self.argv)}"


def parse_action(text: str) -> Action:
    """``signal:NAME`` (``TERM``, ``SIGUSR1``, ``9``), ``cmd:COMMAND`` or any other string (a
    command split like a shell would, run without one).

    Raises:
        ValueError: an unknown signal, an empty command, quotes that do not close, or a command
            that is not found.
    """
    stripped = text.strip()
    if stripped.lower().startswith("signal:"):
        name = stripped[len("signal:") :].strip().upper()
        try:
            if name.isdigit():
                signum = signal.Signals(int(name))
            else:
                signum = signal.Signals[name if name.startswith("SIG") else f"SIG{name}"]
        except (KeyError, ValueError):
            raise ValueError(
                f"unknown signal {name!r} in {text!r}; e.g. signal:TERM, signal:USR1, signal:KILL"
            ) from None
        return Action(text, signum=int(signum))
    body = stripped[len("cmd:") :] if stripped.lower().startswith("cmd:") else stripped
    try:
        argv = shlex.split(body)
    except ValueError as exc:
        raise ValueError(f"cannot split the command {body!r}: {exc}") from None
    if not argv:
        raise ValueError(f"no command in {text!r}; give signal:NAME or a command")
    if shutil.which(argv[0]) is None:
        raise ValueError(f"command not found: {argv[0]}")
    return Action(text, argv=tuple(argv))


def _action_option(ctx: click.Context, param: click.Parameter, value: str | None) -> Action | None:
    if value is None:
        return None
    try:
        return parse_action(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def _stderr_fd() -> int | None:
    """membound's stderr for the output of action commands (stdout carries the summary)."""
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return None


class _Actions:
    """Runs the actions of one watch without ever blocking the watchdog, and keeps what
    happened (bounded) for the main loop to print and the summary to list."""

    def __init__(self, pid: int, started: float) -> None:
        self.pid = pid
        self.started = started
        self.notes: deque[str] = deque(maxlen=100)
        self.done: deque[dict[str, object]] = deque(maxlen=_ACTIONS_KEPT)
        self.runs = 0
        self.leak_alarm: str | None = None
        self._lock = threading.Lock()
        self._running: list[tuple[subprocess.Popen[bytes], threading.Thread]] = []

    def callback(self, option: str, action: Action) -> Callable[[WatchdogEvent], object]:
        """The watchdog callback for ``--on-soft``/``--on-hard``."""
        return _Callback(self, option, action)

    def on_leak(self, event: WatchdogEvent) -> None:
        """The watchdog's ``on_leak``: the alarm is a verdict (exit 1)."""
        # The trend's explanation starts with its pattern ("leak: the floor …") already.
        self.leak_alarm = event.trend.explanation if event.trend is not None else event.describe()
        self.note("leak alarm", event, self.leak_alarm)

    def note(self, option: str, event: WatchdogEvent | None, result: str) -> None:
        at = time.monotonic() - self.started
        self.notes.append(f"+{at:.1f} s {option}: {result}")
        self.done.append(
            {
                "option": option,
                "at_s": round(at, 3),
                "usage_bytes": None if event is None else event.usage_bytes,
                "result": result,
            }
        )

    def send(self, option: str, action: Action, event: WatchdogEvent) -> None:
        assert action.signum is not None
        name = signal.Signals(action.signum).name
        self.runs += 1
        try:
            os.kill(self.pid, action.signum)
            result = f"sent {name} to pid {self.pid}"
        except ProcessLookupError:
            result = f"pid {self.pid} is gone; {name} not sent"
        except PermissionError:
            result = f"no permission to send {name} to pid {self.pid}"
        self.note(option, event, result)

    def spawn(self, option: str, action: Action, event: WatchdogEvent) -> None:
        words = shlex.join(action.argv)
        with self._lock:
            self._running = [(p, t) for p, t in self._running if t.is_alive()]
            if len(self._running) >= _ACTIONS_RUNNING:
                self.note(option, event, f"skipped {words}: {_ACTIONS_RUNNING} still running")
                return
            env = {
                **os.environ,
                "MEMBOUND_PID": str(self.pid),
                "MEMBOUND_STATE": event.state,
                "MEMBOUND_USAGE_BYTES": str(event.usage_bytes),
                "MEMBOUND_LIMIT_BYTES": str(event.limit_bytes),
            }
            self.runs += 1
            try:
                # A session of its own: Ctrl-C meant for membound does not reach it, and a
                # timeout kills its whole group.
                proc = subprocess.Popen(
                    list(action.argv),
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=_stderr_fd(),
                    start_new_session=True,
                )
            except OSError as exc:
                self.note(option, event, f"could not run {words}: {exc.strerror or exc}")
                return
            waiter = threading.Thread(
                target=self._wait,
                args=(option, event, proc, words, time.monotonic()),
                name="membound-watch-action",
                daemon=True,
            )
            self._running.append((proc, waiter))
            waiter.start()

    def _wait(
        self,
        option: str,
        event: WatchdogEvent,
        proc: subprocess.Popen[bytes],
        words: str,
        t0: float,
    ) -> None:
        try:
            code = proc.wait(timeout=ACTION_TIMEOUT_S)
            took = time.monotonic() - t0
            self.note(option, event, f"{words} {exit_words(code)} after {took:.1f} s")
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            self.note(option, event, f"{words} still ran after {ACTION_TIMEOUT_S:g} s: killed it")

    def finish(self) -> int:
        """Wait for the action commands still running (each at most its own timeout); how
        many there were."""
        with self._lock:
            running = [t for _, t in self._running if t.is_alive()]
        for waiter in running:
            waiter.join(ACTION_TIMEOUT_S + 5)
        return len(running)


class _Callback:
    """One action bound to its option (a class so that a signal can say it is immediate)."""

    def __init__(self, actions: _Actions, option: str, action: Action) -> None:
        self.actions, self.option, self.action = actions, option, action
        # A signal is quick and never blocks: the watchdog sends it from its own thread the
        # moment it decides, as it does its ready-made actions (guard/actions.py).
        self._membound_immediate = action.signum is not None

    def __call__(self, event: WatchdogEvent) -> None:
        try:
            if self.action.signum is not None:
                self.actions.send(self.option, self.action, event)
            else:
                self.actions.spawn(self.option, self.action, event)
        except Exception as exc:  # an action must never end the watch
            self.actions.note(self.option, event, f"{self.action.describe()} failed: {exc}")

    def __repr__(self) -> str:
        return f"{self.option} {self.action.text}"


# --- the watched process ----------------------------------------------------------------------


def _status(pid: int) -> tuple[int | None, int | None]:
    """``VmRSS`` and ``VmHWM`` of ``pid`` in bytes (None when unreadable or gone)."""
    found: dict[str, int] = {}
    for line in (read_text(f"/proc/{pid}/status") or "").splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            parts = rest.split()
            if parts and parts[0].isdigit():
                found[key] = int(parts[0]) * 1024
    return found.get("VmRSS"), found.get("VmHWM")


class _Target:
    """The watched process: a pid given, or a command membound started (and so stops)."""

    def __init__(self, pid: int, popen: subprocess.Popen[bytes] | None, label: str) -> None:
        self.pid, self.popen, self.label = pid, popen, label
        self.returncode: int | None = None
        self._proc: psutil.Process | None = None
        if popen is None:
            with contextlib.suppress(psutil.Error):
                self._proc = psutil.Process(pid)

    @classmethod
    def attach(cls, pid: int) -> _Target:
        """Check that ``pid`` is a live process whose memory can be read.

        Raises:
            WatchError: no such process, a zombie, or no permission to read it.
        """
        if pid <= 0:
            raise WatchUsageError(f"a pid is a positive number, got {pid}")
        try:
            proc = psutil.Process(pid)
            zombie = proc.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            raise WatchError(f"no process with pid {pid}") from None
        except psutil.AccessDenied:
            raise WatchError(f"no permission to read process {pid}") from None
        if zombie:
            raise WatchError(
                f"process {pid} has already exited (a zombie its parent has not reaped)"
            )
        try:
            with open(f"/proc/{pid}/status", "rb") as f:
                f.read(1)
        except PermissionError:
            raise WatchError(f"no permission to read /proc/{pid}/status") from None
        except FileNotFoundError:
            raise WatchError(f"no process with pid {pid}") from None
        except OSError as exc:
            raise WatchError(f"cannot read /proc/{pid}/status: {exc.strerror}") from None
        try:
            words = shlex.join(proc.cmdline()) or proc.name()
        except psutil.Error:
            words = ""
        return cls(pid, None, _shorten(words))

    @classmethod
    def start(cls, cmd: str, enter: Callable[[], None] | None = None) -> _Target:
        """Start ``cmd`` (split like a shell would, run without one) in a session of its own;
        ``enter`` runs in the child before ``exec`` (it moves into the cgroup made for it).

        Raises:
            WatchUsageError: an empty command or quotes that do not close.
            WatchError: the command cannot be started.
        """
        try:
            argv = shlex.split(cmd)
        except ValueError as exc:
            raise WatchUsageError(f"cannot split --cmd {cmd!r}: {exc}") from None
        if not argv:
            raise WatchUsageError("--cmd is empty")
        try:
            # Its own session: Ctrl-C stops membound, which then stops the command and says so
            # (rather than the terminal interrupting both at once).
            # ``enter`` before ``exec``, not after the start: a command that forks at once
            # would leave children outside its cgroup. membound runs no other thread yet here,
            # which is what makes ``preexec_fn`` safe.
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=enter,  # noqa: PLW1509
            )
        except subprocess.SubprocessError as exc:  # ``enter`` failed in the child
            raise WatchError(f"cannot start {argv[0]} in its cgroup: {exc}") from None
        except FileNotFoundError:
            raise WatchError(f"command not found: {argv[0]}") from None
        except PermissionError:
            raise WatchError(f"not executable: {argv[0]}") from None
        except OSError as exc:
            raise WatchError(f"cannot start {argv[0]}: {exc.strerror or exc}") from None
        return cls(popen.pid, popen, _shorten(shlex.join(argv)))

    def ended(self) -> bool:
        """Whether the process has exited (a zombie counts: it runs no more)."""
        if self.popen is not None:
            self.returncode = self.popen.poll()
            return self.returncode is not None
        if self._proc is None:
            return True
        try:
            return not self._proc.is_running() or self._proc.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True
        except psutil.Error:
            return False

    def stop(self) -> str | None:
        """Stop the command membound started: SIGTERM to its group, SIGKILL after
        :data:`STOP_GRACE_S`; how it went, in words (None when it had already ended)."""
        if self.popen is None or self.ended():
            return None
        with contextlib.suppress(OSError):
            os.killpg(self.pid, signal.SIGTERM)
        try:
            self.returncode = self.popen.wait(STOP_GRACE_S)
            how = "SIGTERM"
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                os.killpg(self.pid, signal.SIGKILL)
            self.returncode = self.popen.wait()
            how = f"SIGKILL (it ignored SIGTERM for {STOP_GRACE_S:g} s)"
        # Whatever else is left of its session goes too.
        with contextlib.suppress(OSError):
            os.killpg(self.pid, signal.SIGKILL)
        return f"stopped {self.label} (pid {self.pid}) with {how}"


#: Control characters of a command line (``python -c`` code has newlines) as escapes.
_ESCAPES = {c: f"\\x{c:02x}" for c in range(32)} | {9: "\\t", 10: "\\n", 13: "\\r"}


def _shorten(words: str, width: int = 80) -> str:
    """One line of at most ``width`` characters."""
    words = words.translate(_ESCAPES)
    return words if len(words) <= width else words[: width - 1] + "…"


def _counts(limit: Limit) -> str:
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


class _Watch:
    """The main loop: read what the watchdog decided, keep a bounded history, show it."""

    def __init__(
        self,
        dog: Watchdog,
        target: _Target,
        actions: _Actions,
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
            rss, hwm = _status(self.target.pid)
            if rss is not None:
                self.rss, self.hwm = rss, hwm
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
                # The watchdog could read nothing more while the process still runs.
                self.ended = "unreadable"
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
        grid.add_row("", Text(_counts(dog.limit), style="dim"))
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
            source=f"membound watch: the watchdog's readings ({_counts(self.dog.limit)})",
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
                "counts": _counts(dog.limit),
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
            f"  limit       {dog.limit.describe()}",
            f"  thresholds  soft {format_size(dog.soft_bytes)} · hard "
            f"{format_size(dog.hard_bytes)} · recover {format_size(dog.recover_bytes)}",
            f"  usage       last {format_size(None if usage is None else usage.judged)} · peak "
            f"{format_size(dog.peak_bytes)} (sampled; {_counts(dog.limit)})",
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
        for a in self.actions.done:
            what = "alarm" if a["option"] == "leak alarm" else "action"
            lines.append(f"  {what:<11} {a['option']} +{a['at_s']:.1f} s: {a['result']}")
        lines.append(f"  ended       {self.end_words}")
        return lines


# --- output files -----------------------------------------------------------------------------


def _plot_path(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    value = _writable(ctx, param, value)
    if value is not None and importlib.util.find_spec("matplotlib") is None:
        raise click.BadParameter("charts need matplotlib: pip install 'membound[plot]'")
    return value


def _json_bytes(summary: dict[str, object]) -> bytes:
    doc = {"schema": "membound/1", "type": "watch", "result": summary}
    return (json.dumps(doc, indent=1, allow_nan=False) + "\n").encode()


def _plot(watch: _Watch) -> bytes:
    """A timeline PNG of the judged usage, with the thresholds that fall within its range."""
    from membound.report.chart import _plot_timeline, _pyplot

    plt = _pyplot()
    dog = watch.dog
    timeline = watch.timeline()
    with plt.rc_context({"text.parse_math": False}):
        fig, ax = plt.subplots(figsize=(8, 4.5))
        _plot_timeline(ax, timeline, f"usage ({_counts(dog.limit)})")
        top = max(timeline.peak, 1.0)
        off = []
        for value, name, colour in (
            (dog.soft_bytes, "soft", "tab:orange"),
            (dog.hard_bytes, "hard", "tab:red"),
            (dog.limit.bytes, "limit", "black"),
        ):
            words = f"{name} {format_size(value)}"
            if value <= 1.5 * top:
                ax.axhline(value / _MIB, linestyle="--", linewidth=0.9, color=colour, label=words)
            else:
                off.append(words)
        who = f"pid {watch.target.pid}" + (f" {watch.target.label}" if watch.target.label else "")
        title = f"{_shorten(who, 60)}: {dog.state}, {dog.verdict.pattern}"
        if off:
            title += f"\n(off the chart: {', '.join(off)})"
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("seconds since the watch started")
        ax.set_ylabel("usage as the limit counts it (MiB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        fig.tight_layout()
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=100)
        plt.close(fig)
    return png.getvalue()


# --- Prometheus ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _metrics(port: int | None, watch: _Watch) -> Iterator[int | None]:
    """Serve the watched process's metrics on 127.0.0.1:``port`` while the watch runs; yields
    the port served (``0`` picks a free one), or None without ``port``."""
    if port is None:
        yield None
        return
    try:
        import prometheus_client
        from prometheus_client.core import GaugeMetricFamily, Metric
        from prometheus_client.registry import CollectorRegistry
    except ImportError:
        raise WatchError(
            "--prometheus-port needs prometheus_client: pip install 'membound[prometheus]'"
        ) from None

    class _Collector:
        def collect(self) -> Iterable[Metric]:
            dog = watch.dog
            usage = dog.usage
            judged = usage.judged if usage is not None else 0
            rss, hwm = _status(watch.target.pid)
            rss = rss if rss is not None else watch.rss
            hwm = hwm if hwm is not None else watch.hwm
            limit = dog.limit
            verdict = dog.verdict

            def gauge(name: str, text: str, value: float | None) -> GaugeMetricFamily:
                return GaugeMetricFamily(name, text, value=math.nan if value is None else value)

            yield gauge(
                "membound_memory_rss_bytes", "Resident memory of the process (VmRSS), bytes.", rss
            )
            yield gauge(
                "membound_memory_peak_bytes",
                "Peak resident memory of the process (VmHWM), bytes.",
                hwm,
            )
            yield gauge(
                "membound_memory_usage_bytes",
                f"Memory as the limit counts it ({_counts(limit)}), bytes.",
                judged,
            )
            yield gauge(
                "membound_memory_anon_bytes",
                "Anonymous memory that the limit counts, bytes.",
                None if usage is None else usage.anon,
            )
            yield gauge(
                "membound_memory_page_cache_bytes",
                "Page cache (or file-backed RSS), bytes.",
                None if usage is None else usage.file,
            )
            family = GaugeMetricFamily(
                "membound_memory_limit_bytes",
                "The memory limit the watched process is judged against.",
                labels=["source", "kind"],
            )
            family.add_metric([limit.source, limit.kind], limit.bytes)
            yield family
            yield gauge(
                "membound_memory_headroom_bytes", "The limit less the usage.", limit.bytes - judged
            )
            yield gauge(
                "membound_watchdog_state",
                "The watchdog's state: 0 ok, 1 soft, 2 hard.",
                _STATE_NUMBER[dog.state],
            )
            thresholds = GaugeMetricFamily(
                "membound_watchdog_threshold_bytes",
                "The watchdog's thresholds.",
                labels=["threshold"],
            )
            for name, value in (
                ("soft", dog.soft_bytes),
                ("hard", dog.hard_bytes),
                ("recover", dog.recover_bytes),
            ):
                thresholds.add_metric([name], value)
            yield thresholds
            # NaN while there is nothing to say, as guard/prometheus.py does.
            known = verdict.pattern != "unknown"
            yield gauge(
                "membound_growth_bytes_per_second",
                "Slope of the floor of memory over the leak window; NaN when unknown.",
                verdict.slope_bytes_per_s if known else None,
            )
            yield gauge(
                "membound_time_to_limit_seconds",
                "Seconds until the limit at that slope; NaN when unknown or not rising.",
                verdict.time_to_limit_s,
            )

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector())
    try:
        server, thread = prometheus_client.start_http_server(
            port, addr="127.0.0.1", registry=registry
        )
    except OSError as exc:
        raise WatchError(
            f"cannot serve metrics on 127.0.0.1:{port}: {exc.strerror or exc}"
        ) from None
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# --- the command --------------------------------------------------------------------------------


def _interval(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not 0.001 <= value <= 3600:  # NaN fails this too
        raise click.BadParameter(f"must be from 0.001 to 3600 seconds, not {value}")
    return value


def _window(ctx: click.Context, param: click.Parameter, value: str) -> float:
    try:
        return parse_duration(value, name="it")
    except MemboundError as exc:
        raise click.BadParameter(str(exc).removeprefix("it is "), ctx=ctx, param=param) from None


def _watchdog(
    soft: str,
    hard: str,
    recover: str | None,
    limit: str | Limit | None,
    interval: float,
    leak_window: float,
    pid: int | None,
    on_soft: Callable[[WatchdogEvent], object] | None = None,
    on_hard: Callable[[WatchdogEvent], object] | None = None,
    on_recover: Callable[[WatchdogEvent], object] | None = None,
    on_leak: Callable[[WatchdogEvent], object] | None = None,
) -> Watchdog:
    """The guard's watchdog; its refusals (bad sizes, ``recover >= soft``, ``soft >= hard``,
    ``hard`` above the limit, no such process) as one-line errors."""
    try:
        return Watchdog(
            soft=soft,
            hard=hard,
            recover=recover,
            limit=limit,
            interval=interval,
            on_soft=on_soft,
            on_hard=on_hard,
            on_recover=on_recover,
            on_leak=on_leak,
            leak_window=leak_window,
            pid=pid,
            switch_interval=None,
        )
    except MemboundError as exc:
        if str(exc).startswith("no process with pid"):
            raise WatchError(str(exc)) from None
        raise WatchUsageError(str(exc)) from None


@contextlib.contextmanager
def _quiet_guard_log() -> Iterator[None]:
    """The watchdog logs its transitions as warnings; the watch shows them itself (and a
    stray log line would tear the live view)."""
    log = logging.getLogger("membound.guard")
    handler = logging.NullHandler()
    log.addHandler(handler)
    propagate, log.propagate = log.propagate, False
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.propagate = propagate


@click.command("watch", cls=_Command)
@click.argument("pid", type=int, required=False)
@click.option(
    "--cmd",
    metavar='"COMMAND"',
    help="Start this command (split like a shell would, run without one) and watch it; "
    "membound stops it when the watch ends before it does.",
)
@click.option(
    "--soft",
    metavar="SIZE|PCT",
    default="80%",
    show_default=True,
    help="First threshold: a size (512MB) or a percentage of the limit.",
)
@click.option(
    "--hard",
    metavar="SIZE|PCT",
    default="90%",
    show_default=True,
    help="Second threshold, above --soft and at most the limit. Reaching it: exit 1.",
)
@click.option(
    "--recover",
    metavar="SIZE|PCT",
    help="Back to ok below this (default: --soft less a tenth of the limit).",
)
@click.option(
    "--limit",
    metavar="SIZE",
    help="The limit to judge against (default: the tightest that applies to the process: "
    "cgroup, rlimit, RAM).",
)
@click.option(
    "--interval",
    type=float,
    metavar="SECONDS",
    default=0.1,
    show_default=True,
    callback=_interval,
    help="Seconds between readings (0.001 to 3600; faster near the thresholds).",
)
@click.option(
    "--leak-window",
    metavar="DURATION",
    default="30 min",
    show_default=True,
    callback=_window,
    help="Window of the leak trend ('10 min', '2 h'); no verdict before it is 3/4 full.",
)
@click.option(
    "--on-soft",
    metavar="ACTION",
    callback=_action_option,
    help="At --soft: signal:NAME (sent to the process) or a command (cmd:… or plain).",
)
@click.option(
    "--on-hard",
    metavar="ACTION",
    callback=_action_option,
    help="At --hard: signal:NAME (e.g. signal:TERM) or a command. Commands run in the "
    "background without a shell, with MEMBOUND_PID, MEMBOUND_STATE, MEMBOUND_USAGE_BYTES and "
    f"MEMBOUND_LIMIT_BYTES set, and are killed after {ACTION_TIMEOUT_S:g} s.",
)
@click.option(
    "--on-recover",
    metavar="ACTION",
    callback=_action_option,
    help="When memory is back under --recover: signal:NAME or a command (gunicorn: "
    "--on-hard signal:TTOU sheds a worker, --on-recover signal:TTIN adds it back).",
)
@click.option(
    "--duration",
    type=float,
    metavar="SECONDS",
    callback=_seconds,
    help="Stop watching after this many seconds (exit 0 unless it reached hard or leaked).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False),
    callback=_writable,
    help="Write the summary here when the watch ends (also on Ctrl-C).",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    callback=_plot_path,
    help="Write a PNG timeline here when the watch ends.",
)
@click.option(
    "--prometheus-port",
    type=click.IntRange(0, 65535),
    metavar="PORT",
    help="Serve Prometheus metrics of the process on 127.0.0.1:PORT (0: any free port).",
)
@click.option("--quiet", is_flag=True, help="No live view and no transition lines.")
@click.option(
    "--no-live",
    is_flag=True,
    help="One line per transition instead of the live view (the default off a terminal).",
)
def command(
    pid: int | None,
    cmd: str | None,
    soft: str,
    hard: str,
    recover: str | None,
    limit: str | None,
    interval: float,
    leak_window: float,
    on_soft: Action | None,
    on_hard: Action | None,
    on_recover: Action | None,
    duration: float | None,
    json_path: str | None,
    plot_path: str | None,
    prometheus_port: int | None,
    quiet: bool,
    no_live: bool,
) -> int:
    """Watch a running process's memory against its limit: PID, or a command started with
    --cmd. Nothing changes in the process; membound reads it from outside. Under a cgroup
    limit the whole group's memory is judged, otherwise the process's own (not its children's).

    Shows usage and peak against the limit, recent usage, the state (ok, soft, hard) and the
    leak trend with the time to the limit. Runs until the process exits, --duration passes
    or Ctrl-C. Exit 0 when it never reached --hard, 1 when it did or a leak alarm fired.

    \b
    Examples:
      membound watch 1234 --on-hard signal:TERM
      membound watch --cmd "python job.py" --limit 2GB --json watch.json --plot watch.png
      membound watch 1234 --duration 600 --no-live --prometheus-port 9105
    """
    if (pid is None) == (cmd is None):
        raise WatchUsageError('give a PID or --cmd "COMMAND" (one of them)')
    if prometheus_port is not None:
        _check_port(prometheus_port)
    tree: WatchedTree | None = None
    if pid is not None:
        target = _Target.attach(pid)
        for action in (on_soft, on_hard, on_recover):
            if action is not None and action.signum is not None:
                _check_signals(pid)
    else:
        assert cmd is not None
        # Refuse bad thresholds before the command starts: a child has this process's limit.
        _watchdog(soft, hard, recover, limit, interval, leak_window, None)
        tree = tree_for_command()
        try:
            target = _Target.start(cmd, tree.enter())
        except BaseException:
            tree.remove()
            raise
    started = time.monotonic()
    actions = _Actions(target.pid, started)
    judged: str | Limit | None = limit
    if tree is not None:
        judged = tree.limit(target.pid, None if limit is None else parse_size(limit))
    try:
        dog = _watchdog(
            soft,
            hard,
            recover,
            judged,
            interval,
            leak_window,
            target.pid,
            on_soft=None if on_soft is None else actions.callback("on-soft", on_soft),
            on_hard=None if on_hard is None else actions.callback("on-hard", on_hard),
            on_recover=None if on_recover is None else actions.callback("on-recover", on_recover),
            on_leak=actions.on_leak,
        )
    except BaseException:
        target.stop()
        if tree is not None:
            tree.remove()
        raise
    live = not quiet and not no_live and sys.stderr.isatty() and Console(stderr=True).is_terminal
    mode = "quiet" if quiet else ("live" if live else "lines")
    watch = _Watch(dog, target, actions, started=started, duration=duration, mode=mode)
    watch.judged = "the process" if tree is None else tree.words
    stop: BaseException | None = None
    try:
        with _quiet_guard_log(), _metrics(prometheus_port, watch) as served:
            watch.say(
                f"watching pid {target.pid}"
                + (f" ({target.label})" if target.label else "")
                + f" every {dog.interval:g} s against {dog.limit.describe()}: soft "
                f"{format_size(dog.soft_bytes)}, hard {format_size(dog.hard_bytes)}"
            )
            if tree is not None:
                watch.say(f"judging the whole command: {tree.words}")
            for option, action in (("--on-hard", on_hard), ("--on-soft", on_soft)):
                warning = _gunicorn_warning(target.pid, option, action)
                if warning:
                    watch.say(warning)
            if served is not None:
                watch.say(f"serving metrics on http://127.0.0.1:{served}/metrics")
            try:
                dog.start()
                watch.run()
            finally:
                dog.stop()
    except KeyboardInterrupt as exc:
        stop, watch.ended = exc, "interrupted"
    except StopRequested as exc:
        stop, watch.ended = exc, "terminated"
    finally:
        stopped = target.stop()
        if tree is not None:
            tree.remove()
    try:
        waited = actions.finish()
    except KeyboardInterrupt as exc:
        waited, stop, watch.ended = 0, exc, "interrupted"
    except StopRequested as exc:
        waited, stop, watch.ended = 0, exc, "terminated"
    watch.observe(record=not target.ended())
    if stop is None:
        code = watch.exit_code()
    elif isinstance(stop, StopRequested):
        code = 128 + (stop.signum or signal.SIGTERM)
        watch.stopped_by = _signal_name(stop.signum)
    else:
        code = 128 + signal.SIGINT
    watch.ending(stopped, waited)
    files = Outputs()  # each file whole or not at all; a failure is said after the summary
    if json_path:
        files.write(json_path, _json_bytes(watch.summary(code)))
    if plot_path:
        files.write(plot_path, _plot(watch))
    for line in watch.summary_lines():
        click.echo(line)
    files.finish()
    if isinstance(stop, KeyboardInterrupt):
        stopped = (
            f"pid {target.pid} keeps running"
            if target.popen is None
            else f"the command it started (pid {target.pid}) was stopped"
        )
        raise Interrupted(None, f"watched pid {target.pid} for {watch.elapsed:.1f} s", stopped)
    if stop is not None:
        raise stop
    if watch.reached_hard():
        click.echo(
            f"membound: pid {target.pid} reached the hard threshold "
            f"{format_size(dog.hard_bytes)} (peak {format_size(dog.peak_bytes)} of "
            f"{format_size(dog.limit.bytes)})",
            err=True,
        )
    if actions.leak_alarm:
        click.echo(f"membound: pid {target.pid}: {actions.leak_alarm}", err=True)
    return code


def _signal_name(signum: int | None) -> str:
    """``SIGTERM`` for the signal that stopped membound (``ended`` in the summary)."""
    try:
        return signal.Signals(signum or signal.SIGTERM).name
    except ValueError:
        return f"signal {signum}"


def _check_port(port: int) -> None:
    """Refuse ``--prometheus-port`` before anything starts: prometheus_client missing, or the
    port taken."""
    if importlib.util.find_spec("prometheus_client") is None:
        raise WatchError(
            "--prometheus-port needs prometheus_client: pip install 'membound[prometheus]'"
        )
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise WatchError(
                f"cannot serve metrics on 127.0.0.1:{port}: {exc.strerror or exc}"
            ) from None


def _gunicorn_warning(pid: int, option: str, action: Action | None) -> str | None:
    """One line when ``option`` sends HUP or TERM to what looks like a gunicorn master: HUP
    starts the new workers before the old ones exit (memory doubles at the worst moment), TERM
    stops the whole server."""
    if action is None or action.signum not in (signal.SIGHUP, signal.SIGTERM):
        return None
    try:
        words = " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return None
    if "gunicorn" not in words:
        return None
    name = signal.Signals(action.signum).name.removeprefix("SIG")
    harm = (
        "starts new workers before the old ones exit, so memory rises first"
        if name == "HUP"
        else "stops the whole server"
    )
    return (
        f"warning: {option} signal:{name} to a gunicorn master {harm}; to shed memory send "
        "signal:TTOU (one worker fewer) and --on-recover signal:TTIN (one back)"
    )


def _check_signals(pid: int) -> None:
    """Refuse ``signal:`` actions that could never be sent."""
    try:
        os.kill(pid, 0)
    except PermissionError:
        raise WatchError(f"no permission to send signals to pid {pid}") from None
    except ProcessLookupError:
        pass  # it exited in the meantime: the watch says so
