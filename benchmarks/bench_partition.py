"""Partitioned runs: balance of ``key_ranges``, ``batch_size="auto"``, per-worker memory and
throughput of ``run_partitioned`` (one run; medians where a figure repeats).

1. **Balance** on 10M-row SQLite tables with gapped and Zipf-skewed keys (``key_ranges`` by a
   sample, SQLite here has no STAT4) and a 3M-row PostgreSQL table (``pg_stats``), against the
   uniform split of ``[min, max]`` that Spark's JDBC reader and Dask's ``read_sql_table`` make
   (the PostgreSQL key column's statistics target is 1000, for 10 buckets a part):
   rows per range counted exactly afterwards, largest ÷ median, empty ranges.
2. **``batch_size="auto"``** with the default target (0.5 s) and memory cap (64 MB): a loop
   hashing a JSON document per row; after 2M rows the rows become ten times as wide. Page
   times after
   the 5th page and after the 3rd page past the change, against ±20 % of the target.
3. **Per-worker peak Δ RSS**: ``run_partitioned`` on a process pool of 2 over 1M and 10M rows
   (4 ranges each); the kernel's high-water mark per range, reset at its start.
4. **Throughput** on PostgreSQL (3M rows) of a read-mostly ``fn`` on a Dask ``LocalCluster`` of
   1 and of 2 single-threaded worker processes (this machine has 2 cores, shared with the
   database and the scheduler); the 16-worker figure is a projection from the per-range costs.

    python benchmarks/bench_partition.py               # the full run (make bench)
    python benchmarks/bench_partition.py --rows 1000000 --out /tmp/p.json   # a quick look

SQLite files use WAL with ``synchronous=NORMAL`` (no fsync per commit) through an engine
factory, as a job writing progress would be configured; PostgreSQL runs with ``fsync=off`` in
a throwaway cluster (the figures compare strategies on one machine, not disks).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import functools
import hashlib
import itertools
import json
import os
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

import membound as mb

PARTS = 32


# ------------------------------------------------------------------------------- the tables


def sqlite_engine(path: str) -> sa.Engine:
    """An engine on a WAL file without an fsync per commit (a module-level factory: picklable)."""
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 60})

    @sa.event.listens_for(engine, "connect")
    def _pragma(dbapi: Any, _: Any) -> None:
        dbapi.execute("PRAGMA journal_mode=WAL")
        dbapi.execute("PRAGMA synchronous=NORMAL")

    return engine


def gapped_keys(n: int) -> Iterator[int]:
    """Dense blocks of random length separated by gaps of up to 10^9 (deleted ranges, shards)."""
    rng = random.Random(1)
    key, made = 1, 0
    while made < n:
        block = min(rng.randint(1, 400_000), n - made)
        yield from range(key, key + block)
        made += block
        key += block + rng.randint(1, 10**9)


def zipf_keys(n: int) -> Iterator[int]:
    """Keys whose density falls off as a power law: most rows at the low end."""
    for i in range(1, n + 1):
        yield int(i**2.2) + i


def make_sqlite(path: Path, keys: Iterator[int], payload: bool = False) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL, doc TEXT)")
    rows = ((k, k % 97, "x" * 40 if payload else None) for k in keys)
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
    conn.commit()
    conn.close()


TABLE = sa.Table(
    "t",
    sa.MetaData(),
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("v", sa.Integer, nullable=False),
    sa.Column("doc", sa.Text),
)


# ------------------------------------------------------------------------------- 1. balance

#: Part counts for the many-parts check (issue 26: largest ÷ median ≤ 1.25 at each).
MANY_PARTS = (128, 256)
MANY_PARTS_ROUNDS = 3


def many_parts(path: Path) -> dict[str, Any]:
    """``key_ranges`` with the default sample at 128 and 256 parts of the skewed table: the
    largest range over the median, exact counts, worst of ``MANY_PARTS_ROUNDS`` cuttings (the
    sample is random)."""
    engine = sqlite_engine(str(path))
    out: dict[str, Any] = {}
    try:
        for parts in MANY_PARTS:
            ratios = []
            for _ in range(MANY_PARTS_ROUNDS):
                ranges = mb.key_ranges(engine, TABLE, parts=parts)
                sizes = counts(engine, [(r.start, r.stop) for r in ranges])
                ratios.append(max(sizes) / statistics.median(sizes))
            out[str(parts)] = {"largest_over_median": ratios, "worst": max(ratios)}
            print("many parts", parts, [round(r, 3) for r in ratios], flush=True)
    finally:
        engine.dispose()
    return out


def counts(engine: sa.Engine, bounds: list[tuple[Any, Any]]) -> list[int]:
    """Exact rows in each half-open range."""
    out = []
    with engine.connect() as conn:
        for lo, hi in bounds:
            q = sa.select(sa.func.count()).select_from(TABLE)
            if lo is not None:
                q = q.where(TABLE.c.id >= lo)
            if hi is not None:
                q = q.where(TABLE.c.id < hi)
            out.append(int(conn.execute(q).scalar_one()))
    return out


def balance(engine: sa.Engine, parts: int) -> dict[str, Any]:
    began = time.perf_counter()
    ranges = mb.key_ranges(engine, TABLE, parts=parts)
    seconds = time.perf_counter() - began
    real = counts(engine, [(r.start, r.stop) for r in ranges])
    with engine.connect() as conn:
        low, high = conn.execute(sa.select(sa.func.min(TABLE.c.id), sa.func.max(TABLE.c.id))).one()
    step = (high - low + 1) / parts
    edges = [None, *(int(low + i * step) for i in range(1, parts)), None]
    uniform = counts(engine, list(itertools.pairwise(edges)))

    def summary(sizes: list[int]) -> dict[str, Any]:
        med = statistics.median(sizes)
        return {
            "ranges": len(sizes),
            "largest_over_median": max(sizes) / med if med else None,
            "empty": sum(1 for s in sizes if s == 0),
            "largest": max(sizes),
            "median": med,
            "smallest": min(sizes),
        }

    return {
        "rows": sum(real),
        "basis": ranges[0].basis,
        "seconds": seconds,
        "key_ranges": summary(real),
        "uniform": summary(uniform),
        "estimate_error_max": max(abs(r.rows - n) / n for r, n in zip(ranges, real, strict=True)),
    }


# --------------------------------------------------------------------------- 2. auto batches


def row_work(doc: str) -> None:
    """The loop body: hashing the document repeated 32 times, a cost in proportion to its width
    that makes little garbage (a JSON parse's dicts bring cyclic-GC pauses of their own, which
    move single pages by a third whatever their size)."""
    hashlib.sha256(doc.encode() * 32).digest()


def auto_pages(path: Path, narrow_rows: int, wide_rows: int) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL, doc TEXT)")
    narrow = json.dumps({f"k{i}": i for i in range(8)})
    wide = json.dumps({f"k{i}": i for i in range(68)})
    assert 9 <= len(wide) / len(narrow) <= 11
    half = narrow_rows
    conn.executemany(
        "INSERT INTO t VALUES (?, 0, ?)",
        ((i, narrow if i <= half else wide) for i in range(1, narrow_rows + wide_rows + 1)),
    )
    conn.commit()
    conn.close()
    engine = sqlite_engine(str(path))
    pages: list[dict[str, Any]] = []
    last = time.perf_counter()
    for batch in mb.in_batches(engine, TABLE, batch_size="auto"):
        for row in batch.rows:
            row_work(row.doc)
        now = time.perf_counter()
        pages.append({"rows": len(batch.rows), "s": now - last, "wide": batch.last_key > half})
        last = now
    engine.dispose()
    pages = pages[:-1]  # the last page is the remnant of the table
    change = next(i for i, p in enumerate(pages) if p["wide"])
    before = [p["s"] for p in pages[5:change]]
    after = [p["s"] for p in pages[change + 3 :]]

    def p95(xs: list[float]) -> float:
        return sorted(xs)[max(0, round(0.95 * len(xs)) - 1)]

    return {
        "target_s": 0.5,
        "pages": pages,
        "change_at_page": change,
        "after_5_pages": {"p95_s": p95(before), "min_s": min(before), "max_s": max(before),
                          "pages": len(before)},
        "after_change_3_pages": {"p95_s": p95(after), "min_s": min(after), "max_s": max(after),
                                 "pages": len(after)},
        "pages_to_settle_after_change": next(
            (i for i, p in enumerate(pages[change:]) if abs(p["s"] - 0.5) <= 0.1), None
        ),
    }  # fmt: skip


# ------------------------------------------------------------------ 3. per-worker peak memory


def checksum(batch: mb.Batch, writer: mb.BatchWriter) -> None:
    """Read-only: a little work per row."""
    total = 0
    for row in batch.rows:
        total += row.v
    if total < 0:
        raise AssertionError


def worker_peaks(path: Path, name: str) -> dict[str, Any]:
    factory = functools.partial(sqlite_engine, str(path))
    with cf.ProcessPoolExecutor(2) as pool:
        report = mb.run_partitioned(
            factory, TABLE, checksum, name=name, parts=4, client=pool, split_stragglers=False
        )
    peaks = [r.peak_rss_delta for r in report.ranges]
    return {
        "rows": report.rows,
        "ranges": len(report.ranges),
        "peak_rss_delta": peaks,
        "median_peak": statistics.median(p for p in peaks if p is not None),
        "seconds": report.seconds,
    }


# --------------------------------------------------------------------------- 4. PostgreSQL


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1, stopped afterwards."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise SystemExit("PostgreSQL server binaries not installed: apt install postgresql")
    bindir = found[-1].parent
    base = Path(tempfile.mkdtemp(prefix="membound-bench-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pre = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data = base / "data"
    run = functools.partial(subprocess.run, check=True, capture_output=True, cwd=base)
    run([*pre, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"])
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off -c max_connections=60"
    run([*pre, str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(base / "log"),
         "-w", "start"])  # fmt: skip
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*pre, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                       capture_output=True, check=False, cwd=base)  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)


def load_postgres(url: str, rows: int) -> None:
    import psycopg

    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        conn.execute("DROP TABLE IF EXISTS t")
        conn.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v INTEGER NOT NULL, doc TEXT)")
        keys = gapped_keys(rows)
        with conn.cursor().copy("COPY t (id, v, doc) FROM STDIN") as copy:
            for k in keys:
                copy.write_row((k, k % 97, "y" * 40))
        # 1000 buckets: enough for pg_stats cuts into 32 parts (10 buckets a part).
        conn.execute("ALTER TABLE t ALTER COLUMN id SET STATISTICS 1000")
        conn.execute("ANALYZE t")


def digest(batch: mb.Batch, writer: mb.BatchWriter) -> None:
    """Read-mostly: hash each row's document (the 'work' per row of a typical export job)."""
    for row in batch.rows:
        hashlib.sha256(f"{row.id}:{row.v}:{row.doc}".encode()).digest()


@contextlib.contextmanager
def local_dask(workers: int) -> Iterator[Any]:
    """A client of a local Dask cluster of ``workers`` single-thread worker processes."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                     dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):  # fmt: skip
        yield client


def throughput(url: str, workers: int, name: str) -> dict[str, Any]:
    with local_dask(workers) as client:
        report = mb.run_partitioned(
            url, TABLE, digest, name=name, parts=8, client=client, batch_size=2000,
            restart=True,
        )  # fmt: skip
    per_range = [r.seconds for r in report.ranges if r.seconds]
    return {
        "workers": workers,
        "rows": report.rows,
        "seconds": report.seconds,
        "rows_per_s": report.rows / report.seconds,
        "range_seconds": per_range,
        "splits": report.splits,
    }


# ------------------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--pg-rows", type=int, default=3_000_000)
    parser.add_argument("--auto-rows", type=int, default=2_000_000, help="narrow rows")
    parser.add_argument(
        "--only", choices=["auto", "many-parts"], help="rerun one part into the result file"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.only is not None:
        target = args.out or _common.RESULTS / "partition.json"
        data = json.loads(target.read_text())
        data.pop("machine", None)
        with tempfile.TemporaryDirectory(prefix="membound-bench-partition-") as tmp:
            if args.only == "auto":
                data["auto"] = auto_pages(
                    Path(tmp) / "auto.db", args.auto_rows, args.auto_rows // 5
                )
                print("auto", data["auto"]["after_5_pages"], data["auto"]["after_change_3_pages"])
            else:
                path = Path(tmp) / "zipf.db"
                make_sqlite(path, zipf_keys(args.rows))
                data["balance_many_parts"] = many_parts(path)
        print(_common.write("partition", data) if args.out is None else target)
        return
    result: dict[str, Any] = {"parts": PARTS}
    with tempfile.TemporaryDirectory(prefix="membound-bench-partition-") as tmp:
        d = Path(tmp)
        for label, keys in (("gapped", gapped_keys), ("zipf", zipf_keys)):
            path = d / f"{label}.db"
            make_sqlite(path, keys(args.rows))
            engine = sqlite_engine(str(path))
            result[f"balance_sqlite_{label}"] = balance(engine, PARTS)
            engine.dispose()
            print(label, json.dumps(result[f"balance_sqlite_{label}"]["key_ranges"]), flush=True)
            if label == "zipf":
                result["balance_many_parts"] = many_parts(path)
        small = d / "small.db"
        make_sqlite(small, gapped_keys(args.rows // 10))
        result["peak_small"] = worker_peaks(small, "bench-peak-small")
        result["peak_large"] = worker_peaks(d / "gapped.db", "bench-peak-large")
        print("peaks", result["peak_small"]["peak_rss_delta"],
              result["peak_large"]["peak_rss_delta"], flush=True)  # fmt: skip
        result["auto"] = auto_pages(d / "auto.db", args.auto_rows, args.auto_rows // 5)
        print("auto", result["auto"]["after_5_pages"], result["auto"]["after_change_3_pages"],
              flush=True)  # fmt: skip
        with postgres() as url:
            load_postgres(url, args.pg_rows)
            engine = sa.create_engine(url)
            result["balance_postgres"] = balance(engine, PARTS)
            engine.dispose()
            print("pg", json.dumps(result["balance_postgres"]["key_ranges"]), flush=True)
            runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
            for _ in range(3):  # interleaved, medians
                for workers in (1, 2):
                    runs[workers].append(throughput(url, workers, f"bench-tp-{workers}"))
            result["throughput"] = {
                str(w): {
                    "runs": r,
                    "median_rows_per_s": statistics.median(x["rows_per_s"] for x in r),
                }
                for w, r in runs.items()
            }
            ratios = [
                b["rows_per_s"] / a["rows_per_s"] for a, b in zip(runs[1], runs[2], strict=True)
            ]
            result["throughput"]["ratio_2_over_1"] = statistics.median(ratios)
            result["throughput"]["ratios"] = ratios
            print("throughput", result["throughput"]["ratio_2_over_1"], ratios, flush=True)
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    else:
        print(_common.write("partition", result))


if __name__ == "__main__":
    main()
