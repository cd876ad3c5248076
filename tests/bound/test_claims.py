"""``claim_ranges`` and the lease table: plain processes share one job, a dead one's range is
taken over after its lease runs out, and a worker that lost its lease cannot commit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import membound as mb
from membound import BatchSourceError
from membound.bound.sql.partition.leases import JobTable
from tests.bound.helpers import Db, fill, sa

ROOT = Path(__file__).resolve().parents[2]


def _counters(db: Db, table: sa.Table) -> dict[int, int]:
    with db.engine.connect() as conn:
        return dict(conn.execute(sa.select(table.c.id, table.c.counter)).all())  # type: ignore[arg-type]


def _bump(table: sa.Table) -> sa.Update:
    return table.update().where(table.c.id == sa.bindparam("k")).values(counter=table.c.counter + 1)


def test_one_process_claims_every_range_once(db: Db) -> None:
    table = db.users(0)
    keys = [*range(1, 700), *range(5000, 9000, 13)]
    fill(db.engine, table, keys)
    seen: list[int] = []
    parts = []
    for r in mb.claim_ranges(db.engine, f"c-{table.name}", table, parts=4, lease="5 s"):
        parts.append(r.part)
        assert r.checkpoint is not None
        assert not r.lost
        with mb.BatchWriter(db.engine, checkpoint=r.checkpoint) as w:
            for row in mb.find_each(
                db.engine, table, start=r.start, stop=r.stop, checkpoint=r.checkpoint
            ):
                seen.append(row.id)
                w.add(_bump(table), {"k": row.id})
    assert [0, 1, 2, 3] == parts
    assert keys == seen
    assert dict.fromkeys(keys, 1) == _counters(db, table)
    # The job is finished: a later process finds nothing to do, and is told so.
    with pytest.warns(UserWarning, match="finished before: there is nothing to claim"):
        assert [] == list(mb.claim_ranges(db.engine, f"c-{table.name}", table, parts=4))


def test_leaving_the_loop_gives_the_range_back(db: Db) -> None:
    table = db.users(400)
    name = f"c-{table.name}"
    first = mb.claim_ranges(db.engine, name, table, parts=2, lease="60 s", owner="a")
    r = next(first)
    first.close()  # break out of the loop: the range is free at once, not after 60 s
    again = list(mb.claim_ranges(db.engine, name, table, parts=2, owner="b"))
    assert r.part == again[0].part
    assert 2 == len(again)


def test_a_live_lease_is_not_taken_and_a_lost_one_cannot_commit(db: Db) -> None:
    table = db.users(100)
    name = f"c-{table.name}"
    owner_a = mb.claim_ranges(db.engine, name, table, parts=1, lease="1 s", owner="a", wait=False)
    r = next(owner_a)
    # While a's lease is live, b finds nothing free (and does not wait).
    assert [] == list(mb.claim_ranges(db.engine, name, table, parts=1, owner="b", wait=False))
    # a stalls past its lease without a heartbeat (it is stopped); b takes the range over.
    assert r.checkpoint is not None
    taken = JobTable(db.engine, name).claim(0, "b", 60.0, force=True)
    assert taken is not None
    writer = mb.BatchWriter(db.engine, checkpoint=r.checkpoint)
    writer.add(_bump(table), {"k": 1}, key=1)
    with pytest.raises(mb.BatchWriteError, match="taken over by another worker"):
        writer.flush()
    # A write no reader tagged (no position to save) is fenced all the same.
    writer.add(_bump(table), {"k": 2})
    with pytest.raises(mb.BatchWriteError, match="taken over by another worker"):
        writer.flush()
    assert 0 == _counters(db, table)[1]  # a's writes rolled back with its fence
    assert 0 == _counters(db, table)[2]
    owner_a.close()


def test_a_job_of_the_same_name_with_other_ranges_is_refused(db: Db) -> None:
    table = db.users(100)
    gen = mb.claim_ranges(db.engine, f"c-{table.name}", table, parts=2)
    next(gen)
    with pytest.raises(BatchSourceError, match="under way with another source or split"):
        mb.claim_ranges(db.engine, f"c-{table.name}", table, parts=3)
    gen.close()
    with pytest.raises(mb.SizeError, match="lease is not a usable duration"):
        mb.claim_ranges(db.engine, "x", table, lease="-1 s")
    with pytest.raises(BatchSourceError, match="parts must be a whole number"):
        mb.claim_ranges(db.engine, "y", table, parts=0)


def _claimer(db: Db, table: str, job: str, pause: float) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.bound.partition_jobs", db.url, table, job, "6", "2 s",
         str(pause)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )  # fmt: skip


@pytest.mark.slow
def test_three_processes_one_killed_every_row_once(db: Db) -> None:
    table = db.users(1200)
    job = f"c-{table.name}"
    procs = [_claimer(db, table.name, job, 0.004) for _ in range(3)]
    try:
        victim = procs[0]
        assert victim.stdout is not None
        # Kill it in the middle of its first range.
        line = victim.stdout.readline()
        while line and not line.startswith("claimed"):
            line = victim.stdout.readline()
        assert line.startswith("claimed"), victim.stderr.read() if victim.stderr else ""
        time.sleep(0.3)
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        for p in procs[1:]:
            out, err = p.communicate(timeout=120)
            assert 0 == p.returncode, err
            assert "finished" in out
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert dict.fromkeys(range(1, 1201), 1) == _counters(db, table)
    rows = JobTable(db.engine, job).ranges()
    assert all(r.done for r in rows)
    assert max(r.attempts for r in rows) >= 2  # the killed one's range was taken over


@pytest.mark.parametrize("db", ["postgres"], indirect=True)
def test_a_role_that_may_not_create_tables_gets_one_line(db: Db) -> None:
    schema, role = f"lim_{id(db)}", f"lim_role_{id(db)}"
    with db.engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
        conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        conn.exec_driver_sql(f"CREATE TABLE {schema}.t (id INTEGER PRIMARY KEY)")
        conn.exec_driver_sql(f"INSERT INTO {schema}.t SELECT generate_series(1, 10)")
        conn.exec_driver_sql(f"GRANT SELECT ON {schema}.t TO {role}")
        conn.exec_driver_sql(f"ALTER ROLE {role} SET search_path = {schema}")
    limited = sa.create_engine(db.url.replace("postgres@", f"{role}@"))
    try:
        table = sa.Table("t", sa.MetaData(), autoload_with=limited)
        with pytest.raises(BatchSourceError) as info:
            mb.claim_ranges(limited, "limited", table, parts=2)
        message = str(info.value)
        assert message.startswith("cannot create membound's table membound_leases here: ")
        assert "permission denied for schema" in message
        assert "GRANT SELECT, INSERT, UPDATE, DELETE ON membound_leases" in message
        assert "\n" not in message
    finally:
        limited.dispose()
        with db.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
            conn.exec_driver_sql(f"DROP ROLE {role}")
