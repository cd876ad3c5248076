"""Deprecated path: ``membound.guard.asgi_recycler`` moved to ``membound.guard.recycle.uvicorn``.

Write ``from membound.guard import ASGIRecycler``.
Kept because earlier guides cited it; importing it warns once.
"""

from __future__ import annotations

import warnings

from membound.guard.recycle.uvicorn import ASGIRecycler

__all__ = ["ASGIRecycler"]

warnings.warn(
    "membound.guard.asgi_recycler is deprecated: from membound.guard import ASGIRecycler",
    DeprecationWarning,
    stacklevel=2,
)
