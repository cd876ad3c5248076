"""Differential runs of ``BatchWriter`` against the same statements run one by one (DESIGN §6
G9): the reference executes each item with a plain ``Connection.execute`` in one transaction,
each statement planned for its own values (psycopg never prepares on the reference engine);
the writer runs the same items at several batch sizes, with and without a checkpoint, each in
a fresh copy of the schema. Full table contents are compared, and whether (and where) each
raised.

A scenario is DDL (run in a fresh PostgreSQL schema, or a fresh SQLite file), the tables to
compare, and a function that builds the items from the database's tables.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import membound as mb
from membound._errors import BatchWriteError
from tests.bound.helpers import sa

#: (statement, params or None, key of the item's row for the checkpoint)
Item = tuple[Any, Any, Any]
Build = Callable[[sa.Engine], list[Item]]

_names = itertools.count()
#: Writer settings every scenario runs with: batch sizes (one that splits a flush's items,
#: one that holds them all, "auto") each without and with a checkpoint.
CONFIGS: tuple[tuple[int | str, bool], ...] = (
    (2, False),
    (5, True),
    (1000, False),
    (1000, True),
    ("auto", False),
)


@dataclass
class Place:
    """Where scenarios run: a PostgreSQL URL (a schema each) or a folder (a SQLite file each)."""

    kind: str
    url: str | None = None
    folder: Path | None = None
    translate: bool = False
    """PostgreSQL: the scenario's DDL names its table ``mb_tenant.t``; each copy gets a tenant
    schema of its own, and its engine reaches it through ``schema_translate_map``."""
    made: list[str] = field(default_factory=list)
    tenants: dict[int, str] = field(default_factory=dict)

    def fresh(self, ddl: Sequence[str], *, reference: bool = False) -> sa.Engine:
        """An engine on a fresh copy of the scenario's schema."""
        name = f"mb_eq_{os.getpid()}_{next(_names)}"
        tenant = f"{name}_tenant"
        if self.kind == "postgres":
            assert self.url is not None
            # A session time zone that is not UTC: a naive datetime is then another instant.
            args: dict[str, Any] = {"options": "-c TimeZone=America/New_York"}
            if reference:
                args["prepare_threshold"] = None
            engine = sa.create_engine(self.url, connect_args=args, poolclass=sa.pool.NullPool)
            with engine.begin() as conn:
                conn.exec_driver_sql(f"CREATE SCHEMA {name}")
                if self.translate:
                    conn.exec_driver_sql(f"CREATE SCHEMA {tenant}")
                    self.made.append(tenant)
            self.made.append(name)
            if self.translate:
                ddl = [d.replace("mb_tenant.", f"{tenant}.") for d in ddl]
            path = name  # alone: membound's own tables go there too, not into public
            sa.event.listen(
                engine,
                "connect",
                lambda dbapi, _: _set_path(dbapi, path),
            )
        else:
            assert self.folder is not None
            engine = sa.create_engine(
                f"sqlite:///{self.folder / (name + '.db')}", poolclass=sa.pool.NullPool
            )
        with engine.begin() as conn:
            for statement in ddl:
                conn.exec_driver_sql(statement)
        if self.translate:
            engine = engine.execution_options(schema_translate_map={None: tenant})
            self.tenants[id(engine)] = tenant
        return engine

    def snapshot(self, engine: sa.Engine, tables: Sequence[str]) -> dict[str, list[str]]:
        """:func:`snapshot`, with ``mb_tenant.`` read as the engine's own tenant schema."""
        tenant = self.tenants.get(id(engine))
        if tenant is None:
            return snapshot(engine, tables)
        found = snapshot(engine, [t.replace("mb_tenant.", f"{tenant}.") for t in tables])
        return dict(zip(tables, found.values(), strict=True))

    def drop(self) -> None:
        """Drop the schemas made so far (PostgreSQL)."""
        if self.kind != "postgres" or not self.made:
            return
        engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)  # type: ignore[arg-type]
        with engine.begin() as conn:
            for name in self.made:
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        engine.dispose()
        self.made.clear()
        self.tenants.clear()


def _set_path(dbapi: Any, path: str) -> None:
    autocommit = dbapi.autocommit
    dbapi.autocommit = True
    dbapi.execute(f"SET search_path TO {path}")
    dbapi.autocommit = autocommit


def snapshot(engine: sa.Engine, tables: Sequence[str]) -> dict[str, list[str]]:
    """Every row of ``tables`` as text, in a fixed order."""
    out: dict[str, list[str]] = {}
    with engine.connect() as conn:
        for table in tables:
            if engine.dialect.name == "postgresql":
                rows = conn.exec_driver_sql(
                    f'SELECT t::text FROM {table} t ORDER BY t::text COLLATE "C"'
                ).scalars()
                out[table] = list(rows)
            else:
                found = conn.exec_driver_sql(f"SELECT * FROM {table}").all()
                out[table] = sorted(repr(tuple(r)) for r in found)
    return out


def run_one_by_one(engine: sa.Engine, items: Sequence[Item], upto: int | None = None) -> int | None:
    """Run ``items`` (the first ``upto``) one by one in one transaction; commit and return None,
    or roll back and return the index of the first that raised."""
    chosen = items if upto is None else items[:upto]
    with engine.connect() as conn:
        transaction = conn.begin()
        for index, (statement, params, _) in enumerate(chosen):
            try:
                if params is None:
                    conn.execute(statement)
                else:
                    conn.execute(statement, params)
            except Exception:  # a driver's error, or one raised in Python (OverflowError)
                transaction.rollback()
                return index
        transaction.commit()
    return None


@dataclass
class WriterRun:
    """What a writer did with a scenario's items."""

    batch_size: int | str
    checkpoint: bool
    raised: str | None
    committed: int
    failed: int
    position: Any
    writer: mb.BatchWriter

    @property
    def ways(self) -> set[str]:
        """The ways items were sent."""
        return {way for way, count in self.writer.sent.items() if count}


def run_writer(
    engine: sa.Engine, items: Sequence[Item], batch_size: int | str, checkpoint: bool
) -> WriterRun:
    """The items through one ``BatchWriter``; which way each run of items went is recorded."""
    cp = mb.Checkpoint(engine, "equivalence") if checkpoint else None
    writer = mb.BatchWriter(engine, batch_size, checkpoint=cp)  # type: ignore[arg-type]
    try:
        with writer:
            for statement, params, key in items:
                writer.add(statement, params, key=key)
    except BatchWriteError as exc:
        return WriterRun(
            batch_size, checkpoint, str(exc), exc.committed, exc.failed, _position(cp), writer
        )
    return WriterRun(batch_size, checkpoint, None, writer.committed, 0, _position(cp), writer)


def _position(cp: mb.Checkpoint | None) -> Any:
    return None if cp is None else cp.position


@dataclass
class Verdict:
    """The outcome of one scenario: the reference's and each writer run's."""

    failed_at: int | None
    runs: list[WriterRun]

    @property
    def ways(self) -> set[str]:
        """The ways any run sent items."""
        return {way for run in self.runs for way in run.ways}


def check(
    place: Place,
    ddl: Sequence[str],
    tables: Sequence[str],
    build: Build,
    configs: Sequence[tuple[int | str, bool]] = CONFIGS,
) -> Verdict:
    """Run the scenario one by one and through the writer with each config; assert that each
    writer run wrote exactly what one by one wrote (up to the flush that failed, when one
    did) and raised where one by one raised. Returns what happened."""
    reference = place.fresh(ddl, reference=True)
    try:
        items = build(reference)
        failed_at = run_one_by_one(reference, items)
        expected = place.snapshot(reference, tables)
        runs: list[WriterRun] = []
        for batch_size, checkpoint in configs:
            engine = place.fresh(ddl)
            try:
                run = run_writer(engine, items, batch_size, checkpoint)
                runs.append(run)
                where = f"batch_size={batch_size!r}, checkpoint={checkpoint}"
                if failed_at is None:
                    assert run.raised is None, f"{where}: raised where one by one did not: {run}"
                    assert expected == place.snapshot(engine, tables), f"{where}: other contents"
                    if checkpoint and items:
                        assert run.position == items[-1][2], where
                    continue
                assert run.raised is not None, (
                    f"{where}: committed where item {failed_at} raised one by one"
                )
                assert run.committed <= failed_at < run.committed + run.failed, (where, run)
                prefix = place.fresh(ddl, reference=True)
                try:
                    assert run_one_by_one(prefix, items, run.committed) is None
                    assert place.snapshot(prefix, tables) == place.snapshot(engine, tables), where
                finally:
                    prefix.dispose()
                if checkpoint:
                    want = items[run.committed - 1][2] if run.committed else None
                    assert run.position == want, (where, run)
            finally:
                engine.dispose()
        return Verdict(failed_at, runs)
    finally:
        reference.dispose()
        place.drop()


def reflect(engine: sa.Engine, *names: str) -> Iterator[sa.Table]:
    """The named tables, read from the database."""
    metadata = sa.MetaData()
    for name in names:
        yield sa.Table(name, metadata, autoload_with=engine, resolve_fks=False)
