"""``membound demo``: build the seed data in a temp dir, run each group of scenarios side by side
in fresh processes, print the tables, and write JSON, Markdown and PNG files for each group.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from membound.demo import scenarios as sc
from membound.judge.compare import Comparison, compare

__all__ = ["DemoGroup", "DemoResult", "groups", "run_demo"]

BLOB_SIZE = 100 * 10**6
RANGE_N = 10_000_000


@dataclass(frozen=True)
class DemoGroup:
    """Scenarios that do the same job different ways."""

    key: str
    """File stem for the outputs (``sql`` → ``sql.json``, ``sql.md``, ``sql.png``)."""
    title: str
    """Heading printed above the table."""
    scenarios: dict[str, Callable[..., Any]]
    """Scenario name → a picklable callable (a ``functools.partial`` of a module function)."""


@dataclass(frozen=True)
class DemoResult:
    """One group's comparison."""

    group: DemoGroup
    """The group that ran."""
    comparison: Comparison
    """Its figures."""


def groups(workdir: Path, rows: int) -> Iterator[DemoGroup]:
    """The demo's groups, building each group's data in ``workdir`` just before it is needed."""
    db = str(workdir / "users.sqlite3")
    sc.make_users_db(db, rows)
    yield DemoGroup(
        "sql",
        f"Read {rows:,} users from SQLite: all at once vs OFFSET pages vs keyset pages",
        {
            "load all (fetchall)": functools.partial(sc.load_all, db),
            f"OFFSET pages of {sc.PAGE}": functools.partial(sc.offset_pages, db),
            f"keyset pages of {sc.PAGE}": functools.partial(sc.keyset_pages, db),
        },
    )
    yield DemoGroup(
        "range",
        f"Sum {RANGE_N:,} integers: list(range(n)) vs range(n)",
        {
            "list(range(n))": functools.partial(sc.list_range, RANGE_N),
            "range(n)": functools.partial(sc.lazy_range, RANGE_N),
        },
    )
    blob = str(workdir / "blob.txt")
    sc.make_blob(blob, BLOB_SIZE)
    yield DemoGroup(
        "file",
        f"Count lines of a {BLOB_SIZE // 10**6} MB file: read() whole vs 64 KB chunks",
        {
            "f.read() whole file": functools.partial(sc.read_whole, blob),
            "64 KB chunks": functools.partial(sc.read_in_chunks, blob),
        },
    )


def run_demo(
    rows: int = 1_000_000,
    repeat: int = 3,
    *,
    on_group: Callable[[DemoGroup], None] | None = None,
    on_run: Callable[[str, int], None] | None = None,
    on_result: Callable[[DemoResult], None] | None = None,
) -> list[DemoResult]:
    """Run every group; returns the results in order (call-backs report progress as it goes)."""
    results = []
    with tempfile.TemporaryDirectory(prefix="membound-demo-") as tmp:
        for group in groups(Path(tmp), rows):
            if on_group is not None:
                on_group(group)
            comparison = compare(group.scenarios, repeat=repeat, on_run=on_run)
            result = DemoResult(group, comparison)
            if on_result is not None:
                on_result(result)
            results.append(result)
    return results
