"""Targets with known allocation lines for the ``where=`` tests: each line that holds memory
at the peak carries a ``# at:NAME`` marker, found by :func:`line_of`."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

KEPT: list[object] = []


def line_of(name: str) -> int:
    """The line number of the ``# at:NAME`` marker in this file."""
    for number, text in enumerate(Path(__file__).read_text().splitlines(), start=1):
        if text.rstrip().endswith(f"# at:{name}"):
            return number
    raise LookupError(name)


def strings(n: int) -> list[str]:
    return [str(i) * 10 for i in range(n)]  # at:helper


def filled(size: int) -> bytes:
    """``size`` bytes, every page written: they raise the RSS whatever memory is free."""
    return b"\x01" * size  # at:filled


def freed_early() -> None:
    scratch = bytearray(40_000_000)  # at:freed
    del scratch


def in_a_thread(out: list[object]) -> None:
    out.append(bytearray(16_000_000))  # at:thread


def two_callers() -> int:
    """One helper called from two lines (30 MB and 15 MB), a thread's 16 MB, 40 MB freed
    before the peak; the peak held 0.5 s (several polls of the tracemalloc fallback, whose
    polling thread a loaded machine may otherwise not run before it ends: with 0.1 s, in the
    Python 3.12 matrix beside the suite, the fallback once named the 24 MB this module builds
    at import, its largest site before the peak)."""
    freed_early()
    keep: list[object] = []
    keep.append(strings(300_000))  # at:first_call
    keep.append(strings(150_000))  # at:second_call
    worker = threading.Thread(target=in_a_thread, args=(keep,))
    worker.start()  # at:start
    worker.join()
    time.sleep(0.5)
    return len(keep)


def beside_a_thread_named_like_membounds() -> int:
    """30 MB of strings kept, and 16 MB held at the same time by a thread named as membound's
    capture poller is (``membound-capture-bound``): that thread's memory is the tracer's."""
    keep: list[object] = [strings(300_000)]  # at:own_kept
    worker = threading.Thread(target=in_a_thread, args=(keep,), name="membound-capture-bound")
    worker.start()
    worker.join()
    time.sleep(0.5)
    return len(keep)


def sqlite_pages() -> int:
    """An in-memory SQLite database of ~20 MB: native memory (SQLite's page cache)."""
    db = sqlite3.connect(":memory:")
    db.execute("create table t(x)")
    db.executemany("insert into t values (?)", ((b"y" * 1000,) for _ in range(20_000)))  # at:sqlite
    n = db.execute("select count(*) from t").fetchone()[0]
    KEPT.append(db)
    return int(n)


def numpy_buffer() -> int:
    """A 40 MB numpy array: native memory numpy asks for through its own allocator wrappers."""
    import numpy as np

    array = np.ones(5_000_000)  # at:numpy
    KEPT.append(array)
    return int(array.size)


def grows_forever() -> None:
    """Grows by 4 MB every 5 ms until stopped."""
    keep = []
    while True:
        keep.append(bytearray(4_000_000))  # at:grows
        time.sleep(0.005)


def nothing() -> None:
    """Allocates nothing worth naming."""


def keeps_a_block() -> None:
    """Builds 100 MB and keeps it (a notebook cell loading a table), held 0.3 s."""
    KEPT.append(bytearray(100_000_000))  # at:kept
    time.sleep(0.3)


_DOCS = [json.dumps([{"k": i, "v": "x" * 50} for i in range(20_000)]) for _ in range(4)]


def pool_parses() -> int:
    """Four ~6 MB JSON documents parsed by a pool's threads (only the standard library's frames
    on their stacks), kept."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        parsed = list(pool.map(json.loads, _DOCS))  # at:pool_map
    KEPT.append(parsed)
    return len(parsed)


@dataclasses.dataclass
class Record:
    """A dataclass whose generated ``__init__`` (code with no file: ``<string>``) makes the
    containers its fields default to."""

    name: str
    tags: list[str] = dataclasses.field(default_factory=list)
    meta: dict[str, int] = dataclasses.field(default_factory=dict)


def dataclass_records(n: int = 150_000) -> int:
    """Records built on one line of this file, each ``__init__`` making a list and a dict."""
    records = [Record(str(i)) for i in range(n)]  # at:records
    KEPT.append(records)
    return len(records)
