"""Deprecated path: ``membound.bound.sql.partition_report`` moved to
``membound.bound.sql.partition.report``.

Write ``from membound import PartitionReport, RangeReport``.
Kept because earlier guides cited it; importing it warns once.
"""

from __future__ import annotations

import warnings

from membound.bound.sql.partition.report import PartitionReport, RangeReport

__all__ = ["PartitionReport", "RangeReport"]

warnings.warn(
    "membound.bound.sql.partition_report is deprecated: "
    "from membound import PartitionReport, RangeReport",
    DeprecationWarning,
    stacklevel=2,
)
