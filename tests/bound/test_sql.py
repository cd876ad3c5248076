"""find_each / in_batches / BatchWriter / Checkpoint on real SQLite files and real PostgreSQL.

Each behaviour is checked against a plain full scan of the same table (G8).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import subprocess
import sys
import textwrap
import uuid
import weakref
from pathlib import Path

import pytest
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

import membound.bound.sql.plan as sql_mod
from membound import (
    BatchSourceError,
    BatchWriteError,
    BatchWriter,
    Checkpoint,
    DatabaseLocked,
    KeyOrderError,
    find_each,
    in_batches,
)
from tests.bound.helpers import Db, exclusive_lock, fill, ids_of, sa, sqlite_engine


def full_scan(db: Db, table: sa.Table) -> list[int]:
    with db.engine.connect() as conn:
        return list(conn.execute(sa.select(table.c.id).order_by(table.c.id)).scalars())


# ------------------------------------------------------------------------------ G1, G8 basics


@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_find_each_equals_full_scan(db: Db, batch_size: int) -> None:
    table = db.users(523)
    assert full_scan(db, table) == ids_of(find_each(db.engine, table, batch_size=batch_size))


def test_in_batches_shapes_and_keys(db: Db) -> None:
    table = db.users(25)
    batches = list(in_batches(db.engine, table, batch_size=10))
    assert [len(b.rows) for b in batches] == [10, 10, 5]
    assert [(b.first_key, b.last_key, b.index) for b in batches] == [
        (1, 10, 0),
        (11, 20, 1),
        (21, 25, 2),
    ]


def test_filtered_select_and_missing_key_column(db: Db) -> None:
    table = db.users(100)
    with db.engine.begin() as conn:
        conn.execute(table.update().where(table.c.id % 3 == 0).values(status="OTHER"))
    # The select does not include the key: membound adds it so it can resume after it.
    source = sa.select(table.c.payload).where(table.c.status == "SYNCED")
    got = [r.payload for r in find_each(db.engine, source, batch_size=9)]
    assert [f"p{i}" for i in range(1, 101) if i % 3] == got


def test_start_and_finish_are_inclusive(db: Db) -> None:
    table = db.users(50)
    assert list(range(10, 21)) == ids_of(
        find_each(db.engine, table, batch_size=4, start=10, finish=20)
    )
    assert [] == ids_of(find_each(db.engine, table, start=51))


class Base(DeclarativeBase):
    pass


def orm_user(table: sa.Table) -> type:
    """A mapped class over the test's users table."""
    return type(
        f"User_{table.name}",
        (Base,),
        {
            "__table__": table,
            "__mapper_args__": {"primary_key": [table.c.id]},
        },
    )


def test_orm_entity_objects_detached_per_batch(db: Db) -> None:
    table = db.users(120)
    user = orm_user(table)
    seen = []
    for batch in in_batches(sessionmaker(db.engine), user, batch_size=50):
        # The batch's Session is closed before the batch is yielded: the identity map of one
        # batch never outlives it.
        assert all(sa.inspect(obj).detached for obj in batch.rows)
        seen += [obj.id for obj in batch.rows]
    assert full_scan(db, table) == seen
    # select(Entity).where(...) with a plain engine also yields objects.
    source = sa.select(user).where(user.id > 100)  # type: ignore[attr-defined]
    assert list(range(101, 121)) == [o.id for o in find_each(db.engine, source, batch_size=7)]


@pytest.mark.parametrize("with_checkpoint", [False, True], ids=["plain", "checkpoint"])
def test_find_each_frees_a_page_before_loading_the_next(db: Db, with_checkpoint: bool) -> None:
    # When the loop body keeps nothing, the previous page's objects must already be gone when
    # the next query runs: two live pages would double the batch memory and make the garbage
    # collector promote objects that are about to die.
    table = db.users(90)
    user = orm_user(table)
    checkpoint = Checkpoint(db.engine, f"frees-{table.name}") if with_checkpoint else None
    if checkpoint is not None:
        checkpoint.reset()  # creates its table now, not inside the loop
    previous: list[weakref.ref[object]] = []
    alive_at_query: list[bool] = []

    def before_query(*_: object) -> None:
        alive_at_query.append(any(ref() is not None for ref in previous))

    sa.event.listen(db.engine, "before_cursor_execute", before_query)
    try:
        seen = []
        for obj in find_each(db.engine, user, batch_size=20, checkpoint=checkpoint):
            previous.append(weakref.ref(obj))
            seen.append(obj.id)
            del obj
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", before_query)
    assert full_scan(db, table) == seen
    # The key's schema, the snapshot query and five pages; with a checkpoint also its load and
    # a save per page.
    if with_checkpoint:
        assert len(alive_at_query) >= 13
    else:
        assert 7 == len(alive_at_query)
    assert not any(alive_at_query)


@pytest.mark.parametrize("tuples", [False, True], ids=["rows", "tuples"])
def test_find_each_close_stops_like_a_generator(db: Db, tuples: bool) -> None:
    table = db.users(50)
    queries: list[str] = []
    rows = find_each(db.engine, table, batch_size=10, tuples=tuples)
    assert iter(rows) is rows
    assert [1, 2, 3] == [next(rows)[0] for _ in range(3)]
    # A pool event: it sees every page on both paths (SQLAlchemy's execute and the driver's).
    sa.event.listen(db.engine, "checkout", lambda *a: queries.append("checkout"))
    with contextlib.closing(rows):
        pass
    assert [] == list(rows)  # nothing more: not even the rest of the page in hand
    assert [] == queries  # and no connection was taken for a page after close()
    rows.close()  # a second close is harmless


def test_sessionmaker_with_core_source(db: Db) -> None:
    table = db.users(30)
    assert full_scan(db, table) == ids_of(find_each(sessionmaker(db.engine), table, batch_size=8))


# ---------------------------------------------------------------------------- composite keys


@pytest.mark.parametrize("row_values", [True, False], ids=["row-value", "expansion"])
def test_composite_key_equals_full_scan(
    db: Db, row_values: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not row_values:
        # Force the portable OR/AND expansion used for dialects without row values (G8).
        monkeypatch.setattr(sql_mod, "_ROW_VALUE_DIALECTS", frozenset())
    table = db.pairs(f"pairs_{row_values}", 20)
    rows = [{"a": a, "b": b} for a in range(20) for b in "xyz"]
    expected = [(r["a"], r["b"]) for r in rows]
    for size in (1, 4, 7, 100):
        assert expected == [(r.a, r.b) for r in find_each(db.engine, table, batch_size=size)]
    got = [(r.a, r.b) for r in find_each(db.engine, table, start=(3, "y"), finish=(5, "x"))]
    assert [(3, "y"), (3, "z"), (4, "x"), (4, "y"), (4, "z"), (5, "x")] == got
    batches = list(in_batches(db.engine, table, batch_size=4))
    assert ((0, "x"), (1, "x")) == (batches[0].first_key, batches[0].last_key)
    for batch in batches:  # G3 with a composite key: each UPDATE touches exactly its batch
        with db.engine.begin() as conn:
            result = conn.execute(table.update().where(batch.where()).values(v=table.c.v + 1))
            assert len(batch.rows) == result.rowcount
    with db.engine.connect() as conn:
        assert [1] * len(rows) == list(  # every row exactly once, none twice
            conn.execute(sa.select(table.c.v).order_by(table.c.a, table.c.b)).scalars()
        )


def test_explicit_unique_key(db: Db) -> None:
    table = sa.Table(
        f"codes_{id(db)}",
        db.metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("code", sa.String(10), nullable=False, unique=True),
    )
    table.create(db.engine)
    with db.engine.begin() as conn:
        conn.execute(table.insert(), [{"id": i, "code": f"c{100 - i:03d}"} for i in range(50)])
    got = [r.code for r in find_each(db.engine, table, batch_size=6, key="code")]
    assert sorted(got) == got
    assert len(got) == 50


# ------------------------------------------------------------------ G3 set-based DML per batch


def test_batch_where_touches_only_its_batch_and_filter(db: Db) -> None:
    table = db.users(1000)
    with db.engine.begin() as conn:
        conn.execute(table.update().where(table.c.id % 10 == 0).values(status="KEEP"))
    source = sa.select(table).where(table.c.status == "SYNCED")
    for batch in in_batches(db.engine, source, batch_size=64):
        with db.engine.begin() as conn:
            result = conn.execute(
                table.update()
                .where(batch.where())
                .values(status="TEMP_DELETED", counter=table.c.counter + 1)
            )
            assert len(batch.rows) == result.rowcount
    with db.engine.connect() as conn:
        counts = dict(
            conn.execute(sa.select(table.c.status, sa.func.count()).group_by(table.c.status)).all()
        )
        counters = set(
            conn.execute(
                sa.select(table.c.counter).where(table.c.status == "TEMP_DELETED")
            ).scalars()
        )
    assert {"KEEP": 100, "TEMP_DELETED": 900} == counts
    assert {1} == counters


def test_offset_paging_misses_half_keyset_does_not(db: Db) -> None:
    """The bug class: OFFSET paging over a condition the loop itself changes."""
    table = db.users(1000)
    pending = table.c.status == "SYNCED"
    offset = 0
    while True:
        with db.engine.begin() as conn:
            ids = list(
                conn.execute(
                    sa.select(table.c.id)
                    .where(pending)
                    .order_by(table.c.id)
                    .limit(100)
                    .offset(offset)
                ).scalars()
            )
            if not ids:
                break
            conn.execute(table.update().where(table.c.id.in_(ids)).values(status="DONE"))
        offset += 100
    with db.engine.connect() as conn:
        assert (
            500 == conn.execute(sa.select(sa.func.count()).where(table.c.status == "DONE")).scalar()
        )
        conn.execute(table.update().values(status="SYNCED"))
        conn.commit()
    for batch in in_batches(db.engine, sa.select(table).where(pending), batch_size=100):
        with db.engine.begin() as conn:
            conn.execute(table.update().where(batch.where()).values(status="DONE"))
    with db.engine.connect() as conn:
        assert (
            1000
            == conn.execute(sa.select(sa.func.count()).where(table.c.status == "DONE")).scalar()
        )


# ------------------------------------------------------------ the five concurrency scenarios


def test_writes_during_iteration_snapshot_and_follow(db: Db) -> None:
    table = db.users(200)
    seen = []
    for row in find_each(db.engine, table, batch_size=30):
        seen.append(row.id)
        if row.id % 50 == 0:  # insert ahead of the cursor, beyond the snapshot
            fill(db.engine, table, [10_000 + row.id])
    assert list(range(1, 201)) == seen  # finish="snapshot": max key frozen at start (G2)
    seen = []
    for row in find_each(db.engine, table, batch_size=30, finish=None):
        seen.append(row.id)
        if row.id == 200:
            fill(db.engine, table, [20_000])
    assert [*range(1, 201), 10_050, 10_100, 10_150, 10_200, 20_000] == seen


def test_deleting_rows_not_yet_reached(db: Db) -> None:
    table = db.users(300)
    seen = []
    for row in find_each(db.engine, table, batch_size=25):
        seen.append(row.id)
        if row.id == 40:
            with db.engine.begin() as conn:
                conn.execute(table.delete().where(table.c.id.between(100, 199)))
    assert [*range(1, 100), *range(200, 301)] == seen


def test_concurrent_readers(db: Db) -> None:
    table = db.users(250)
    a = find_each(db.engine, table, batch_size=17)
    b = find_each(db.engine, sa.select(table), batch_size=40)
    pairs = list(zip(a, b, strict=True))
    assert [(i, i) for i in range(1, 251)] == [(x.id, y.id) for x, y in pairs]


def test_writes_to_rows_being_read(db: Db) -> None:
    table = db.users(200)
    seen = []
    statuses = []
    for batch in in_batches(db.engine, table, batch_size=20):
        with db.engine.begin() as conn:  # update this batch and the next one (ahead)
            conn.execute(
                table.update()
                .where(table.c.id.between(batch.first_key, batch.last_key + 20))
                .values(counter=table.c.counter + 1)
            )
        seen += ids_of(batch.rows)
        statuses += [r.counter for r in batch.rows]
    assert list(range(1, 201)) == seen
    assert [0] * 20 + [1] * 180 == statuses  # read committed per batch: updates ahead are seen


def test_large_table_with_concurrent_writer(db: Db) -> None:
    n = 20_000
    table = db.users(n)
    writer = db.new_engine(connect_args={"timeout": 10} if db.kind != "postgres" else {})
    seen = []
    try:
        for batch in in_batches(db.engine, table, batch_size=500):
            seen += ids_of(batch.rows)
            with writer.begin() as conn:  # another connection writes while the loop runs
                conn.execute(
                    table.update()
                    .where(table.c.id.between(batch.index * 400, batch.index * 400 + 50))
                    .values(payload="w")
                )
                conn.execute(
                    table.insert(), [{"id": n + 1 + batch.index, "status": "NEW", "counter": 0}]
                )
    finally:
        writer.dispose()
    assert list(range(1, n + 1)) == seen


# ----------------------------------------------------------------------- G4 writer latency


@pytest.mark.parametrize("wal", [False, True], ids=["journal", "wal"])
def test_writer_not_blocked_by_find_each_but_by_streaming_cursor(tmp_path: Path, wal: bool) -> None:
    """A write commits quickly while user code runs inside a find_each batch.

    Contrast (rollback journal): an open streaming cursor holds a SHARED lock that blocks the
    commit until the busy timeout. In WAL mode readers never block writers, so only the
    find_each half applies there.
    """
    path = tmp_path / "latency.db"
    engine = sqlite_engine(path, wal=wal)
    metadata = sa.MetaData()
    table = sa.Table(
        "t", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("v", sa.Integer)
    )
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"id": i, "v": 0} for i in range(1, 5001)])

    import sqlite3
    import time

    def timed_write() -> tuple[float, bool]:
        other = sqlite3.connect(path, timeout=1.5)
        t0 = time.perf_counter()
        try:
            other.execute("UPDATE t SET v = v + 1 WHERE id = 1")
            other.commit()
            ok = True
        except sqlite3.OperationalError:  # "database is locked" after the busy timeout
            ok = False
        finally:
            other.close()
        return time.perf_counter() - t0, ok

    latencies = []
    for i, _row in enumerate(find_each(engine, table, batch_size=100)):
        if i in (50, 2500):  # user code runs inside a batch
            time.sleep(0.05)
            latencies.append(timed_write())
    assert all(ok for _, ok in latencies)
    assert max(s for s, _ in latencies) < 0.5  # target < 100 ms; wide margin for a busy CI box
    if wal:
        engine.dispose()
        return

    raw = sqlite3.connect(path)
    cursor = raw.execute("SELECT id, v FROM t ORDER BY id")  # one cursor stepped lazily
    for i, _row in enumerate(cursor):
        if i == 50:
            blocked_s, ok = timed_write()
            break
    raw.close()
    assert not ok
    assert blocked_s >= 1.0  # waited out the busy timeout: the streaming reader blocked it
    engine.dispose()


@pytest.mark.postgres
def test_postgres_no_transaction_open_while_user_code_runs(postgres_url: str) -> None:
    """PostgreSQL: no 'idle in transaction' session during the loop body; DDL is not blocked.

    The contrast is SQLAlchemy's yield_per stream, which keeps a transaction (and its
    ACCESS SHARE lock) open for the whole loop, so ALTER TABLE cannot get its lock.
    """
    engine = sa.create_engine(postgres_url)
    metadata = sa.MetaData()
    table = sa.Table(
        f"g4_{id(engine)}",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("v", sa.Integer),
    )
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"id": i, "v": 0} for i in range(1, 3001)])
    other = sa.create_engine(postgres_url)

    def idle_in_transaction() -> int:
        with other.connect() as conn:
            return int(
                conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'"
                    )
                ).scalar_one()
            )

    def try_ddl(column: str) -> bool:
        with other.connect() as conn:
            try:
                conn.execute(sa.text("SET lock_timeout = '500ms'"))
                conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN {column} integer"))
                conn.commit()
                return True
            except sa.exc.OperationalError:
                conn.rollback()
                return False

    try:
        for i, _row in enumerate(find_each(engine, table, batch_size=500)):
            if i == 700:
                assert 0 == idle_in_transaction()
                assert try_ddl("c1")
        with engine.connect() as conn:
            result = conn.execution_options(yield_per=100).execute(sa.select(table.c.id))
            for i, _row in enumerate(result):
                if i == 700:
                    assert 1 <= idle_in_transaction()
                    assert not try_ddl("c2")
                    break
            result.close()
    finally:
        metadata.drop_all(engine)
        engine.dispose()
        other.dispose()


def test_wal_checkpoint_between_batches_keeps_results(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path / "wal.db", wal=True)
    db = Db("sqlite-wal", str(engine.url), engine, sa.MetaData())
    table = db.users(3000)
    got = []
    for batch in in_batches(engine, table, batch_size=500, wal_checkpoint=True):
        with engine.begin() as conn:
            conn.execute(table.update().where(batch.where()).values(payload="x" * 90))
        got += ids_of(batch.rows)
        wal = tmp_path / "wal.db-wal"
        assert wal.stat().st_size < 2_000_000
    assert list(range(1, 3001)) == got
    engine.dispose()


def test_progress_bar_does_not_change_rows(db: Db, capsys: pytest.CaptureFixture[str]) -> None:
    table = db.users(300)
    assert full_scan(db, table) == ids_of(find_each(db.engine, table, batch_size=50, progress=True))
    assert "batches" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ G6


def test_key_order_error_when_database_and_python_disagree(tmp_path: Path) -> None:
    """A NOCASE key sorts 'B' after 'a' in SQLite but before it in Python: refuse to continue."""
    engine = sqlite_engine(tmp_path / "nocase.db", wal=False)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE k (name TEXT COLLATE NOCASE PRIMARY KEY NOT NULL)")
        conn.exec_driver_sql("INSERT INTO k VALUES ('a'), ('B'), ('c')")
    table = sa.Table("k", sa.MetaData(), autoload_with=engine)
    with pytest.raises(KeyOrderError, match="not greater than the previous last key 'a'"):
        list(find_each(engine, table, batch_size=1))
    engine.dispose()


# ---------------------------------------------------------------------------------- errors


def test_error_keyless_table(db: Db) -> None:
    table = sa.Table(f"nokey_{id(db)}", db.metadata, sa.Column("v", sa.Integer, nullable=False))
    with pytest.raises(BatchSourceError, match=r"has no primary key"):
        find_each(db.engine, table)


def test_error_nullable_and_non_unique_key(db: Db) -> None:
    table = sa.Table(
        f"k_{id(db)}",
        db.metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(50), nullable=True, unique=True),
        sa.Column("n", sa.Integer, nullable=False),
    )
    with pytest.raises(BatchSourceError, match=r"key column .*email can hold NULL"):
        find_each(db.engine, table, key="email")
    with pytest.raises(BatchSourceError, match=r"key \(n\) is not declared unique"):
        find_each(db.engine, table, key=table.c.n)


@pytest.mark.parametrize("clause", ["order_by", "offset", "limit", "group_by"])
def test_error_source_with_its_own_paging(db: Db, clause: str) -> None:
    table = db.users(3)
    source = sa.select(table)
    source = {
        "order_by": source.order_by(table.c.id),
        "offset": source.offset(1),
        "limit": source.limit(2),
        "group_by": source.group_by(table.c.id),
    }[clause]
    with pytest.raises(BatchSourceError, match=clause.upper().replace("_", " ")):
        find_each(db.engine, source)


@pytest.mark.parametrize("size", [0, -1, True, 2.5])
def test_error_batch_size(db: Db, size: int) -> None:
    table = db.users(1)
    with pytest.raises(BatchSourceError, match="batch_size must be an integer >= 1"):
        in_batches(db.engine, table, batch_size=size)
    with pytest.raises(BatchSourceError, match="batch_size"):
        BatchWriter(db.engine, batch_size=size)


@pytest.mark.parametrize("tuples", [False, True], ids=["rows", "tuples"])
def test_error_locked_database(tmp_path: Path, tuples: bool) -> None:
    engine = sqlite_engine(tmp_path / "locked.db", wal=False, timeout=0.2)
    db = Db("sqlite-journal", str(engine.url), engine, sa.MetaData())
    table = db.users(10)
    try:
        # The call reads the key's schema (finish=None: nothing else until next()).
        rows = find_each(engine, table, finish=None, tuples=tuples)
        with exclusive_lock(tmp_path / "locked.db"):
            with pytest.raises(DatabaseLocked, match="database is locked"):
                list(find_each(engine, table, tuples=tuples))  # at the call's first query
            with pytest.raises(DatabaseLocked, match="database is locked"):
                next(rows)  # at the first page
    finally:
        engine.dispose()


@pytest.mark.parametrize("wal", [False, True], ids=["journal", "wal"])
def test_error_locked_before_the_start_with_a_checkpoint(tmp_path: Path, wal: bool) -> None:
    """Locked before the run starts: the checkpoint's table and row give DatabaseLocked too.

    In WAL mode readers are not blocked, so what fails is creating the checkpoint table; in
    journal mode every read fails as well.
    """
    path = tmp_path / "locked.db"
    engine = sqlite_engine(path, wal=wal, timeout=0.1)
    db = Db("sqlite-wal" if wal else "sqlite-journal", str(engine.url), engine, sa.MetaData())
    table = db.users(10)
    locked = r"^the database is locked by another connection \([^\n]*$"  # one line
    one_line = r"^the database is locked by another connection \(.*checkpoint 'job'[^\n]*$"
    calls = {
        "position": lambda cp: cp.position,
        "save": lambda cp: cp.save(3),
        "reset": lambda cp: cp.reset(),
        "writer": lambda cp: BatchWriter(engine, checkpoint=cp),
    }
    try:
        with exclusive_lock(path):
            with pytest.raises(DatabaseLocked, match=locked):
                find_each(engine, table, checkpoint=Checkpoint(engine, "job"))
            for call in calls.values():
                with pytest.raises(DatabaseLocked, match=one_line):
                    call(Checkpoint(engine, "job"))
        Checkpoint(engine, "job").save(3)  # the table exists now: a write still waits
        with exclusive_lock(path):
            with pytest.raises(DatabaseLocked, match=one_line):
                Checkpoint(engine, "job").save(4)
            if not wal:
                with pytest.raises(DatabaseLocked, match=one_line):
                    _ = Checkpoint(engine, "job").position
            else:
                assert 3 == Checkpoint(engine, "job").position  # WAL readers go on
        assert list(range(4, 11)) == ids_of(
            find_each(engine, table, checkpoint=Checkpoint(engine, "job"))
        )
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_error_locked_before_the_start_with_a_checkpoint_postgres(postgres_url: str) -> None:
    """PostgreSQL: the checkpoint table held by another session past lock_timeout."""
    engine = sa.create_engine(postgres_url, connect_args={"options": "-c lock_timeout=200"})
    holder = sa.create_engine(postgres_url)
    try:
        Checkpoint(engine, "pg-job").save(1)
        with holder.connect() as conn, conn.begin():
            conn.exec_driver_sql("LOCK TABLE membound_checkpoints IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(DatabaseLocked, match=r"checkpoint 'pg-job'.*lock timeout"):
                _ = Checkpoint(engine, "pg-job").position
        assert 1 == Checkpoint(engine, "pg-job").position
    finally:
        engine.dispose()
        holder.dispose()


def test_error_missing_extra_names_the_install_command() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["sqlalchemy"] = None  # as if the 'sql' extra were not installed
        import membound
        try:
            membound.find_each(None, None)
        except ImportError as exc:
            print(exc)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'membound[sql]'" in out.stdout


# ------------------------------------------------------------------------- checkpoint, writer


def test_checkpoint_round_trips_keys(db: Db) -> None:
    cp = Checkpoint(db.engine, f"cp-{id(db)}")
    assert cp.position is None
    values = [
        7,
        "abc",
        (3, "x"),
        (b"\x00\xff", dt.datetime(2024, 1, 2, 3, 4, 5), dt.date(2024, 1, 2)),
        (decimal.Decimal("1.50"), uuid.UUID(int=5)),
    ]
    for value in values:
        cp.save(value)
        assert value == Checkpoint(db.engine, cp.name).position
    cp.reset()
    assert cp.position is None


def test_checkpoint_resume_is_exclusive(db: Db) -> None:
    table = db.users(100)
    cp = Checkpoint(db.engine, f"resume-{id(db)}")
    seen = []
    for batch in in_batches(db.engine, table, batch_size=10, checkpoint=cp):
        seen += ids_of(batch.rows)
        if batch.index == 3:
            break  # the batch did not finish: its key is not saved
    assert 30 == cp.position
    seen = ids_of(find_each(db.engine, table, batch_size=10, checkpoint=cp))
    assert list(range(31, 101)) == seen
    assert 100 == cp.position


def test_batch_writer_flushes_and_commits_checkpoint(db: Db) -> None:
    table = db.users(1234)
    cp = Checkpoint(db.engine, f"w-{id(db)}")
    bump = (
        table.update().where(table.c.id == sa.bindparam("uid")).values(counter=table.c.counter + 1)
    )
    with BatchWriter(db.engine, batch_size=100, checkpoint=cp) as writer:
        for row in find_each(db.engine, table, batch_size=333, checkpoint=cp):
            writer.add(bump, {"uid": row.id})
            if row.id == 250:
                assert 200 == writer.committed
                assert 200 == cp.position  # committed with the flush, not ahead of it
    assert 1234 == writer.committed
    assert 1234 == cp.position
    with db.engine.connect() as conn:
        assert [1] == list(conn.execute(sa.select(table.c.counter).distinct()).scalars())


def test_batch_writer_never_splits_a_rows_items(db: Db) -> None:
    table = db.users(50)
    cp = Checkpoint(db.engine, f"split-{id(db)}")
    bump = (
        table.update().where(table.c.id == sa.bindparam("uid")).values(counter=table.c.counter + 1)
    )
    with BatchWriter(db.engine, batch_size=4, checkpoint=cp) as writer:
        for row in find_each(db.engine, table, batch_size=10, checkpoint=cp):
            for _ in range(3):  # three items per row: flushes wait for a row boundary
                writer.add(bump, {"uid": row.id})
            assert writer.pending % 3 == 0
    with db.engine.connect() as conn:
        assert [3] == list(conn.execute(sa.select(table.c.counter).distinct()).scalars())


def test_batch_writer_failure_states_what_was_committed(db: Db) -> None:
    table = db.users(0)

    def write_all() -> None:
        with BatchWriter(db.engine, batch_size=500) as writer:
            for i in range(1, 1501):
                # id 1234 is inserted twice: the third flush (items 1001..1500) fails
                row = {"id": 1234 if i == 1300 else i, "status": "S", "counter": 0}
                writer.add(table.insert(), row)

    with pytest.raises(BatchWriteError) as info:
        write_all()
    err = info.value
    assert (1000, 500) == (err.committed, err.failed)
    assert "1000 items were committed by 2 earlier flushes" in str(err)
    assert "500 items not applied" in str(err)
    with db.engine.connect() as conn:
        assert 1000 == conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()


def test_batch_writer_user_error_discards_buffer_and_notes_count(db: Db) -> None:
    table = db.users(0)

    def write_then_fail() -> None:
        with BatchWriter(db.engine, batch_size=10) as writer:
            for i in range(1, 26):
                writer.add(table.insert(), {"id": i, "status": "S", "counter": 0})
            raise RuntimeError("user code failed")

    with pytest.raises(RuntimeError) as info:
        write_then_fail()
    assert "20 items were committed; 5 buffered items were discarded" in "".join(
        getattr(info.value, "__notes__", [])
    ) or sys.version_info < (3, 11)
    with db.engine.connect() as conn:
        assert 20 == conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()


def test_an_interrupt_during_a_commit_is_noted_as_unsure(db: Db) -> None:
    """Ctrl-C can land inside a flush's commit: the note must not claim it did not commit."""
    table = db.users(0)
    engine = db.new_engine()
    commits = 0

    def interrupt_second_commit(conn: object) -> None:
        nonlocal commits
        commits += 1
        if commits == 2:
            raise KeyboardInterrupt

    sa.event.listen(engine, "commit", interrupt_second_commit)
    try:
        with (  # noqa: PT012
            pytest.raises(KeyboardInterrupt) as info,
            BatchWriter(engine, batch_size=10) as writer,
        ):
            for i in range(1, 26):
                writer.add(table.insert(), {"id": i, "status": "S", "counter": 0})
    finally:
        engine.dispose()
    notes = "".join(getattr(info.value, "__notes__", []))
    assert (
        "10 items were committed; 0 buffered items were discarded; a flush of 10 items "
        "was interrupted and may or may not have committed"
        in notes
        or sys.version_info < (3, 11)
    )


def test_batch_writer_set_based_with_in_batches(db: Db) -> None:
    table = db.users(777)
    cp = Checkpoint(db.engine, f"set-{id(db)}")
    source = sa.select(table).where(table.c.status == "SYNCED")
    with BatchWriter(db.engine, batch_size=1, checkpoint=cp) as writer:
        for batch in in_batches(db.engine, source, batch_size=100, checkpoint=cp):
            writer.add(table.update().where(batch.where()).values(status="TEMP_DELETED"))
    assert 777 == cp.position
    with Session(db.engine) as session:
        assert (
            777
            == session.execute(
                sa.select(sa.func.count()).where(table.c.status == "TEMP_DELETED")
            ).scalar()
        )


def test_text_statements_are_grouped(db: Db) -> None:
    table = db.users(20)
    with BatchWriter(db.engine, batch_size=7) as writer:
        for i in range(1, 21):
            writer.add(
                f"UPDATE {table.name} SET counter = counter + :n WHERE id = :id", {"n": 2, "id": i}
            )
    with db.engine.connect() as conn:
        assert [2] == list(conn.execute(sa.select(table.c.counter).distinct()).scalars())


def test_writer_with_explicit_keys_and_no_reader(db: Db) -> None:
    table = db.users(30)
    cp = Checkpoint(db.engine, f"explicit-{id(db)}")
    bump = table.update().where(table.c.id == sa.bindparam("uid")).values(counter=1)
    with BatchWriter(db.engine, batch_size=10, checkpoint=cp) as writer:
        for i in range(1, 26):
            writer.add(bump, {"uid": i}, key=i)
    assert 25 == cp.position


def test_checkpoint_table_created_inside_the_writers_transaction(db: Db) -> None:
    table = db.users(5)
    cp = Checkpoint(db.engine, f"fresh-{id(db)}")
    with db.engine.begin() as conn:
        conn.execute(table.update().values(counter=7))
        cp.save(5, connection=conn)
    assert 5 == cp.position


def test_checkpoint_resume_with_composite_key(db: Db) -> None:
    table = db.pairs("cpairs", 10)
    cp = Checkpoint(db.engine, f"composite-{id(db)}")
    bump = (
        table.update()
        .where(table.c.a == sa.bindparam("ka"), table.c.b == sa.bindparam("kb"))
        .values(v=table.c.v + 1)
    )
    with BatchWriter(db.engine, batch_size=4, checkpoint=cp) as writer:
        for row in find_each(db.engine, table, batch_size=5, checkpoint=cp):
            writer.add(bump, {"ka": row.a, "kb": row.b})
            if (row.a, row.b) == (4, "y"):
                break  # stop mid-run; leaving the block normally flushes what was added
    assert (4, "y") == cp.position  # the clean exit flushed up to the row being processed
    with BatchWriter(db.engine, batch_size=4, checkpoint=cp) as writer:
        for row in find_each(db.engine, table, batch_size=5, checkpoint=cp):
            writer.add(bump, {"ka": row.a, "kb": row.b})
    assert (9, "z") == cp.position
    with db.engine.connect() as conn:
        assert [1] == list(conn.execute(sa.select(table.c.v).distinct()).scalars())
