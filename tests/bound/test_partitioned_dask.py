"""``run_partitioned`` on a real ``dask.distributed`` cluster: worker processes in a
``LocalCluster``, workers SIGKILLed mid-range, and ``dask scheduler`` / ``dask worker`` started
as commands on 127.0.0.1. Every row's write happens exactly once."""

from __future__ import annotations

import functools
import os
import random
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
from tests.bound import partition_jobs as jobs
from tests.bound.helpers import Db, fill, sa

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")

ROOT = Path(__file__).resolve().parents[2]
KEYS = [*range(1, 2001), *range(10_000, 40_000, 17), *range(10**8, 10**8 + 300)]


def _counters(db: Db, table: sa.Table) -> dict[int, int]:
    with db.engine.connect() as conn:
        return dict(conn.execute(sa.select(table.c.id, table.c.counter)).all())  # type: ignore[arg-type]


def _cluster(**config: Any) -> Any:
    with dask.config.set(config):
        return distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        )


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    cluster = _cluster()
    c = distributed.Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


def test_every_row_once_on_worker_processes(db: Db, client: Any) -> None:
    table = db.users(0)
    fill(db.engine, table, KEYS)
    report = mb.run_partitioned(
        db.url, table, functools.partial(jobs.bump, table.name), name=f"d-{table.name}",
        parts=6, client=client, batch_size=200,
    )  # fmt: skip
    assert dict.fromkeys(KEYS, 1) == _counters(db, table)
    assert "dask" == report.runner
    assert len(KEYS) == report.rows
    assert 6 == len(report.ranges)
    # Tasks ran in the workers' own processes: their peak is the kernel's, reset per range.
    assert all(r.peak_rss_delta is not None and r.peak_rss_delta >= 0 for r in report.ranges)


def test_a_closure_and_a_straggler_split_on_dask(db: Db, client: Any) -> None:
    table = db.users(3000)
    name = table.name

    def slow_low_keys(batch: mb.Batch, writer: mb.BatchWriter) -> None:  # a closure: cloudpickle
        jobs.slow_bump(name, 0.04, 1501, batch, writer)

    report = mb.run_partitioned(
        db.url, table, slow_low_keys, name=f"d-{name}", parts=2, client=client, batch_size=50,
        poll_interval=0.05,
    )  # fmt: skip
    assert dict.fromkeys(range(1, 3001), 1) == _counters(db, table)
    assert report.splits >= 1
    assert len(report.ranges) > 2


def test_a_failed_range_on_dask_lets_running_ranges_finish(db: Db, client: Any) -> None:
    table = db.users(2000)
    fn = functools.partial(jobs.fail_below, table.name, 500)
    with pytest.raises(
        mb.PartitionFailed, match=r"range 0 of job .* failed after 1 retries"
    ) as info:
        mb.run_partitioned(
            db.url, table, fn, name=f"d-{table.name}", parts=4, client=client, retries=1,
            batch_size=100,
        )  # fmt: skip
    report = info.value.report
    counters = _counters(db, table)
    assert set(counters.values()) <= {0, 1}
    assert sum(counters.values()) == sum(r.rows for r in report.ranges)
    assert not report.ranges[0].done


def test_peaks_are_sampled_when_workers_run_several_tasks() -> None:
    from membound.bound.sql.runners import runner_for

    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        assert not runner_for(c).own_processes  # a reset would erase the other task's peak


@pytest.mark.slow
@pytest.mark.parametrize("db", ["sqlite-wal", "postgres"], indirect=True)
def test_workers_killed_mid_range_write_each_row_once(db: Db) -> None:
    """SIGKILL a worker process mid-range 10 times; the nanny restarts it, Dask re-runs the
    range elsewhere, and the range resumes after its committed checkpoint."""
    table = db.users(12_000)
    cluster = _cluster(**{"distributed.scheduler.allowed-failures": 100})
    client = distributed.Client(cluster)
    kills = 0
    done = threading.Event()

    def committed() -> int:
        with db.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.sum(table.c.counter))).scalar() or 0)

    def killer() -> None:
        nonlocal kills
        rng = random.Random(3)
        last = committed()
        while kills < 10 and not done.is_set():
            time.sleep(rng.uniform(0.3, 0.6))
            # Only once rows were committed since the last kill: a worker killed while it still
            # starts (slow on a loaded machine) had no range yet, and nothing would be retried.
            now = committed()
            if now == last:
                continue
            working = [addr for addr, keys in client.processing().items() if keys]
            pids = client.run(os.getpid, workers=working, on_error="ignore") if working else {}
            busy = list(pids.values())
            if busy and not done.is_set():
                os.kill(rng.choice(busy), signal.SIGKILL)
                kills += 1
                last = now

    thread = threading.Thread(target=killer)
    try:
        thread.start()
        report = mb.run_partitioned(
            db.url, table, functools.partial(jobs.slow_bump, table.name, 0.05, 10**9),
            name=f"d-{table.name}", parts=8, client=client, batch_size=40,
            write_batch_size=25, split_stragglers=False,
        )  # fmt: skip
    finally:
        done.set()
        thread.join()
        client.close()
        cluster.close()
    assert kills >= 10
    assert dict.fromkeys(range(1, 12_001), 1) == _counters(db, table)
    assert 12_000 == report.rows
    assert report.retries >= 1


@pytest.mark.slow
@pytest.mark.parametrize("db", ["postgres"], indirect=True)
def test_dask_scheduler_and_workers_started_as_commands(db: Db, tmp_path: Path) -> None:
    table = db.users(0)
    fill(db.engine, table, KEYS)
    scheduler_file = tmp_path / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    dask_cmd = [str(Path(sys.executable).parent / "dask")]
    procs = [
        subprocess.Popen(
            [*dask_cmd, "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--scheduler-file", str(scheduler_file)],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    ]  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        for _ in range(2):
            procs.append(
                subprocess.Popen(
                    [*dask_cmd, "worker", "--scheduler-file", str(scheduler_file),
                     "--host", "127.0.0.1", "--nthreads", "1", "--no-dashboard"],
                    env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )
            )  # fmt: skip
        with distributed.Client(scheduler_file=str(scheduler_file), timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
            report = mb.run_partitioned(
                db.url, table, functools.partial(jobs.bump, table.name),
                name=f"d-{table.name}", parts=4, client=client,
            )  # fmt: skip
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    assert dict.fromkeys(KEYS, 1) == _counters(db, table)
    assert len(KEYS) == report.rows
