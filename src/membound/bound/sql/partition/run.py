"""``run_partitioned``: a source's balanced key ranges run as tasks on Dask, an executor or in
process; each range read in keyset batches with its own lease, checkpoint and ``BatchWriter``.

Exactly once (G7 per range): a range's writes commit with its checkpoint *and* a fence on its
lease (``leases.py``), so a range retried elsewhere after its worker died resumes strictly after
the last committed position, and a worker that lost its range can commit nothing more. A
read-only ``fn`` (no writes) gets its position saved every ``SYNC_INTERVAL_S`` instead: a crash
calls it again on at most that much of the range.

The job's ranges are kept in ``membound_leases``: a run that stopped (a crash, Ctrl-C, a range
that failed) is resumed by calling again with the same name, on the very ranges it started with
(a new ``key_ranges`` would cut elsewhere and break the per-range checkpoints). A finished job
stays finished: calling again returns its report; ``restart=True`` starts anew.

Stragglers: while a task slot is idle and nothing waits to run, the range with the most rows
left is split at the key halfway through its unread part; its worker applies the split between
two batches and the tail becomes a new range with a checkpoint of its own.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from membound._errors import BatchSourceError, LeaseLost
from membound._units import parse_duration
from membound.bound._rss import current_rss, peak_rss, reset_peak
from membound.bound.sql.autosize import PageSizer, check_batch_size
from membound.bound.sql.checkpoint import Checkpoint
from membound.bound.sql.connection import (
    DEFAULT_DB_WAIT_S,
    check_db_wait,
    engine_of,
    require_sqlalchemy,
    with_db_retry,
)
from membound.bound.sql.keys import as_key, compare, public_key
from membound.bound.sql.partition.coordinator import Coordinator, progress_bar
from membound.bound.sql.partition.leases import (
    JobTable,
    Lease,
    LeasedCheckpoint,
    RangeRow,
    describe_source,
    range_name,
)
from membound.bound.sql.partition.owners import Heartbeat, abandoned, coordinating, default_owner
from membound.bound.sql.partition.ranges import key_ranges
from membound.bound.sql.partition.report import PartitionReport, RangeReport
from membound.bound.sql.partition.runners import Runner, runner_for
from membound.bound.sql.plan import SourcePlan
from membound.bound.sql.read import in_batches
from membound.bound.sql.writer import BatchWriter

with contextlib.suppress(ImportError):
    import sqlalchemy as sa

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["PartitionReport", "RangeReport", "run_partitioned"]

T = TypeVar("T")

#: Least time between two commits of a range's progress (rows done, the position of a
#: read-only ``fn``, split requests). A commit per batch would cost more than a small batch's
#: read on SQLite; a crash redoes at most this much of a read-only ``fn``'s work.
SYNC_INTERVAL_S = 0.25

#: Engines made from URLs in this process, one per URL (a worker runs many ranges).
_ENGINES: dict[str, Any] = {}


#: Engines checked for connections inherited across a fork, in this process.
_CHECKED: weakref.WeakSet[Any] = weakref.WeakSet()


def _forget_engines_after_fork() -> None:
    # A forked worker (a process pool's) must not use its parent's pooled connections: two
    # processes on one socket corrupt the protocol. SQLAlchemy's recipe: dispose(close=False).
    for engine in _ENGINES.values():
        engine.dispose(close=False)
    _ENGINES.clear()
    _CHECKED.clear()


os.register_at_fork(after_in_child=_forget_engines_after_fork)


@dataclass(frozen=True)
class RangeTask:
    """Everything a worker needs for one range (pickled to it)."""

    db: Any
    """A URL, an engine factory, or (for tasks run in this process) an Engine."""
    source: Any
    fn: Callable[[Any, BatchWriter], Any]
    job: str
    part: int
    key: Any
    batch_size: int | Literal["auto"]
    write_batch_size: int | Literal["auto"]
    target_batch_s: float
    max_batch_memory: int | str
    lease_s: float
    measure_peak: bool
    coordinator: str = ""
    coordinator_pid: int = 0
    db_wait: float = DEFAULT_DB_WAIT_S


def _book(task: RangeTask, fn: Callable[[], T], doing: str) -> T:
    """A bookkeeping statement of the range's task (lease, progress), retried through an outage
    of up to ``task.db_wait`` seconds: each is safe to repeat (fenced, or a read)."""
    return with_db_retry(
        fn, doing=f"{doing} range {task.part} of job {task.job!r}", db_wait=task.db_wait
    )


def _engine(db: Any) -> Engine:
    if isinstance(db, sa.Engine):
        return db
    if isinstance(db, str):
        if db not in _ENGINES:
            _ENGINES[db] = sa.create_engine(db)
        return _ENGINES[db]  # type: ignore[no-any-return]
    return engine_of(db())


class _CoordinatorInterrupted(Exception):
    """The coordinator was interrupted (Ctrl-C): this task stops between two batches."""


def work_range(task: RangeTask) -> int | None:
    """Run one range to its end (a worker's task): lease it, resume after its checkpoint, call
    ``fn`` per batch, apply split requests, mark it done. Returns its rows, or None when the
    range was already done or the coordinator was interrupted (the range is given back,
    committed up to its checkpoint; its writer's unflushed items are dropped, as on any
    error)."""
    engine = _engine(task.db)
    if os.getpid() != task.coordinator_pid and engine not in _CHECKED:
        # A factory's engine may have been made before this worker was forked from the
        # coordinator: drop the inherited pooled connections (not closing them: they are the
        # coordinator's), as SQLAlchemy advises for engines crossing a fork.
        engine.dispose(close=False)
        _CHECKED.add(engine)
    jobs = _book(task, lambda: JobTable(engine, task.job), "opening")
    lease = _claim(jobs, task)
    if lease is None:
        return None
    began, rss_start = time.perf_counter(), current_rss()
    peak_reset = task.measure_peak and reset_peak()
    checkpoint = LeasedCheckpoint(lease)
    beat = Heartbeat(lease)
    try:
        try:
            rows, highest = _work_leased(engine, task, lease, checkpoint)
        except _CoordinatorInterrupted:
            beat.stop()
            lease.release()
            return None
        peak = max(highest, rss_start)
        if peak_reset:
            peak = max(peak, peak_rss() or 0)
        beat.stop()
        _finish(task, lease, rows, time.perf_counter() - began, peak - rss_start)
    finally:
        beat.stop()
    return rows


def _work_leased(
    engine: Engine, task: RangeTask, lease: Lease, checkpoint: LeasedCheckpoint
) -> tuple[int, int]:
    """Read the leased range batch by batch into ``task.fn``: (rows of the range done in
    all its attempts, the highest RSS read after a batch).

    Raises:
        _CoordinatorInterrupted: the coordinator was interrupted (seen at a progress sync).
    """
    rows = _book(task, lambda: _rows_committed(engine, task, lease.row.start), "counting")
    highest = 0
    while True:
        stop = lease.stop
        with BatchWriter(
            engine,
            task.write_batch_size,
            checkpoint=checkpoint,
            db_wait=task.db_wait,
            target_batch_s=task.target_batch_s,
            max_batch_memory=task.max_batch_memory,
        ) as writer:
            batches = in_batches(
                engine,
                task.source,
                task.batch_size,
                key=task.key,
                start=lease.row.start,
                stop=stop,
                checkpoint=checkpoint,
                target_batch_s=task.target_batch_s,
                max_batch_memory=task.max_batch_memory,
                db_wait=task.db_wait,
            )
            synced = 0.0
            for batch in batches:
                task.fn(batch, writer)
                rows += len(batch.rows)
                highest = max(highest, current_rss())
                now = time.perf_counter()
                if now - synced < SYNC_INTERVAL_S:
                    continue
                synced = now
                if writer.pending == 0:  # nothing of this batch waits: it is done
                    save = functools.partial(checkpoint.save, batch.last_key)
                    _book(task, save, "saving the position of")
                sync = functools.partial(lease.progress, rows, batch.last_key)
                moved = _book(task, sync, "syncing") != stop
                if lease.interrupted:
                    batches.close()  # type: ignore[attr-defined]
                    raise _CoordinatorInterrupted  # leaves the writer: unflushed items dropped
                if moved:
                    break  # split: the range now ends earlier; re-read up to the new stop
            batches.close()  # type: ignore[attr-defined]
        if lease.stop == stop:
            return rows, highest
        # Split: every batch so far is done and the writer flushed (it closed), so resume
        # right after the last one, not after the last flush (no batch handed to fn twice).
        _book(task, functools.partial(checkpoint.save, batch.last_key), "saving the split of")


def _claim(jobs: JobTable, task: RangeTask) -> Lease | None:
    """Lease the task's range: free, expired, owned by this coordinator's own earlier task (its
    worker died, or the scheduler thought so: the fence stops it), or by an owner known gone
    (:func:`~membound.bound.sql.partition.owners.abandoned`: an earlier call that was
    interrupted or lost its database). A live lease of another coordinator (the same job started
    twice) is waited out: that coordinator finishes the range, or its lease runs out. None once
    the range is done."""
    owner = f"{task.coordinator}|{default_owner()}"
    while True:
        if _book(task, lambda: jobs.stopping(task.coordinator), "looking at"):
            return None  # the coordinator stops (a range failed): ranges not started stay so
        lease = _book(
            task,
            lambda: jobs.claim(
                task.part, owner, task.lease_s, takeover_from=f"{task.coordinator}|"
            ),
            "leasing",
        )
        if lease is not None:
            return lease
        rows = [r for r in _book(task, jobs.ranges, "looking at") if r.part == task.part]
        if not rows or rows[0].done:
            return None
        current = rows[0].owner
        if abandoned(current):
            take = functools.partial(jobs.claim, task.part, owner, task.lease_s)
            lease = _book(task, functools.partial(take, takeover_of=current), "taking over")
            if lease is not None:
                return lease
        left = (rows[0].lease_until or 0.0) - time.time()
        time.sleep(min(max(left, 0.05), task.lease_s / 4, 1.0))


def _finish(task: RangeTask, lease: Lease, rows: int, seconds: float, peak: int) -> None:
    """Mark the range done, through an outage: when the connection was lost as the mark
    committed, the retry finds the range done (its fence fails: not ours any more)."""

    def mark() -> None:
        try:
            lease.finish(rows, seconds, peak)
        except LeaseLost:
            done = [r for r in lease.jobs.ranges() if r.part == lease.part and r.done]
            if not done:
                raise

    _book(task, mark, "finishing")


def _rows_committed(engine: Engine, task: RangeTask, start: Any) -> int:
    """Rows of the range starting at ``start`` up to its checkpoint (0 before the first
    commit): what its attempts finished, counted exactly (the job table's progress figures
    lag by up to ``SYNC_INTERVAL_S``)."""
    stored = Checkpoint(engine, range_name(task.job, start)).load()
    if stored is None:
        return 0
    plan = SourcePlan(engine, task.source, task.key)
    first = None if start is None else as_key(start, plan.width, "start")
    return plan.count(None, first, stored)


def _split_key(engine: Engine, task: RangeTask, row: RangeRow, offset: int) -> Any:
    """The key ``offset`` rows after what the range's worker has read, or None."""
    plan = SourcePlan(engine, task.source, task.key)
    after = None if row.reached is None else as_key(row.reached, plan.width, "reached")
    start = None if row.start is None or after is not None else as_key(row.start, plan.width)
    stmt = plan.bounded(after, start, None).with_only_columns(*plan.key_columns)
    if row.stop is not None:
        stmt = stmt.where(
            compare(plan.key_columns, as_key(row.stop, plan.width), "<", plan.row_value)
        )
    found = plan.run(stmt.order_by(*plan.key_columns).offset(offset).limit(1))
    return public_key(tuple(found[0])) if found else None


def run_partitioned(
    db: str | Callable[[], Any],
    source: Any,
    fn: Callable[[Any, BatchWriter], Any],
    *,
    name: str,
    parts: int | None = None,
    rows_per_part: int | None = None,
    client: Any = None,
    batch_size: int | Literal["auto"] = 1000,
    key: Any = None,
    write_batch_size: int | Literal["auto"] = 500,
    target_batch_s: float = 0.5,
    max_batch_memory: int | str = "64 MB",
    retries: int = 2,
    lease: float | str = "60 s",
    split_stragglers: bool = True,
    restart: bool = False,
    progress: bool = False,
    poll_interval: float = 0.25,
    worker_wait: float | str = "60 s",
    db_wait: float = DEFAULT_DB_WAIT_S,
) -> PartitionReport:
    """Run ``fn(batch, writer)`` over every batch of every balanced key range of ``source``.

    The ranges come from :func:`key_ranges` (balanced by rows). Each range is a task: on a Dask
    ``client`` (a task per range; Dask re-runs a task whose worker died), a
    ``concurrent.futures`` executor, or in this thread (``client=None``). Inside a task the
    range is read with :func:`in_batches` (``start=``/``stop=``, G1–G8 hold) and ``writer`` is
    the range's :class:`BatchWriter`, bound to its checkpoint ``"{name}/{start key}"`` and
    flushed when the range ends: every row's write happens exactly once even when a worker dies
    mid-range and the range runs again elsewhere. ``fn`` may ignore ``writer``.

    Args:
        db: a database URL, or a function returning an Engine (engines cannot be pickled to
            workers; a factory must be importable, e.g. defined at module level, for a
            process pool, and should return one engine per process, e.g. under
            ``functools.cache``: it is called once per range). With ``client=None`` or a
            thread pool, an Engine itself.
        source: a ``Table``, ORM entity or ``select()`` (as :func:`find_each`).
        fn: called as ``fn(batch, writer)`` per batch; on Dask it may be a closure.
        name: the job's name: ranges, leases and checkpoints are kept under it.
        parts: how many ranges (``rows_per_part`` instead; default 1,000,000 rows a range).
        rows_per_part: rows per range.
        client: a ``dask.distributed.Client``, a ``concurrent.futures`` executor, or None.
        batch_size: rows per read batch, or ``"auto"`` (see :func:`in_batches`).
        key: the key column(s), as for :func:`find_each`.
        write_batch_size: items per writer transaction, or ``"auto"`` (sized as
            :class:`BatchWriter` does, with ``target_batch_s`` and ``max_batch_memory``).
        target_batch_s: with ``batch_size="auto"`` or ``write_batch_size="auto"``, seconds per
            batch.
        max_batch_memory: with ``batch_size="auto"`` or ``write_batch_size="auto"``, memory per
            batch.
        retries: times a range is started again after its task failed (a dead Dask worker is
            re-run by Dask's scheduler as well, up to its ``allowed-failures``).
        lease: how long a range stays claimed without a heartbeat (renewed every third of it).
        split_stragglers: split a running range's tail off for an idle worker.
        restart: forget the job of this name (its ranges and checkpoints) and start anew.
        progress: a rich progress bar on stderr: rows done / estimated, ranges running.
        poll_interval: seconds between looks at the job's progress.
        worker_wait: how long a Dask cluster may have no worker at all before the run stops
            with what committed (a number of seconds or a duration such as ``"2 min"``).
        db_wait: seconds the database may not answer (a restart, a failover) before the run
            stops with what committed: the coordinator's look at the job and each range's reads,
            writes and bookkeeping reconnect and go on meanwhile (0: stop at the first lost
            connection).

    Returns:
        A :class:`PartitionReport`.

    Raises:
        BatchSourceError: bad arguments, a source without a usable key, a job of this name
            under way with other ranges, a membound table of an older layout, or a task that
            cannot be sent to the workers.
        PartitionFailed: a range failed after its retries (its ``report`` says what finished;
            other running ranges were let finish, ranges not started were not started), a
            process pool lost a process, the Dask cluster had no workers for ``worker_wait``,
            or the database did not answer for ``db_wait``.
        Interrupted: Ctrl-C; within a few seconds every task of this call stopped at a
            commit, and ``partial`` is the report of what committed (resume with the name).
    """
    require_sqlalchemy()
    if not callable(fn):
        raise BatchSourceError(f"fn must be callable as fn(batch, writer), got {fn!r}")
    check_batch_size(batch_size)
    if (
        isinstance(poll_interval, bool)
        or not isinstance(poll_interval, (int, float))
        or not 0 < poll_interval <= 60
    ):
        raise BatchSourceError(
            f"poll_interval must be a number of seconds in (0, 60], got {poll_interval!r}"
        )
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise BatchSourceError(f"retries must be a whole number, got {retries!r}")
    if write_batch_size != "auto" and (
        isinstance(write_batch_size, bool)
        or not isinstance(write_batch_size, int)
        or write_batch_size < 1
    ):
        raise BatchSourceError(
            f"write_batch_size must be a whole number >= 1 or 'auto', got {write_batch_size!r}"
        )
    if batch_size == "auto" or write_batch_size == "auto":
        PageSizer(target_batch_s, max_batch_memory)  # checks both, here rather than in workers
    lease_s = parse_duration(lease, name="lease")
    worker_wait_s = parse_duration(worker_wait, name="worker_wait")
    db_wait_s = check_db_wait(db_wait)
    began = time.perf_counter()
    runner = runner_for(client)
    _check_db(db, runner)
    engine = _engine(db)

    # Setting up (the job table, the cuts, the job's rows) goes on through an outage too:
    # each step is a read, or one transaction that open() finds done when it is repeated.
    def setup(fn: Callable[[], T], doing: str) -> T:
        return with_db_retry(fn, doing=f"{doing} job {name!r}", db_wait=db_wait_s)

    jobs = setup(lambda: JobTable(engine, name), "making the table of")
    spec = {
        "source": setup(lambda: describe_source(engine, source, key), "describing the source of"),
        "parts": parts,
        "rows_per_part": rows_per_part,
    }
    make_ranges = lambda: key_ranges(engine, source, parts, rows_per_part, key=key)  # noqa: E731
    if setup(lambda: jobs.open(spec, make_ranges, restart), "cutting the ranges of"):
        return _report(jobs, runner, began, already_finished=True, db_wait=db_wait_s)
    task = RangeTask(
        db=db,
        source=source,
        fn=fn,
        job=name,
        part=0,
        key=key,
        batch_size=batch_size,
        write_batch_size=write_batch_size,
        target_batch_s=target_batch_s,
        max_batch_memory=max_batch_memory,
        lease_s=lease_s,
        measure_peak=runner.own_processes,
        coordinator=default_owner(),
        coordinator_pid=os.getpid(),
        db_wait=db_wait_s,
    )
    runner.check_picklable(task)

    def submit(part: int) -> Any:
        return runner.submit(work_range, replace(task, part=part), f"range {part}")

    coordinator = Coordinator(
        jobs,
        runner,
        submit=submit,
        split_key=lambda row, offset: _split_key(engine, task, row, offset),
        report=lambda: _report(
            jobs,
            runner,
            began,
            committed=_committed_counter(engine, task),
            last_error=coordinator.last_error,
            db_wait=db_wait_s,
        ),
        coordinator=task.coordinator,
        smallest_split=4 * (batch_size if isinstance(batch_size, int) else 1000),
        retries=retries,
        split=split_stragglers,
        poll=poll_interval,
        worker_wait=worker_wait_s,
        db_wait=db_wait_s,
    )
    with (
        coordinating(task.coordinator),
        progress_bar(jobs, poll_interval) if progress else contextlib.nullcontext(),
    ):
        coordinator.run()
    setup(jobs.finish, "finishing")
    return _report(jobs, runner, began, last_error=coordinator.last_error, db_wait=db_wait_s)


def _committed_counter(engine: Engine, task: RangeTask) -> Callable[[RangeRow], int]:
    """Rows an unfinished range committed (:func:`_rows_committed`), for the report."""
    return lambda row: _rows_committed(engine, task, row.start)


def _check_db(db: Any, runner: Runner) -> None:
    """A URL or a factory anywhere; an Engine only where tasks run in this process."""
    if isinstance(db, sa.Engine):
        if runner.sends_tasks:
            raise BatchSourceError(
                f"an Engine cannot be sent to the workers of {runner.kind}: pass its URL, "
                "engine.url.render_as_string(hide_password=False), or a module-level function "
                "that returns an Engine"
            )
        return
    if not isinstance(db, str) and not callable(db):
        raise BatchSourceError(
            "db must be a database URL, a function returning an Engine, or (in this process) "
            f"an Engine; got {type(db).__name__}"
        )


def _report(
    jobs: JobTable,
    runner: Runner,
    began: float,
    *,
    already_finished: bool = False,
    committed: Callable[[RangeRow], int] | None = None,
    last_error: str | None = None,
    db_wait: float = 0.0,
) -> PartitionReport:
    """The report of the job from its table, read again on a new connection while the
    database is unreachable (up to ``db_wait`` seconds, as every step of the run): a connection
    cut as the last range finished must not lose a run whose rows are all written."""

    def read() -> tuple[RangeReport, ...]:
        return tuple(
            RangeReport(
                start=r.start,
                stop=r.stop,
                rows=r.rows_done if r.done or committed is None else committed(r),
                estimated_rows=r.rows,
                retries=max(r.attempts - 1, 0),
                splits=r.splits,
                seconds=r.seconds,
                peak_rss_delta=r.peak_rss_delta,
                done=r.done,
                # The owner that finished it (kept on a done range): "coordinator|host:pid:x".
                worker=r.owner.rsplit("|", 1)[-1] if r.done and r.owner else None,
            )
            for r in jobs.ranges()
        )

    ranges = with_db_retry(read, doing=f"reading the report of job {jobs.job!r}", db_wait=db_wait)
    return PartitionReport(
        name=jobs.job,
        ranges=ranges,
        rows=sum(r.rows for r in ranges),
        estimated_rows=sum(r.estimated_rows for r in ranges),
        retries=sum(r.retries for r in ranges),
        splits=sum(r.splits for r in ranges),
        seconds=time.perf_counter() - began,
        runner=runner.kind,
        already_finished=already_finished,
        last_error=last_error,
    )
