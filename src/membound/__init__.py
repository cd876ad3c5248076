"""membound: prove that Python code runs in bounded memory.

Measure memory (RSS and Python heap) of functions, scripts and commands, judge how it grows, bound
it with O(1) building blocks, and guard it in tests and production. The public API is re-exported
here explicitly, each imported when first used; everything else lives in private modules.
"""

from __future__ import annotations

# First, before anything else is imported (a command's own modules take a tenth of a second):
# when this process is the membound command, Ctrl-C (SIGTERM, SIGHUP) while it starts ends it
# with one line and 128 + N, no traceback; closed stdio descriptors are opened on /dev/null
# (``_startup.py``, standard library only: the package root imports no part of the CLI).
from membound import _startup  # noqa: F401

# isort: split
from typing import TYPE_CHECKING

from membound._errors import (
    BatchSourceError,
    BatchWriteError,
    ChildFailed,
    CommandNotFound,
    DatabaseLocked,
    DatabaseUnavailable,
    Interrupted,
    KeyOrderError,
    LeaseLost,
    LimitExceeded,
    MemboundError,
    MemoryBudgetExceeded,
    PartitionFailed,
    SizeError,
    TargetError,
    TaskMemoryRefused,
)
from membound._lazy import DEFERRED, on_first_use
from membound._units import SIZE_CONVENTION, format_size, parse_size
from membound._version import __version__

# ``membound.measure`` is the subpackage and, in this namespace, the function: the import
# system binds a subpackage to its parent's name the first time it imports it, which must
# happen now (the package imports nothing), before the function is bound on first use (the
# name is deleted at the end of this file).
__import__("membound.measure")

if TYPE_CHECKING:
    from typing import Any

    from membound import guard, report
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
    from membound.bound.sql import (
        Batch,
        BatchWriter,
        Checkpoint,
        KeyRange,
        LeasedRange,
        PartitionReport,
        RangeReport,
        claim_ranges,
        find_each,
        in_batches,
        key_ranges,
        run_partitioned,
    )
    from membound.guard.health import health
    from membound.guard.limit import Limit, memory_limit
    from membound.guard.watchdog.core import Watchdog
    from membound.judge.compare import compare
    from membound.judge.complexity import complexity
    from membound.judge.leaks import find_leaks
    from membound.measure.isolate.command import measure_command
    from membound.measure.isolate.function import measure
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
        PeakSite,
        ScenarioStats,
        Site,
        Spread,
        Timeline,
        TypeGrowth,
        classify,
    )

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
    "DatabaseUnavailable",
    "Growth",
    "Holder",
    "Interrupted",
    "KeyOrderError",
    "KeyRange",
    "LeakReport",
    "LeakRound",
    "LeaseLost",
    "LeasedRange",
    "Limit",
    "LimitExceeded",
    "Measurement",
    "MemboundError",
    "MemoryBudgetExceeded",
    "PartitionFailed",
    "PartitionReport",
    "PeakSite",
    "Pipeline",
    "PoolStats",
    "RangeReport",
    "Released",
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
    "claim_ranges",
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
    "run_partitioned",
    "scenario",
    "track",
]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext membound``: register the IPython/Jupyter magics (``membound[notebook]``)."""
    try:
        from membound.notebook.magics import load_ipython_extension as load
    except ImportError:  # pragma: no cover - IPython runs this, so IPython is there
        raise ImportError(
            "the membound magics need IPython: pip install 'membound[notebook]'"
        ) from None
    load(ipython)


# Every other public name, imported on first use (see ``membound/_lazy.py``).
__getattr__, __dir__ = on_first_use(
    __name__, {name: home for name, (home, _) in DEFERRED.items()}, subpackages=True
)

# Only the public names stay in the namespace (tests/test_exported_members.py derives
# ``__all__`` from it); the submodules the imports above bound stay too, as Python binds them.
# ``measure`` goes, so that the first use binds the function in its place.
# (popped: after ``importlib.reload`` the subpackage, imported already, is not bound again).
del annotations, TYPE_CHECKING, DEFERRED, on_first_use
globals().pop("measure", None)
