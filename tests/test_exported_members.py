"""The public API is pinned: adding a name is a decision, removing one breaks users."""

from __future__ import annotations

import subprocess
import sys
from types import ModuleType

import membound
from membound._lazy import DEFERRED

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
    "TaskMemoryRefused",
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


#: Subpackages that are part of the API (``membound.guard.Watchdog``, ``membound.report``).
PUBLIC_PACKAGES = {"guard", "report"}
#: Names a tool looks for by name: IPython's ``%load_ext membound``.
HOOKS = {"load_ipython_extension"}


def isort_order(name: str) -> tuple[int, str]:
    """Constants, then classes, then the rest (ruff's RUF022 order)."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


def _own_package(value: object) -> bool:
    """A part of membound the import system bound (``membound.bound``), not a helper module."""
    return isinstance(value, ModuleType) and value.__name__.startswith("membound.")


def public_names(namespace: dict[str, object]) -> set[str]:
    """What ``membound`` holds that a user may use: no helper, no implementation package."""
    return (
        {
            name
            for name, value in namespace.items()
            if name.isidentifier()  # pytest's assertion rewriting adds "@py_builtins"
            and not name.startswith("_")
            and name not in HOOKS
            and not (_own_package(value) and name not in PUBLIC_PACKAGES)
        }
        | set(DEFERRED)
        | {"__version__"}
    )


def test_all_is_derived_from_the_namespace_and_sorted() -> None:
    """``__all__`` is every public name in ``vars(membound)``, sorted: a helper import
    (``Any``, ``importlib``) left in the namespace, or a name exported but not listed, fails."""
    assert membound.__all__ == sorted(public_names(vars(membound)), key=isort_order)


def test_a_fresh_import_holds_no_helper_names() -> None:
    """In a fresh interpreter, before anything else imports a submodule."""
    code = (
        "import membound, types; print(sorted(n for n, v in vars(membound).items() "
        "if not n.startswith('_') and not (isinstance(v, types.ModuleType)"
        " and v.__name__.startswith('membound.'))"
        " and n not in membound.__all__))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "['load_ipython_extension']" == out.strip()


def test_import_membound_imports_no_part_of_the_cli() -> None:
    code = "import membound, sys; print(sorted(m for m in sys.modules if '.cli' in m))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "[]" == out.strip()
