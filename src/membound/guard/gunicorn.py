"""Deprecated path: ``membound.guard.gunicorn`` moved to ``membound.guard.recycle.gunicorn``.

Write ``from membound.guard import GunicornRecycler``.
Kept because earlier guides cited it; importing it warns once.
"""

from __future__ import annotations

import warnings

from membound.guard.recycle.gunicorn import GunicornRecycler, Recycler

__all__ = ["GunicornRecycler", "Recycler"]

warnings.warn(
    "membound.guard.gunicorn is deprecated: from membound.guard import GunicornRecycler",
    DeprecationWarning,
    stacklevel=2,
)
