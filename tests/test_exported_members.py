"""The public API is pinned: adding a name is a decision, removing one breaks users."""

from __future__ import annotations

import membound

EXPECTED = [
    "LeaseLost",
    "LeasedRange",
    "PartitionFailed",
    "PartitionReport",
    "RangeReport",
    "claim_ranges",
    "run_partitioned",
    "Batch",
    "BatchSourceError",
    "BatchWriteError",
    "BatchWriter",
    "BoundedPool",
    "Checkpoint",
    "ChildFailed",
    "CommandNotFound",
    "Comparison",
    "Complexity",
    "ComplexityPoint",
    "DatabaseLocked",
    "DatabaseUnavailable",
    "Growth",
    "Holder",
    "Interrupted",
    "KeyOrderError",
    "KeyRange",
    "LeakReport",
    "LeakRound",
    "Limit",
    "LimitExceeded",
    "Measurement",
    "MemboundError",
    "MemoryBudgetExceeded",
    "PeakSite",
    "Pipeline",
    "PoolStats",
    "Released",
    "SIZE_CONVENTION",
    "ScenarioStats",
    "Site",
    "SizeError",
    "Spread",
    "StageStats",
    "TargetError",
    "Timeline",
    "TypeGrowth",
    "Watchdog",
    "__version__",
    "batched",
    "classify",
    "compare",
    "complexity",
    "deep_sizeof",
    "find_each",
    "find_leaks",
    "format_size",
    "guard",
    "health",
    "in_batches",
    "instance_size",
    "key_ranges",
    "lmdb_batches",
    "measure",
    "measure_command",
    "memory_budget",
    "memory_limit",
    "parse_size",
    "pipeline",
    "read_chunks",
    "read_lines",
    "release_memory",
    "report",
    "scenario",
    "track",
]


def test_all_is_pinned() -> None:
    assert sorted(EXPECTED) == sorted(membound.__all__)


def test_all_has_no_duplicates_and_resolves() -> None:
    assert len(set(membound.__all__)) == len(membound.__all__)
    for name in membound.__all__:
        assert getattr(membound, name) is not None, name
