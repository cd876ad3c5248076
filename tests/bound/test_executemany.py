"""``bound/sql/executemany.py``: a batch's rows go to the driver directly only where that is what
SQLAlchemy would have sent, on every backend; everything else takes SQLAlchemy's own path."""

from __future__ import annotations

import datetime as dt

import pytest

import membound as mb
from membound.bound.sql import executemany
from tests.bound.helpers import Db, sa


def _rows(db: Db, table: sa.Table) -> dict[int, tuple[str, int, str | None]]:
    with db.engine.connect() as conn:
        return {
            r.id: (r.status, r.counter, r.payload)
            for r in conn.execute(sa.select(table).order_by(table.c.id))
        }


def test_an_update_with_a_constant_and_a_key_goes_to_the_driver(db: Db) -> None:
    table = db.users(50)
    stmt = (
        sa.update(table)
        .where(table.c.id == sa.bindparam("uid"))
        .values(status="DONE", counter=sa.bindparam("n"))
    )
    with db.engine.begin() as conn:
        way = executemany.execute_many(conn, stmt, [{"uid": i, "n": i * 2} for i in range(1, 41)])
    assert way == (executemany.ONE_STATEMENT if db.kind == "postgres" else executemany.ROW_BY_ROW)
    rows = _rows(db, table)
    assert all(rows[i][:2] == ("DONE", i * 2) for i in range(1, 41))
    assert all(rows[i][:2] == ("SYNCED", 0) for i in range(41, 51))


def test_text_statements_and_deletes_go_to_the_driver(db: Db) -> None:
    table = db.users(20)
    text = sa.text(f"UPDATE {table.name} SET payload = :p WHERE id = :uid")
    delete = sa.delete(table).where(table.c.id == sa.bindparam("uid"))
    with db.engine.begin() as conn:
        ways = [
            executemany.execute_many(conn, text, [{"p": f"x{i}", "uid": i} for i in range(1, 11)]),
            executemany.execute_many(conn, delete, [{"uid": i} for i in range(16, 21)]),
        ]
    assert executemany.SQLALCHEMY not in ways
    rows = _rows(db, table)
    assert sorted(rows) == list(range(1, 16))
    assert [rows[i][2] for i in range(1, 11)] == [f"x{i}" for i in range(1, 11)]


def test_types_with_bind_processors_go_to_the_driver_processed(db: Db) -> None:
    """SQLite stores datetimes as text (a processor converts them); PostgreSQL's Boolean
    checks its values: the driver path applies SQLAlchemy's processors as its execution does."""
    table = sa.Table(
        f"stamps_{id(db)}",
        db.metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", sa.DateTime, nullable=True),
        sa.Column("ok", sa.Boolean, nullable=True),
    )
    table.create(db.engine)
    with db.engine.begin() as conn:
        conn.execute(table.insert(), [{"id": i, "at": None, "ok": None} for i in range(1, 4)])
    stmt = (
        sa.update(table)
        .where(table.c.id == sa.bindparam("uid"))
        .values(at=sa.bindparam("t"), ok=True)
    )
    when = dt.datetime(2026, 1, 2, 3, 4, 5)
    with db.engine.begin() as conn:
        way = executemany.execute_many(conn, stmt, [{"uid": i, "t": when} for i in range(1, 4)])
        got = conn.execute(sa.select(table.c.at, table.c.ok).order_by(table.c.id)).all()
    assert [(when, True)] * 3 == [tuple(r) for r in got]
    assert way != executemany.SQLALCHEMY


def test_row_by_row_on_postgresql_plans_each_statement_for_its_own_values(
    postgres_url: str,
) -> None:
    """psycopg prepares a statement it runs again and again; under PostgreSQL's generic plan a
    value too long for its column passed where its key met no row. Run alone it fails."""
    engine = sa.create_engine(postgres_url)
    name = f"planned_{id(engine)}"
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE TABLE {name} (id int PRIMARY KEY, status varchar(4))")
            conn.exec_driver_sql(
                f"INSERT INTO {name} SELECT g, 'NEW' FROM generate_series(1, 20) g"
            )
        stmt = sa.text(f"UPDATE {name} SET status = :s WHERE id = :uid")
        rows = [{"s": "OK", "uid": i} for i in range(1, 16)] + [{"s": "x" * 30, "uid": 999}]
        with engine.connect() as conn, conn.begin(), pytest.raises(sa.exc.DataError, match="long"):
            executemany.execute_many(conn, stmt, rows)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
        engine.dispose()


def test_rows_with_other_keys_or_a_missing_value_get_sqlalchemys_answer(db: Db) -> None:
    """Items with other keys run as the statements they are, in order: the first one is
    written, the second gets SQLAlchemy's own answer, as one by one."""
    table = db.users(5)
    stmt = sa.update(table).where(table.c.id == sa.bindparam("uid")).values(status="X")
    with db.engine.connect() as conn:
        with pytest.raises(sa.exc.StatementError, match="uid"):
            executemany.execute_many(conn, stmt, [{"uid": 1}, {"other": 2}])
        written = conn.execute(sa.select(table.c.id, table.c.status).order_by(table.c.id)).all()
        conn.rollback()
    assert [(1, "X"), (2, "SYNCED")] == [tuple(r) for r in written[:2]]


def test_a_writer_over_find_each_updates_every_row_once(db: Db) -> None:
    table = db.users(2500)
    checkpoint = mb.Checkpoint(db.engine, f"executemany-{id(db)}")
    stmt = (
        sa.update(table)
        .where(table.c.id == sa.bindparam("uid"))
        .values(counter=table.c.counter + 1, status="DONE")
    )
    with mb.BatchWriter(db.engine, batch_size=300, checkpoint=checkpoint) as writer:
        for row in mb.find_each(db.engine, table, batch_size=400, checkpoint=checkpoint):
            writer.add(stmt, {"uid": row.id})
    assert 2500 == writer.committed
    assert {("DONE", 1)} == {(s, c) for s, c, _ in _rows(db, table).values()}
