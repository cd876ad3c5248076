"""The public API is pinned: adding a name is a decision, removing one breaks users."""

from __future__ import annotations

import membound

EXPECTED = [
    "Batch",
    "BatchSourceError",
    "BatchWriteError",
    "BatchWriter",
    "BoundedPool",
    "Checkpoint",
    "ChildFailed",
    "CommandNotFound",
    "DatabaseLocked",
    "KeyOrderError",
    "LimitExceeded",
    "MemboundError",
    "MemoryBudgetExceeded",
    "Pipeline",
    "PoolStats",
    "Released",
    "SIZE_CONVENTION",
    "SizeError",
    "StageStats",
    "TargetError",
    "__version__",
    "batched",
    "find_each",
    "format_size",
    "in_batches",
    "lmdb_batches",
    "memory_budget",
    "parse_size",
    "pipeline",
    "read_chunks",
    "read_lines",
    "release_memory",
]


def test_all_is_pinned() -> None:
    assert sorted(EXPECTED) == sorted(membound.__all__)


def test_all_is_sorted_and_resolvable() -> None:
    assert sorted(membound.__all__) == list(membound.__all__)
    for name in membound.__all__:
        assert getattr(membound, name) is not None, name
