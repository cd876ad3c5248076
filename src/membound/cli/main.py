"""Entry point of the ``membound`` command: dispatch, exit codes and error messages.

Exit codes: 0 ok, 1 a verdict, limit or finding failed, 2 usage or run error. User errors print
one line and a hint on stderr, never a Python traceback.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
from collections.abc import Sequence

import click

from membound._errors import (
    Interrupted,
    MemboundError,
    StopRequested,
    describe_exception,
    failure_words,
)
from membound.measure.sampler import kill_descendants

__all__ = ["COMMANDS", "cli", "main", "run"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_ERROR = 2

#: Subcommand modules under ``membound.cli.commands``; each defines ``command``.
COMMANDS: tuple[str, ...] = ("run", "compare", "scale", "leaks", "report", "demo", "lint", "watch")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="membound")
def cli() -> None:
    """Prove that Python code runs in bounded memory: measure, judge, bound, guard."""


for _name in COMMANDS:
    cli.add_command(importlib.import_module(f"membound.cli.commands.{_name}").command)


class Terminated(StopRequested):
    """SIGTERM or SIGHUP arrived (``timeout``, a CI cancel, Kubernetes, a closed terminal):
    unwind so that every measured child is killed and temporary files are removed on the way
    out."""


def _on_signal(signum: int, frame: object) -> None:
    raise Terminated(signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and return the exit code: 0, 1 or
    2, or 128 + N when signal N was sent to membound itself (130 for Ctrl-C)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, _on_signal)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:  # a second Ctrl-C while the first one was being reported
        return 128 + signal.SIGINT


def _dispatch(args: list[str]) -> int:
    try:
        result = cli.main(args=args, prog_name="membound", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):  # click turns Ctrl-C into Abort
            return _interrupted(exc.__cause__)
        click.echo("membound: aborted", err=True)
        return EXIT_ERROR
    except click.ClickException as exc:
        exc.show()
        return EXIT_ERROR
    except MemboundError as exc:
        child_traceback = getattr(exc, "traceback", "")
        if child_traceback:
            click.echo(child_traceback.rstrip(), err=True)
        click.echo(f"membound: error: {describe_message(exc)}", err=True)
        if exc.hint:
            click.echo(f"hint: {exc.hint}", err=True)
        return EXIT_ERROR
    except KeyboardInterrupt as exc:
        return _interrupted(exc)
    except Terminated as exc:
        name = signal.Signals(exc.signum or signal.SIGTERM).name
        click.echo(f"membound: terminated by {name}; the measured processes were stopped", err=True)
        return 128 + (exc.signum or signal.SIGTERM)
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        click.echo(f"membound: error:{where}: {exc.strerror or describe_exception(exc)}", err=True)
        return EXIT_ERROR
    except SystemExit as exc:  # measured code that called sys.exit where membound runs it
        click.echo(f"membound: error: the measured code {failure_words(exc)}", err=True)
        return EXIT_ERROR
    except Exception as exc:
        if os.environ.get("MEMBOUND_DEBUG"):
            raise
        click.echo(f"membound: internal error: {describe_exception(exc)}", err=True)
        click.echo(
            "hint: this is a bug in membound; MEMBOUND_DEBUG=1 shows the traceback", err=True
        )
        return EXIT_ERROR
    except BaseException as exc:  # the measured code's own BaseException subclass
        click.echo(f"membound: error: the measured code {failure_words(exc)}", err=True)
        return EXIT_ERROR
    code = int(result or 0)
    return code if code in (EXIT_OK, EXIT_FAILED, EXIT_ERROR) else EXIT_ERROR


def _interrupted(exc: KeyboardInterrupt) -> int:
    """Ctrl-C: say what finished (a command has printed and written it already)."""
    finished = f"; {exc.finished}" if isinstance(exc, Interrupted) else ""
    stopped = exc.stopped if isinstance(exc, Interrupted) else "the measured processes were stopped"
    click.echo(f"membound: interrupted{finished}; {stopped}", err=True)
    return 128 + signal.SIGINT


def describe_message(exc: BaseException) -> str:
    """The message of one of membound's errors, even when a part of it cannot be printed."""
    text = describe_exception(exc)
    prefix = f"{type(exc).__name__}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def run() -> None:
    """Console-script entry point.

    The command owns its process, so on the way out it kills whatever of its tree is still
    running: children that code measured in-process (``leaks --in-process``) started, in a
    session of their own or not. (Spawned runs are cleaned up by their sampler.) Not a
    subreaper: adopted orphans would have to be reaped as they exit, and a reaper here would
    take the exit status of children that ``subprocess`` waits for; a double-forked daemon of
    in-process code escapes, which the default isolated runs catch. Not done by :func:`main`,
    which may run inside another program's process.
    """
    code = main()
    left = kill_descendants(os.getpid())
    if left:
        what = "process" if left == 1 else "processes"
        click.echo(f"membound: stopped {left} {what} the measured code left running", err=True)
    sys.exit(code)
