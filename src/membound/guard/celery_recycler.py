"""Deprecated path: ``membound.guard.celery_recycler`` moved to ``membound.guard.recycle.celery``.

Write ``from membound.guard import recycle_children``.
Kept because earlier guides cited it; importing it warns once.
"""

from __future__ import annotations

import warnings

from membound.guard.recycle.celery import current_kib, private_bytes, recycle_children

__all__ = ["current_kib", "private_bytes", "recycle_children"]

warnings.warn(
    "membound.guard.celery_recycler is deprecated: from membound.guard import recycle_children",
    DeprecationWarning,
    stacklevel=2,
)
