"""What ``membound watch`` does at a threshold: ``--on-soft``/``--on-hard``/``--on-recover``
actions (a signal to the watched process, or a command run in the background without a shell,
killed after ``ACTION_TIMEOUT_S``), bounded in number and in what is kept of them.

The server recipe — ``TTOU`` sheds one worker of a gunicorn master or a ``uvicorn --workers``
parent, ``TTIN`` adds one — is paired (:class:`Shedding`): a ``TTIN`` only undoes a ``TTOU``
this watch sent, never takes the server above the workers it had before the first, and is sent
only once memory has stayed under ``recover`` for :data:`RECOVER_HOLD_S` (one per hold). Sent
on every recovery, it made ``-w 3`` reach 6 workers after recoveries that never reached
``hard``, flapping ~3 times a second, with 25 OOM kills in 19.6 s."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import click
import psutil

from membound.guard.watchdog.core import WatchdogEvent
from membound.measure.isolate.outcome import exit_words

#: Seconds an action command may run before it is killed.
ACTION_TIMEOUT_S = 30.0
#: Action commands that may run at once; more are skipped (a flapping process must not fork a
#: crowd).
_ACTIONS_RUNNING = 4
#: Action results kept for the summary.
_ACTIONS_KEPT = 20
#: Seconds memory must stay under ``recover`` before a ``TTIN`` adds back a shed worker.
RECOVER_HOLD_S = 5.0


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


def action_option(ctx: click.Context, param: click.Parameter, value: str | None) -> Action | None:
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


class Actions:
    """Runs the actions of one watch without ever blocking the watchdog, and keeps what
    happened (bounded) for the main loop to print and the summary to list."""

    def __init__(self, pid: int, started: float) -> None:
        self.pid = pid
        self.started = started
        self.notes: deque[str] = deque(maxlen=100)
        self.done: deque[dict[str, object]] = deque(maxlen=_ACTIONS_KEPT)
        self.runs = 0
        self.leak_alarm: str | None = None
        #: The paired TTOU/TTIN recipe, when the actions send those signals.
        self.shedding: Shedding | None = None
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

    def tick(self, usage_bytes: int | None, recover_bytes: int) -> None:
        """The main loop's look at memory (the paired ``TTIN`` is sent from here)."""
        if self.shedding is not None:
            self.shedding.tick(usage_bytes, recover_bytes)

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

    def send(self, option: str, action: Action, event: WatchdogEvent | None) -> None:
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

    def __init__(self, actions: Actions, option: str, action: Action) -> None:
        self.actions, self.option, self.action = actions, option, action
        # A signal is quick and never blocks: the watchdog sends it from its own thread the
        # moment it decides, as it does its ready-made actions (guard/watchdog/actions.py).
        self._membound_immediate = action.signum is not None

    def __call__(self, event: WatchdogEvent) -> None:
        try:
            shedding = self.actions.shedding
            if shedding is not None and self.action.signum == signal.SIGTTOU:
                shedding.shed(self.option, self.action, event)
            elif shedding is not None and self.action.signum == signal.SIGTTIN:
                shedding.recovered(self.option, self.action, event)
            elif self.action.signum is not None:
                self.actions.send(self.option, self.action, event)
            else:
                self.actions.spawn(self.option, self.action, event)
        except Exception as exc:  # an action must never end the watch
            self.actions.note(self.option, event, f"{self.action.describe()} failed: {exc}")

    def __repr__(self) -> str:
        return f"{self.option} {self.action.text}"


def server_workers(pid: int) -> int | None:
    """The live workers of a server's master (its children that are not zombies, leaving out
    ``multiprocessing``'s resource tracker that ``uvicorn --workers`` starts), or None when it
    is gone."""
    try:
        children = psutil.Process(pid).children()
    except psutil.Error:
        return None
    count = 0
    for child in children:
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                continue
            if "resource_tracker" in " ".join(child.cmdline()):
                continue
        except psutil.Error:
            continue
        count += 1
    return count


class Shedding:
    """``TTOU`` and ``TTIN`` paired (see the module docstring): what was shed, from how many
    workers, and how long memory has been under ``recover``."""

    def __init__(self, actions: Actions, hold_s: float = RECOVER_HOLD_S) -> None:
        self.actions = actions
        self.hold_s = hold_s
        self.outstanding = 0
        """``TTOU`` sent and not yet undone."""
        self.started_with: int | None = None
        """Workers before the first ``TTOU`` of this shedding: ``TTIN`` never goes above."""
        self._ttin: tuple[str, Action] | None = None
        self._under_since: float | None = None
        self._event: WatchdogEvent | None = None
        self._lock = threading.Lock()

    def shed(self, option: str, action: Action, event: WatchdogEvent) -> None:
        """Send ``TTOU`` (in the watchdog's thread, at once) unless one worker is left."""
        workers = server_workers(self.actions.pid)
        if workers is not None and workers <= 1:
            self.actions.note(option, event, "SIGTTOU not sent: one worker left")
            return
        with self._lock:
            if self.outstanding == 0:
                self.started_with = workers
            self.outstanding += 1
            self._under_since = None
        self.actions.send(option, action, event)

    def recovered(self, option: str, action: Action, event: WatchdogEvent) -> None:
        """Memory is back under ``recover``: the ``TTIN`` waits for the hold (:meth:`tick`)."""
        with self._lock:
            self._ttin, self._event = (option, action), event

    def tick(self, usage_bytes: int | None, recover_bytes: int) -> None:
        """Send one ``TTIN`` when a shed worker is owed, memory has stayed under ``recover``
        for the hold, and the server has fewer workers than before the first ``TTOU``."""
        now = time.monotonic()
        with self._lock:
            if self.outstanding == 0 or self._ttin is None:
                return
            if usage_bytes is None or usage_bytes >= recover_bytes:
                self._under_since = None
                return
            if self._under_since is None:
                self._under_since = now
            if now - self._under_since < self.hold_s:
                return
            workers = server_workers(self.actions.pid)
            if workers is None:
                return
            if self.started_with is not None and workers >= self.started_with:
                self.outstanding = 0  # the server is back to what it had: nothing to undo
                return
            self.outstanding -= 1
            self._under_since = now  # the next one after another hold
            option, action = self._ttin
            event = self._event
        self.actions.send(option, action, event)
