"""Partitioned runs: one job over a table split into key ranges, each range worked in short
transactions by whichever worker holds its lease, on Dask, an executor or in this process.

``ranges`` splits the key space into ranges balanced by rows (:func:`key_ranges`); the job
table ``membound_leases`` is ``leases`` (its rows; taking, renewing, splitting and finishing a
range's lease) and ``owners`` (who owns one, and the heartbeat); ``run`` is
:func:`run_partitioned`, whose ``coordinator`` hands ranges to a ``runners`` backend (Dask,
``concurrent.futures``, this process) and ends the run; ``claims`` lets workers started
elsewhere claim ranges themselves (:func:`claim_ranges`); ``report`` is what a run reports.
"""

from __future__ import annotations

from membound.bound.sql.partition.claims import LeasedRange, claim_ranges
from membound.bound.sql.partition.ranges import KeyRange, key_ranges
from membound.bound.sql.partition.run import PartitionReport, RangeReport, run_partitioned

__all__ = [
    "KeyRange",
    "LeasedRange",
    "PartitionReport",
    "RangeReport",
    "claim_ranges",
    "key_ranges",
    "run_partitioned",
]
