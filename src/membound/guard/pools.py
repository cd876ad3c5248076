"""Deprecated path: ``membound.guard.pools`` moved to ``membound.guard.recycle.process_pools``.

Write ``from membound.guard import RecyclingProcessPool``.
Kept because earlier guides cited it; importing it warns once.
"""

from __future__ import annotations

import warnings

from membound.guard.recycle.process_pools import (
    BrokenProcessPool,
    MemoryCap,
    RecyclingProcessPool,
    recycle_above,
)

__all__ = ["BrokenProcessPool", "MemoryCap", "RecyclingProcessPool", "recycle_above"]

warnings.warn(
    "membound.guard.pools is deprecated: from membound.guard import RecyclingProcessPool",
    DeprecationWarning,
    stacklevel=2,
)
