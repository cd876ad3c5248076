"""``membound demo``: build the seed data in a temp dir, run each group of scenarios side by side
in fresh processes, judge how each scenario grows with its input size, hunt the seed leaks, and
hand the results to the caller (the CLI prints them and writes JSON, Markdown and PNG files).
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from membound._units import format_size
from membound.demo import batching, objects, pipelines, scenarios
from membound.judge.compare import compare
from membound.judge.complexity import complexity
from membound.judge.leaks import find_leaks
from membound.measure.sizeof import instance_size
from membound.report.sections import Table
from membound.results.comparison import Comparison
from membound.results.complexity import Complexity

__all__ = [
    "EXPERIMENTS",
    "FIXED_MEMORY",
    "DemoGroup",
    "DemoResult",
    "Way",
    "demo_needs",
    "describe_complexities",
    "groups",
    "record_size_table",
    "record_sizes",
    "run_demo",
    "scenario_count",
]

BLOB_SIZE = 100 * 10**6
RANGE_N = 10_000_000
CYCLES_N = 100_000
REQUESTS_N = 20_000
SUBSCRIBERS_N = 100
#: 50,000 documents: the list-per-step way peaks near 300 MiB (1.2 GiB at 200,000, more than
#: every other experiment; the demo should run where its SQL part at 1,000,000 rows does).
RAG_DOCUMENTS = 50_000


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
    prepare: Callable[[], None] | None = None
    """Builds the group's input data; called just before the group runs."""


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


@dataclass(frozen=True)
class Way:
    """One way of doing a group's job."""

    name: str
    """Scenario name."""
    whole: Callable[..., Any]
    """The whole job: a picklable callable (a ``functools.partial`` of a module function)."""
    of_size: Callable[[int], Any]
    """The same work as a function of its input size n."""


def _way_of(name: str, func: Callable[[int], Any], n: int) -> Way:
    """A way whose whole job is ``func(n)`` and whose size-n work is ``func`` itself."""
    return Way(name, functools.partial(func, n), func)


def _way_on(
    name: str,
    whole: Callable[[str], Any],
    of_size: Callable[[str, int], Any],
    data: str,
    folder: str,
) -> Way:
    """A way that reads ``data`` whole, and the input of size n in ``folder`` for its curve."""
    return Way(name, functools.partial(whole, data), functools.partial(of_size, folder))


def _group(
    key: str,
    title: str,
    ways: Sequence[Way],
    sizes: Sequence[int],
    *,
    prepare: Callable[[], None] | None = None,
    findings: Callable[[Comparison], list[str]] | None = None,
) -> DemoGroup:
    return DemoGroup(
        key,
        title,
        {w.name: w.whole for w in ways},
        {w.name: w.of_size for w in ways},
        tuple(sizes),
        findings,
        prepare,
    )


@dataclass(frozen=True)
class _Place:
    """Where one demo run keeps its data, and how big the main table is."""

    folder: Path
    rows: int

    def path(self, name: str) -> str:
        return str(self.folder / name)

    def sized(self, stem: str, n: int) -> str:
        return scenarios.sized_path(str(self.folder), stem, n)

    @property
    def users(self) -> str:
        return self.path("users.sqlite3")

    def make_users(self) -> None:
        """The users table and its smaller copies for the sizes (once per run)."""
        if os.path.exists(self.users):
            return
        scenarios.make_users_db(self.users, self.rows)
        for n in _sizes(self.rows):
            scenarios.make_users_db(self.sized("users", n), n)

    def make_sized(
        self, make: Callable[[str, int], object], stem: str, full: int, sizes: Sequence[int]
    ) -> None:
        """``make(path, size)`` for the full input and each smaller size."""
        make(self.path(f"{stem}.txt"), full)
        for n in sizes:
            make(self.sized(stem, n), n)


def _sql(place: _Place) -> DemoGroup:
    folder, db = str(place.folder), place.users
    return _group(
        "sql",
        f"Read {place.rows:,} users from SQLite: all at once vs OFFSET pages vs find_each keyset "
        "batches",
        [
            _way_on("load all (fetchall)", scenarios.load_all, scenarios.load_all_n, db, folder),
            _way_on(
                f"OFFSET pages of {scenarios.PAGE}",
                scenarios.offset_pages,
                scenarios.offset_pages_n,
                db,
                folder,
            ),
            _way_on(
                f"find_each, batches of {scenarios.PAGE}",
                batching.read_find_each,
                batching.read_find_each_n,
                db,
                folder,
            ),
        ],
        _sizes(place.rows),
        prepare=place.make_users,
    )


def _status(place: _Place) -> DemoGroup:
    folder, db = str(place.folder), place.users
    work = {key: place.path(f"status-{key}.sqlite3") for key in ("naive", "batches", "writer")}
    return _group(
        "status",
        f"Mark all {place.rows:,} users SYNCED → TEMP_DELETED: collect everything and commit "
        "once vs in_batches + set UPDATE vs find_each + BatchWriter",
        [
            Way(
                "all rows, one transaction",
                functools.partial(batching.status_all_then_one_transaction, db, work["naive"]),
                functools.partial(batching.status_all_then_one_transaction_n, folder),
            ),
            Way(
                "in_batches + set UPDATE",
                functools.partial(batching.status_in_batches_set_update, db, work["batches"]),
                functools.partial(batching.status_in_batches_set_update_n, folder),
            ),
            Way(
                "find_each + BatchWriter",
                functools.partial(batching.status_find_each_writer, db, work["writer"]),
                functools.partial(batching.status_find_each_writer_n, folder),
            ),
        ],
        _sizes(place.rows),
        prepare=place.make_users,
        findings=lambda c: _status_lines(c, place.rows, db, work),
    )


def _range(place: _Place) -> DemoGroup:
    return _group(
        "range",
        f"Sum {RANGE_N:,} integers: list(range(n)) vs range(n)",
        [
            _way_of("list(range(n))", scenarios.list_range, RANGE_N),
            _way_of("range(n)", scenarios.lazy_range, RANGE_N),
        ],
        (10**4, 10**5, 10**6, 3 * 10**6),
    )


def _file(place: _Place) -> DemoGroup:
    folder, blob = str(place.folder), place.path("blob.txt")
    sizes = (10**6, 3 * 10**6, 10**7, 3 * 10**7)
    return _group(
        "file",
        f"Count lines of a {BLOB_SIZE // 10**6} MB file: read() whole vs 64 KB chunks",
        [
            _way_on(
                "f.read() whole file", scenarios.read_whole, scenarios.read_whole_n, blob, folder
            ),
            _way_on(
                "64 KB chunks", scenarios.read_in_chunks, scenarios.read_in_chunks_n, blob, folder
            ),
        ],
        sizes,
        prepare=lambda: place.make_sized(scenarios.make_blob, "blob", BLOB_SIZE, sizes),
    )


def _rag(place: _Place) -> DemoGroup:
    folder, corpus = str(place.folder), place.path("corpus.txt")
    sizes = tuple(RAG_DOCUMENTS * k // 100 for k in (5, 10, 20, 50))
    return _group(
        "rag",
        f"Read → clean → chunk → embed {RAG_DOCUMENTS:,} documents: a list per step vs "
        "pipeline() of generators",
        [
            _way_on(
                "a full list per step",
                pipelines.rag_naive_lists,
                pipelines.rag_naive_lists_n,
                corpus,
                folder,
            ),
            _way_on(
                "pipeline() of generators",
                pipelines.rag_pipeline,
                pipelines.rag_pipeline_n,
                corpus,
                folder,
            ),
        ],
        sizes,
        prepare=lambda: place.make_sized(pipelines.create_corpus, "corpus", RAG_DOCUMENTS, sizes),
    )


def _cycles(place: _Place) -> DemoGroup:
    return _group(
        "cycles",
        f"Create {CYCLES_N:,} reference cycles: cyclic GC on vs gc.disable()",
        [
            _way_of("gc enabled", objects.cycles_gc_enabled, CYCLES_N),
            _way_of("gc.disable()", objects.cycles_gc_disabled, CYCLES_N),
        ],
        (10**4, 3 * 10**4, 10**5, 3 * 10**5),
        findings=lambda _: _leak_lines(
            "one cycle", functools.partial(objects.cycles_gc_enabled, 1), 500
        ),
    )


def _sessions(place: _Place) -> DemoGroup:
    return _group(
        "sessions",
        f"Serve {REQUESTS_N:,} requests: a registered session per request vs one shared session",
        [
            _way_of("session per request", objects.sessions_per_request, REQUESTS_N),
            _way_of("one shared session", objects.shared_session, REQUESTS_N),
        ],
        (10**3, 3 * 10**3, 10**4, 3 * 10**4),
        findings=lambda _: _leak_lines("handle_request_leaky", objects.handle_request_leaky, 500),
    )


def _fanout(place: _Place) -> DemoGroup:
    return _group(
        "fanout",
        f"Send a 2,000-row event to {SUBSCRIBERS_N} subscribers: deepcopy each vs one shared "
        "read-only payload",
        [
            _way_of("deepcopy per subscriber", objects.fanout_deepcopy, SUBSCRIBERS_N),
            _way_of("shared read-only payload", objects.fanout_shared, SUBSCRIBERS_N),
        ],
        (10, 20, 50, 100),
    )


#: The experiments in the order the demo runs them; each builds its group from the run's place.
EXPERIMENTS: tuple[Callable[[_Place], DemoGroup], ...] = (
    _sql,
    _status,
    _range,
    _file,
    _rag,
    _cycles,
    _sessions,
    _fanout,
)


def groups(workdir: Path, rows: int) -> list[DemoGroup]:
    """The demo's groups over data in ``workdir``. Nothing is written here: each group's
    ``prepare`` builds its data just before it runs."""
    place = _Place(workdir, rows)
    return [build(place) for build in EXPERIMENTS]


def scenario_count(rows: int) -> int:
    """How many scenarios the demo runs (for a progress bar, before anything is built)."""
    return sum(len(g.scenarios) for g in groups(Path("membound-demo"), rows))


def record_sizes(n: int = 10_000) -> list[tuple[str, float]]:
    """Bytes per instance of the same record built each way (heap measured with tracemalloc)."""
    return [(name, instance_size(f, n)) for name, f in objects.RECORD_FACTORIES.items()]


#: Disk per row of the users table, over every copy the demo makes: the table (≈ 50 B/row as
#: SQLite), its smaller copies (1.1×), three copies for the status change and a rollback journal.
DISK_PER_ROW = 320
#: Memory per row of the scenarios that load every row at once (the status change's: 552 MB of
#: RSS over 10^6 rows, measured by ``make bench``), with room for the machine's variation.
MEMORY_PER_ROW = 600


#: Memory the experiments of a fixed size need at their peak, whatever the rows: the largest is
#: ``list(range(10,000,000))`` (415 MiB of RSS, measured by ``make bench``), with room for the
#: machine's variation. The end-to-end test checks every scenario's peak against it.
FIXED_MEMORY = 512 * 2**20


def demo_needs(rows: int) -> tuple[int, int]:
    """About how much temporary disk and memory a demo over ``rows`` rows needs, in bytes: the
    memory of its largest experiment, the SQL load-all over ``rows`` rows or a fixed-size one
    (:data:`FIXED_MEMORY`)."""
    return rows * DISK_PER_ROW, max(rows * MEMORY_PER_ROW, FIXED_MEMORY)


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
            if group.prepare is not None:
                group.prepare()
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


def record_size_table(sizes: Sequence[tuple[str, float]]) -> Table:
    """Bytes per record, one row per way of building it."""
    return Table(
        ("record as", "bytes per instance (heap)"),
        tuple((name, f"{b:.0f} B") for name, b in sizes),
    )
