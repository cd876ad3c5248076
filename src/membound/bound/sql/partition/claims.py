"""``claim_ranges``: plain processes (cron jobs, Kubernetes indexed Jobs) share one partitioned
job through the lease table ``membound_leases`` in the same database, without a scheduler.

The first process to arrive cuts the ranges (``key_ranges``) and stores them; every process then
leases free ranges one at a time. A background heartbeat renews the lease while the range is in
the caller's hands; the range is marked done when the caller asks for the next one. A process
that dies leaves its lease to run out, and another process takes the range over, resuming after
the range's checkpoint (at most one batch is redone). The checkpoint handed out is fenced by the
lease (``leases.py``): a process that lost its range can commit nothing more.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from membound._errors import BatchSourceError, LeaseLost
from membound._units import parse_duration
from membound.bound.sql.checkpoint import Checkpoint
from membound.bound.sql.connection import (
    DEFAULT_DB_WAIT_S,
    check_db_wait,
    engine_of,
    require_sqlalchemy,
    with_db_retry,
)
from membound.bound.sql.partition.leases import JobTable, Lease, LeasedCheckpoint, describe_source
from membound.bound.sql.partition.owners import Heartbeat, default_owner
from membound.bound.sql.partition.ranges import KeyRange, key_ranges

__all__ = ["LeasedRange", "claim_ranges"]

T = TypeVar("T")
_log = logging.getLogger("membound")


@dataclass(frozen=True)
class LeasedRange(KeyRange):
    """A :class:`KeyRange` leased to this process, with the range's own checkpoint.

    Attributes:
        part: the range's number in the job.
        checkpoint: the range's checkpoint (named ``"{job}/{start key}"``), fenced by the lease:
            give it to ``find_each``/``in_batches`` and ``BatchWriter`` so a resumed range
            continues after its last committed batch.
    """

    part: int = 0
    checkpoint: Checkpoint | None = None
    _lease: Lease | None = field(default=None, repr=False, compare=False)

    @property
    def lost(self) -> bool:
        """Whether another process took the range over (this one's lease ran out)."""
        return self._lease is not None and self._lease.lost


def claim_ranges(
    engine: Any,
    name: str,
    source: Any,
    parts: int | None = None,
    rows_per_part: int | None = None,
    *,
    lease: float | str = "60 s",
    key: Any = None,
    owner: str | None = None,
    restart: bool = False,
    wait: bool = True,
    db_wait: float = DEFAULT_DB_WAIT_S,
) -> Iterator[LeasedRange]:
    """Yield key ranges of a shared job, each leased to this process while it works on it.

    Run the same loop in N processes; together they cover every range once::

        for r in mb.claim_ranges(engine, "nightly-2026-11-23", users, parts=32):
            with mb.BatchWriter(engine, checkpoint=r.checkpoint) as w:
                for row in mb.find_each(engine, users, start=r.start, stop=r.stop,
                                        checkpoint=r.checkpoint):
                    w.add(stmt, {...})

    A range is done when the loop asks for the next one (so ``list(claim_ranges(...))`` marks
    every range done: to look at the ranges, use :func:`key_ranges`); leaving the loop early
    (``break``, an exception) gives the range in hand back for another process to take at
    once. A job that finished stays finished: a later call yields nothing and warns. When no
    range is free but some are leased by other processes, this process waits (``wait=True``)
    in case one of them dies and its range comes free, and returns once every range is done.

    Args:
        engine: the database of the source (the lease table and checkpoints live there too).
        name: the job's name; a finished job stays finished (use a new name per run, or
            ``restart=True``).
        source: a ``Table``, ORM entity or ``select()`` (as :func:`find_each`).
        parts: how many ranges (only the first process to arrive cuts them).
        rows_per_part: rows per range instead.
        lease: how long a range stays claimed without a heartbeat; the heartbeat renews it
            every third of that. A dead process's range is taken over after at most this long.
        key: the key column(s), as for :func:`find_each`.
        owner: this process's name in the table (default: host, pid and a random suffix).
        restart: forget the job of this name first (its ranges and checkpoints).
        wait: wait while other live processes hold the remaining ranges (said once on the
            ``membound`` logger, with how many and until when their leases run).
        db_wait: seconds the lease table's reads and leases are retried while the database
            does not answer (a restart); then :class:`~membound.DatabaseUnavailable`.

    Raises:
        BatchSourceError: bad arguments, a source without a usable key, a job of this name
            with other ranges, or a lease table of an older layout.
        DatabaseUnavailable: the database did not answer for ``db_wait`` seconds.
        LeaseLost: raised by the checkpoint's saves once this process's lease ran out and
            another process took the range (a writer's flush raises ``BatchWriteError``
            caused by it).
    """
    require_sqlalchemy()
    bound = engine_of(engine)
    lease_s = parse_duration(lease, name="lease")
    db_wait_s = check_db_wait(db_wait)
    if owner is not None and (not isinstance(owner, str) or not owner):
        raise BatchSourceError(f"owner must be a non-empty string, got {owner!r}")
    jobs = JobTable(bound, name)
    spec = {
        "source": describe_source(bound, source, key),
        "parts": parts,
        "rows_per_part": rows_per_part,
    }
    if jobs.open(spec, lambda: key_ranges(bound, source, parts, rows_per_part, key=key), restart):
        warnings.warn(
            f"job {name!r} finished before: there is nothing to claim. Name each run of a "
            "job (e.g. with its date), or pass restart=True to run it again",
            stacklevel=2,
        )
    return _claims(jobs, owner or default_owner(), lease_s, wait, db_wait_s)


def _claims(
    jobs: JobTable, owner: str, lease_s: float, wait: bool, db_wait: float
) -> Iterator[LeasedRange]:
    def book(fn: Callable[[], T], doing: str) -> T:
        return with_db_retry(fn, doing=f"{doing} job {jobs.job!r}", db_wait=db_wait)

    said = False
    while True:
        claimed = book(lambda: jobs.claim_free(owner, lease_s), "leasing a range of")
        if claimed is None:
            rows = book(jobs.ranges, "reading the ranges of")
            pending = [r for r in rows if not r.done]
            if not pending:
                book(jobs.finish, "finishing")
                return
            if not wait:
                return
            # Held by live leases: look again when the first of them could run out.
            now = time.time()
            soonest = min((r.lease_until or now) for r in pending)
            if not said:
                said = True
                _log.info(
                    "membound: job %r: %d range(s) leased by other processes; waiting for "
                    "them to finish or for a lease to run out (the first in %.0f s)",
                    jobs.job,
                    len(pending),
                    max(soonest - now, 0.0),
                )
            time.sleep(min(max(soonest - now, 0.05), lease_s / 4, 5.0))
            continue
        beat = Heartbeat(claimed)
        row = claimed.row
        leased = LeasedRange(
            start=row.start,
            stop=row.stop,
            rows=row.rows,
            basis=row.basis,
            part=row.part,
            checkpoint=LeasedCheckpoint(claimed),
            _lease=claimed,
        )
        finished = False
        try:
            yield leased
            finished = True
        finally:
            beat.stop()
            if finished and not claimed.lost:
                # Taken over meanwhile (LeaseLost): the new owner finishes it.
                with contextlib.suppress(LeaseLost):
                    claimed.finish(row.rows, 0.0, None)
            elif not finished:
                claimed.release()
