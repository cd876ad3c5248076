"""``membound demo``: build the seed data in a temp dir, run each group of scenarios side by side
in fresh processes, judge how each scenario grows with its input size, hunt the seed leaks, and
hand the results to the caller (the CLI prints them and writes JSON, Markdown and PNG files).
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from membound._units import format_size
from membound.demo import batching as bt
from membound.demo import objects as ob
from membound.demo import scenarios as sc
from membound.judge.compare import compare
from membound.judge.complexity import complexity
from membound.judge.leaks import find_leaks
from membound.measure.sizeof import instance_size
from membound.results.comparison import Comparison
from membound.results.complexity import Complexity

__all__ = [
    "DemoGroup",
    "DemoResult",
    "describe_complexities",
    "describe_record_sizes",
    "groups",
    "record_sizes",
    "run_demo",
]

BLOB_SIZE = 100 * 10**6
RANGE_N = 10_000_000
CYCLES_N = 100_000
REQUESTS_N = 20_000
SUBSCRIBERS_N = 100
RAG_DOCUMENTS = 200_000


@dataclass(frozen=True)
class DemoGroup:
    """Scenarios that do the same job different ways."""

    key: str
    """File stem for the outputs (``sql`` → ``sql.json``, ``sql.md``, ``sql.png``)."""
    title: str
    """Heading printed above the table."""
    scenarios: dict[str, Callable[..., Any]]
    """Scenario name → a picklable callable (a ``functools.partial`` of a module function)."""
    scaling: dict[str, Callable[[int], Any]] = field(default_factory=dict)
    """Scenario name → the same work as a function of its input size n."""
    sizes: tuple[int, ...] = ()
    """The sizes n the scaling functions are judged at."""
    findings: Callable[[Comparison], list[str]] | None = None
    """Extra checks run after the comparison (leak hunts, throughput, file sizes): lines of
    text."""


@dataclass(frozen=True)
class DemoResult:
    """One group's results."""

    group: DemoGroup
    """The group that ran."""
    comparison: Comparison
    """Its figures."""
    complexities: dict[str, Complexity]
    """Scenario name → how its peak grows with n."""
    findings: list[str]
    """Lines from the group's extra checks."""


def _sizes(rows: int) -> tuple[int, ...]:
    # From a tenth of the table up: smaller tables fit in SQLite's 2 MB page cache, whose
    # filling up would read as growth.
    # Up to half the table keeps the default demo within a few minutes.
    return tuple(sorted({max(1000, int(rows * f)) for f in (0.1, 0.2, 0.3, 0.5)}))


def _leak_lines(label: str, target: Callable[[], Any], iterations: int) -> list[str]:
    report = find_leaks(target, iterations=iterations, warmup=20, label=label)
    return [f"find_leaks({label}): {report.explanation}"]


def _status_lines(c: Comparison, rows: int, db: str, work: dict[str, str]) -> list[str]:
    """Rows per second of each status scenario and the SQLite file size before and after."""
    before = os.path.getsize(db)
    lines = []
    for row, path in zip(c.rows, work.values(), strict=True):
        after = os.path.getsize(path)
        lines.append(
            f"{row.name}: {rows / row.duration_s.median:,.0f} rows/s; SQLite file "
            f"{format_size(before)} before, {format_size(after)} after"
        )
    return lines


def groups(workdir: Path, rows: int) -> Iterator[DemoGroup]:
    """The demo's groups, building each group's data in ``workdir`` just before it is needed."""
    folder = str(workdir)
    db = str(workdir / "users.sqlite3")
    sc.make_users_db(db, rows)
    sizes = _sizes(rows)
    for n in sizes:
        sc.make_users_db(sc.sized_path(folder, "users", n), n)
    yield DemoGroup(
        "sql",
        f"Read {rows:,} users from SQLite: all at once vs OFFSET pages vs find_each keyset batches",
        {
            "load all (fetchall)": functools.partial(sc.load_all, db),
            f"OFFSET pages of {sc.PAGE}": functools.partial(sc.offset_pages, db),
            f"find_each, batches of {sc.PAGE}": functools.partial(bt.read_find_each, db),
        },
        {
            "load all (fetchall)": functools.partial(sc.load_all_n, folder),
            f"OFFSET pages of {sc.PAGE}": functools.partial(sc.offset_pages_n, folder),
            f"find_each, batches of {sc.PAGE}": functools.partial(bt.read_find_each_n, folder),
        },
        sizes,
    )
    work = {key: str(workdir / f"status-{key}.sqlite3") for key in ("naive", "batches", "writer")}
    status: dict[str, Callable[..., Any]] = {
        "all rows, one transaction": functools.partial(
            bt.status_all_then_one_transaction, db, work["naive"]
        ),
        "in_batches + set UPDATE": functools.partial(
            bt.status_in_batches_set_update, db, work["batches"]
        ),
        "find_each + BatchWriter": functools.partial(
            bt.status_find_each_writer, db, work["writer"]
        ),
    }
    yield DemoGroup(
        "status",
        f"Mark all {rows:,} users SYNCED → TEMP_DELETED: collect everything and commit once vs "
        "in_batches + set UPDATE vs find_each + BatchWriter",
        status,
        {
            "all rows, one transaction": functools.partial(
                bt.status_all_then_one_transaction_n, folder
            ),
            "in_batches + set UPDATE": functools.partial(bt.status_in_batches_set_update_n, folder),
            "find_each + BatchWriter": functools.partial(bt.status_find_each_writer_n, folder),
        },
        sizes,
        lambda c: _status_lines(c, rows, db, work),
    )
    yield DemoGroup(
        "range",
        f"Sum {RANGE_N:,} integers: list(range(n)) vs range(n)",
        {
            "list(range(n))": functools.partial(sc.list_range, RANGE_N),
            "range(n)": functools.partial(sc.lazy_range, RANGE_N),
        },
        {"list(range(n))": sc.list_range, "range(n)": sc.lazy_range},
        (10**4, 10**5, 10**6, 3 * 10**6),
    )
    blob = str(workdir / "blob.txt")
    sc.make_blob(blob, BLOB_SIZE)
    blob_sizes = (10**6, 3 * 10**6, 10**7, 3 * 10**7)
    for n in blob_sizes:
        sc.make_blob(sc.sized_path(folder, "blob", n), n)
    yield DemoGroup(
        "file",
        f"Count lines of a {BLOB_SIZE // 10**6} MB file: read() whole vs 64 KB chunks",
        {
            "f.read() whole file": functools.partial(sc.read_whole, blob),
            "64 KB chunks": functools.partial(sc.read_in_chunks, blob),
        },
        {
            "f.read() whole file": functools.partial(sc.read_whole_n, folder),
            "64 KB chunks": functools.partial(sc.read_in_chunks_n, folder),
        },
        blob_sizes,
    )
    corpus = str(workdir / "corpus.txt")
    bt.create_corpus(corpus, RAG_DOCUMENTS)
    rag_sizes = tuple(RAG_DOCUMENTS * k // 100 for k in (5, 10, 20, 50))
    for n in rag_sizes:
        bt.create_corpus(sc.sized_path(folder, "corpus", n), n)
    yield DemoGroup(
        "rag",
        f"Read → clean → chunk → embed {RAG_DOCUMENTS:,} documents: a list per step vs "
        "pipeline() of generators",
        {
            "a full list per step": functools.partial(bt.rag_naive_lists, corpus),
            "pipeline() of generators": functools.partial(bt.rag_pipeline, corpus),
        },
        {
            "a full list per step": functools.partial(bt.rag_naive_lists_n, folder),
            "pipeline() of generators": functools.partial(bt.rag_pipeline_n, folder),
        },
        rag_sizes,
    )
    yield DemoGroup(
        "cycles",
        f"Create {CYCLES_N:,} reference cycles: cyclic GC on vs gc.disable()",
        {
            "gc enabled": functools.partial(ob.cycles_gc_enabled, CYCLES_N),
            "gc.disable()": functools.partial(ob.cycles_gc_disabled, CYCLES_N),
        },
        {"gc enabled": ob.cycles_gc_enabled, "gc.disable()": ob.cycles_gc_disabled},
        (10**4, 3 * 10**4, 10**5, 3 * 10**5),
        lambda _: _leak_lines("one cycle", functools.partial(ob.cycles_gc_enabled, 1), 500),
    )
    yield DemoGroup(
        "sessions",
        f"Serve {REQUESTS_N:,} requests: a registered session per request vs one shared session",
        {
            "session per request": functools.partial(ob.sessions_per_request, REQUESTS_N),
            "one shared session": functools.partial(ob.shared_session, REQUESTS_N),
        },
        {"session per request": ob.sessions_per_request, "one shared session": ob.shared_session},
        (10**3, 3 * 10**3, 10**4, 3 * 10**4),
        lambda _: _leak_lines("handle_request_leaky", ob.handle_request_leaky, 500),
    )
    yield DemoGroup(
        "fanout",
        f"Send a 2,000-row event to {SUBSCRIBERS_N} subscribers: deepcopy each vs one shared "
        "read-only payload",
        {
            "deepcopy per subscriber": functools.partial(ob.fanout_deepcopy, SUBSCRIBERS_N),
            "shared read-only payload": functools.partial(ob.fanout_shared, SUBSCRIBERS_N),
        },
        {
            "deepcopy per subscriber": ob.fanout_deepcopy,
            "shared read-only payload": ob.fanout_shared,
        },
        (10, 20, 50, 100),
    )


def record_sizes(n: int = 10_000) -> list[tuple[str, float]]:
    """Bytes per instance of the same record built each way (heap measured with tracemalloc)."""
    return [(name, instance_size(f, n)) for name, f in ob.RECORD_FACTORIES.items()]


def run_demo(
    rows: int = 1_000_000,
    repeat: int = 3,
    *,
    scale: bool = True,
    on_group: Callable[[DemoGroup], None] | None = None,
    on_run: Callable[[str, int], None] | None = None,
    on_result: Callable[[DemoResult], None] | None = None,
) -> list[DemoResult]:
    """Run every group; returns the results in order (call-backs report progress as it goes).

    Args:
        rows: rows of the SQLite users table.
        repeat: runs per scenario in the comparisons.
        scale: also judge each scenario's memory complexity over its sizes.
    """
    results = []
    with tempfile.TemporaryDirectory(prefix="membound-demo-") as tmp:
        for group in groups(Path(tmp), rows):
            if on_group is not None:
                on_group(group)
            comparison = compare(group.scenarios, repeat=repeat, on_run=on_run)
            complexities: dict[str, Complexity] = {}
            if scale and len(group.sizes) >= 3:
                for name, target in group.scaling.items():
                    if on_run is not None:
                        on_run(f"{name}: complexity", 0)
                    complexities[name] = complexity(target, sizes=group.sizes, label=name)
            findings = group.findings(comparison) if group.findings is not None else []
            result = DemoResult(group, comparison, complexities, findings)
            if on_result is not None:
                on_result(result)
            results.append(result)
    return results


def describe_complexities(result: DemoResult) -> list[str]:
    """One line per scenario: its complexity class and the fit behind it."""
    sizes = result.group.sizes
    span = f"n = {sizes[0]:,}…{sizes[-1]:,}" if sizes else ""
    return [
        f"{name}: {c.big_o} over {span} — {c.explanation}"
        for name, c in result.complexities.items()
    ]


def describe_record_sizes(sizes: Sequence[tuple[str, float]]) -> list[str]:
    """A Markdown table of bytes per record."""
    lines = ["| record as | bytes per instance (heap) |", "|---|---|"]
    lines += [f"| {name} | {b:.0f} B |" for name, b in sizes]
    return lines
