"""One-line errors of ``membound watch``: a usage error (exit 2, no usage block) and a run
error (no such process, no permission; exit 2)."""

from __future__ import annotations

from typing import IO, Any

import click

# --- one-line errors --------------------------------------------------------------------------


class WatchUsageError(click.UsageError):
    """A usage error of ``membound watch``, shown on one line (no usage block)."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"membound: error: {self.format_message()}", err=True)


class WatchError(click.ClickException):
    """A run error of ``membound watch`` (no such process, no permission): one line, exit 2."""

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"membound: error: {self.format_message()}", err=True)
