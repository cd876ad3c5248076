"""Deprecated path: ``membound.measure.command`` moved to ``membound.measure.isolate.command``.

Write ``from membound import measure_command``.
Kept because earlier guides cited it; importing it warns once.
"""

from __future__ import annotations

import warnings

from membound.measure.isolate.command import measure_command

__all__ = ["measure_command"]

warnings.warn(
    "membound.measure.command is deprecated: from membound import measure_command",
    DeprecationWarning,
    stacklevel=2,
)
