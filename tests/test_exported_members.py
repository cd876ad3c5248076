"""The public API is pinned: adding a name is a decision, removing one breaks users."""

from __future__ import annotations

import membound

EXPECTED = [
    "ChildFailed",
    "CommandNotFound",
    "Comparison",
    "Complexity",
    "ComplexityPoint",
    "Growth",
    "KeyOrderError",
    "LeakReport",
    "LeakRound",
    "LimitExceeded",
    "Measurement",
    "MemboundError",
    "MemoryBudgetExceeded",
    "SIZE_CONVENTION",
    "ScenarioStats",
    "Site",
    "SizeError",
    "Spread",
    "TargetError",
    "Timeline",
    "TypeGrowth",
    "__version__",
    "classify",
    "compare",
    "complexity",
    "deep_sizeof",
    "find_leaks",
    "format_size",
    "instance_size",
    "measure",
    "measure_command",
    "parse_size",
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
