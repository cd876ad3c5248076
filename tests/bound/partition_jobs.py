"""Range functions for the partitioned-run tests, importable by worker processes (process pools,
Dask workers, plain claimers started with ``python -m tests.bound.partition_jobs``).

Each ``fn(batch, writer)`` adds 1 to the ``counter`` of every row of the batch through the
range's writer, so a row written twice or never shows in the table afterwards.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import membound as mb


@functools.cache
def _bump(table: str) -> Any:
    t = sa.table(table, sa.column("id"), sa.column("counter"))
    return t.update().where(t.c.id == sa.bindparam("k")).values(counter=t.c.counter + 1)


@functools.cache
def shared_engine(url: str) -> sa.Engine:
    """One engine per URL for the whole process, as applications keep one: a process pool
    forked after the coordinator used it inherits its pooled connections."""
    return sa.create_engine(url)


def fail_below(table: str, below: int, batch: mb.Batch, writer: Any) -> None:
    """``bump``, then raise for every batch with a key below ``below``."""
    bump(table, batch, writer)
    if batch.first_key < below:
        raise RuntimeError(f"cannot do keys below {below}")


def bump(table: str, batch: mb.Batch, writer: mb.BatchWriter) -> None:
    """+1 on every row of the batch (the key column is ``id``)."""
    stmt = _bump(table)
    for row in batch.rows:
        writer.add(stmt, {"k": row.id})


def slow_bump(table: str, pause: float, slow_below: int, batch: mb.Batch, writer: Any) -> None:
    """``bump``, pausing ``pause`` s per batch whose keys are below ``slow_below`` (a straggler)."""
    bump(table, batch, writer)
    if batch.first_key < slow_below:
        time.sleep(pause)


def slow_until_split(
    url: str, table: str, job: str, slow_below: int, batch: mb.Batch, writer: Any
) -> None:
    """``bump``; a batch with keys below ``slow_below`` then waits up to 0.5 s, ending as soon
    as the job has a range split off another (a straggler that stays one until it is split,
    however late the other worker starts on a loaded machine; never split, it ends after 0.5 s
    per batch, so a test of splitting fails instead of hanging)."""
    bump(table, batch, writer)
    if batch.first_key >= slow_below:
        return
    leases = sa.table("membound_leases", sa.column("job"), sa.column("basis"))
    query = sa.select(sa.func.count()).where(leases.c.job == job, leases.c.basis == "split")
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        with shared_engine(url).connect() as conn:
            if conn.execute(query).scalar_one():
                return
        time.sleep(0.02)


def bump_while_flagged(table: str, flag: str, pause: float, batch: mb.Batch, writer: Any) -> None:
    """``bump``, then up to ``pause`` s of waiting while the file ``flag`` exists: a test holds
    the run long enough for what it does meanwhile, and the run speeds up once it is removed."""
    bump(table, batch, writer)
    deadline = time.monotonic() + pause
    while os.path.exists(flag) and time.monotonic() < deadline:
        time.sleep(0.02)


def failing_bump(table: str, marker: str, fail_at: int, batch: mb.Batch, writer: Any) -> None:
    """``bump``, but the first time (per ``marker`` file) a batch holds key ``fail_at`` it
    raises after the writes of the batch were handed to the writer (nothing of it commits)."""
    bump(table, batch, writer)
    if batch.first_key <= fail_at <= batch.last_key and not os.path.exists(marker):
        Path(marker).write_text("failed once")
        raise RuntimeError(f"planned failure at key {fail_at}")


def die_once(table: str, marker: str, at: int, batch: mb.Batch, writer: Any) -> None:
    """``bump``; the first worker process (per ``marker`` file) to reach key ``at`` dies there
    (SIGKILL to itself), as an out-of-memory kill would."""
    bump(table, batch, writer)
    if batch.first_key <= at <= batch.last_key and not os.path.exists(marker):
        Path(marker).write_text("died")
        os.kill(os.getpid(), signal.SIGKILL)


def always_failing(batch: mb.Batch, writer: Any) -> None:
    """Raises on every batch."""
    raise ValueError("this range cannot be done")


def count_rows(counts: Any, batch: mb.Batch, writer: Any) -> None:
    """Read-only: counts the keys it is handed (a thread pool's shared dict)."""
    for row in batch.rows:
        counts[row.id] = counts.get(row.id, 0) + 1


def claim_loop(url: str, table: str, job: str, parts: int, lease: str, pause: float) -> None:
    """One plain worker process: claim ranges and bump their rows until the job is done."""
    engine = sa.create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else {})
    source = sa.Table(table, sa.MetaData(), autoload_with=engine)
    stmt = _bump(table)
    print("ready", flush=True)
    for r in mb.claim_ranges(engine, job, source, parts=parts, lease=lease):
        print(f"claimed {r.part}", flush=True)
        with mb.BatchWriter(engine, batch_size=5, checkpoint=r.checkpoint) as writer:
            for row in mb.find_each(
                engine, source, batch_size=10, start=r.start, stop=r.stop, checkpoint=r.checkpoint
            ):
                writer.add(stmt, {"k": row.id})
                time.sleep(pause)
        print(f"done {r.part}", flush=True)
    print("finished", flush=True)


if __name__ == "__main__":
    claim_loop(
        sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], float(sys.argv[6])
    )
