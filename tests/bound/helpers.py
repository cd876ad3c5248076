"""Helpers for the batching tests: tables, fills and engines on real databases."""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sa = pytest.importorskip("sqlalchemy")

BACKENDS = ["sqlite-journal", "sqlite-wal", "postgres"]
_names = itertools.count()


@dataclass
class Db:
    """One database for one test: an engine plus helpers to make tables and other connections."""

    kind: str
    url: str
    engine: sa.Engine
    metadata: sa.MetaData

    def new_engine(self, **kwargs: object) -> sa.Engine:
        """A second engine (its own connections), e.g. for a concurrent writer."""
        return sa.create_engine(self.url, **kwargs)

    def users(self, n: int, *, name: str | None = None) -> sa.Table:
        """A users table with ids 1..n: status SYNCED, counter 0."""
        table = sa.Table(
            name or f"users_{os.getpid()}_{next(_names)}",
            self.metadata,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("status", sa.String(20), nullable=False),
            sa.Column("counter", sa.Integer, nullable=False),
            sa.Column("payload", sa.String(100), nullable=True),
        )
        table.create(self.engine)
        fill(self.engine, table, range(1, n + 1))
        return table

    def pairs(self, name: str, n: int, *, value: int = 0) -> sa.Table:
        """A table keyed by (a, b): a in 0..n-1, b in x, y, z; column v holds ``value``."""
        table = sa.Table(
            f"{name}_{id(self)}",
            self.metadata,
            sa.Column("a", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("b", sa.String(10), primary_key=True),
            sa.Column("v", sa.Integer, nullable=False),
        )
        table.create(self.engine)
        with self.engine.begin() as conn:
            conn.execute(
                table.insert(), [{"a": a, "b": b, "v": value} for a in range(n) for b in "xyz"]
            )
        return table


def fill(engine: sa.Engine, table: sa.Table, ids: range | list[int]) -> None:
    rows = [{"id": i, "status": "SYNCED", "counter": 0, "payload": f"p{i}"} for i in ids]
    with engine.begin() as conn:
        for start in range(0, len(rows), 5000):
            conn.execute(table.insert(), rows[start : start + 5000])


def sqlite_engine(
    path: Path, *, wal: bool, timeout: float = 5.0, synchronous: bool = True
) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": timeout})
    if not synchronous:
        # No fsync per commit: durability against power loss is not what such a test checks.
        sa.event.listen(engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA synchronous=OFF"))
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=" + ("WAL" if wal else "DELETE"))
    return engine


def ids_of(rows: object) -> list[int]:
    return [r.id for r in rows]  # type: ignore[attr-defined]


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Another connection holds an EXCLUSIVE lock on the SQLite file while the block runs."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()
