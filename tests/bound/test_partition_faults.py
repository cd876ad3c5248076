"""``run_partitioned`` when the world around it breaks: Ctrl-C on a process-pool or Dask
coordinator ends it within seconds with what committed and no range started after it; a Dask
cluster that lost every worker ends it after ``worker_wait`` instead of a silent wait; a re-run
with the same name finishes every row exactly once."""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import membound as mb
from membound.bound.sql.partition.leases import leases_table
from tests.bound import partition_jobs as jobs
from tests.bound.helpers import Db, sa

ROOT = Path(__file__).resolve().parents[2]
ROWS = 4000


def _counters(db: Db, table: sa.Table) -> dict[int, int]:
    with db.engine.connect() as conn:
        return dict(conn.execute(sa.select(table.c.id, table.c.counter)).all())  # type: ignore[arg-type]


def _ranges(db: Db, job: str) -> list[tuple[int | None, int | None]]:
    t = leases_table()
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.c.start, t.c.stop).where(t.c.job == job, t.c.part >= 0)
        ).all()
    return [(_key(a), _key(b)) for a, b in rows]


def _key(text: str | None) -> int | None:
    """A stored range bound (JSON: ``[501]``) as the int key."""
    if text is None:
        return None
    value = json.loads(text)
    return int(value[0] if isinstance(value, list) else value)


def _range_of(key: int, ranges: list[tuple[int | None, int | None]]) -> int:
    for i, (start, stop) in enumerate(sorted(ranges, key=lambda r: -1 if r[0] is None else r[0])):
        if (start is None or key >= start) and (stop is None or key < stop):
            return i
    raise AssertionError(f"key {key} is in no range")


def _read_line(proc: subprocess.Popen[str], word: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith(word):
            return line
    raise AssertionError(f"no {word!r} line from the coordinator (exit {proc.poll()})")


@pytest.fixture
def coordinator_proc() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.parametrize("db", ["sqlite-wal", "postgres"], indirect=True)
@pytest.mark.parametrize(
    ("runner", "to"), [("process", "coordinator"), ("process", "group"), ("dask", "coordinator")]
)
def test_ctrl_c_stops_the_coordinator_within_seconds_and_no_range_starts_after_it(
    db: Db, runner: str, to: str, tmp_path: Path, coordinator_proc: list[subprocess.Popen[str]]
) -> None:
    table = db.users(ROWS)
    job, log = f"int-{table.name}", tmp_path / "batches.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.bound.interrupt_coordinator", db.url, table.name, job, runner,
         str(log)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    coordinator_proc.append(proc)
    _read_line(proc, "ready", 120)
    deadline = time.monotonic() + 120
    while (not log.exists() or len(log.read_text().splitlines()) < 6) and proc.poll() is None:
        assert time.monotonic() < deadline, "no batch ran"
        time.sleep(0.05)
    hit = time.monotonic()
    if to == "group":  # a terminal's Ctrl-C: the pool's processes get it too
        os.killpg(proc.pid, signal.SIGINT)
    else:
        os.kill(proc.pid, signal.SIGINT)
    line = _read_line(proc, "interrupted", 60)
    _, said, rows, words = line.split(" ", 3)
    assert float(said) - hit <= 5.0, f"{float(said) - hit:.1f} s to stop"
    assert "ranges finished" in words, words
    assert "rows committed" in words, words
    closed = _read_line(proc, "closed", 60)
    assert proc.wait(30) == 130
    if runner == "process":  # the pool's processes stopped too: nothing left running
        assert float(closed.split()[1]) - hit <= 5.0
    # No range's work began after the interrupt (a batch already begun may end; 0.3 s slack
    # for one that a worker began as the signal was sent).
    ranges = _ranges(db, job)
    began: dict[int, float] = {}
    for entry in log.read_text().splitlines():
        key, when = entry.split()
        began.setdefault(_range_of(int(key), ranges), float(when))
    late = {r: round(t - hit, 2) for r, t in began.items() if t > hit + 0.3}
    assert not late, f"ranges begun after Ctrl-C (s after it): {late}"
    committed = sum(_counters(db, table).values())
    assert committed == int(rows)  # the report says exactly what committed
    assert committed < ROWS
    # The same name resumes after what committed: every row exactly once, at once: ranges
    # the stopped coordinator's processes held are known abandoned (their processes are gone), not
    # waited out for their 60 s leases.
    began = time.monotonic()
    mb.run_partitioned(
        db.engine, table, functools.partial(jobs.bump, table.name), name=job, parts=8,
        batch_size=200,
    )  # fmt: skip
    assert time.monotonic() - began < 30
    assert dict.fromkeys(range(1, ROWS + 1), 1) == _counters(db, table)


@pytest.mark.parametrize("db", ["sqlite-wal"], indirect=True)
def test_a_dask_cluster_without_workers_ends_the_run_after_worker_wait(db: Db) -> None:
    distributed = pytest.importorskip("distributed")
    table = db.users(ROWS)
    job = f"lost-{table.name}"
    cluster = distributed.LocalCluster(n_workers=0, processes=True, dashboard_address=":0")
    client: Any = distributed.Client(cluster)
    worker = subprocess.Popen(  # no nanny: a killed worker stays dead
        [str(Path(sys.executable).parent / "dask"), "worker", cluster.scheduler_address,
         "--no-nanny", "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        client.wait_for_workers(1, timeout=60)
        (pid,) = client.run(os.getpid).values()
        assert pid == worker.pid

        def kill_soon(batch: mb.Batch, writer: Any) -> None:
            jobs.bump(table.name, batch, writer)
            if batch.first_key > 1000:
                os.kill(os.getpid(), signal.SIGKILL)  # the only worker dies mid-range

        began = time.monotonic()
        with pytest.raises(mb.PartitionFailed) as info:
            mb.run_partitioned(
                db.url, table, kill_soon, name=job, parts=4, client=client, batch_size=100,
                worker_wait=3,
            )  # fmt: skip
        took = time.monotonic() - began
        assert took <= 3 + 10, f"{took:.1f} s"
        message = str(info.value)
        assert "the Dask cluster has had no workers for 3 s" in message
        report = info.value.report
        assert report is not None
        assert report.rows == sum(_counters(db, table).values())
        assert f"{report.rows:,} rows committed" in message
        assert report.rows < ROWS
        assert worker.wait(10) == -signal.SIGKILL  # it was the worker that died, not the run
    finally:
        worker.kill()
        worker.wait()
        client.close()
        cluster.close()
    # A re-run (here in process) resumes: every row exactly once.
    mb.run_partitioned(
        db.engine, table, functools.partial(jobs.bump, table.name), name=job, parts=4,
        batch_size=100,
    )  # fmt: skip
    assert dict.fromkeys(range(1, ROWS + 1), 1) == _counters(db, table)


def _cut_connections(cluster: Any, stop: threading.Event, cuts: list[str]) -> None:
    """Restart the cluster, terminate its backends, crash it (``-m immediate``: crash
    recovery at the next start), terminate them, in turn, until ``stop``."""
    while not stop.wait(0.7):
        if len(cuts) % 2 == 0:
            how = "crash" if len(cuts) % 4 == 2 else "restart"
            started = cluster.cut(how)
            if started is not None:
                started.join()
            cuts.append(how)
        elif cluster.terminate_backends():
            cuts.append("terminate")


@pytest.mark.parametrize("runner", ["in-process", "process"])
def test_postgres_restarted_and_backends_killed_mid_run_every_row_once(
    pg_cluster: Any, runner: str
) -> None:
    import concurrent.futures as cf

    engine = sa.create_engine(pg_cluster.url)
    db = Db("postgres", pg_cluster.url, engine, sa.MetaData())
    table = db.users(ROWS)
    stop, cuts = threading.Event(), []
    cutter = threading.Thread(target=_cut_connections, args=(pg_cluster, stop, cuts))
    pool = cf.ProcessPoolExecutor(2) if runner == "process" else None
    fn = functools.partial(jobs.slow_bump, table.name, 0.05, 10**9)
    try:
        cutter.start()
        report = mb.run_partitioned(
            pg_cluster.url if pool else engine, table, fn, name=f"pg-{table.name}", parts=4,
            client=pool, batch_size=50, write_batch_size=25, db_wait=20, retries=0,
        )  # fmt: skip
    finally:
        stop.set()
        cutter.join()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    assert len(cuts) >= 3, cuts  # the run went on through several outages
    assert ROWS == report.rows
    engine.dispose()  # its pooled connections were cut with the last fault
    assert dict.fromkeys(range(1, ROWS + 1), 1) == _counters(db, table)


def test_connections_cut_as_the_job_finishes_still_give_the_report(
    pg_cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every connection cut right after the job was marked finished (the last fault of a
    restart lands there): the report is read again on a new connection, not lost with a
    traceback after every row was written."""
    from membound.bound.sql.partition.leases import JobTable

    engine = sa.create_engine(pg_cluster.url)
    db = Db("postgres", pg_cluster.url, engine, sa.MetaData())
    table = db.users(ROWS)
    finish, cut = JobTable.finish, []

    def finish_then_cut(self: JobTable) -> None:
        finish(self)
        cut.append(pg_cluster.terminate_backends())

    monkeypatch.setattr(JobTable, "finish", finish_then_cut)
    report = mb.run_partitioned(
        engine, table, functools.partial(jobs.bump, table.name), name=f"pg-{table.name}",
        parts=2, batch_size=100, db_wait=20,
    )  # fmt: skip
    assert len(cut) == 1, cut
    assert cut[0] >= 1, cut  # the run's pooled connections were ended
    assert ROWS == report.rows
    assert all(r.done for r in report.ranges)
    engine.dispose()
    assert dict.fromkeys(range(1, ROWS + 1), 1) == _counters(db, table)


def test_postgres_down_longer_than_db_wait_ends_the_run_saying_what_committed(
    pg_cluster: Any,
) -> None:
    engine = sa.create_engine(pg_cluster.url)
    db = Db("postgres", pg_cluster.url, engine, sa.MetaData())
    table = db.users(ROWS)
    stopped: list[float] = []

    def stop_midway(batch: mb.Batch, writer: Any) -> None:
        jobs.bump(table.name, batch, writer)
        if batch.first_key > ROWS // 2 and not stopped:
            stopped.append(time.monotonic())
            pg_cluster.stop()

    try:
        with pytest.raises(mb.PartitionFailed) as info:
            mb.run_partitioned(
                engine, table, stop_midway, name=f"pgdown-{table.name}", parts=2,
                batch_size=100, db_wait=3,
            )  # fmt: skip
        took = time.monotonic() - stopped[0]
        assert took <= 3 + 10, f"{took:.1f} s"
        message = str(info.value)
        assert "\n" not in message
        assert "the database stopped answering for 3 s" in message, message
    finally:
        pg_cluster.start()
    committed = sum(_counters(db, table).values())
    assert 0 < committed < ROWS
    # What the message says committed is never more than did (a running range's progress
    # figure counts rows handed to fn, not only flushed ones).
    said = re.search(r"\(([\d,]+) rows committed in them\)", message)
    assert said is not None, message
    assert int(said.group(1).replace(",", "")) <= committed
    # The failed call could not give its ranges back (the database was down); its coordinator has
    # returned, so the re-run in this process takes them over at once, not after 60 s.
    began = time.monotonic()
    mb.run_partitioned(
        engine, table, functools.partial(jobs.bump, table.name), name=f"pgdown-{table.name}",
        parts=2, batch_size=100,
    )  # fmt: skip
    assert time.monotonic() - began < 30
    assert dict.fromkeys(range(1, ROWS + 1), 1) == _counters(db, table)
    engine.dispose()
