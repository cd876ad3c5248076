"""release_memory and memory_budget with real allocations (release runs in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import typing

import pytest

from membound import MemoryBudgetExceeded, memory_budget, release_memory

MB = 1 << 20

RELEASE_CHILD = """
import json
from membound import release_memory
from membound.bound._rss import current_rss
base = current_rss()
xs = [b"x" * 600 + bytes([i % 256]) for i in range(300_000)]  # ~200 MB of 600-byte objects
peak = current_rss()
del xs
r = release_memory()
print(json.dumps({"base": base, "peak": peak, "before": r.rss_before, "after": r.rss_after,
                  "trimmed": r.trimmed}))
"""


def test_release_memory_returns_freed_heap_to_the_os() -> None:
    out = subprocess.run(
        [sys.executable, "-c", RELEASE_CHILD], capture_output=True, text=True, check=True
    )
    r = json.loads(out.stdout)
    allocated = r["peak"] - r["base"]
    assert allocated > 100 * MB
    if r["trimmed"] is None:
        pytest.skip("this C library has no malloc_trim")
    assert r["after"] - r["base"] < 0.3 * allocated  # most of it went back to the OS


def test_release_memory_reports_each_step() -> None:
    r = release_memory()
    assert r.rss_before > 0
    assert r.rss_after > 0
    assert r.gc_collected >= 0
    assert r.released == r.rss_before - r.rss_after


def grow_until_stopped(chunks: list[bytes], max_mb: int = 2000) -> None:
    for _ in range(max_mb):
        chunks.append(b"\x01" * MB)  # written pages: RSS really grows


def test_budget_stops_a_growing_block() -> None:
    chunks: list[bytes] = []

    def guarded() -> None:
        with memory_budget("64 MB", relative=True):
            grow_until_stopped(chunks)

    with pytest.raises(MemoryBudgetExceeded, match="RSS growth reached") as info:
        guarded()
    grown = len(chunks)
    chunks.clear()
    assert info.value.limit == 64_000_000  # size strings use SI units: MB = 10**6
    assert info.value.observed is not None
    assert info.value.observed > 64_000_000
    assert grown < 1000  # stopped long before the 2 GB the loop would reach


def test_budget_raises_in_the_thread_that_entered() -> None:
    result: dict[str, typing.Any] = {}

    def handler() -> None:
        chunks: list[bytes] = []
        try:
            with memory_budget(48 * MB, relative=True):
                grow_until_stopped(chunks)
        except MemoryBudgetExceeded as exc:
            result["error"] = exc
        result["grown"] = len(chunks)

    thread = threading.Thread(target=handler)
    thread.start()
    thread.join(timeout=60)
    assert isinstance(result.get("error"), MemoryBudgetExceeded)
    assert result["grown"] < 1000


def test_budget_within_limit_raises_nothing_later() -> None:
    with memory_budget("1 GB", relative=True) as budget:
        data = [b"y" * 1000 for _ in range(1000)]
    del data
    deadline = time.monotonic() + 0.2
    while time.monotonic() < deadline:  # bytecodes run: a stray async exception would fire here
        pass
    assert budget.observed is None


def test_absolute_limit_already_exceeded() -> None:
    def guarded() -> None:
        with memory_budget(1 * MB):  # any interpreter is above 1 MB RSS
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                pass

    with pytest.raises(MemoryBudgetExceeded, match=r"RSS reached .* over the limit of 1"):
        guarded()


def test_budget_rejects_bad_limit() -> None:
    with pytest.raises(ValueError, match="positive"):
        memory_budget(0)


def test_nested_budgets_each_report_their_own_limit() -> None:
    chunks: list[bytes] = []

    def guarded() -> None:
        with memory_budget("4 GB", relative=True), memory_budget("40 MB", relative=True):
            grow_until_stopped(chunks)

    with pytest.raises(MemoryBudgetExceeded) as info:
        guarded()
    chunks.clear()
    assert 40_000_000 == info.value.limit
