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

from membound._errors import MemboundError

__all__ = ["COMMANDS", "cli", "main", "run"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_ERROR = 2

#: Subcommand modules under ``membound.cli.commands``; each defines ``command``.
COMMANDS: tuple[str, ...] = ("run", "compare", "scale", "leaks", "report", "demo", "lint")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="membound")
def cli() -> None:
    """Prove that Python code runs in bounded memory: measure, judge, bound, guard."""


for _name in COMMANDS:
    cli.add_command(importlib.import_module(f"membound.cli.commands.{_name}").command)


class Terminated(BaseException):
    """SIGTERM arrived (``timeout``, a CI cancel, Kubernetes): unwind so that every measured
    child is killed and temporary files are removed on the way out."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        result = cli.main(args=args, prog_name="membound", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("membound: aborted", err=True)
        return EXIT_ERROR
    except click.ClickException as exc:
        exc.show()
        return EXIT_ERROR
    except MemboundError as exc:
        child_traceback = getattr(exc, "traceback", "")
        if child_traceback:
            click.echo(child_traceback.rstrip(), err=True)
        click.echo(f"membound: error: {exc}", err=True)
        if exc.hint:
            click.echo(f"hint: {exc.hint}", err=True)
        return EXIT_ERROR
    except KeyboardInterrupt:
        click.echo("membound: interrupted; the measured processes were stopped", err=True)
        return 130
    except Terminated:
        click.echo("membound: terminated; the measured processes were stopped", err=True)
        return 143
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        click.echo(f"membound: error:{where}: {exc.strerror or exc}", err=True)
        return EXIT_ERROR
    except Exception as exc:
        if os.environ.get("MEMBOUND_DEBUG"):
            raise
        click.echo(f"membound: internal error: {type(exc).__name__}: {exc}", err=True)
        click.echo(
            "hint: this is a bug in membound; MEMBOUND_DEBUG=1 shows the traceback", err=True
        )
        return EXIT_ERROR
    return int(result or 0)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
