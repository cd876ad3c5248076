"""membound: prove that Python code runs in bounded memory.

Measure memory (RSS and Python heap) of functions, scripts and commands, judge how it grows, bound
it with O(1) building blocks, and guard it in tests and production. The public API is re-exported
here explicitly; everything else lives in private modules.
"""

from __future__ import annotations

from membound import report
from membound._errors import (
    ChildFailed,
    CommandNotFound,
    KeyOrderError,
    LimitExceeded,
    MemboundError,
    MemoryBudgetExceeded,
    SizeError,
    TargetError,
)
from membound._units import SIZE_CONVENTION, format_size, parse_size
from membound.judge.compare import Comparison, ScenarioStats, Spread, compare, scenario
from membound.judge.complexity import Complexity, ComplexityPoint, complexity
from membound.judge.leaks import LeakReport, LeakRound, Site, TypeGrowth, find_leaks
from membound.judge.timeline import Growth, classify
from membound.measure.isolate import measure, measure_command
from membound.measure.result import Measurement
from membound.measure.sizeof import deep_sizeof, instance_size
from membound.measure.timeline import Timeline
from membound.measure.track import track

__version__ = "0.1.0"

__all__ = [
    "SIZE_CONVENTION",
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
