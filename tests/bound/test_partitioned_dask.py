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
Status = pytest.importorskip("distributed.core").Status
dask = pytest.importorskip("dask")

ROOT = Path(__file__).resolve().parents[2]
KEYS = [*range(1, 2001), *range(10_000, 40_000, 17), *range(10**8, 10**8 + 300)]
#: Workers SIGKILLed mid-range in the test of kills.
KILLS = 4


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
    name, url = table.name, db.url

    def slow_low_keys(batch: mb.Batch, writer: mb.BatchWriter) -> None:  # a closure: cloudpickle
        jobs.slow_until_split(url, name, f"d-{name}", 1501, batch, writer)

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
    from membound.bound.sql.partition.runners import runner_for

    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        assert not runner_for(c).own_processes  # a reset would erase the other task's peak


def _registered_pids(dask_scheduler: Any) -> dict[str, int]:
    """Run on the scheduler: address -> pid of each worker it has running."""
    return {
        address: ws.pid
        for address, ws in dask_scheduler.workers.items()
        if ws.status == Status.running
    }


@pytest.mark.slow
@pytest.mark.parametrize("db", ["sqlite-wal", "postgres"], indirect=True)
def test_workers_killed_mid_range_write_each_row_once(db: Db, tmp_path: Path) -> None:
    """SIGKILL a worker process mid-range 4 times; the nanny restarts it, Dask re-runs the
    range on the other worker, and the range resumes after its committed checkpoint.

    A worker is killed only while the other one answers (both up, neither killed before), so
    the cluster always has a worker: how long a restart takes on a loaded machine is not what
    is tested. The job pauses after each batch until the last kill, so it cannot end first. Each
    kill waits for a worker restart (seconds, tens on a loaded machine): 4 kills, each after
    rows were committed since the one before, already catch a range that starts over instead of
    resuming (the first kill does)."""
    table = db.users(12_000)
    flag = tmp_path / "keep-slow"
    flag.write_text("until the last kill")
    cluster = _cluster(**{"distributed.scheduler.allowed-failures": 100})
    client = distributed.Client(cluster)
    kills = 0
    killed: set[int] = set()
    done = threading.Event()

    def committed() -> int:
        with db.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.sum(table.c.counter))).scalar() or 0)

    def killer() -> None:
        nonlocal kills
        rng = random.Random(3)
        last = committed()
        wanted, ready_at = 2, time.monotonic()
        while kills < KILLS and not done.is_set():
            time.sleep(rng.uniform(0.3, 0.6))
            # Only once rows were committed since the last kill: a worker killed while it still
            # starts (slow on a loaded machine) had no range yet, and nothing would be retried.
            now = committed()
            if now == last:
                continue
            # Two workers, and each running nanny's process the very process the scheduler has
            # registered at that address (by pid: a restarting nanny already has its new pid
            # while the scheduler may still list the killed process at the old address; asking
            # the workers themselves would wait for a dead one's connection to time out).
            registered = client.run_on_scheduler(_registered_pids)
            alive = {
                n.worker_address: n.pid
                for n in cluster.workers.values()
                if n.status == Status.running and n.pid is not None
            }
            if len(registered) < 2 or alive != registered or killed & set(alive.values()):
                # A restart is under way: killing now could leave no worker at all. A nanny
                # that gave up restarting its worker (seen on loaded machines) is replaced, as
                # an autoscaler would.
                if time.monotonic() - ready_at > 45:
                    wanted += 1
                    cluster.scale(wanted)
                    ready_at = time.monotonic()
                continue
            ready_at = time.monotonic()
            working = [addr for addr, keys in client.processing().items() if keys]
            busy = [pid for addr, pid in alive.items() if addr in working]
            if busy and not done.is_set():
                pid = rng.choice(busy)
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
                kills += 1
                last = now
        flag.unlink(missing_ok=True)

    thread = threading.Thread(target=killer)
    try:
        thread.start()
        report = mb.run_partitioned(
            db.url, table,
            functools.partial(jobs.bump_while_flagged, table.name, str(flag), 3.0),
            name=f"d-{table.name}", parts=8, client=client, batch_size=40,
            write_batch_size=25, split_stragglers=False,
        )  # fmt: skip
    finally:
        done.set()
        thread.join()
        client.close()
        cluster.close()
    assert kills >= KILLS
    assert dict.fromkeys(range(1, 12_001), 1) == _counters(db, table)
    assert 12_000 == report.rows
    assert report.retries >= 1


@pytest.mark.slow
@pytest.mark.parametrize("db", ["postgres"], indirect=True)
def test_dask_scheduler_and_workers_started_as_commands(db: Db, tmp_path: Path) -> None:
    table = db.users(0)
    fill(db.engine, table, KEYS)
    scheduler_file = tmp_path / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
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
