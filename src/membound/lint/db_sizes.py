"""Row counts read from a database's statistics, read-only: ``membound lint --db URL``.

* **PostgreSQL**: one catalog query (``pg_class.reltuples``, the planner's estimate, kept by
  ``ANALYZE`` and autovacuum). ``reltuples = -1`` means never analysed: unknown, not 0; then
  ``pg_stat_user_tables.n_live_tup`` (counted from inserts and deletes) stands in when it has
  counted anything. The session is read-only, with a statement and a lock timeout, so a locked
  catalog or a slow server ends the read with one line instead of a hang. Names on the default
  search path are unqualified; a name in several schemas, or off the path, is ``schema.name``.
* **SQLite**: ``sqlite_stat1`` where ``ANALYZE`` wrote it, else ``count(*)`` of each table
  bounded by a ``LIMIT`` of :data:`COUNT_CAP` rows (a bigger table says "at least"). The file is
  opened read-only; a progress handler ends a read that runs past the timeout.

At most :data:`MAX_TABLES` tables are read, so the number of queries is bounded whatever the
schema. Other databases are not read yet (there is no driver or server to test them here).
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from membound.lint.sizes import SizesError, TableSizes

__all__ = ["COUNT_CAP", "MAX_TABLES", "read_database_sizes"]

#: SQLite tables without statistics are counted up to this many rows.
COUNT_CAP = 1_000_000
#: Tables read from one database at most.
MAX_TABLES = 20_000

_PG_QUERY = """
SELECT n.nspname, c.relname, c.reltuples, c.relpages, s.n_live_tup,
       array_position(current_schemas(false), n.nspname::text) AS path_position
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_stat_user_tables s ON s.relid = c.oid
WHERE c.relkind IN ('r', 'p', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_%'
ORDER BY n.nspname, c.relname
LIMIT {max_tables}
"""


def read_database_sizes(url: str, timeout_s: float = 10.0) -> TableSizes:
    """Row counts of every table of the database at ``url`` (PostgreSQL or SQLite).

    Raises:
        SizesError: a bad URL, another kind of database, a database that cannot be reached,
            refuses the credentials, or does not answer within ``timeout_s`` (one line each,
            never the password).
    """
    if not isinstance(url, str) or "://" not in url:
        raise SizesError(f"--db {url!r} is not a database URL (postgresql://... or sqlite:///...)")
    scheme = url.split("://", 1)[0].lower()
    if scheme.split("+", 1)[0] == "sqlite":
        return _sqlite(url, timeout_s)
    if scheme.split("+", 1)[0] in ("postgresql", "postgres"):
        return _postgres(url, timeout_s)
    raise SizesError(
        f"--db {scheme}://...: only PostgreSQL and SQLite databases are read for sizes; for "
        "others, write a sizes file by hand (--sizes)"
    )


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _postgres(url: str, timeout_s: float) -> TableSizes:
    try:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
        from sqlalchemy.pool import NullPool
    except ImportError:
        raise SizesError(
            "reading PostgreSQL sizes needs SQLAlchemy and psycopg: pip install 'membound[sql]'"
        ) from None
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise SizesError("--db: not a database URL (postgresql://user@host/dbname)") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    shown = parsed.render_as_string(hide_password=True)
    ms = max(1, int(timeout_s * 1000))
    options = f"-c statement_timeout={ms} -c lock_timeout={ms} -c default_transaction_read_only=on"
    try:
        engine = create_engine(
            parsed,
            poolclass=NullPool,
            connect_args={"connect_timeout": max(1, math.ceil(timeout_s)), "options": options},
        )
    except (NoSuchModuleError, ImportError) as exc:
        raise SizesError(f"--db {shown}: no driver for it ({_first_line(exc)})") from None
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(_PG_QUERY.replace("{max_tables}", str(MAX_TABLES)))).all()
    except DBAPIError as exc:
        why = _first_line(exc)
        if "statement timeout" in why or "lock timeout" in why:
            why = f"no answer within {timeout_s:g} s ({why})"
        raise SizesError(f"--db {shown}: {why}") from None
    finally:
        engine.dispose()
    return _pg_sizes(rows)


def _pg_sizes(rows: Sequence[Any]) -> TableSizes:
    by_name: dict[str, list[tuple[int | None, str, int | None]]] = {}
    fallback = False
    for schema, name, reltuples, relpages, live, position in rows:
        count: int | None = None
        if reltuples is not None and reltuples >= 0 and not (reltuples == 0 and relpages == 0):
            count = round(reltuples)
        elif live:  # never analysed: the statistics collector's count, when it has one
            count, fallback = int(live), True
        elif reltuples == 0:
            count = 0  # analysed (PostgreSQL 14+ says -1 otherwise) and empty
        by_name.setdefault(name, []).append((position, schema, count))
    tables: dict[str, int] = {}
    for name, found in by_name.items():
        on_path = sorted((p, s, c) for p, s, c in found if p is not None)
        for position, schema, count in found:
            if count is None:
                continue
            if on_path and (position, schema, count) == on_path[0]:
                tables[name] = count
            if len(found) > 1 or position is None:
                tables[f"{schema}.{name}"] = count
    source = "PostgreSQL statistics estimate" if fallback else "pg_class estimate"
    return TableSizes(tables, {}, source)


def _sqlite_path(url: str) -> str:
    rest = url.split("://", 1)[1]
    if not rest.startswith("/") or rest in ("/", "/:memory:"):
        raise SizesError("--db sqlite: give a database file, sqlite:///path/to/file.db")
    return rest[1:].split("?", 1)[0]


def _sqlite(url: str, timeout_s: float) -> TableSizes:
    path = _sqlite_path(url)
    deadline = time.monotonic() + timeout_s
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout_s)
    except sqlite3.Error as exc:
        raise SizesError(f"--db sqlite:///{path}: {exc}") from None
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    try:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name LIMIT ?",
                (MAX_TABLES,),
            )
        ]
        stats: dict[str, int] = {}
        has_stats = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
        ).fetchone()
        if has_stats:
            for table, stat in conn.execute("SELECT tbl, stat FROM sqlite_stat1"):
                first = str(stat or "").split(" ", 1)[0]
                if first.isdigit():
                    stats[table] = max(stats.get(table, 0), int(first))
        tables: dict[str, int] = {}
        capped: set[str] = set()
        counted = False
        for name in names:
            if name in stats:
                tables[name] = stats[name]
                continue
            quoted = '"' + name.replace('"', '""') + '"'
            (count,) = conn.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM {quoted} LIMIT ?)", (COUNT_CAP,)
            ).fetchone()
            tables[name] = int(count)
            counted = True
            if count >= COUNT_CAP:
                capped.add(name)
    except sqlite3.OperationalError as exc:
        why = str(exc)
        if "interrupted" in why:
            why = f"no answer within {timeout_s:g} s"
        raise SizesError(f"--db sqlite:///{path}: {why}") from None
    except sqlite3.DatabaseError as exc:
        raise SizesError(f"--db sqlite:///{path}: {exc}") from None
    finally:
        conn.close()
    source = "sqlite_stat1" if not counted else f"count(*), capped at {COUNT_CAP:,}"
    if counted and stats:
        source = "sqlite_stat1 and count(*)"
    return TableSizes(tables, {}, source, frozenset(capped))
