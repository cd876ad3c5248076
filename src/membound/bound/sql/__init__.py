"""Keyset batches over SQL in short transactions, a checkpointed batch writer (DESIGN §6).

Why membound has its own loop instead of using a peer's: SQLAlchemy ``yield_per`` and Django
``iterator()`` keep one cursor (and so one read transaction) open for the whole loop, which blocks
SQLite writers and pins PostgreSQL snapshots and WAL checkpoints; Rails ``find_each`` leaves
transactions to the caller and resumes inclusively; sqlakeyset pages but has no loop and no
checkpoint. None separates read and write batch sizes or commits a checkpoint in the same
transaction as the writes. The contract implemented here:

* G1 every row present for the whole run comes out exactly once: ordering is by a unique, non-null
  key and each batch resumes *strictly after* the previous batch's last key. "Non-null" is what
  the database says, asked before the first page (``nulls.py``): a key column that can hold NULL
  is refused unless the source filters it ``IS NOT NULL``.
* G2 each batch is read committed. ``finish="snapshot"`` (the default) freezes the largest key at
  start, so rows inserted later with larger keys are not visited; ``finish=None`` follows them.
* G3 :meth:`Batch.where` re-applies the source's filter and the batch's key range.
* G4 each batch is fetched completely in its own short transaction, and the connection goes back to
  the pool *before* the batch is handed to user code.
* G6 a batch whose first key is not greater than the previous batch's last key raises
  :class:`~membound.KeyOrderError`: the database and Python disagree on key order. A key moved by
  another writer mid-run is *not* detected: its row comes out twice (moved ahead of the cursor)
  or never (moved behind it, or above the snapshot); telling a move from an insert or a delete
  takes every visited key in memory or a count, neither of them cheap.
* G7 a :class:`Checkpoint` stores the last key whose effects are committed; resume is exclusive.
  With ``BatchWriter(checkpoint=...)`` the position commits in the same transaction as each flush.

Bounds: ``start`` and ``finish`` values are inclusive, ``stop`` exclusive; a checkpoint position
is exclusive.

Modules: ``plan`` (the source and its key), ``nulls`` (which key columns can hold NULL),
the ``partition`` package (ranges balanced by rows, their leases, ``run_partitioned`` and
``claim_ranges``: see its docstring), ``autosize`` (``batch_size="auto"``), ``pages`` (page
statements and the fetch strategy), ``driver`` (the ``tuples=True`` driver path), ``read``
(``find_each``, ``in_batches``, ``Batch``), ``checkpoint``, ``writer`` (``BatchWriter``),
``executemany`` (how a flush's items are sent: one statement, the driver, or SQLAlchemy),
``unnest_batch`` (the one-statement form and its proof, G9), ``catalog`` (what PostgreSQL's
catalogs say about a write's table), ``sql_equality`` (when two keys are one row in SQL),
``progress``, ``keys`` and ``connection``. ``partitioned`` and ``partition_report`` are the
deprecated paths of ``partition.run`` and ``partition.report``. This module only re-exports.
"""

from __future__ import annotations

from membound.bound.sql.checkpoint import Checkpoint
from membound.bound.sql.partition.claims import LeasedRange, claim_ranges
from membound.bound.sql.partition.ranges import KeyRange, key_ranges
from membound.bound.sql.partition.run import PartitionReport, RangeReport, run_partitioned
from membound.bound.sql.read import Batch, find_each, in_batches
from membound.bound.sql.writer import BatchWriter

__all__ = [
    "Batch",
    "BatchWriter",
    "Checkpoint",
    "KeyRange",
    "LeasedRange",
    "PartitionReport",
    "RangeReport",
    "claim_ranges",
    "find_each",
    "in_batches",
    "key_ranges",
    "run_partitioned",
]
