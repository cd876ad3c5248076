"""membound: prove that Python code runs in bounded memory.

Measure memory (RSS and Python heap) of functions, scripts and commands, judge how it grows, bound
it with O(1) building blocks, and guard it in tests and production. The public API is re-exported
here explicitly; everything else lives in private modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from membound import report
from membound._errors import (
    BatchSourceError,
    BatchWriteError,
    ChildFailed,
    CommandNotFound,
    DatabaseLocked,
    Interrupted,
    KeyOrderError,
    LimitExceeded,
    MemboundError,
    MemoryBudgetExceeded,
    SizeError,
    TargetError,
)
from membound._units import SIZE_CONVENTION, format_size, parse_size
from membound._version import __version__
from membound.bound.budget import memory_budget
from membound.bound.iterables import (
    Pipeline,
    StageStats,
    batched,
    pipeline,
    read_chunks,
    read_lines,
)
from membound.bound.kv import lmdb_batches
from membound.bound.pool import BoundedPool, PoolStats
from membound.bound.release import Released, release_memory
from membound.judge.compare import compare
from membound.judge.complexity import complexity
from membound.judge.leaks import find_leaks
from membound.measure.command import measure_command
from membound.measure.isolate import measure
from membound.measure.scenarios import scenario
from membound.measure.sizeof import deep_sizeof, instance_size
from membound.measure.track import track
from membound.results import (
    Comparison,
    Complexity,
    ComplexityPoint,
    Growth,
    Holder,
    LeakReport,
    LeakRound,
    Measurement,
    ScenarioStats,
    Site,
    Spread,
    Timeline,
    TypeGrowth,
    classify,
)

if TYPE_CHECKING:
    from membound.bound.sql import Batch, BatchWriter, Checkpoint, find_each, in_batches

#: Names imported on first use: ``membound.bound.sql`` imports SQLAlchemy, about 0.3 s that every
#: ``membound`` command (``membound lint`` on two files in a pre-commit hook) would pay otherwise.
_LAZY = {
    "Batch": "membound.bound.sql",
    "BatchWriter": "membound.bound.sql",
    "Checkpoint": "membound.bound.sql",
    "find_each": "membound.bound.sql",
    "in_batches": "membound.bound.sql",
}


def __getattr__(name: str) -> Any:
    """Import the lazily exported names (PEP 562) on first access."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'membound' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "SIZE_CONVENTION",
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
    "Growth",
    "Holder",
    "Interrupted",
    "KeyOrderError",
    "LeakReport",
    "LeakRound",
    "LimitExceeded",
    "Measurement",
    "MemboundError",
    "MemoryBudgetExceeded",
    "Pipeline",
    "PoolStats",
    "Released",
    "ScenarioStats",
    "Site",
    "SizeError",
    "Spread",
    "StageStats",
    "TargetError",
    "Timeline",
    "TypeGrowth",
    "__version__",
    "batched",
    "classify",
    "compare",
    "complexity",
    "deep_sizeof",
    "find_each",
    "find_leaks",
    "format_size",
    "in_batches",
    "instance_size",
    "lmdb_batches",
    "measure",
    "measure_command",
    "memory_budget",
    "parse_size",
    "pipeline",
    "read_chunks",
    "read_lines",
    "release_memory",
    "report",
    "scenario",
    "track",
]
