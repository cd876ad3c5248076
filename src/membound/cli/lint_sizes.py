"""``membound lint --db URL``, ``--sizes FILE``, ``--write-sizes FILE``: where the run's table
sizes come from (``lint/sizes.py``), each failure one line (exit 2)."""

from __future__ import annotations

import dataclasses

import click

from membound._errors import MemboundError
from membound.lint.config import LintConfig
from membound.lint.db_sizes import read_database_sizes
from membound.lint.sizes import SizesError, read_sizes_file, write_sizes_file

__all__ = ["with_sizes"]

_DB_HINT = "a URL such as postgresql://user@host/dbname or sqlite:///path/to/file.db"
_FILE_HINT = (
    'a sizes file has [tables] name = rows and [models] "dotted.Model" = rows; '
    "membound lint --db URL --write-sizes FILE writes one"
)


def with_sizes(
    config: LintConfig,
    db: str | None,
    sizes_path: str | None,
    write_path: str | None,
    small_table_rows: int | None,
) -> tuple[LintConfig, bool]:
    """``config`` with the run's sizes, and whether the run is over (``--write-sizes`` wrote
    its file and says so on stderr).

    Raises:
        click.UsageError: ``--write-sizes`` without ``--db``, or ``--db`` with ``--sizes``.
        MemboundError: the database or the file could not be read or written (one line).
    """
    if write_path and not db:
        raise click.UsageError("--write-sizes needs --db URL: it writes the sizes read there")
    if db and sizes_path:
        raise click.UsageError("--db and --sizes are two sources of sizes: give one")
    if small_table_rows is not None:
        config = dataclasses.replace(config, small_table_rows=small_table_rows)
    try:
        if db:
            sizes = read_database_sizes(db)
        elif sizes_path:
            sizes = read_sizes_file(sizes_path)
        elif config.sizes_file is not None:
            sizes = read_sizes_file(config.sizes_file)
        else:
            return config, False
        if write_path:
            write_sizes_file(write_path, sizes, sizes.source)
            click.echo(
                f"membound lint: wrote the sizes of {len(sizes.tables)} tables "
                f"({sizes.source}) to {write_path}",
                err=True,
            )
            return config, True
    except SizesError as exc:
        raise MemboundError(str(exc), hint=_DB_HINT if db else _FILE_HINT) from None
    return dataclasses.replace(config, sizes=sizes), False
