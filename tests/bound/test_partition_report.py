"""``PartitionReport`` of real runs: the worker that finished each range, job totals (rate,
ranges done, per-worker shares, the slowest range, the last error) and a ``str()`` whose words
agree with those figures."""

from __future__ import annotations

import concurrent.futures as cf
import functools
import os
import re
from pathlib import Path

import membound as mb
from tests.bound import partition_jobs as jobs
from tests.bound.helpers import Db, fill

KEYS = list(range(1, 3001))


def test_each_range_names_its_worker_and_the_totals_agree_with_the_text(db: Db) -> None:
    table = db.users(0)
    fill(db.engine, table, KEYS)
    with cf.ProcessPoolExecutor(2) as pool:
        report = mb.run_partitioned(
            db.url, table, functools.partial(jobs.bump, table.name), name=f"rep-{table.name}",
            parts=6, client=pool,
        )  # fmt: skip
    assert all(r.worker is not None for r in report.ranges)
    owners = {r.worker for r in report.ranges}
    assert all(re.fullmatch(r".+:\d+:[0-9a-f]{8}", w or "") for w in owners)
    assert os.getpid() not in {int((w or "").split(":")[-2]) for w in owners}  # pool processes
    workers = report.workers()
    assert sum(n for _, n, _, _ in workers) == 6
    assert sum(rows for _, _, rows, _ in workers) == report.rows == len(KEYS)
    assert report.done == 6
    assert report.rate == report.rows / report.seconds

    text = str(report)
    assert text.splitlines()[0].startswith(f"rep-{table.name} (ProcessPoolExecutor): 3,000 rows")
    assert "ranges done: 6 of 6; rows: 3,000 of 3,000 estimated" in text
    assert f"{report.rate:,.0f} rows/s over this call's" in text
    for worker, n, rows, _ in workers:
        assert f"worker {worker}: {n} range{'s' if n != 1 else ''}, {rows:,} rows in" in text
    slowest = max(report.ranges, key=lambda r: r.seconds or 0.0)
    assert f"slowest range: {slowest.start!r} to {slowest.stop!r}, {slowest.rows:,} rows" in text
    assert "last error" not in text


def test_a_retried_failure_is_the_reports_last_error(db: Db, tmp_path: Path) -> None:
    table = db.users(0)
    fill(db.engine, table, KEYS)
    fn = functools.partial(jobs.failing_bump, table.name, str(tmp_path / "m"), 2500)
    report = mb.run_partitioned(db.url, table, fn, name=f"err-{table.name}", parts=3)
    assert report.retries == 1
    assert report.last_error is not None
    assert re.fullmatch(
        r"range \d+: RuntimeError: planned failure at key 2500 \(started again\)",
        report.last_error,
    )
    assert f"  last error: {report.last_error}" in str(report)
