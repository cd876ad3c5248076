"""Per-row writes on PostgreSQL (issue 26): ``find_each`` + ``BatchWriter`` with a checkpoint
against a hand-written psycopg 3 loop doing the same work.

The hand loop is what a careful engineer writes without membound: a keyset ``SELECT id … WHERE
id > %s ORDER BY id LIMIT n``, one ``executemany`` of the updates, one commit per batch — no
checkpoint, no retry, no exactly-once on resume. membound's side reads the same pages, is given
the same updates one parameter set per row, and commits its checkpoint with every batch; its
writer sends each batch of a keyed UPDATE as one statement over arrays
(``bound/sql/unnest_batch.py``), which is how it can beat the hand loop. Each round
resets the table, then times both, interleaved; medians of ``--rounds``. Target: membound ≥ 0.9×
the hand loop's speed.

The same updates by ``run_partitioned`` on a local Dask cluster of one and of two worker
processes (8 key ranges, cluster start-up not timed: the job's own wall time): one worker ≥ 0.9×
the hand loop, two ≥ 1.3× one (the database shares the machine's two cores).

A throwaway cluster on 127.0.0.1 (``bench_partition.postgres``), fsync off for all.

Writes ``benchmarks/results/writes.json``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import psycopg
import sqlalchemy as sa
from _common import write
from bench_partition import local_dask, postgres

import membound as mb

BATCH = 1000
TARGET = 0.9
TABLE = sa.Table(
    "items",
    sa.MetaData(),
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("status", sa.Text, nullable=False),
)
STATEMENT = sa.update(TABLE).where(TABLE.c.id == sa.bindparam("uid")).values(status="DONE")


def _load(dsn: str, rows: int) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("DROP TABLE IF EXISTS items")
        conn.execute("CREATE TABLE items (id bigint PRIMARY KEY, status text NOT NULL)")
        with conn.cursor().copy("COPY items (id, status) FROM STDIN") as copy:
            for i in range(1, rows + 1):
                copy.write_row((i, "SYNCED"))
        conn.execute("ANALYZE items")


def _reset(dsn: str) -> None:
    """Every row back to SYNCED, then VACUUM (outside a transaction) so both sides start alike."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE items SET status = 'SYNCED'")
        conn.execute("VACUUM items")


def hand_loop(dsn: str) -> int:
    """Keyset pages, executemany, a commit per batch: psycopg 3 alone."""
    done, last = 0, 0
    with psycopg.connect(dsn) as conn:
        while True:
            with conn.transaction():
                ids = [
                    r[0]
                    for r in conn.execute(
                        "SELECT id FROM items WHERE status = 'SYNCED' AND id > %s "
                        "ORDER BY id LIMIT %s",
                        (last, BATCH),
                    )
                ]
            if not ids:
                return done
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(
                    "UPDATE items SET status = 'DONE' WHERE id = %s", [(i,) for i in ids]
                )
            done += len(ids)
            last = ids[-1]


def membound_loop(url: str) -> int:
    """The same work with ``find_each`` + ``BatchWriter`` and a checkpoint (exactly once)."""
    engine = sa.create_engine(url)
    checkpoint = mb.Checkpoint(engine, "bench-writes")
    checkpoint.reset()
    source = sa.select(TABLE.c.id).where(TABLE.c.status == "SYNCED")
    stmt = STATEMENT
    with mb.BatchWriter(engine, batch_size=BATCH, checkpoint=checkpoint) as writer:
        for row in mb.find_each(engine, source, batch_size=BATCH, checkpoint=checkpoint):
            writer.add(stmt, {"uid": row.id})
    engine.dispose()
    return writer.committed


PER_WORKER_TARGET = 0.9
TWO_WORKERS_TARGET = 1.3


def mark_done(batch: mb.Batch, writer: mb.BatchWriter) -> None:
    """One range's batch: the same per-row update as the other loops."""
    for row in batch.rows:
        writer.add(STATEMENT, {"uid": row.id})


def partitioned(url: str, workers: int) -> tuple[float, int]:
    """Seconds of a ``run_partitioned`` job over ``workers`` Dask worker processes, and rows."""
    with local_dask(workers) as client:
        report = mb.run_partitioned(
            url, TABLE, mark_done, name=f"bench-writes-{workers}", parts=8, client=client,
            batch_size=BATCH, write_batch_size=BATCH, restart=True,
        )  # fmt: skip
    return report.seconds, report.rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    runs: dict[str, list[float]] = {"hand": [], "membound": [], "workers_1": [], "workers_2": []}
    with postgres() as url:
        dsn = url.replace("+psycopg", "")
        _load(dsn, args.rows)
        for _ in range(args.rounds):
            for name in ("hand", "membound"):
                _reset(dsn)
                began = time.perf_counter()
                done = hand_loop(dsn) if name == "hand" else membound_loop(url)
                runs[name].append(time.perf_counter() - began)
                assert done == args.rows, (name, done)
            for workers in (1, 2):
                _reset(dsn)
                seconds, done = partitioned(url, workers)
                runs[f"workers_{workers}"].append(seconds)
                assert done == args.rows, (workers, done)
                with psycopg.connect(dsn) as conn:
                    left = conn.execute("SELECT count(*) FROM items WHERE status <> 'DONE'")
                    assert left.fetchone() == (0,), f"{workers} workers left rows undone"
    hand, ours = statistics.median(runs["hand"]), statistics.median(runs["membound"])
    ratios = [h / m for h, m in zip(runs["hand"], runs["membound"], strict=True)]
    result: dict[str, Any] = {
        "rows": args.rows,
        "batch": BATCH,
        "rounds": args.rounds,
        "runs_s": runs,
        "median_s": {"hand": hand, "membound": ours},
        "rows_per_s": {"hand": args.rows / hand, "membound": args.rows / ours},
        "ratio_median": statistics.median(ratios),
        "ratios": ratios,
        "target": {"min_ratio": TARGET, "met": statistics.median(ratios) >= TARGET},
    }
    one = [h / w for h, w in zip(runs["hand"], runs["workers_1"], strict=True)]
    two = [w1 / w2 for w1, w2 in zip(runs["workers_1"], runs["workers_2"], strict=True)]
    result["partitioned"] = {
        "median_s": {k: statistics.median(runs[f"workers_{k}"]) for k in (1, 2)},
        "one_worker_over_hand": statistics.median(one),
        "one_worker_over_hand_runs": one,
        "two_over_one": statistics.median(two),
        "two_over_one_runs": two,
        "target": {
            "one_worker_min": PER_WORKER_TARGET,
            "two_over_one_min": TWO_WORKERS_TARGET,
            "met": statistics.median(one) >= PER_WORKER_TARGET
            and statistics.median(two) >= TWO_WORKERS_TARGET,
        },
    }
    print(
        f"hand psycopg loop {hand:.2f} s, find_each + BatchWriter {ours:.2f} s: "
        f"{result['ratio_median']:.2f}x (target >= {TARGET}x; runs {[round(r, 2) for r in ratios]})"
    )
    part = result["partitioned"]
    print(
        f"run_partitioned: one worker {part['one_worker_over_hand']:.2f}x the hand loop "
        f"(target >= {PER_WORKER_TARGET}x), two workers {part['two_over_one']:.2f}x one "
        f"(target >= {TWO_WORKERS_TARGET}x)"
    )
    print(write("writes", result))


if __name__ == "__main__":
    main()
