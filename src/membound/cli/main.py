"""Entry point of the ``membound`` command: dispatch, exit codes and error messages.

Exit codes: 0 ok, 1 a verdict, limit or finding failed, 2 usage or run error, 128 + N when
signal N ended membound itself (130 for Ctrl-C). User errors print one line and a hint on stderr,
never a Python traceback.

A closed stdout (``membound … | head -1``) ends membound quietly with 141 (128 + SIGPIPE), as a
shell tool killed by SIGPIPE would; Python ignores SIGPIPE, so the write fails with
``BrokenPipeError`` instead, and membound follows Python's documented recipe (the rest of the
output goes to ``/dev/null``, so that the flush at exit cannot fail again). click would turn
that error into ``sys.exit(1)``, indistinguishable from measured code calling ``sys.exit(1)``:
:class:`_Group` catches it first. A stdout that fails otherwise (``> /dev/full``) is one line
naming stdout, exit 2.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import select
import signal
import stat
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import click

from membound._errors import (
    Interrupted,
    MemboundError,
    StopRequested,
    describe_exception,
    failure_words,
)
from membound._startup import ready
from membound.cli.output import MESSAGE_CHARS, cut_long
from membound.measure.sampler.process import kill_descendants

__all__ = ["COMMANDS", "cli", "main", "run"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_ERROR = 2
#: A closed stdout: what a shell reports for a tool killed by SIGPIPE.
EXIT_PIPE = 128 + signal.SIGPIPE

#: Subcommand modules under ``membound.cli.commands``; each defines ``command``.
COMMANDS: tuple[str, ...] = ("run", "compare", "scale", "leaks", "report", "demo", "lint", "watch")


class StreamFailed(Exception):
    """A write to stdout or stderr failed: the reader went away (EPIPE) or the file cannot take
    more (``/dev/full``). Not an ``OSError``, so that click lets it through."""

    def __init__(self, name: str, error: OSError) -> None:
        super().__init__(name, error)
        self.name = name
        self.error = error


class _PipeError(Exception):
    """An EPIPE that is not stdout's or stderr's (a pipe to a child), carried past click, which
    would turn it into ``sys.exit(1)``; reported as the ``OSError`` it is."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error)
        self.error = error


#: The errors with which a write to a stream fails when its file cannot take more.
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _cannot_take(fd: int, error: int | None) -> bool:
    """Whether a write to ``fd`` fails with ``error`` now. Python drops a buffer whose write
    failed, so the stream cannot simply be flushed again: the file behind ``fd`` is asked."""
    try:
        info = os.fstat(fd)
    except OSError:
        return True  # closed by code measured in this process
    if error == errno.EPIPE:  # a pipe or socket whose reader is gone polls as an error
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(mask & (select.POLLERR | select.POLLHUP) for _, mask in poller.poll(0))
    if error not in _FULL:
        return False
    if stat.S_ISCHR(info.st_mode):  # /dev/full refuses even an empty write
        try:
            os.write(fd, b"")
        except OSError:
            return True
        return False
    if stat.S_ISREG(info.st_mode):
        return os.fstatvfs(fd).f_bavail == 0
    return False


def _failed_stream(error: OSError) -> str | None:
    """``"stdout"`` or ``"stderr"``, if ``error`` is a failed write to it."""
    for fd, name in ((1, "stdout"), (2, "stderr")):
        if _cannot_take(fd, error.errno):
            return name
    return None


def _flush_streams() -> tuple[str, OSError] | None:
    """Flush stdout and stderr: output still in a buffer must reach its reader too."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        try:
            if stream is not None:
                stream.flush()
        except OSError as exc:
            return (_failed_stream(exc) or name), exc
        except ValueError:  # closed by code measured in this process
            continue
    return None


@contextlib.contextmanager
def _stream_failures() -> Iterator[None]:
    """Turn a failed write to stdout or stderr into :class:`StreamFailed`; any other
    ``OSError`` goes on as it is (EPIPE wrapped, past click)."""
    try:
        yield
    except OSError as exc:
        name = _failed_stream(exc)
        if name is not None:
            raise StreamFailed(name, exc) from exc
        if exc.errno == errno.EPIPE:
            raise _PipeError(exc) from exc
        raise


class _Group(click.Group):
    """The ``membound`` group: a failed write to stdout or stderr, while parsing (``--help``)
    or running a command, reaches :func:`main` as :class:`StreamFailed`; click would turn
    EPIPE into ``sys.exit(1)``.

    A subcommand's module is imported when the command is asked for (click's documented lazy
    group): ``membound run`` does not import what ``watch`` or ``lint`` need, about half of
    the command's start-up; ``membound --help`` imports them all, to list them.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            module = importlib.import_module(f"membound.cli.commands.{cmd_name}")
            self.add_command(module.command)
        return super().get_command(ctx, cmd_name)

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        with _stream_failures():
            return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with _stream_failures():
            return super().invoke(ctx)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="membound")
def cli() -> None:
    """Prove that Python code runs in bounded memory: measure, judge, bound, guard."""


class Terminated(StopRequested):
    """SIGTERM or SIGHUP arrived (``timeout``, a CI cancel, Kubernetes, a closed terminal):
    unwind so that every measured child is killed and temporary files are removed on the way
    out."""


def _on_signal(signum: int, frame: object) -> None:
    raise Terminated(signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and return the exit code: 0, 1 or
    2, or 128 + N when signal N was sent to membound itself (130 for Ctrl-C), 141 when stdout's
    reader went away (as if SIGPIPE had ended membound)."""
    args = list(sys.argv[1:] if argv is None else argv)
    # Given back on the way out: called inside another program (a test, a script), that
    # program's handlers hold again (a multiprocessing pool forked later would otherwise have
    # its workers unwind in Python at terminate() instead of ending).
    previous: dict[signal.Signals, Any] = {}
    try:
        if threading.current_thread() is threading.main_thread():
            for stop in (signal.SIGTERM, signal.SIGHUP):
                previous[stop] = signal.signal(stop, _on_signal)
        return _main(args)
    except Terminated as exc:  # outside the command's run: while its module was imported
        return _terminated(exc, " while starting")
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler if handler is not None else signal.SIG_DFL)
        ready()  # membound's own start-up handlers, given back above, are done with


def _main(args: list[str]) -> int:
    """:func:`main` once its signal handlers are in place."""
    if args and args[0] in COMMANDS:  # the command's module too, before Ctrl-C is ours
        cli.get_command(click.Context(cli), args[0])
    ready()  # imports done: Ctrl-C is KeyboardInterrupt again, handled below
    try:
        code = _dispatch(args)
        failed = _flush_streams()
        return code if failed is None or code > EXIT_ERROR else _stream_failed(*failed)
    except KeyboardInterrupt:  # a second Ctrl-C while the first one was being reported
        return 128 + signal.SIGINT
    except StreamFailed as exc:
        return _stream_failed(exc.name, exc.error)
    except OSError as exc:  # stderr failed while an error was being reported
        name = _failed_stream(exc)
        if name is None:
            raise
        return _stream_failed(name, exc)


def _stream_failed(name: str, error: OSError) -> int:
    """A standard stream cannot be written: its output (and what is still to come) goes to
    ``/dev/null``; a closed pipe ends membound quietly with 141, anything else is one line."""
    stream = getattr(sys, name)
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, stream.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):
        pass
    if error.errno == errno.EPIPE:
        return EXIT_PIPE
    reason = error.strerror or describe_exception(error)
    with contextlib.suppress(OSError, ValueError):
        click.echo(f"membound: error: cannot write to {name}: {reason}", err=True)
    return EXIT_ERROR


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
    except click.UsageError as exc:
        if type(exc).show is not click.UsageError.show:
            exc.show()  # a command's own one-line form
            return EXIT_ERROR
        # One error line and one hint, as every other error: click's own block (usage, a
        # "Try" line, a blank line, then "Error: ...") puts the reason last.
        command = exc.ctx.command_path if exc.ctx is not None else "membound"
        click.echo(f"membound: error: {cut_long(exc.format_message(), MESSAGE_CHARS)}", err=True)
        click.echo(f"hint: see '{command} --help'", err=True)
        return EXIT_ERROR
    except click.ClickException as exc:
        exc.show()
        return EXIT_ERROR
    except StreamFailed:
        raise
    except MemboundError as exc:
        child_traceback = getattr(exc, "traceback", "")
        if child_traceback:
            click.echo(cut_long(child_traceback.rstrip()), err=True)
        click.echo(f"membound: error: {cut_long(describe_message(exc), MESSAGE_CHARS)}", err=True)
        if exc.hint:
            click.echo(f"hint: {exc.hint}", err=True)
        return EXIT_ERROR
    except KeyboardInterrupt as exc:
        return _interrupted(exc)
    except Terminated as exc:
        return _terminated(exc, "; the measured processes were stopped")
    except (OSError, _PipeError) as exc:
        error = exc.error if isinstance(exc, _PipeError) else exc
        where = f"{error.filename}: " if error.filename else ""
        reason = error.strerror or describe_exception(error)
        click.echo(f"membound: error: {where}{cut_long(reason, MESSAGE_CHARS)}", err=True)
        return EXIT_ERROR
    except SystemExit as exc:  # measured code that called sys.exit where membound runs it
        words = cut_long(failure_words(exc), MESSAGE_CHARS)
        click.echo(f"membound: error: the measured code {words}", err=True)
        return EXIT_ERROR
    except Exception as exc:
        if os.environ.get("MEMBOUND_DEBUG"):
            raise
        text = cut_long(describe_exception(exc), MESSAGE_CHARS)
        click.echo(f"membound: internal error: {text}", err=True)
        click.echo(
            "hint: this is a bug in membound; MEMBOUND_DEBUG=1 shows the traceback", err=True
        )
        return EXIT_ERROR
    except BaseException as exc:  # the measured code's own BaseException subclass
        words = cut_long(failure_words(exc), MESSAGE_CHARS)
        click.echo(f"membound: error: the measured code {words}", err=True)
        return EXIT_ERROR
    code = int(result or 0)
    return code if code in (EXIT_OK, EXIT_FAILED, EXIT_ERROR) else EXIT_ERROR


def _terminated(exc: Terminated, words: str) -> int:
    """SIGTERM or SIGHUP ended the command: one line (``words`` follow the signal's name), and
    128 + N, as if the signal had killed it."""
    signum = exc.signum or signal.SIGTERM
    name = signal.Signals(signum).name
    with contextlib.suppress(OSError, ValueError):
        click.echo(f"membound: terminated by {name}{words}", err=True)
    return 128 + signum


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
        with contextlib.suppress(OSError):
            click.echo(f"membound: stopped {left} {what} the measured code left running", err=True)
    sys.exit(code)
