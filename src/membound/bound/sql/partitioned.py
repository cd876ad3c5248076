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

import asyncio
import contextlib
import os
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import CancelledError
from dataclasses import asdict, dataclass
from html import escape
from typing import TYPE_CHECKING, Any, Literal

from membound._errors import BatchSourceError, PartitionFailed
from membound._units import parse_duration
from membound.bound._rss import current_rss, peak_rss, reset_peak
from membound.bound.sql.autosize import PageSizer, check_batch_size
from membound.bound.sql.checkpoint import Checkpoint
from membound.bound.sql.connection import engine_of, require_sqlalchemy
from membound.bound.sql.keys import as_key, compare, public_key
from membound.bound.sql.leases import (
    Heartbeat,
    JobTable,
    Lease,
    LeasedCheckpoint,
    RangeRow,
    default_owner,
    describe_source,
    range_name,
)
from membound.bound.sql.partition import key_ranges
from membound.bound.sql.plan import SourcePlan
from membound.bound.sql.read import in_batches
from membound.bound.sql.runners import Runner, runner_for
from membound.bound.sql.writer import BatchWriter

with contextlib.suppress(ImportError):
    import sqlalchemy as sa

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["PartitionReport", "RangeReport", "run_partitioned"]

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
class RangeReport:
    """One key range of a partitioned run.

    Attributes:
        start: first key, inclusive (None for the first range).
        stop: the key after the range, exclusive (None for the last).
        rows: rows of the range whose batches finished and committed (of a finished range:
            all of them; of an unfinished one: up to its checkpoint), over every call of the job.
        estimated_rows: the estimate the range was cut with (``key_ranges``).
        retries: times the range was started again, over every call of the job (a worker
            died, ``fn`` raised, or an interrupted run was resumed).
        splits: times an idle worker took over the tail of this range.
        seconds: wall time of the attempt that finished it (in this call or an earlier one);
            None while unfinished.
        peak_rss_delta: peak RSS during that attempt minus RSS at its start, in bytes: the
            kernel's high-water mark where the task had a process of its own (Dask workers, a
            process pool), else the highest RSS read after each batch (a spike freed within
            one batch is missed). None while unfinished.
        done: whether the range finished.
    """

    start: Any
    stop: Any
    rows: int
    estimated_rows: int
    retries: int
    splits: int
    seconds: float | None
    peak_rss_delta: int | None
    done: bool


@dataclass(frozen=True)
class PartitionReport:
    """What a partitioned run did, range by range (as many entries as ranges, never rows).

    Attributes:
        name: the job's name.
        ranges: each range, in key order (a split range's tail is a range of its own).
        rows: rows processed in all ranges, over every call of the job (``seconds`` is this
            call's: for a rate, use a job's first and only call, or the ranges' ``seconds``).
        estimated_rows: the rows the ranges were cut for.
        retries: range restarts in all.
        splits: straggler splits in all.
        seconds: wall time of this call.
        runner: what ran the tasks (``dask``, ``ProcessPoolExecutor``, ``in-process``, …).
        already_finished: the job had finished before this call: nothing ran.
    """

    name: str
    ranges: tuple[RangeReport, ...]
    rows: int
    estimated_rows: int
    retries: int
    splits: int
    seconds: float
    runner: str
    already_finished: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (keys as stored: tuples become lists)."""
        return asdict(self)

    def _summary(self) -> str:
        return (
            f"{self.name} ({self.runner}): {self.rows:,} rows in {len(self.ranges)} ranges, "
            f"{self.retries} retries, {self.splits} splits, {self.seconds:.1f} s"
            + (" (finished before this call)" if self.already_finished else "")
        )

    def _table(self) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
        head = ("start", "stop", "rows", "estimated", "retries", "splits", "seconds")
        rows: list[tuple[str, ...]] = []
        for r in self.ranges:
            seconds = "—" if r.seconds is None else f"{r.seconds:.2f}"
            peak = "—" if r.peak_rss_delta is None else f"{r.peak_rss_delta / 2**20:.1f} MiB"
            rows.append(
                (
                    repr(r.start),
                    repr(r.stop),
                    f"{r.rows:,}",
                    f"{r.estimated_rows:,}",
                    str(r.retries),
                    str(r.splits),
                    seconds,
                    peak,
                    "yes" if r.done else "no",
                )
            )
        return (*head, "peak Δ RSS", "done"), rows

    def to_markdown(self) -> str:
        """A Markdown table, a row per range, after a line of totals."""
        head, rows = self._table()
        lines = [
            f"**{self.name}**" + self._summary()[len(self.name) :],
            "",
            "| " + " | ".join(head) + " |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """Jupyter's display: the totals and a table row per range (built here, with every
        text escaped: ``bound`` stands alone and does not use ``report``)."""
        head, rows = self._table()
        cells = "".join(f"<th>{escape(h)}</th>" for h in head)
        body = "".join(
            "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows
        )
        return f"<div><p>{escape(self._summary())}</p><table><tr>{cells}</tr>{body}</table></div>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's text display: the Markdown table."""
        printer.text(self.to_markdown())


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
    write_batch_size: int
    target_batch_s: float
    max_batch_memory: int | str
    lease_s: float
    measure_peak: bool
    driver: str = ""
    driver_pid: int = 0


def _engine(db: Any) -> Engine:
    if isinstance(db, sa.Engine):
        return db
    if isinstance(db, str):
        if db not in _ENGINES:
            _ENGINES[db] = sa.create_engine(db)
        return _ENGINES[db]  # type: ignore[no-any-return]
    return engine_of(db())


def work_range(task: RangeTask) -> int | None:
    """Run one range to its end (a worker's task): lease it, resume after its checkpoint, call
    ``fn`` per batch, apply split requests, mark it done. Returns its rows, or None when the
    range was already done."""
    engine = _engine(task.db)
    if os.getpid() != task.driver_pid and engine not in _CHECKED:
        # A factory's engine may have been made before this worker was forked from the
        # driver: drop the inherited pooled connections (not closing them: they are the
        # driver's), as SQLAlchemy advises for engines crossing a fork.
        engine.dispose(close=False)
        _CHECKED.add(engine)
    jobs = JobTable(engine, task.job)
    lease = _claim(jobs, task)
    if lease is None:
        return None
    began, rss_start = time.perf_counter(), current_rss()
    peak_reset = task.measure_peak and reset_peak()
    highest = rss_start
    checkpoint = LeasedCheckpoint(lease)
    beat = Heartbeat(lease)
    try:
        rows = _rows_committed(engine, task, lease.row.start)
        while True:
            stop = lease.stop
            with BatchWriter(engine, task.write_batch_size, checkpoint=checkpoint) as writer:
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
                        checkpoint.save(batch.last_key)
                    if lease.progress(rows, batch.last_key) != stop:
                        break  # split: the range now ends earlier; re-read up to the new stop
                batches.close()  # type: ignore[attr-defined]
            if lease.stop == stop:
                break
            # Split: every batch so far is done and the writer flushed (it closed), so resume
            # right after the last one, not after the last flush (no batch handed to fn twice).
            checkpoint.save(batch.last_key)
        peak = highest
        if peak_reset:
            peak = max(peak, peak_rss() or 0)
        beat.stop()
        lease.finish(rows, time.perf_counter() - began, peak - rss_start)
    finally:
        beat.stop()
    return rows


def _claim(jobs: JobTable, task: RangeTask) -> Lease | None:
    """Lease the task's range: free, expired, or held by this driver's own earlier task (its
    worker died, or the scheduler thought so: the fence stops it). A live lease of another
    driver (the same job started twice) is waited out: that driver finishes the range, or its
    lease runs out. None once the range is done."""
    from membound.bound.sql.leases import default_owner

    owner = f"{task.driver}|{default_owner()}"
    while True:
        if jobs.stopping(task.driver):
            return None  # the driver stops (a range failed): ranges not started stay so
        lease = jobs.claim(task.part, owner, task.lease_s, takeover_from=f"{task.driver}|")
        if lease is not None:
            return lease
        rows = [r for r in jobs.ranges() if r.part == task.part]
        if not rows or rows[0].done:
            return None
        left = (rows[0].lease_until or 0.0) - time.time()
        time.sleep(min(max(left, 0.05), task.lease_s / 4, 1.0))


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
    write_batch_size: int = 500,
    target_batch_s: float = 0.5,
    max_batch_memory: int | str = "64 MB",
    retries: int = 2,
    lease: float | str = "60 s",
    split_stragglers: bool = True,
    restart: bool = False,
    progress: bool = False,
    poll_interval: float = 0.25,
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
        write_batch_size: items per writer transaction.
        target_batch_s: with ``batch_size="auto"``, seconds per batch.
        max_batch_memory: with ``batch_size="auto"``, memory per batch.
        retries: times a range is started again after its task failed (a dead Dask worker is
            re-run by Dask's scheduler as well, up to its ``allowed-failures``).
        lease: how long a range stays claimed without a heartbeat (renewed every third of it).
        split_stragglers: split a running range's tail off for an idle worker.
        restart: forget the job of this name (its ranges and checkpoints) and start anew.
        progress: a rich progress bar on stderr: rows done / estimated, ranges running.
        poll_interval: seconds between looks at the job's progress.

    Returns:
        A :class:`PartitionReport`.

    Raises:
        BatchSourceError: bad arguments, a source without a usable key, a job of this name
            under way with other ranges, a membound table of an older layout, or a task that
            cannot be sent to the workers.
        PartitionFailed: a range failed after its retries (its ``report`` says what finished;
            other running ranges were let finish, ranges not started were not started).
    """
    require_sqlalchemy()
    if not callable(fn):
        raise BatchSourceError(f"fn must be callable as fn(batch, writer), got {fn!r}")
    check_batch_size(batch_size)
    if batch_size == "auto":
        PageSizer(target_batch_s, max_batch_memory)  # checks both, here rather than in workers
    if (
        isinstance(poll_interval, bool)
        or not isinstance(poll_interval, (int, float))
        or not 0 < poll_interval <= 60
    ):
        raise BatchSourceError(
            f"poll_interval must be a number of seconds in (0, 60], got {poll_interval!r}"
        )
    for label, value in (("retries", retries), ("write_batch_size", write_batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < (label != "retries"):
            raise BatchSourceError(f"{label} must be a whole number, got {value!r}")
    lease_s = parse_duration(lease, name="lease")
    began = time.perf_counter()
    runner = runner_for(client)
    _check_db(db, runner)
    engine = _engine(db)
    jobs = JobTable(engine, name)
    spec = {
        "source": describe_source(engine, source, key),
        "parts": parts,
        "rows_per_part": rows_per_part,
    }
    make_ranges = lambda: key_ranges(engine, source, parts, rows_per_part, key=key)  # noqa: E731
    if jobs.open(spec, make_ranges, restart):
        return _report(jobs, runner, began, already_finished=True)
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
        driver=default_owner(),
        driver_pid=os.getpid(),
    )
    runner.check_picklable(task)
    driver = _Driver(jobs, runner, task, engine, retries, split_stragglers, poll_interval)
    with _progress_bar(jobs, poll_interval) if progress else contextlib.nullcontext():
        driver.run()
    if driver.failure is not None:
        # Our tasks are over (drained) or dead (a broken pool): free their ranges at once, so
        # a new call need not wait for their leases to run out.
        jobs.release_owned(f"{task.driver}|")
        part, exc = driver.failure
        report = _report(jobs, runner, began, committed=_committed_counter(engine, task))
        done = sum(r.done for r in report.ranges)
        state = (
            f"{done} of {len(report.ranges)} ranges finished; every other range committed up "
            "to its checkpoint. Call again with the same name to resume (nothing committed is "
            "repeated)"
        )
        cause = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if _pool_broken(exc):
            message = (
                f"job {name!r}: a worker process of the pool died ({cause}); a "
                "concurrent.futures process pool cannot replace it, so the ranges still to run "
                f"were not run. {state}, with a new pool, or run on Dask, which replaces dead "
                "workers"
            )
        else:
            message = (
                f"range {part} of job {name!r} failed after {driver.tries[part] - 1} retries: "
                f"{cause}; {state}"
            )
        raise PartitionFailed(message, report=report) from exc
    jobs.finish()
    return _report(jobs, runner, began)


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
) -> PartitionReport:
    ranges = tuple(
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
        )
        for r in jobs.ranges()
    )
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
    )


class _Driver:
    """Submits a task per unfinished range, re-submits failed ones, splits stragglers."""

    def __init__(
        self,
        jobs: JobTable,
        runner: Runner,
        task: RangeTask,
        engine: Engine,
        retries: int,
        split: bool,
        poll: float,
    ) -> None:
        self.jobs, self.runner, self.task, self.engine = jobs, runner, task, engine
        self.retries, self.split, self.poll = retries, split, poll
        self.running: dict[Any, int] = {}  # future -> part
        self.tries: dict[int, int] = {}
        self.submitted: set[int] = set()
        self.failure: tuple[int, BaseException] | None = None

    def _submit(self, part: int) -> None:
        self.submitted.add(part)
        self.tries[part] = self.tries.get(part, 0) + 1
        task = RangeTask(**{**self.task.__dict__, "part": part})
        future = self.runner.submit(work_range, task, f"range {part}")
        self.running[future] = part

    def run(self) -> None:
        try:
            for row in self.jobs.ranges():
                if not row.done:
                    self._submit(row.part)
            while self.running:
                done, _ = self.runner.wait(self.running, self.poll)
                for future in done:
                    self._finished(future)
                if self.failure is not None:
                    self._drain()
                    return
                self._look_for_new_ranges()
        except BaseException as exc:
            self.runner.cancel(self.running)
            self.jobs.release_owned(f"{self.task.driver}|")
            if isinstance(exc, KeyboardInterrupt) and hasattr(exc, "add_note"):
                exc.add_note(self._state())
            raise

    def _state(self) -> str:
        """What committed, in words, for an interrupted run."""
        with contextlib.suppress(Exception):
            rows = self.jobs.ranges()
            done = sum(r.done for r in rows)
            return (
                f"membound.run_partitioned: job {self.jobs.job!r} stopped with {done} of "
                f"{len(rows)} ranges finished and committed; each other range committed up to "
                "its checkpoint. Call again with the same name to resume. Its ranges were given "
                "up: a task still running (on Dask or an executor) stops at its next commit, "
                "which is rolled back"
            )
        return f"membound.run_partitioned: job {self.jobs.job!r} stopped; call again to resume"

    def _finished(self, future: Any) -> None:
        part = self.running.pop(future)
        try:
            future.result()
            release = getattr(future, "release", None)  # Dask: let the worker drop the result
            if release is not None:
                release()
        except (Exception, CancelledError, asyncio.CancelledError) as exc:
            if self.tries[part] <= self.retries and not _fatal(exc):
                self._submit(part)
            elif self.failure is None or _pool_broken(exc):
                self.failure = (part, exc)

    def _drain(self) -> None:
        """After a failure: ranges not started are not started, running ones finish."""
        self.jobs.set_stopping(self.task.driver)
        try:
            self.runner.cancel_pending(self.running)
            while self.running:
                done, _ = self.runner.wait(self.running, self.poll)
                for future in done:
                    self.running.pop(future)
        finally:
            self.jobs.set_stopping(None)

    def _look_for_new_ranges(self) -> None:
        rows = self.jobs.ranges()
        for row in rows:  # tails split off by workers
            if row.part not in self.submitted and not row.done:
                self._submit(row.part)
        if not self.split or len(self.running) >= self.runner.slots():
            return
        busy = [r for r in rows if not r.done and r.owner is not None and r.rows > r.rows_done]
        if not busy:
            return
        straggler = max(busy, key=lambda r: r.rows - r.rows_done)
        left = straggler.rows - straggler.rows_done
        smallest = 4 * (self.task.batch_size if isinstance(self.task.batch_size, int) else 1000)
        if left < smallest:
            return
        at = _split_key(self.engine, self.task, straggler, left // 2)
        if at is not None:
            self.jobs.request_split(straggler.part, at)


def _fatal(exc: BaseException) -> bool:
    """Errors a retry cannot fix: bad arguments and a pool that lost its processes."""
    return isinstance(exc, BatchSourceError) or _pool_broken(exc)


def _pool_broken(exc: BaseException) -> bool:
    """A stdlib pool that lost a worker process (it runs no more tasks)."""
    from concurrent.futures import BrokenExecutor

    return isinstance(exc, BrokenExecutor)


@contextlib.contextmanager
def _progress_bar(jobs: JobTable, interval: float) -> Any:
    """A rich bar on stderr from the job table: rows done of estimated, ranges running/done."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[ranges]}"),
        console=Console(stderr=True),
    )
    task = progress.add_task(jobs.job, total=None, ranges="")
    stop = threading.Event()

    def refresh() -> None:
        with contextlib.suppress(Exception):  # a bar must never fail the job
            rows = jobs.ranges()
            running = sum(1 for r in rows if not r.done and r.owner is not None)
            finished = sum(1 for r in rows if r.done)
            progress.update(
                task,
                completed=sum(r.rows_done for r in rows),
                total=sum(r.rows for r in rows),
                ranges=f"ranges: {finished}/{len(rows)} done, {running} running",
            )

    def loop() -> None:
        while not stop.wait(interval):
            refresh()

    thread = threading.Thread(target=loop, name="membound-progress", daemon=True)
    progress.start()
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        refresh()
        progress.stop()
