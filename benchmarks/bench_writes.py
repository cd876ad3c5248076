"""Per-row writes on PostgreSQL (issues 26, 35): ``find_each`` + ``BatchWriter`` against a
hand-written psycopg 3 loop doing the same work.

The hand loop is what a careful engineer writes without membound: a keyset ``SELECT id … WHERE
id > %s ORDER BY id LIMIT n``, one ``executemany`` of the updates, one commit per batch — no
checkpoint, no retry, no exactly-once on resume. membound's side reads the same pages, is given
the same updates one parameter set per row, with the writer's defaults; its writer sends each
batch of the keyed UPDATE as one statement over arrays (``bound/sql/unnest_batch.py``, proven
the same work as row by row), which is how it can beat the hand loop. Three membound variants:
with a checkpoint committed with every batch (the exactly-once recipe; target ≥ 1.2× the hand
loop), without one, and row by row (the same UPDATE as ``text()``, which the one-statement form
does not take: what a flush that cannot be proven costs). Each round resets the table, then
times every variant, interleaved; medians of ``--rounds``.

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
TARGET = 1.2
TABLE = sa.Table(
    "items",
    sa.MetaData(),
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("status", sa.Text, nullable=False),
)
STATEMENT = sa.update(TABLE).where(TABLE.c.id == sa.bindparam("uid")).values(status="DONE")
#: The same UPDATE as text: the writer sends it row by row (its driver path, no one statement).
ROW_BY_ROW = sa.text("UPDATE items SET status = 'DONE' WHERE id = :uid")


def _load(dsn: str, rows: int) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("DROP TABLE IF EXISTS items")
        conn.execute("CREATE TABLE items (id bigint PRIMARY KEY, status text NOT NULL)")
        with conn.cursor().copy("COPY items (id, status) FROM STDIN") as copy:
            for i in range(1, rows + 1):
                copy.write_row((i, "SYNCED"))
        conn.execute("ANALYZE items")


def _reset(dsn: str) -> None:
    """Every row back to SYNCED, then VACUUM ANALYZE (outside a transaction) so both sides
    start alike: without fresh statistics (all rows SYNCED) the planner may still think few
    rows are, and read every page by a sequential scan and a sort (25 ms a page instead of 1)
    for one side and not the other, as autovacuum's timing decides."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE items SET status = 'SYNCED'")
        conn.execute("VACUUM ANALYZE items")


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


def membound_loop(url: str, *, checkpoint: bool = True, statement: Any = STATEMENT) -> int:
    """The same work with ``find_each`` + ``BatchWriter``, with a checkpoint (exactly once) or
    without; the writer's ``sent`` must show the way the variant is about."""
    engine = sa.create_engine(url)
    cp = mb.Checkpoint(engine, "bench-writes") if checkpoint else None
    if cp is not None:
        cp.reset()
    source = sa.select(TABLE.c.id).where(TABLE.c.status == "SYNCED")
    with mb.BatchWriter(engine, batch_size=BATCH, checkpoint=cp) as writer:
        for row in mb.find_each(engine, source, batch_size=BATCH, checkpoint=cp):
            writer.add(statement, {"uid": row.id})
    engine.dispose()
    way = "one statement" if statement is STATEMENT else "row by row"
    assert writer.sent[way] == writer.committed, (writer.sent, writer.row_by_row_reason)
    return writer.committed


#: The variants timed in each round: name → the loop.
VARIANTS: dict[str, Any] = {
    "hand": lambda url: hand_loop(url.replace("+psycopg", "")),
    "membound": membound_loop,
    "membound_no_checkpoint": lambda url: membound_loop(url, checkpoint=False),
    "membound_row_by_row": lambda url: membound_loop(url, statement=ROW_BY_ROW),
}


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
    runs: dict[str, list[float]] = {name: [] for name in VARIANTS}
    runs.update(workers_1=[], workers_2=[])
    with postgres() as url:
        dsn = url.replace("+psycopg", "")
        _load(dsn, args.rows)
        for _ in range(args.rounds):
            for name, loop in VARIANTS.items():
                _reset(dsn)
                began = time.perf_counter()
                done = loop(url)
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
    medians = {name: statistics.median(runs[name]) for name in VARIANTS}

    def over_hand(name: str) -> list[float]:
        return [h / m for h, m in zip(runs["hand"], runs[name], strict=True)]

    ratios = over_hand("membound")
    result: dict[str, Any] = {
        "rows": args.rows,
        "batch": BATCH,
        "rounds": args.rounds,
        "runs_s": runs,
        "median_s": medians,
        "rows_per_s": {name: args.rows / m for name, m in medians.items()},
        "ratio_median": statistics.median(ratios),
        "ratios": ratios,
        "ratio_no_checkpoint": statistics.median(over_hand("membound_no_checkpoint")),
        "ratio_row_by_row": statistics.median(over_hand("membound_row_by_row")),
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
        f"hand psycopg loop {medians['hand']:.2f} s, find_each + BatchWriter with a checkpoint "
        f"{medians['membound']:.2f} s: {result['ratio_median']:.2f}x (target >= {TARGET}x; runs "
        f"{[round(r, 2) for r in ratios]}); without a checkpoint "
        f"{result['ratio_no_checkpoint']:.2f}x; row by row {result['ratio_row_by_row']:.2f}x"
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
