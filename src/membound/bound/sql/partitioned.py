"""Deprecated path: ``membound.bound.sql.partitioned`` moved to
``membound.bound.sql.partition.run``.

Write ``from membound import run_partitioned``.
Kept because earlier guides cited it; importing it warns once.
"""

from __future__ import annotations

import warnings

from membound.bound.sql.partition.run import PartitionReport, RangeReport, run_partitioned

__all__ = ["PartitionReport", "RangeReport", "run_partitioned"]

warnings.warn(
    "membound.bound.sql.partitioned is deprecated: from membound import run_partitioned",
    DeprecationWarning,
    stacklevel=2,
)
