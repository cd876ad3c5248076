"""Table sizes as evidence for the loading rules: how many rows each table holds.

No static rule can know which tables are big; the database can. ``membound lint --db URL``
reads row estimates from its statistics (``lint/db_sizes.py``), ``--write-sizes FILE`` keeps
them in a file to commit (CI has no production access) and ``--sizes FILE`` (or ``sizes =
"..."`` in ``[tool.membound.lint]``) reads that file::

    # membound-sizes.toml
    [tables]
    files = 1200000            # unqualified: a table on the default search path
    "audit.events" = 90000000  # schema.name where a name is in several schemas

    [models]                   # for models whose table the code does not name
    "billing.models.Invoice" = 250000

A table under ``small-table-rows`` (default 5,000) is small: an otherwise unbounded load of
it is not reported. One at or above it is big: such a load is reported in any context, request
paths included, with the estimate in the message. A table of unknown size falls back to the
default policy. Sizes never make a bounded load (a LIMIT, a slice, an aggregate) a finding,
and the user's ``small-models``/``large-models`` win over them.

The file is written here rather than with a TOML writer: it holds only two tables of
``"name" = integer`` lines (keys in TOML basic strings, which JSON's escaping produces), and
a writer would be a dependency for ten lines.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DEFAULT_SMALL_TABLE_ROWS",
    "SizesError",
    "TableSizes",
    "format_rows",
    "read_sizes_file",
    "write_sizes_file",
]

#: Tables with fewer rows than this are small (``small-table-rows``).
DEFAULT_SMALL_TABLE_ROWS = 5_000
#: A sizes file is read whole; it is never near this size (a table a line).
_SIZES_FILE_LIMIT = 20_000_000


class SizesError(ValueError):
    """Sizes cannot be read or written: a bad file, URL or database (one line, exit 2)."""


@dataclass(frozen=True)
class TableSizes:
    """Row counts by table and by model, and where they came from.

    Attributes:
        tables: table name (``name`` on the default search path, ``schema.name`` otherwise)
            → rows. Names are matched without regard to case, as SQL does for unquoted names.
        models: dotted path the code imports a model from → rows.
        source: how the counts were made, said in findings ("pg_class estimate", "sqlite_stat1",
            the sizes file's name...).
    """

    tables: Mapping[str, int] = field(default_factory=dict)
    models: Mapping[str, int] = field(default_factory=dict)
    source: str = ""
    capped: frozenset[str] = frozenset()
    """Tables counted up to a cap that they reached: at least their count."""
    from_file: bool = False
    """Written by a person or a tool into a sizes file (not read from a database now): its
    names are checked against the code linted, so that a misspelling does not silently
    change nothing."""

    def table_rows(self, name: str) -> int | None:
        """Rows of table ``name`` (bare or ``schema.name``; quotes dropped), or None."""
        key = name.strip().strip('"`[]').replace('"', "").lower()
        found = self._lowered.get(key)
        if found is None and "." in key:
            found = self._lowered.get(key.rsplit(".", 1)[1])
        return found

    def model_rows(self, qualified: str) -> int | None:
        """Rows of the model imported as ``qualified`` (or named by a dotted tail of it)."""
        if qualified in self.models:
            return self.models[qualified]
        for name, rows in self.models.items():
            if qualified.endswith("." + name) or name.endswith("." + qualified):
                return rows
        return None

    @property
    def _lowered(self) -> dict[str, int]:
        cached: dict[str, int] | None = self.__dict__.get("_lowered_cache")
        if cached is None:
            cached = {k.lower(): v for k, v in self.tables.items()}
            object.__setattr__(self, "_lowered_cache", cached)
        return cached

    def __bool__(self) -> bool:
        return bool(self.tables or self.models)


def format_rows(rows: int) -> str:
    """``1.2M``, ``45k``, ``980``: how a finding says a table's size."""
    if rows >= 1_000_000_000:
        return f"{rows / 1e9:.1f}G"
    if rows >= 1_000_000:
        return f"{rows / 1e6:.1f}M"
    if rows >= 10_000:
        return f"{rows / 1e3:.0f}k"
    return f"{rows:,}"


def _counts(raw: object, section: str, path: str) -> dict[str, int]:
    if not isinstance(raw, dict):
        raise SizesError(f"{path}: [{section}] must be a table of name = rows")
    found: dict[str, int] = {}
    for name, rows in raw.items():
        if isinstance(rows, bool) or not isinstance(rows, int):
            raise SizesError(f"{path}: [{section}] {name} = {rows!r}: rows must be a whole number")
        if rows < 0:
            raise SizesError(f"{path}: [{section}] {name} = {rows}: rows cannot be negative")
        if not name.strip():
            raise SizesError(f"{path}: [{section}] has an empty name")
        found[name] = rows
    return found


def read_sizes_file(path: str | os.PathLike[str]) -> TableSizes:
    """Read a sizes file (the format in this module's docstring).

    Raises:
        SizesError: the file cannot be read, is not TOML, has other keys than ``[tables]`` and
            ``[models]``, or a count that is not a whole number >= 0.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            data = f.read(_SIZES_FILE_LIMIT + 1)
    except OSError as exc:
        raise SizesError(f"cannot read sizes file {name}: {exc.strerror or exc}") from None
    if len(data) > _SIZES_FILE_LIMIT:
        raise SizesError(f"{name}: a sizes file larger than {_SIZES_FILE_LIMIT:,} bytes")
    toml = importlib.import_module("tomllib" if sys.version_info >= (3, 11) else "tomli")
    try:
        parsed = toml.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, toml.TOMLDecodeError) as exc:
        raise SizesError(f"{name}: not a TOML sizes file: {exc}") from None
    unknown = sorted(set(parsed) - {"tables", "models"})
    if unknown:
        raise SizesError(
            f"{name}: unknown key(s) {', '.join(unknown)} (a sizes file has [tables] and [models])"
        )
    return TableSizes(
        _counts(parsed.get("tables", {}), "tables", name),
        _counts(parsed.get("models", {}), "models", name),
        Path(name).name,
        from_file=True,
    )


def write_sizes_file(path: str | os.PathLike[str], sizes: TableSizes, origin: str) -> None:
    """Write ``sizes`` to ``path``, sorted by name (a file people commit and review), whole or
    not at all.

    Raises:
        SizesError: the file cannot be written.
    """
    lines = [
        f"# Row counts for `membound lint --sizes` ({origin}).",
        "# Regenerate with `membound lint --db URL --write-sizes FILE`.",
        "",
        "[tables]",
        *(f"{json.dumps(k)} = {v}" for k, v in sorted(sizes.tables.items())),
    ]
    if sizes.models:
        models = sorted(sizes.models.items())
        lines += ["", "[models]", *(f"{json.dumps(k)} = {v}" for k, v in models)]
    name = os.fspath(path)
    partial = f"{name}.{os.getpid()}.part"
    try:
        with open(partial, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(partial, name)
    except OSError as exc:
        if os.path.exists(partial):
            os.unlink(partial)
        raise SizesError(f"cannot write sizes file {name}: {exc.strerror or exc}") from None
