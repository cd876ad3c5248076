"""Batching benchmark: read and read+update strategies over an SQLite table, one run.

Every scenario runs in a fresh interpreter (DESIGN §5.1: allocator retention from one scenario
must not leak into the next). Inside it, imports and engine creation happen first; then the
kernel's peak-RSS mark is reset (``5`` into ``/proc/self/clear_refs``) and the scenario runs;
``Δ peak`` is ``VmHWM`` afterwards minus RSS before the scenario (kernel high-water mark, not
sampling). Update scenarios each get a fresh copy of the database file.

    python benchmarks/bench_batching.py            # 1,000,000 rows
    python benchmarks/bench_batching.py --slow     # 10,000,000 rows
    python benchmarks/bench_batching.py --rows 100000 --out /tmp/b.json   # quick look

Writes ``benchmarks/results/batching.json`` (``batching-10m.json`` with ``--slow``) and a PNG of
the batch-size sweep next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
READS = [
    "raw_stream",
    "fetchall",
    "offset",
    "core_stream",
    "find_each_core",
    "find_each_core_tuples",
    "yield_per_orm",
    "find_each_orm",
]
UPDATES = [
    "naive_one_transaction",
    "keyset_executemany",
    "in_batches_set_update",
    "find_each_writer",
]
SWEEP = [100, 300, 1000, 3000, 10000]


# ---------------------------------------------------------------------------------- the child


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str]
    counter: Mapped[int]
    payload: Mapped[str]


def rss() -> int:
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def hwm() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def child(scenario: str, db: str, batch: int) -> dict[str, Any]:
    import gc

    from membound import BatchWriter, find_each, in_batches

    engine = sa.create_engine(f"sqlite:///{db}")
    users = User.__table__
    with engine.connect() as conn:  # warm the pool and the dialect before measuring
        conn.execute(sa.select(sa.func.count()).select_from(users)).scalar()
    gc.collect()
    base = rss()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    t0 = time.perf_counter()
    total = 0
    rows = 0
    pending = users.c.status == "SYNCED"
    set_status = (
        sa.update(users).where(users.c.id == sa.bindparam("uid")).values(status="TEMP_DELETED")
    )
    if scenario == "raw_stream":
        conn3 = sqlite3.connect(db)
        for row in conn3.execute("SELECT id, status, counter, payload FROM users"):
            total += row[0]
            rows += 1
        conn3.close()
    elif scenario == "fetchall":
        conn3 = sqlite3.connect(db)
        everything = conn3.execute("SELECT id, status, counter, payload FROM users").fetchall()  # noqa: MB102 (the O(n) contrast)
        for row in everything:
            total += row[0]
            rows += 1
        conn3.close()
    elif scenario == "offset":
        offset = 0
        with engine.connect() as conn:
            while True:
                page = conn.execute(
                    sa.select(users).order_by(users.c.id).limit(batch).offset(offset)
                ).all()
                if not page:
                    break
                for row in page:
                    total += row[0]
                    rows += 1
                offset += batch
    elif scenario == "core_stream":  # SQLAlchemy Core, one cursor for the whole loop
        with engine.connect() as conn:
            for row in conn.execution_options(yield_per=batch).execute(sa.select(users)):
                total += row[0]
                rows += 1
    elif scenario == "find_each_core":
        for row in find_each(engine, users, batch_size=batch):
            total += row[0]  # same per-row work as raw_stream
            rows += 1
    elif scenario == "find_each_core_tuples":
        for row in find_each(engine, users, batch_size=batch, tuples=True):
            total += row[0]
            rows += 1
    elif scenario == "yield_per_orm":
        with Session(engine) as session:
            for user in session.scalars(sa.select(User).execution_options(yield_per=batch)):
                total += user.id
                rows += 1
    elif scenario == "find_each_orm":
        for user in find_each(engine, User, batch_size=batch):
            total += user.id
            rows += 1
    elif scenario == "naive_one_transaction":
        with engine.connect() as conn:
            everything = conn.execute(sa.select(users).where(pending)).all()  # noqa: MB102 (the O(n) contrast)
        updates = [{"uid": row.id} for row in everything]
        with engine.begin() as conn:
            conn.execute(set_status, updates)
        rows = len(updates)
    elif scenario == "keyset_executemany":
        last = 0
        while True:
            with engine.connect() as conn:
                page = conn.execute(
                    sa.select(users.c.id)
                    .where(pending, users.c.id > last)
                    .order_by(users.c.id)
                    .limit(batch)
                ).all()
            if not page:
                break
            with engine.begin() as conn:
                conn.execute(set_status, [{"uid": r.id} for r in page])
            rows += len(page)
            last = page[-1].id
    elif scenario == "in_batches_set_update":
        for b in in_batches(engine, sa.select(users).where(pending), batch_size=batch):
            with engine.begin() as conn:
                conn.execute(sa.update(users).where(b.where()).values(status="TEMP_DELETED"))
            rows += len(b.rows)
    elif scenario == "find_each_writer":
        with BatchWriter(engine, batch_size=batch) as writer:
            for row in find_each(engine, sa.select(users).where(pending), batch_size=batch):
                writer.add(set_status, {"uid": row.id})
                rows += 1
    else:
        raise SystemExit(f"unknown scenario {scenario}")
    seconds = time.perf_counter() - t0
    return {
        "scenario": scenario,
        "batch_size": batch,
        "rows": rows,
        "seconds": round(seconds, 4),
        "rows_per_s": round(rows / seconds),
        "rss_base": base,
        "peak_delta": hwm() - base,
        "checksum": total,
    }


# --------------------------------------------------------------------------------- the parent


def make_db(path: Path, n: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, status VARCHAR NOT NULL, "
        "counter INTEGER NOT NULL, payload VARCHAR NOT NULL)"
    )
    conn.execute("PRAGMA synchronous=OFF")
    step = 100_000
    for start in range(1, n + 1, step):
        stop = min(start + step, n + 1)
        conn.executemany(
            "INSERT INTO users VALUES (?, 'SYNCED', 0, ?)",
            ((i, f"user-{i:010d}-" + "x" * 32) for i in range(start, stop)),
        )
        conn.commit()
    conn.close()


def run_child(scenario: str, db: Path, batch: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", scenario, "--db", str(db), "--batch", str(batch)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run_median(scenario: str, db: Path, batch: int, repeat: int) -> dict[str, Any]:
    """The run with the median throughput of ``repeat`` fresh-interpreter runs (DESIGN §5.5)."""
    return median_of([run_child(scenario, db, batch) for _ in range(repeat)])


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median throughput, with every run's rate and the largest Δ peak."""
    repeat = len(runs)
    runs = sorted(runs, key=_rate)
    median = dict(runs[len(runs) // 2])
    median["repeat"] = repeat
    median["rows_per_s_all"] = [r["rows_per_s"] for r in runs]
    median["peak_delta_max"] = max(r["peak_delta"] for r in runs)
    return median


def _rate(r: dict[str, Any]) -> int:
    return int(r["rows_per_s"])


def mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def report(kind: str, name: str, r: dict[str, Any]) -> None:
    print(f"{kind:6} {name:24} {r['rows_per_s']:>10,} rows/s  Δ peak {mb(r['peak_delta'])}")


def plot(sweep: list[dict[str, Any]], path: Path, n: int) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    xs = [r["peak_delta"] / 1e6 for r in sweep]
    ys = [r["rows_per_s"] / 1e3 for r in sweep]
    ax.plot(xs, ys, "o-")
    for r, x, y in zip(sweep, xs, ys, strict=True):
        ax.annotate(f"batch {r['batch_size']}", (x, y), textcoords="offset points", xytext=(5, 5))
    ax.set_xlabel("Δ peak RSS (MB)")
    ax.set_ylabel("throughput (k rows/s)")
    ax.set_title(f"find_each (Core) batch-size sweep, {n:,} rows, SQLite")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", action="store_true", help="10,000,000 rows")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=None, help="runs per read scenario")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--db", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=1000, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.db, args.batch)))
        return
    n = args.rows or (10_000_000 if args.slow else 1_000_000)
    repeat = args.repeat or (1 if args.slow else 7)
    # O(n)-memory scenarios would need several GB at 10M rows on a shared machine; their 1M
    # figures make the point. OFFSET is also quadratic in time.
    skip = {"fetchall", "offset", "naive_one_transaction"} if n > 2_000_000 else set()
    out = args.out or RESULTS / ("batching-10m.json" if args.slow else "batching.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="membound-bench-"))
    try:
        source = work / "users.db"
        t0 = time.perf_counter()
        make_db(source, n)
        print(f"built {n:,} rows in {time.perf_counter() - t0:.1f}s ({mb(source.stat().st_size)})")
        results: dict[str, Any] = {
            "rows": n,
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "method": (
                f"fresh interpreter per run; reads: {repeat} interleaved rounds (OFFSET: one run), "
                "the median run by throughput, read ratios = median of per-round ratios; sweep: "
                f"median of {repeat} runs; updates: one run on a fresh copy; "
                "Δ peak = VmHWM - RSS before"
            ),
            "skipped": sorted(skip),
            "read": [],
            "update": [],
            "sweep": [],
        }
        # Reads run in interleaved rounds (every scenario once per round), so a ratio can be
        # taken within a round, between runs seconds apart, and the median of those is quoted:
        # this shared machine's load drifts more between rounds than within one.
        reads = [s for s in READS if s not in skip]
        rounds: dict[str, list[dict[str, Any]]] = {s: [] for s in reads}
        for _ in range(repeat):
            for scenario in reads:
                if scenario == "offset" and rounds[scenario]:
                    continue  # quadratic and far slower: one run makes its point
                rounds[scenario].append(run_child(scenario, source, 1000))
        for scenario in reads:
            r = median_of(rounds[scenario])
            results["read"].append(r)
            report("read", scenario, r)
        for scenario in UPDATES:
            if scenario in skip:
                continue
            copy = work / f"{scenario}.db"
            shutil.copyfile(source, copy)
            size_before = copy.stat().st_size
            r = run_child(scenario, copy, 1000)
            r["file_size_before"] = size_before
            r["file_size_after"] = copy.stat().st_size
            copy.unlink()
            results["update"].append(r)
            print(
                f"update {scenario:24} {r['rows_per_s']:>10,} rows/s  Δ peak {mb(r['peak_delta'])}"
            )
        for size in SWEEP:
            r = run_median("find_each_core", source, size, repeat)
            results["sweep"].append(r)
            report("sweep", f"batch {size}", r)
        by = {r["scenario"]: r["rows_per_s"] for r in results["read"] + results["update"]}
        read_pairs = {
            "find_each_core_tuples / raw_stream": ("find_each_core_tuples", "raw_stream"),
            "find_each_core / raw_stream": ("find_each_core", "raw_stream"),
            "find_each_core / core_stream": ("find_each_core", "core_stream"),
            "find_each_orm / yield_per_orm": ("find_each_orm", "yield_per_orm"),
        }
        ratios: dict[str, Any] = {}
        for name, (a, b) in read_pairs.items():
            if a in rounds and b in rounds:
                per_round = sorted(
                    x["rows_per_s"] / y["rows_per_s"]
                    for x, y in zip(rounds[a], rounds[b], strict=True)
                )
                ratios[name] = round(per_round[len(per_round) // 2], 3)
                ratios[name + " (per round)"] = [round(v, 3) for v in per_round]
        update_pairs = {
            "in_batches_set_update / naive": ("in_batches_set_update", "naive_one_transaction"),
            "find_each_writer / naive": ("find_each_writer", "naive_one_transaction"),
        }
        for name, (a, b) in update_pairs.items():
            if a in by and b in by:
                ratios[name] = round(by[a] / by[b], 3)
        results["ratios"] = ratios
        png = out.with_name(out.stem + "_sweep.png")
        if plot(results["sweep"], png, n):
            results["sweep_png"] = png.name
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(results["ratios"], indent=2))
        print(f"wrote {out}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
