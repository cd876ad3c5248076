"""membound: prove that Python code runs in bounded memory.

Measure memory (RSS and Python heap) of functions, scripts and commands, judge how it grows, bound
it with O(1) building blocks, and guard it in tests and production. The public API is re-exported
here explicitly; everything else lives in private modules.
"""

from __future__ import annotations

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

__version__ = "0.1.0"

__all__ = [
    "SIZE_CONVENTION",
    "ChildFailed",
    "CommandNotFound",
    "KeyOrderError",
    "LimitExceeded",
    "MemboundError",
    "MemoryBudgetExceeded",
    "SizeError",
    "TargetError",
    "__version__",
    "format_size",
    "parse_size",
]
