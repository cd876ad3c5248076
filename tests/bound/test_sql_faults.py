"""Faults of the database around a run, for real (issue 27): PostgreSQL restarted, stopped or
its backends terminated mid-``find_each``/``BatchWriter`` (on a cluster of this module's own,
``pg_cluster``); a lock held by another session; a SQLite file deleted or replaced; a full
database. A run goes on through an outage up to ``db_wait``, no row skipped, repeated or
written twice, or stops in one line that says what committed."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import membound as mb
from membound import BatchWriter, Checkpoint, DatabaseLocked, DatabaseUnavailable, find_each
from membound.bound.sql.connection import is_disconnect, with_db_retry
from tests.bound.conftest import PgCluster
from tests.bound.helpers import Db, exclusive_lock, sa, sqlite_engine

psycopg = pytest.importorskip("psycopg")

ONE_LINE = r"^[^\n]*$"


@pytest.fixture
def pgdb(pg_cluster: PgCluster) -> Iterator[Db]:
    """An engine on the module's own cluster; tables are dropped afterwards."""
    engine = sa.create_engine(pg_cluster.url)
    db = Db("postgres", pg_cluster.url, engine, sa.MetaData())
    try:
        yield db
    finally:
        engine.dispose()
        pg_cluster.ensure_running()
        cleanup = sa.create_engine(pg_cluster.url)
        db.metadata.drop_all(cleanup)
        with cleanup.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS membound_checkpoints")
        cleanup.dispose()


def bump(table: sa.Table) -> Any:
    return (
        table.update().where(table.c.id == sa.bindparam("uid")).values(counter=table.c.counter + 1)
    )


def counters(engine: sa.Engine, table: sa.Table) -> dict[int, int]:
    """How many times each row was written: {counter: rows} (on a new connection: the pooled
    ones may have been cut)."""
    query = sa.select(table.c.counter, sa.func.count()).group_by(table.c.counter)
    fresh = sa.create_engine(engine.url, poolclass=sa.pool.NullPool)
    with fresh.connect() as conn:
        rows = conn.execute(query).all()
    fresh.dispose()
    return dict(rows)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- the primitive


@pytest.mark.postgres
def test_is_disconnect_tells_a_lost_connection_from_other_errors(
    pgdb: Db, pg_cluster: PgCluster, tmp_path: Path
) -> None:
    def error_of(engine: sa.Engine, sql: str) -> Exception:
        with pytest.raises(Exception) as info, engine.connect() as conn:  # noqa: PT011
            conn.exec_driver_sql(sql)
        return info.value

    engine = pgdb.engine
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")  # a pooled connection, about to be cut
    assert pg_cluster.terminate_backends() >= 1
    assert is_disconnect(error_of(engine, "SELECT 1"))  # 57P01 on the pooled connection
    pg_cluster.stop()
    refused = error_of(engine, "SELECT 1")
    assert "refused" in str(refused)
    assert is_disconnect(refused)  # no SQLSTATE: the connect error's words
    pg_cluster.start()
    assert not is_disconnect(error_of(engine, "SELEKT 1"))
    assert not is_disconnect(error_of(engine, "SELECT 1/0"))
    wrong_db = sa.create_engine(pg_cluster.url.replace("/postgres", "/nosuch"))
    assert not is_disconnect(error_of(wrong_db, "SELECT 1"))  # waiting does not fix that
    wrong_db.dispose()
    table = pgdb.users(1)
    with engine.connect() as holder, holder.begin():
        holder.exec_driver_sql(f"LOCK TABLE {table.name} IN ACCESS EXCLUSIVE MODE")
        waiter = sa.create_engine(pg_cluster.url, connect_args={"options": "-c lock_timeout=100"})
        assert not is_disconnect(error_of(waiter, f"SELECT * FROM {table.name}"))
        waiter.dispose()
    lite = sqlite_engine(tmp_path / "x.db", wal=False, timeout=0.1)
    assert not is_disconnect(error_of(lite, "SELECT * FROM nosuch"))
    with exclusive_lock(tmp_path / "x.db"):
        assert not is_disconnect(error_of(lite, "CREATE TABLE t (a)"))  # database is locked
    lite.dispose()
    assert not is_disconnect(ValueError("connection refused"))  # not a database error


@pytest.mark.postgres
def test_with_db_retry_waits_for_the_server_then_gives_up_in_one_line(
    pgdb: Db, pg_cluster: PgCluster
) -> None:
    engine = pgdb.engine

    def one() -> int:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT 1").scalar_one())

    pg_cluster.stop()
    thread = pg_cluster.start_later(1.0)
    began = time.monotonic()
    assert 1 == with_db_retry(one, doing="asking", db_wait=10)
    assert time.monotonic() - began >= 0.9
    thread.join()

    pg_cluster.stop()
    began = time.monotonic()
    with pytest.raises(DatabaseUnavailable, match=ONE_LINE) as info:
        with_db_retry(one, doing="counting users", db_wait=1)
    assert 1.0 <= time.monotonic() - began < 3.0
    assert str(info.value).startswith("the database stopped answering for 1 s while counting users")
    assert "Connection refused" in str(info.value)
    assert isinstance(info.value, mb.MemboundError)
    began = time.monotonic()
    with pytest.raises(DatabaseUnavailable, match=r"lost while counting users \(db_wait=0\)"):
        with_db_retry(one, doing="counting users", db_wait=0)
    assert time.monotonic() - began < 0.5
    with pytest.raises(ZeroDivisionError):  # anything but a lost connection: at once
        with_db_retry(lambda: 1 // 0, doing="dividing", db_wait=10)


# ------------------------------------------------------------------------------- find_each


@pytest.mark.postgres
@pytest.mark.parametrize("how", ["restart", "terminate", "down 1 s"])
@pytest.mark.parametrize("tuples", [False, True], ids=["rows", "tuples"])
def test_find_each_goes_on_after_the_last_key_through_an_outage(
    pgdb: Db, pg_cluster: PgCluster, how: str, tuples: bool
) -> None:
    table = pgdb.users(2000)
    seen = []
    thread = None
    for row in find_each(pgdb.engine, table, batch_size=100, tuples=tuples, db_wait=10):
        seen.append(row[0])
        if row[0] == 550:  # mid-batch: the next page's query finds its connection cut
            thread = pg_cluster.cut(how)
    if thread is not None:
        thread.join()
    assert list(range(1, 2001)) == seen  # none skipped, none repeated


@pytest.mark.postgres
def test_find_each_called_while_the_server_is_down_waits_for_it(
    pgdb: Db, pg_cluster: PgCluster
) -> None:
    table = pgdb.users(300)
    cp = Checkpoint(pgdb.engine, "down-at-start")
    cp.save(100)
    pg_cluster.stop()
    thread = pg_cluster.start_later(1.0)
    rows = find_each(pgdb.engine, table, batch_size=50, checkpoint=cp, db_wait=10)
    assert list(range(101, 301)) == [r.id for r in rows]
    thread.join()
    assert 300 == cp.position


@pytest.mark.postgres
def test_in_batches_with_its_checkpoint_through_restarts(pgdb: Db, pg_cluster: PgCluster) -> None:
    """The reader saves the checkpoint after each batch: that save goes on through an outage."""
    table = pgdb.users(1000)
    cp = Checkpoint(pgdb.engine, "reader-saves")
    seen = []
    for batch in mb.in_batches(pgdb.engine, table, batch_size=100, checkpoint=cp, db_wait=10):
        seen += [r.id for r in batch.rows]
        if batch.index in (2, 5):
            pg_cluster.restart()  # the save of this batch's key meets a cut connection
    assert list(range(1, 1001)) == seen
    assert 1000 == cp.position


@pytest.mark.postgres
def test_find_each_stops_after_db_wait_saying_how_far_it_got(
    pgdb: Db, pg_cluster: PgCluster
) -> None:
    table = pgdb.users(1000)
    seen = []
    began = 0.0

    def read() -> None:
        nonlocal began
        for row in find_each(pgdb.engine, table, batch_size=100, db_wait=1):
            seen.append(row.id)
            if row.id == 500:
                pg_cluster.stop()
                began = time.monotonic()

    with pytest.raises(DatabaseUnavailable, match=ONE_LINE) as info:
        read()
    assert 1.0 <= time.monotonic() - began < 4.0
    assert list(range(1, 501)) == seen
    message = str(info.value)
    assert message.startswith(f"the database stopped answering for 1 s while reading {table.name}")
    assert "after key 500 (500 rows in 5 batches handed out before it)" in message
    pg_cluster.start()
    rest = find_each(pgdb.engine, table, batch_size=100, start=501)
    assert list(range(501, 1001)) == [r.id for r in rest]


# ----------------------------------------------------------------------------- BatchWriter


@pytest.mark.postgres
def test_reader_and_writer_through_restarts_from_a_thread_write_each_row_once(
    pgdb: Db, pg_cluster: PgCluster
) -> None:
    """A restart, a crash (``-m immediate``: crash recovery at the next start) and terminated
    backends land wherever the loop is (a page, a flush, a COMMIT); the checkpoint keeps every
    row's write exactly once."""
    table = pgdb.users(2000)
    cp = Checkpoint(pgdb.engine, "restarts")
    done = threading.Event()
    faults: list[str] = []

    def cut() -> None:
        while len(faults) < 4 and not done.wait(0.4):
            how = "terminate" if len(faults) % 2 else ("restart", "crash")[len(faults) // 2]
            started = pg_cluster.cut(how)
            if started is not None:
                started.join()
            faults.append(how)

    thread = threading.Thread(target=cut)
    thread.start()
    try:
        with BatchWriter(pgdb.engine, batch_size=50, checkpoint=cp) as writer:
            for row in find_each(pgdb.engine, table, batch_size=100, checkpoint=cp):
                writer.add(bump(table), {"uid": row.id})
                if thread.is_alive():  # the loop lasts until the faults are done
                    time.sleep(0.002)
    finally:
        done.set()
        thread.join()
    assert 4 == len(faults)
    assert {1: 2000} == counters(pgdb.engine, table)
    assert 2000 == writer.committed
    assert 2000 == cp.position


@pytest.mark.postgres
def test_a_server_that_does_not_accept_connections_yet_is_waited_for(
    pgdb: Db, pg_cluster: PgCluster
) -> None:
    """A server in recovery (after a crash, or a standby not yet promoted) answers every
    connection "the database system is not (yet) accepting connections" (SQLSTATE 57P03, which
    psycopg's connect error does not carry): the reader, the writer and the checkpoint wait
    for it up to ``db_wait``, as for a server that is down."""
    table = pgdb.users(600)
    cp = Checkpoint(pgdb.engine, "recovering")
    cp.reset()
    pgdb.engine.dispose()
    pg_cluster.stop()
    pg_cluster.start_as_standby()
    with pytest.raises(sa.exc.OperationalError) as refused, pgdb.engine.connect():
        pass
    assert "accepting connections" in str(refused.value)
    assert is_disconnect(refused.value)
    promoted = pg_cluster.promote_later(1.5)
    began = time.monotonic()
    try:
        with BatchWriter(pgdb.engine, batch_size=100, checkpoint=cp, db_wait=30) as writer:
            for row in find_each(pgdb.engine, table, batch_size=100, checkpoint=cp, db_wait=30):
                writer.add(bump(table), {"uid": row.id})
    finally:
        promoted.join()
    assert time.monotonic() - began >= 1.0
    assert {1: 600} == counters(pgdb.engine, table)
    assert 600 == cp.position


def lose_commit_answer(
    monkeypatch: pytest.MonkeyPatch,
    cluster: PgCluster,
    engine: sa.Engine,
    *,
    nth: int,
    committed: bool,
) -> None:
    """The ``nth`` COMMIT from now gets no answer: its backend is terminated right after the
    COMMIT happened (``committed``) or instead of it."""
    real = engine.dialect.do_commit
    calls = 0

    def do_commit(dbapi_connection: Any) -> None:
        nonlocal calls
        calls += 1
        if calls != nth:
            real(dbapi_connection)
            return
        if committed:
            real(dbapi_connection)
        else:
            dbapi_connection.rollback()
        cluster.terminate_backends()
        raise psycopg.errors.AdminShutdown("terminating connection due to administrator command")

    monkeypatch.setattr(engine.dialect, "do_commit", do_commit)


@pytest.mark.postgres
@pytest.mark.parametrize("committed", [True, False], ids=["committed", "rolled-back"])
def test_writer_with_checkpoint_asks_it_whether_a_lost_commit_happened(
    pgdb: Db, pg_cluster: PgCluster, monkeypatch: pytest.MonkeyPatch, committed: bool
) -> None:
    table = pgdb.users(1000)
    cp = Checkpoint(pgdb.engine, f"lost-commit-{committed}")
    with BatchWriter(pgdb.engine, batch_size=100, checkpoint=cp, db_wait=10) as writer:
        lose_commit_answer(monkeypatch, pg_cluster, pgdb.engine, nth=3, committed=committed)
        for row in find_each(pgdb.engine, table, batch_size=100, checkpoint=cp):
            writer.add(bump(table), {"uid": row.id})
    assert {1: 1000} == counters(pgdb.engine, table)  # flush 3 skipped, or redone: once
    assert 1000 == writer.committed
    assert 1000 == cp.position


@pytest.mark.postgres
def test_writer_without_checkpoint_says_a_lost_commit_is_unknown(
    pgdb: Db, pg_cluster: PgCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = pgdb.users(1000)
    writer = BatchWriter(pgdb.engine, batch_size=100, db_wait=10)
    lose_commit_answer(monkeypatch, pg_cluster, pgdb.engine, nth=3, committed=True)

    def write() -> None:
        with writer:
            for uid in range(1, 1001):
                writer.add(bump(table), {"uid": uid})

    with pytest.raises(mb.BatchWriteError, match=ONE_LINE) as info:
        write()
    err = info.value
    assert (200, 100) == (err.committed, err.failed)
    assert "flush 3 lost its connection while committing" in str(err)
    assert "whether its 100 items committed is unknown" in str(err)
    assert "200 items were committed by 2 earlier flushes before it" in str(err)
    assert not getattr(err, "__notes__", None)  # the message says it all
    assert {1: 300, 0: 700} == counters(pgdb.engine, table)  # flush 3 did commit, once


@pytest.mark.postgres
@pytest.mark.parametrize("how", ["restart between flushes", "terminate during a flush"])
def test_writer_without_checkpoint_redoes_a_flush_cut_before_its_commit(
    pgdb: Db, pg_cluster: PgCluster, how: str
) -> None:
    table = pgdb.users(0)
    if how == "terminate during a flush":
        statements = 0

        def cut_third_write(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            nonlocal statements
            if statement.startswith("INSERT"):
                statements += 1
                if statements == 3:
                    pg_cluster.terminate_backends()

        sa.event.listen(pgdb.engine, "before_cursor_execute", cut_third_write)
    with BatchWriter(pgdb.engine, batch_size=100, db_wait=10) as writer:
        for uid in range(1, 1001):
            writer.add(table.insert(), {"id": uid, "status": "S", "counter": 0})
            if uid == 250 and how == "restart between flushes":
                pg_cluster.restart()
    with pgdb.engine.connect() as conn:
        ids = conn.execute(sa.select(table.c.id).order_by(table.c.id)).scalars().all()
    assert list(range(1, 1001)) == ids
    assert 1000 == writer.committed


@pytest.mark.postgres
def test_writer_stops_after_db_wait_saying_what_committed(pgdb: Db, pg_cluster: PgCluster) -> None:
    table = pgdb.users(0)
    began = 0.0

    def write() -> None:
        nonlocal began
        with BatchWriter(pgdb.engine, batch_size=100, db_wait=1) as writer:
            for uid in range(1, 1001):
                writer.add(table.insert(), {"id": uid, "status": "S", "counter": 0})
                if uid == 250:
                    pg_cluster.stop()
                    began = time.monotonic()

    with pytest.raises(DatabaseUnavailable, match=ONE_LINE) as info:
        write()
    assert 1.0 <= time.monotonic() - began < 4.0
    assert str(info.value).startswith(
        "the database stopped answering for 1 s while committing BatchWriter flush 3 of 100 "
        "items (it was rolled back; 200 items were committed by 2 earlier flushes): "
    )
    pg_cluster.start()
    with pgdb.engine.connect() as conn:
        assert 200 == conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()


# ----------------------------------------------------------------------------------- locks


@pytest.mark.postgres
def test_writer_lock_timeout_on_a_locked_table_says_so_instead_of_hanging(
    pgdb: Db, pg_cluster: PgCluster
) -> None:
    table = pgdb.users(100)

    def write() -> None:
        with BatchWriter(pgdb.engine, batch_size=10, lock_timeout=0.5) as writer:
            for uid in range(1, 11):
                writer.add(bump(table), {"uid": uid})

    with pg_cluster.holding(f"LOCK TABLE {table.name} IN EXCLUSIVE MODE"):
        began = time.monotonic()
        with pytest.raises(DatabaseLocked, match=ONE_LINE) as info:
            write()
        assert time.monotonic() - began < 3.0
    message = str(info.value)
    assert "BatchWriter flush 1 was rolled back: 10 items not applied" in message
    assert "0 items were committed by 0 earlier flushes" in message
    assert "lock_timeout=0.5 s" in message
    assert "lock timeout" in message  # the server's own words
    assert {0: 100} == counters(pgdb.engine, table)
    # The lock timeout was the flush's own: the connection's setting is untouched.
    with pgdb.engine.connect() as conn:
        assert "0" == conn.exec_driver_sql("SHOW lock_timeout").scalar()


@pytest.mark.postgres
def test_checkpoint_statements_have_a_lock_timeout_of_their_own(
    pgdb: Db, pg_cluster: PgCluster
) -> None:
    """The checkpoint's table locked by another session: membound's own statements stop
    with words after the checkpoint's lock timeout; the user's writes never had one."""
    table = pgdb.users(100)
    cp = Checkpoint(pgdb.engine, "locked-cp", lock_timeout=0.5)
    cp.save(0)

    def write() -> None:
        with BatchWriter(pgdb.engine, batch_size=10, checkpoint=cp) as writer:
            for row in find_each(pgdb.engine, table, batch_size=10, checkpoint=cp):
                writer.add(bump(table), {"uid": row.id})

    # EXCLUSIVE: reads go on (the reader loads the checkpoint), updates wait.
    with pg_cluster.holding("LOCK TABLE membound_checkpoints IN EXCLUSIVE MODE"):
        assert 0 == cp.position
        began = time.monotonic()
        with pytest.raises(DatabaseLocked, match=ONE_LINE) as info:
            write()
        assert time.monotonic() - began < 3.0
        # The default 30 s never lengthens a connection's own tighter lock_timeout.
        tight = sa.create_engine(pgdb.url, connect_args={"options": "-c lock_timeout=300"})
        began = time.monotonic()
        with pytest.raises(DatabaseLocked, match="saving checkpoint 'locked-cp', after waiting"):
            Checkpoint(tight, "locked-cp").save(5)
        assert time.monotonic() - began < 3.0
        tight.dispose()
    message = str(info.value)
    assert "saving checkpoint 'locked-cp', after waiting 500ms" in message
    assert "BatchWriter flush 1 was rolled back: 10 items not applied" in message
    assert {0: 100} == counters(pgdb.engine, table)
    assert 0 == cp.position


def test_writer_lock_timeout_on_sqlite_is_its_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    engine = sqlite_engine(path, wal=False, timeout=5.0)
    table = Db("sqlite-journal", str(engine.url), engine, sa.MetaData()).users(10)

    def write() -> None:
        with BatchWriter(engine, batch_size=5, lock_timeout=0.3) as writer:
            for uid in range(1, 6):
                writer.add(bump(table), {"uid": uid})

    try:
        began = time.monotonic()
        with exclusive_lock(path), pytest.raises(DatabaseLocked, match=ONE_LINE) as info:
            write()
        assert time.monotonic() - began < 2.0  # not the engine's 5 s
        assert "lock_timeout=0.3 s" in str(info.value)
        assert "database is locked" in str(info.value)
        with engine.connect() as conn:  # the pooled connection has its own timeout back
            assert 5000 == conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
    finally:
        engine.dispose()


def test_lock_timeout_and_db_wait_are_checked() -> None:
    engine = sa.create_engine("sqlite://")
    with pytest.raises(mb.BatchSourceError, match="lock_timeout must be a number"):
        BatchWriter(engine, lock_timeout=0)
    with pytest.raises(mb.BatchSourceError, match="db_wait must be a number"):
        BatchWriter(engine, db_wait=-1)
    with pytest.raises(mb.BatchSourceError, match="db_wait must be a number"):
        find_each(engine, sa.table("t"), db_wait="30")  # type: ignore[arg-type]


# ------------------------------------------------------------------------ the SQLite file


def sqlite_users(path: Path, n: int, *, wal: bool = False) -> tuple[sa.Engine, sa.Table]:
    engine = sqlite_engine(path, wal=wal)
    return engine, Db("sqlite", str(engine.url), engine, sa.MetaData()).users(n)


def replace_file(path: Path) -> None:
    """Another file takes the path (a restore from backup, a deploy copying a fresh one)."""
    copy = path.with_suffix(".copy")
    shutil.copy(path, copy)
    copy.replace(path)


@pytest.mark.parametrize("wal", [False, True], ids=["journal", "wal"])
@pytest.mark.parametrize("what", ["deleted", "replaced"])
def test_writer_stops_when_its_sqlite_file_is_deleted_or_replaced(
    tmp_path: Path, what: str, wal: bool
) -> None:
    """In WAL mode the writes would commit into the old file and be lost; in rollback-journal
    mode SQLite refuses them, saying only "attempt to write a readonly database"."""
    path = tmp_path / "run.db"
    engine, table = sqlite_users(path, 500, wal=wal)
    writer = BatchWriter(engine, batch_size=100)

    def write() -> None:
        with writer:
            for uid in range(1, 501):
                writer.add(bump(table), {"uid": uid})
                if uid == 250:
                    path.unlink() if what == "deleted" else replace_file(path)

    try:
        with pytest.raises(DatabaseUnavailable, match=ONE_LINE) as info:
            write()
        assert str(info.value) == (
            f"the SQLite file {path} was {what}"
            f"{' by another file' if what == 'replaced' else ''} during the run, so membound "
            "stopped before committing BatchWriter flush 3 (100 items) (it would have gone into "
            "a file nobody can open); 200 items were committed by 2 earlier flushes, into the "
            "original file"
        )
        assert 200 == writer.committed
    finally:
        engine.dispose()


@pytest.mark.parametrize("wal", [False, True], ids=["journal", "wal"])
def test_reader_checkpoint_stops_when_the_sqlite_file_is_replaced(
    tmp_path: Path, wal: bool
) -> None:
    path = tmp_path / "run.db"
    engine, table = sqlite_users(path, 500, wal=wal)
    cp = Checkpoint(engine, "file-gone")
    seen = []

    def read() -> None:
        for row in find_each(engine, table, batch_size=100, checkpoint=cp):
            seen.append(row.id)
            if row.id == 150:
                replace_file(path)

    try:
        with pytest.raises(DatabaseUnavailable, match=ONE_LINE) as info:
            read()
        assert list(range(1, 201)) == seen
        assert "was replaced by another file" in str(info.value)
        assert "before saving checkpoint 'file-gone' at 200" in str(info.value)
    finally:
        engine.dispose()


# ----------------------------------------------------------------------------- a full disk


def full_sqlite(path: Path) -> sa.Engine:
    """An engine on ``path`` that may not grow it by a single page: SQLITE_FULL, as on a full
    disk."""
    pages = sqlite3.connect(path).execute("PRAGMA page_count").fetchone()[0]
    full = sa.create_engine(f"sqlite:///{path}")
    sa.event.listen(
        full, "connect", lambda dbapi, _: dbapi.execute(f"PRAGMA max_page_count={pages}")
    )
    return full


def test_a_full_database_while_creating_the_checkpoint_table_is_one_line(tmp_path: Path) -> None:
    engine, table = sqlite_users(tmp_path / "full.db", 100)
    engine.dispose()
    full = full_sqlite(tmp_path / "full.db")
    expected = rf"^cannot create membound's table membound_checkpoints in {tmp_path}/full.db: "
    try:
        with pytest.raises(DatabaseUnavailable, match=expected + "database or disk is full$"):
            _ = Checkpoint(full, "job").position
        with pytest.raises(DatabaseUnavailable, match=expected):
            BatchWriter(full, checkpoint=Checkpoint(full, "job"))
        with pytest.raises(DatabaseUnavailable, match=expected):
            find_each(full, table, checkpoint=Checkpoint(full, "job"))
    finally:
        full.dispose()


def test_a_full_database_while_saving_a_checkpoint_is_one_line(tmp_path: Path) -> None:
    Checkpoint(sa.create_engine(f"sqlite:///{tmp_path / 'full.db'}"), "first").save(0)
    full = full_sqlite(tmp_path / "full.db")
    saved = 0

    def save_until_full() -> None:
        nonlocal saved
        for saved in range(1, 100):  # the table's one page fills up
            Checkpoint(full, f"{'job' * 50} {saved}").save(saved)

    with pytest.raises(DatabaseUnavailable, match=ONE_LINE) as info:
        save_until_full()
    full.dispose()
    assert saved > 1
    assert str(info.value).startswith(f"cannot save checkpoint '{'job' * 50} {saved}' at {saved}")
    assert str(info.value).endswith(f"in {tmp_path}/full.db: database or disk is full")
