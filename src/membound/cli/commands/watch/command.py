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
import logging
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable, Iterator

import click
import psutil
from rich.console import Console

from membound._errors import Interrupted, MemboundError, StopRequested
from membound._units import format_size, parse_duration, parse_size
from membound.cli.commands.watch.actions import (
    ACTION_TIMEOUT_S,
    Action,
    Actions,
    Shedding,
    action_option,
    parse_action,
)
from membound.cli.commands.watch.errors import WatchError, WatchUsageError
from membound.cli.commands.watch.outputs import json_bytes, plot, plot_path, serve_metrics
from membound.cli.commands.watch.target import STOP_GRACE_S, Target
from membound.cli.commands.watch.tree import WatchedTree, tree_for_command
from membound.cli.commands.watch.view import Watch
from membound.cli.output import Outputs, seconds_option, writable_path
from membound.guard.limit import Limit
from membound.guard.watchdog.core import Watchdog, WatchdogEvent
from membound.measure.cgroup.memory import group_usage

__all__ = ["ACTION_TIMEOUT_S", "STOP_GRACE_S", "Action", "command", "parse_action"]


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
    soft: str | None,
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
    help="First threshold: a size (512MB) or a percentage of the limit "
    "(default: 80%, or 8/9 of --hard when --hard is not above that).",
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
    "cgroup, rlimit, RAM). With --cmd it is also set as the limit of the cgroup the command "
    "runs in.",
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
    callback=action_option,
    help="At --soft: signal:NAME (sent to the process) or a command (cmd:… or plain).",
)
@click.option(
    "--on-hard",
    metavar="ACTION",
    callback=action_option,
    help="At --hard: signal:NAME (e.g. signal:TERM) or a command. Commands run in the "
    "background without a shell, with MEMBOUND_PID, MEMBOUND_STATE, MEMBOUND_USAGE_BYTES and "
    f"MEMBOUND_LIMIT_BYTES set, and are killed after {ACTION_TIMEOUT_S:g} s.",
)
@click.option(
    "--on-recover",
    metavar="ACTION",
    callback=action_option,
    help="When memory is back under --recover: signal:NAME or a command (gunicorn: "
    "--on-hard signal:TTOU sheds a worker, --on-recover signal:TTIN adds it back).",
)
@click.option(
    "--duration",
    type=float,
    metavar="SECONDS",
    callback=seconds_option,
    help="Stop watching after this many seconds (exit 0 unless it reached hard or leaked).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False),
    callback=writable_path,
    help="Write the summary here when the watch ends (also on Ctrl-C).",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    callback=plot_path,
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
    soft: str | None,
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
    A --cmd command is judged whole: it starts in a memory cgroup made for it (removed at the
    end), or its process tree is summed where no cgroup can be made.

    Shows usage and peak against the limit, recent usage, the state (ok, soft, hard) and the
    leak trend with the time to the limit. Runs until the process exits, --duration passes
    or Ctrl-C. Exit 0 when it never reached --hard, 1 when it did or a leak alarm fired.

    \b
    Examples:
      membound watch 1234 --on-hard signal:TERM
      membound watch --cmd "gunicorn app:app" --on-hard signal:TTOU --on-recover signal:TTIN
      membound watch --cmd "python job.py" --limit 2GB --json watch.json --plot watch.png
      membound watch 1234 --duration 600 --no-live --prometheus-port 9105
    """
    if (pid is None) == (cmd is None):
        raise WatchUsageError('give a PID or --cmd "COMMAND" (one of them)')
    if prometheus_port is not None:
        _check_port(prometheus_port)
    recipe = _check_recipe(on_soft, on_hard, on_recover)
    tree: WatchedTree | None = None
    if pid is not None:
        if recipe is not None:
            _check_server(recipe, f"pid {pid}", _cmdline(pid), pid)
        target = Target.attach(pid)
        for action in (on_soft, on_hard, on_recover):
            if action is not None and action.signum is not None:
                _check_signals(pid)
    else:
        assert cmd is not None
        if recipe is not None:
            _check_server(recipe, repr(cmd), _split(cmd), None)
        # Refuse bad thresholds before the command starts: a child has this process's limit.
        _watchdog(soft, hard, recover, limit, interval, leak_window, None)
        tree = tree_for_command(None if limit is None else parse_size(limit))
        try:
            target = Target.start(cmd, tree.enter())
        except BaseException:
            tree.remove()
            raise
    started = time.monotonic()
    actions = Actions(target.pid, started)
    if recipe is not None:
        actions.shedding = Shedding(actions)
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
        _check_group(dog.limit)
    except BaseException:
        target.stop()
        if tree is not None:
            tree.remove()
        raise
    live = not quiet and not no_live and sys.stderr.isatty() and Console(stderr=True).is_terminal
    mode = "quiet" if quiet else ("live" if live else "lines")
    watch = Watch(dog, target, actions, started=started, duration=duration, mode=mode)
    watch.judged = "the process" if tree is None else tree.words
    stop: BaseException | None = None
    try:
        with _quiet_guard_log(), serve_metrics(prometheus_port, watch) as served:
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
            watch.oom_kills = tree.oom_kills()
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
        files.write(json_path, json_bytes(watch.summary(code)))
    if plot_path:
        files.write(plot_path, plot(watch))
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
    from membound.guard.prometheus.server import check_port

    try:
        check_port(port)
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
    if not _looks_like_gunicorn_master(pid):
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


def _looks_like_gunicorn_master(pid: int) -> bool:
    """Whether ``pid`` is a gunicorn master: gunicorn in its command line (``gunicorn …``,
    ``python -m gunicorn …``, or the ``gunicorn: master [app]`` title), and not a worker (a
    worker is forked from its master without ``exec``: the same command line as its parent,
    or the ``gunicorn: worker [app]`` title)."""
    try:
        proc = psutil.Process(pid)
        words = proc.cmdline()
        parent = proc.parent()
        above = [] if parent is None else parent.cmdline()
    except psutil.Error:
        return False
    line = " ".join(words)
    return "gunicorn" in line and "gunicorn: worker" not in line and words != above


def _check_signals(pid: int) -> None:
    """Refuse ``signal:`` actions that could never be sent."""
    try:
        os.kill(pid, 0)
    except PermissionError:
        raise WatchError(f"no permission to send signals to pid {pid}") from None
    except ProcessLookupError:
        pass  # it exited in the meantime: the watch says so


def _check_group(limit: Limit) -> None:
    """A cgroup limit whose usage cannot be read is one line (exit 2): judging the process's
    own memory against the group's limit instead would say nothing true."""
    group = limit.group
    if group is None or group_usage(group) is not None:
        return
    names = "memory.current" if group.version == 2 else "memory.usage_in_bytes"
    raise WatchError(
        f"cannot read the memory cgroup {group.path} ({names} and memory.stat), whose limit "
        f"{format_size(limit.bytes)} applies to the process: give --limit to judge the "
        "process's own memory, or run membound where it can read the group"
    )


def _check_recipe(*actions: Action | None) -> str | None:
    """The option that sends ``TTOU`` or ``TTIN`` (the server recipe), or None; a ``TTIN``
    with no ``TTOU`` for it to undo is a usage error."""
    options = ("--on-soft", "--on-hard", "--on-recover")
    sent = {
        option: action.signum
        for option, action in zip(options, actions, strict=True)
        if action is not None and action.signum in (signal.SIGTTOU, signal.SIGTTIN)
    }
    if not sent:
        return None
    if signal.SIGTTIN in sent.values() and signal.SIGTTOU not in sent.values():
        option = next(o for o, n in sent.items() if n == signal.SIGTTIN)
        raise WatchUsageError(
            f"{option} signal:TTIN adds back a worker that a TTOU shed, and nothing sends one: "
            "give --on-hard signal:TTOU too"
        )
    option = next(iter(sent))
    return f"{option} signal:{signal.Signals(sent[option]).name.removeprefix('SIG')}"


def _split(cmd: str) -> list[str]:
    try:
        return shlex.split(cmd)
    except ValueError:
        return cmd.split()


def _cmdline(pid: int) -> list[str]:
    try:
        return psutil.Process(pid).cmdline()
    except psutil.Error:
        return []


def server_kind(words: list[str]) -> str | None:
    """``gunicorn`` or ``uvicorn --workers`` when a command line starts one of the servers
    whose master changes its worker count on TTOU and TTIN, else None."""
    names = [os.path.basename(word) for word in words[:4]]
    if any(name == "gunicorn" or name.startswith("gunicorn:") for name in names):
        return "gunicorn"
    if "uvicorn" in names:
        for i, word in enumerate(words):
            value = word.removeprefix("--workers=") if word.startswith("--workers=") else None
            if word == "--workers" and i + 1 < len(words):
                value = words[i + 1]
            if value is not None and value.isdigit() and int(value) > 1:
                return "uvicorn --workers"
    return None


def _check_server(recipe: str, who: str, words: list[str], pid: int | None) -> None:
    """The recipe is sent to a gunicorn master or a ``uvicorn --workers`` parent, else one
    line (exit 2): anything else stops on TTOU and TTIN (their default action)."""
    kind = server_kind(words)
    if kind == "gunicorn" and pid is not None and not _looks_like_gunicorn_master(pid):
        kind = None  # a worker: TTOU would stop it, its master would not shed it
    if kind is None:
        raise WatchError(
            f"{recipe}: {who} is no gunicorn master nor uvicorn --workers parent; TTOU and "
            "TTIN change the worker count of those, and stop any other process"
        )
