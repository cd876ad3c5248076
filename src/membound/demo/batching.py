"""Batching scenarios for ``membound demo``: one module-level function per scenario.

They follow the shape of :mod:`membound.demo.scenarios`: plain arguments, an int result, and an
``*_n(folder, n)`` twin working on the size-``n`` input at ``sized_path(folder, stem, n)`` for
the complexity verdicts. The status transitions change rows, so each run first copies the
template database to a work file (a streamed copy, bounded memory) and changes that copy: runs
repeat with the same result, and the work file's size can be read afterwards. They need only
``id`` and ``status`` columns, so they run on ``scenarios.make_users_db`` databases as well as on
:func:`create_users_table` ones.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sqlite3
from typing import TYPE_CHECKING

from membound.demo.scenarios import sized_path

if TYPE_CHECKING:
    import sqlalchemy as sa
elif importlib.util.find_spec("sqlalchemy") is not None:
    # Imported with the module, as an application imports its libraries: a measured scenario
    # must not count SQLAlchemy's or membound's batching import (several MiB) as its own
    # memory; without the ``sql`` extra the module still imports.
    import sqlalchemy  # noqa: F401

    import membound.bound.sql  # noqa: F401

__all__ = [
    "create_users_table",
    "read_find_each",
    "read_find_each_n",
    "status_all_then_one_transaction",
    "status_all_then_one_transaction_n",
    "status_find_each_writer",
    "status_find_each_writer_n",
    "status_in_batches_set_update",
    "status_in_batches_set_update_n",
]


def create_users_table(db_path: str, rows: int = 1_000_000) -> dict[str, int]:
    """Create (or replace) ``users(id, status, counter, payload)`` with every status SYNCED.

    Args:
        db_path: the SQLite file.
        rows: number of users.

    Returns:
        ``{"rows": rows, "file_size": bytes}``.
    """
    conn = sqlite3.connect(db_path)
    try:
        conn.execute("DROP TABLE IF EXISTS users")
        conn.execute(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, status VARCHAR(20) NOT NULL, "
            "counter INTEGER NOT NULL, payload VARCHAR(100) NOT NULL)"
        )
        step = 100_000
        for start in range(1, rows + 1, step):
            stop = min(start + step, rows + 1)
            conn.executemany(
                "INSERT INTO users VALUES (?, 'SYNCED', 0, ?)",
                ((i, f"user-{i:010d}@example.org") for i in range(start, stop)),
            )
            conn.commit()
    finally:
        conn.close()
    return {"rows": rows, "file_size": os.path.getsize(db_path)}


def _users(db_path: str) -> tuple[sa.Engine, sa.Table]:
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{db_path}")
    table = sa.Table("users", sa.MetaData(), autoload_with=engine)
    return engine, table


def read_find_each(db_path: str, batch_size: int = 1000) -> int:
    """Read every user with ``find_each`` (keyset batches, short transactions, O(1) memory).

    Returns:
        The number of rows read.
    """
    from membound.bound.sql import find_each

    engine, users = _users(db_path)
    rows = 0
    for _row in find_each(engine, users, batch_size=batch_size):
        rows += 1
    engine.dispose()
    return rows


def read_find_each_n(folder: str, n: int) -> int:
    """:func:`read_find_each` on the ``n``-row database in ``folder``."""
    return read_find_each(sized_path(folder, "users", n))


def _work_copy(db_path: str, work_path: str | None) -> str:
    if work_path is None:
        return db_path
    shutil.copyfile(db_path, work_path)  # sendfile/streamed: no O(n) buffer
    return work_path


def _set_status(table: sa.Table) -> sa.Update:
    import sqlalchemy as sa

    return sa.update(table).where(table.c.id == sa.bindparam("uid")).values(status="TEMP_DELETED")


def status_all_then_one_transaction(db_path: str, work_path: str | None = None) -> int:
    """SYNCED → TEMP_DELETED the naive way: load every row, collect all updates, one commit.

    Memory grows with the table (all rows plus all pending updates are held until the single
    giant transaction commits) — the pattern behind the bbolt incident.

    Args:
        db_path: the users database (the template when ``work_path`` is given).
        work_path: copy ``db_path`` here first and change the copy (repeatable runs).

    Returns:
        The number of rows changed.
    """
    import sqlalchemy as sa

    engine, table = _users(_work_copy(db_path, work_path))
    with engine.connect() as conn:
        query = sa.select(table.c.id).where(table.c.status == "SYNCED")
        everything = conn.execute(query).all()  # noqa: MB102 (the O(n) contrast)
    pending = [{"uid": row.id} for row in everything]
    with engine.begin() as conn:
        conn.execute(_set_status(table), pending)
    engine.dispose()
    return len(pending)


def status_in_batches_set_update(
    db_path: str, work_path: str | None = None, batch_size: int = 1000
) -> int:
    """SYNCED → TEMP_DELETED with ``in_batches`` and one set-based UPDATE per batch (G3).

    Args:
        db_path: see :func:`status_all_then_one_transaction`.
        work_path: see :func:`status_all_then_one_transaction`.
        batch_size: rows per batch and per UPDATE.

    Returns:
        The number of rows changed.
    """
    import sqlalchemy as sa

    from membound.bound.sql import in_batches

    engine, table = _users(_work_copy(db_path, work_path))
    source = sa.select(table.c.id).where(table.c.status == "SYNCED")
    changed = 0
    for batch in in_batches(engine, source, batch_size=batch_size):
        with engine.begin() as conn:
            result = conn.execute(
                sa.update(table).where(batch.where()).values(status="TEMP_DELETED")
            )
            changed += result.rowcount
    engine.dispose()
    return changed


def status_find_each_writer(
    db_path: str, work_path: str | None = None, batch_size: int = 1000
) -> int:
    """SYNCED → TEMP_DELETED with ``find_each`` + ``BatchWriter`` and a checkpoint (resumable).

    Args:
        db_path: see :func:`status_all_then_one_transaction`.
        work_path: see :func:`status_all_then_one_transaction`.
        batch_size: rows read per query and items written per transaction.

    Returns:
        The number of rows changed.
    """
    import sqlalchemy as sa

    from membound.bound.sql import BatchWriter, Checkpoint, find_each

    engine, table = _users(_work_copy(db_path, work_path))
    checkpoint = Checkpoint(engine, "demo-status-transition")
    checkpoint.reset()
    source = sa.select(table.c.id).where(table.c.status == "SYNCED")
    stmt = _set_status(table)
    with BatchWriter(engine, batch_size=batch_size, checkpoint=checkpoint) as writer:
        for row in find_each(engine, source, batch_size=batch_size, checkpoint=checkpoint):
            writer.add(stmt, {"uid": row.id})
    engine.dispose()
    return writer.committed


def _work_path_n(folder: str, name: str, n: int) -> str:
    return sized_path(folder, f"users-work-{name}", n)


def status_all_then_one_transaction_n(folder: str, n: int) -> int:
    """:func:`status_all_then_one_transaction` on a copy of the ``n``-row database."""
    template = sized_path(folder, "users", n)
    return status_all_then_one_transaction(template, _work_path_n(folder, "naive", n))


def status_in_batches_set_update_n(folder: str, n: int) -> int:
    """:func:`status_in_batches_set_update` on a copy of the ``n``-row database."""
    template = sized_path(folder, "users", n)
    return status_in_batches_set_update(template, _work_path_n(folder, "in-batches", n))


def status_find_each_writer_n(folder: str, n: int) -> int:
    """:func:`status_find_each_writer` on a copy of the ``n``-row database."""
    template = sized_path(folder, "users", n)
    return status_find_each_writer(template, _work_path_n(folder, "writer", n))
