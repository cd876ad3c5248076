"""``tuples=True``: pages compiled by SQLAlchemy, run on the driver, returned as plain tuples.

G8: every case compares the driver path with SQLAlchemy's own rows and with a plain full scan,
on real SQLite files (journal and WAL) and real PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import itertools
import json
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import sessionmaker, with_loader_criteria
from sqlalchemy.types import TypeDecorator

from membound import (
    BatchSourceError,
    BatchWriter,
    Checkpoint,
    DatabaseLocked,
    find_each,
    in_batches,
)
from membound.bound.sql.driver import DriverQuery
from tests.bound.helpers import Db, exclusive_lock, sa, sqlite_engine
from tests.bound.test_sql import orm_user


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


class Prefixed(TypeDecorator[str]):
    """Stored as 'k-' + value, read back without the prefix: values need both processors."""

    impl = sa.String(40)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else "k-" + value

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else value.removeprefix("k-")


def typed_table(db: Db, n: int) -> sa.Table:
    """Every common column type, NULLs included, keyed by a column that needs bind processing."""
    table = sa.Table(
        f"typed_{id(db)}_{n}",
        db.metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("code", Prefixed, nullable=False, unique=True),
        sa.Column("name", sa.String(30)),
        sa.Column("at", sa.DateTime),
        sa.Column("day", sa.Date),
        sa.Column("amount", sa.Numeric(12, 2)),
        sa.Column("ratio", sa.Float),
        sa.Column("flag", sa.Boolean),
        sa.Column("doc", sa.JSON),
        sa.Column("blob", sa.LargeBinary),
        sa.Column("colour", sa.Enum(Colour)),
        sa.Column("uid", sa.Uuid),
    )
    table.create(db.engine)
    start = dt.datetime(2026, 1, 1, 12, 0, 0, 250000)
    rows = [
        {
            "id": i,
            "code": f"c{(i * 7919) % 100000:05d}",  # key order differs from id order
            "name": None if i % 5 == 0 else f"name {i}",
            "at": None if i % 7 == 0 else start + dt.timedelta(minutes=i),
            "day": dt.date(2026, 1, 1) + dt.timedelta(days=i % 300),
            "amount": decimal.Decimal(i) / 4,
            "ratio": i / 3,
            "flag": i % 2 == 0,
            "doc": {"i": i, "tags": ["a", str(i)]},
            "blob": bytes([i % 256]) * 3,
            "colour": Colour.RED if i % 3 else Colour.GREEN,
            "uid": uuid.UUID(int=i),
        }
        for i in range(1, n + 1)
    ]
    with db.engine.begin() as conn:
        conn.execute(table.insert(), rows)
    return table


def as_sqlalchemy_returns(db: Db, stmt: Any) -> list[tuple[Any, ...]]:
    with db.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(stmt)]


def typed(rows: list[Any]) -> list[list[tuple[type, Any]]]:
    """Rows with each value's type: Decimal('0.25') == 0.25 and True == 1, but not here."""
    return [[(type(v), v) for v in row] for row in rows]


@pytest.fixture
def driver_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQL of every page run on the driver path (the real DriverQuery.run, observed)."""
    runs: list[str] = []
    original = DriverQuery.run

    def observed(self: DriverQuery, params: Any) -> list[Any]:
        runs.append(self.sql)
        return original(self, params)

    monkeypatch.setattr(DriverQuery, "run", observed)
    return runs


def test_tuples_equal_sqlalchemy_rows_for_every_type(db: Db) -> None:
    table = typed_table(db, 97)
    expected = as_sqlalchemy_returns(db, sa.select(table).order_by(table.c.id))
    for size in (1, 10, 1000):
        got = list(find_each(db.engine, table, batch_size=size, tuples=True))
        assert all(type(row) is tuple for row in got)
        assert typed(expected) == typed(got)
        rows = [tuple(r) for r in find_each(db.engine, table, batch_size=size)]
        assert typed(expected) == typed(rows)
    assert json.loads(json.dumps(expected[0][8])) == {"i": 1, "tags": ["a", "1"]}


def test_tuples_with_a_key_and_filters_that_need_bind_processing(db: Db) -> None:
    table = typed_table(db, 120)
    # Resuming after a 'code' key only works if the key value is bind-processed ('k-' prefix);
    # the filters need the DateTime and Boolean bind processors on SQLite.
    cutoff = dt.datetime(2026, 1, 1, 12, 30)
    wanted = sa.bindparam("wanted", True, type_=sa.Boolean)
    source = sa.select(table.c.id, table.c.at).where(table.c.at >= cutoff, table.c.flag == wanted)
    expected = as_sqlalchemy_returns(db, source.add_columns(table.c.code).order_by(table.c.code))
    assert len(expected) > 20
    got = list(find_each(db.engine, source, batch_size=6, key="code", tuples=True))
    assert typed(expected) == typed(got)  # the key column is appended as the last value
    got = list(find_each(db.engine, source, batch_size=6, key="code", start="c10000", tuples=True))
    assert [row for row in expected if row[2] >= "c10000"] == got


def test_tuples_evaluate_a_per_execution_bind_on_every_page(db: Db) -> None:
    # A bind with callable_ is evaluated by SQLAlchemy at each execution; the driver path
    # must not reuse the first page's value.
    table = db.users(100)

    def run(tuples: bool) -> list[int]:
        floors = itertools.count(0, 15)  # rises faster than the pages advance
        floor = sa.bindparam("floor", callable_=lambda: next(floors), type_=sa.Integer)
        source = sa.select(table.c.id).where(table.c.id > floor)
        return [row[0] for row in find_each(db.engine, source, batch_size=10, tuples=tuples)]

    expected = run(tuples=False)
    assert expected != list(range(1, 101))  # the floor rose while the loop ran
    assert expected == run(tuples=True)


def test_tuples_in_batches_keys_and_set_based_update(db: Db) -> None:
    table = db.users(55)
    batches = list(in_batches(db.engine, table, batch_size=20, tuples=True))
    assert [(b.first_key, b.last_key, len(b.rows)) for b in batches] == [
        (1, 20, 20),
        (21, 40, 20),
        (41, 55, 15),
    ]
    assert [(1, "SYNCED", 0, "p1")] == list(batches[0].rows[:1])
    for batch in batches:
        with db.engine.begin() as conn:
            result = conn.execute(sa.update(table).where(batch.where()).values(counter=1))
            assert len(batch.rows) == result.rowcount
    with db.engine.connect() as conn:
        assert 55 == conn.execute(sa.select(sa.func.sum(table.c.counter))).scalar_one()


def test_tuples_with_composite_key_and_checkpointed_writer(db: Db) -> None:
    table = db.pairs("pairs_t", 15)
    checkpoint = Checkpoint(db.engine, f"pairs-{id(db)}")
    bump = sa.update(table).where(table.c.a == sa.bindparam("ka"), table.c.b == sa.bindparam("kb"))
    with BatchWriter(db.engine, batch_size=4, checkpoint=checkpoint) as writer:
        for a, b, v in find_each(
            db.engine, table, batch_size=7, checkpoint=checkpoint, tuples=True
        ):
            writer.add(bump.values(v=v + 1), {"ka": a, "kb": b})
    assert (14, "z") == checkpoint.position
    with db.engine.connect() as conn:
        assert [1] * 45 == list(conn.execute(sa.select(table.c.v)).scalars())


def test_tuples_from_a_sessionmaker_and_sqlite_row_factory(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path / "rf.db", wal=False)
    db = Db("sqlite-journal", str(engine.url), engine, sa.MetaData())
    table = db.users(30)
    rowfactory = sa.create_engine(f"sqlite:///{tmp_path / 'rf.db'}")

    @sa.event.listens_for(rowfactory, "connect")
    def use_row_objects(dbapi_connection: sqlite3.Connection, _: object) -> None:
        dbapi_connection.row_factory = sqlite3.Row

    expected = as_sqlalchemy_returns(db, sa.select(table).order_by(table.c.id))
    for bind in (sessionmaker(engine), rowfactory):
        got = list(find_each(bind, table, batch_size=8, tuples=True))
        assert all(type(row) is tuple for row in got)
        assert expected == got
    rowfactory.dispose()
    engine.dispose()


def test_driver_path_taken_only_when_it_cannot_change_the_rows(
    db: Db, driver_runs: list[str]
) -> None:
    table = db.users(40)
    expected = [(i, "SYNCED", 0, f"p{i}") for i in range(1, 41)]
    assert expected == list(find_each(db.engine, table, batch_size=10, tuples=True))
    assert 5 == len(driver_runs)  # four full pages and the empty one that ends the run
    driver_runs.clear()

    # An engine listener may rewrite SQL or set connection state: SQLAlchemy runs the pages,
    # and the listener sees every one of them.
    executed: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        executed.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert expected == list(find_each(db.engine, table, batch_size=10, tuples=True))
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    assert [] == driver_runs
    assert 7 == len(executed)  # the key's schema, the snapshot query and five pages

    # Execution options, a sessionmaker, and SQL finished at execution time: same.
    other = sa.create_engine(db.url)
    try:
        assert expected == list(
            find_each(other.execution_options(logging_token="x"), table, tuples=True)
        )
        assert expected == list(find_each(sessionmaker(other), table, tuples=True))
        wanted = [3, 5, 8, 13, 21, 34]
        source = sa.select(table.c.id, table.c.status).where(table.c.id.in_(wanted))
        got = list(find_each(other, source, batch_size=4, tuples=True))
        assert [(i, "SYNCED") for i in wanted] == got
    finally:
        other.dispose()
    assert [] == driver_runs


def test_tuples_through_a_session_keep_its_statement_hooks(db: Db) -> None:
    # A soft-delete filter added by a do_orm_execute hook applies to the pages too.
    table = db.users(30)
    user = orm_user(table)
    with db.engine.begin() as conn:
        conn.execute(table.update().where(table.c.id % 3 == 0).values(status="GONE"))
    factory = sessionmaker(db.engine)

    @sa.event.listens_for(factory, "do_orm_execute")
    def hide_gone(state: Any) -> None:
        if state.is_select:
            state.statement = state.statement.options(
                with_loader_criteria(user, user.status != "GONE")  # type: ignore[attr-defined]
            )

    source = sa.select(user.id, user.status)  # type: ignore[attr-defined]
    expected = [(i, "SYNCED") for i in range(1, 31) if i % 3]
    assert expected == [tuple(r) for r in find_each(factory, source, batch_size=4)]
    assert expected == list(find_each(factory, source, batch_size=4, tuples=True))


def test_tuples_follow_schema_translation(tmp_path: Path) -> None:
    # The engine maps the table's schema to an attached database holding other rows.
    main = sqlite_engine(tmp_path / "main.db", wal=False)
    db = Db("sqlite-journal", str(main.url), main, sa.MetaData())
    table = db.users(12, name="people")
    tenant = sqlite3.connect(tmp_path / "tenant.db")
    tenant.execute(
        "CREATE TABLE people (id INTEGER PRIMARY KEY, status TEXT NOT NULL, "
        "counter INTEGER NOT NULL, payload TEXT)"
    )
    tenant.executemany("INSERT INTO people VALUES (?, 'TENANT', 0, NULL)", [(1,), (2,)])
    tenant.commit()
    tenant.close()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'main.db'}")

    @sa.event.listens_for(engine, "connect")
    def attach(dbapi_connection: sqlite3.Connection, _: object) -> None:
        dbapi_connection.execute(f"ATTACH DATABASE '{tmp_path / 'tenant.db'}' AS tenant")

    translated = engine.execution_options(schema_translate_map={None: "tenant"})
    try:
        assert [(1, "TENANT", 0, None), (2, "TENANT", 0, None)] == list(
            find_each(translated, table, tuples=True)
        )
    finally:
        engine.dispose()
        main.dispose()


def test_tuples_explicit_finish_inside_a_page(db: Db) -> None:
    table = db.users(60)
    for size in (7, 100):
        rows = list(find_each(db.engine, table, batch_size=size, start=5, finish=25, tuples=True))
        assert list(range(5, 26)) == [r[0] for r in rows]
        batches = list(in_batches(db.engine, table, batch_size=size, finish=25, tuples=True))
        assert 25 == batches[-1].last_key
        assert list(range(1, 26)) == [r[0] for b in batches for r in b.rows]
    user = orm_user(table)
    assert list(range(1, 26)) == [u.id for u in find_each(db.engine, user, finish=25)]


def test_tuples_rejects_orm_sources(db: Db) -> None:
    user = orm_user(db.users(3))
    with pytest.raises(BatchSourceError, match="tuples=True reads Core rows"):
        find_each(db.engine, user, tuples=True)
    with pytest.raises(BatchSourceError, match="tuples=True"):
        in_batches(db.engine, sa.select(user), tuples=True)


def test_tuples_lock_at_connect_is_a_clear_error(tmp_path: Path) -> None:
    # Without a pool every page opens a connection; a PRAGMA on connect meets the lock there.
    path = tmp_path / "connect.db"
    db = Db("sqlite-journal", f"sqlite:///{path}", sqlite_engine(path, wal=False), sa.MetaData())
    table = db.users(10)
    engine = sa.create_engine(
        f"sqlite:///{path}", poolclass=sa.pool.NullPool, connect_args={"timeout": 0.2}
    )

    @sa.event.listens_for(engine, "connect")
    def read_version(dbapi_connection: sqlite3.Connection, _: object) -> None:
        dbapi_connection.execute("PRAGMA user_version").fetchall()

    rows = find_each(engine, table, batch_size=3, finish=None, tuples=True)
    # Two pages (both page shapes: from the start, after a key) are read before the lock.
    assert [1, 2, 3, 4] == [next(rows)[0] for _ in range(4)]
    try:
        with exclusive_lock(path), pytest.raises(DatabaseLocked, match="database is locked"):
            list(rows)
    finally:
        engine.dispose()
        db.engine.dispose()


def test_tuples_driver_errors_match_sqlalchemys(db: Db) -> None:
    table = db.users(5)
    engine = sa.create_engine(db.url, hide_parameters=True)
    source = sa.select(table).where(table.c.payload != "hunter2")
    errors = []
    for tuples in (False, True):
        rows = find_each(engine, source, finish=None, tuples=tuples)
        with db.engine.begin() as conn:
            conn.execute(sa.text(f"ALTER TABLE {table.name} RENAME TO {table.name}_gone"))
        try:
            with pytest.raises(sa.exc.DBAPIError) as caught:
                next(rows)
        finally:
            with db.engine.begin() as conn:
                conn.execute(sa.text(f"ALTER TABLE {table.name}_gone RENAME TO {table.name}"))
        errors.append(caught.value)
    assert type(errors[0]) is type(errors[1])  # e.g. OperationalError on SQLite
    assert "hunter2" not in str(errors[1])  # hide_parameters is honoured
    assert table.name in str(errors[1])
    engine.dispose()


@pytest.mark.parametrize("wal", [False, True], ids=["journal", "wal"])
def test_tuples_writer_not_blocked_while_user_code_runs(tmp_path: Path, wal: bool) -> None:
    path = tmp_path / "latency.db"
    engine = sqlite_engine(path, wal=wal)
    db = Db("sqlite", str(engine.url), engine, sa.MetaData())
    table = db.users(3000)
    latencies = []
    for i, _row in enumerate(find_each(engine, table, batch_size=100, tuples=True)):
        if i in (50, 2500):
            time.sleep(0.05)
            other = sqlite3.connect(path, timeout=1.5)
            t0 = time.perf_counter()
            other.execute(f"UPDATE {table.name} SET counter = counter + 1 WHERE id = 1")
            other.commit()
            latencies.append(time.perf_counter() - t0)
            other.close()
    assert 2 == len(latencies)
    assert max(latencies) < 0.5  # target < 100 ms; wide margin for a busy CI box
    engine.dispose()


@pytest.mark.postgres
def test_tuples_postgres_no_transaction_open_while_user_code_runs(postgres_url: str) -> None:
    # Even with the pool's rollback on return turned off, no page leaves a transaction open.
    engine = sa.create_engine(postgres_url, pool_reset_on_return=None)
    other = sa.create_engine(postgres_url)
    db = Db("postgres", postgres_url, engine, sa.MetaData())
    table = db.users(2000)
    try:
        idle = []
        for i, _row in enumerate(find_each(engine, table, batch_size=300, tuples=True)):
            if i in (10, 1500):
                with other.connect() as conn:
                    idle.append(
                        conn.execute(
                            sa.text(
                                "SELECT count(*) FROM pg_stat_activity "
                                "WHERE state = 'idle in transaction'"
                            )
                        ).scalar_one()
                    )
        assert [0, 0] == idle
    finally:
        db.metadata.drop_all(engine)
        engine.dispose()
        other.dispose()
