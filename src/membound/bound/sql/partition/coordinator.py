"""The coordinator of ``run_partitioned``: submits a task per unfinished range, re-submits failed
ones, splits stragglers, and ends the run in words when it cannot go on.

A run must *end* when the world around it breaks, never wait in silence:

- **No workers.** A Dask cluster that has had no workers for ``worker_wait`` seconds (all of
  them died, or none ever came) cannot make progress: the run stops with
  :class:`~membound.PartitionFailed` saying so and what committed. A process pool that lost a
  process is broken for good (the stdlib cannot replace it): the same, at once.
- **Ctrl-C.** Where the tasks run elsewhere (Dask, an executor), SIGINT is taken by a handler
  of the coordinator's own while it waits, so the interrupt cannot land inside a library's callback
  (distributed's GC diagnostics swallowed it). The coordinator then marks the job *interrupted*
  before anything else: a task not started yet returns at once when it starts, a running one
  stops at its next progress sync (its writer's unflushed items are dropped; its checkpoint
  marks what committed) and gives its range back. The coordinator waits a few seconds for them,
  frees the ranges of tasks that ended (never one a worker may still be writing: that lease
  runs out, or its worker gives it back) and raises :class:`~membound.Interrupted` with what
  committed. A second Ctrl-C while it waits stops at once.
- **A database blip.** The coordinator's own look at the job table is retried for ``db_wait``
  seconds; a database down longer ends the run with what committed (as far as it is known).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import BrokenExecutor, CancelledError
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from membound._errors import (
    BatchSourceError,
    DatabaseUnavailable,
    Interrupted,
    PartitionFailed,
)
from membound.bound.sql.connection import DEFAULT_DB_WAIT_S, with_db_retry
from membound.bound.sql.partition.leases import JobTable, RangeRow
from membound.bound.sql.partition.report import PartitionReport
from membound.bound.sql.partition.runners import InProcess, Runner

__all__ = ["DEFAULT_DB_WAIT_S", "Coordinator", "interrupt_mark", "progress_bar"]

#: Seconds the coordinator waits, after Ctrl-C, for running tasks to stop at their next sync.
STOP_GRACE_S = 3.0
#: Seconds the coordinator waits for the result of a task it saw done.
_RESULT_WAIT_S = 5.0
#: Seconds between two looks at how many workers a Dask cluster has.
_WORKER_CHECK_S = 1.0

T = TypeVar("T")


def interrupt_mark(coordinator: str) -> str:
    """The job header's owner while ``coordinator`` stops after Ctrl-C (tasks read it)."""
    return f"interrupt:{coordinator}"


class Coordinator:
    """Runs a job's unfinished ranges as tasks on ``runner`` until every one is done.

    Args:
        jobs: the job's table.
        runner: where tasks run.
        submit: starts the task of a range on ``runner``; returns its future.
        split_key: the key ``offset`` rows after what a range's worker has read, or None.
        report: what committed so far, as a report (for the errors).
        coordinator: this coordinator's name (the prefix of its tasks' lease owners).
        smallest_split: a range with fewer rows left is not split.
        retries: times a failed range is started again.
        split: split stragglers for idle slots.
        poll: seconds between looks at the futures and the job table.
        worker_wait: seconds without a single worker after which the run stops.
        db_wait: seconds the coordinator's own job-table reads are retried while the database does
            not answer.
    """

    def __init__(
        self,
        jobs: JobTable,
        runner: Runner,
        *,
        submit: Callable[[int], Any],
        split_key: Callable[[RangeRow, int], Any],
        report: Callable[[], PartitionReport],
        coordinator: str,
        smallest_split: int,
        retries: int,
        split: bool,
        poll: float,
        worker_wait: float,
        db_wait: float,
    ) -> None:
        self.jobs, self.runner = jobs, runner
        self._start, self._split_key, self._report = submit, split_key, report
        self.coordinator, self.smallest_split = coordinator, smallest_split
        self.retries, self.split, self.poll = retries, split, poll
        self.worker_wait, self.db_wait = worker_wait, db_wait
        self.running: dict[Any, int] = {}  # future -> part
        self.tries: dict[int, int] = {}
        self.submitted: set[int] = set()
        self.failure: tuple[int, BaseException] | None = None
        #: The last error a range raised (retried or not), for the report: one line.
        self.last_error: str | None = None
        self._no_workers_since: float | None = None
        self._workers_checked = 0.0
        self._hit: threading.Event | None = None
        self._last_look: tuple[float, list[RangeRow]] | None = None

    # ------------------------------------------------------------------------------ running

    def run(self) -> None:
        """Run every unfinished range.

        Raises:
            PartitionFailed: a range failed after its retries, the pool broke, the cluster had
                no workers for ``worker_wait`` s, or the database stayed away for ``db_wait`` s.
            Interrupted: Ctrl-C (SIGINT); its ``partial`` is the report of what committed.
        """
        with _sigint_as_flag(not isinstance(self.runner, InProcess)) as hit:
            self._hit = hit
            try:
                for row in self._ranges():
                    if not row.done:
                        self._submit(row.part)
                while self.running:
                    if hit.is_set():
                        raise KeyboardInterrupt
                    done, _ = self.runner.wait(self.running, self.poll)
                    for future in done:
                        self._finished(future)
                    if self.failure is not None:
                        self._drain()
                        self._fail()
                    self._check_workers()
                    self._look_for_new_ranges()
            except KeyboardInterrupt as exc:
                self._interrupted(exc)
            except PartitionFailed:
                raise
            except DatabaseUnavailable as exc:
                self._database_gone(exc)
            except BaseException:
                self.runner.cancel(self.running)
                self._release(set(self.running.values()) if self.runner.sends_tasks else None)
                raise

    def _submit(self, part: int) -> None:
        self.submitted.add(part)
        self.tries[part] = self.tries.get(part, 0) + 1
        self.running[self._start(part)] = part

    def _book(self, fn: Callable[[], T], doing: str) -> T:
        """The coordinator's own look at (or mark on) the job table, retried through an outage of
        up to ``db_wait`` seconds (each is safe to repeat)."""
        return with_db_retry(fn, doing=f"{doing} of job {self.jobs.job!r}", db_wait=self.db_wait)

    def _ranges(self) -> list[RangeRow]:
        rows = self._book(self.jobs.ranges, "reading the ranges")
        self._last_look = (time.monotonic(), rows)
        return rows

    def _finished(self, future: Any) -> None:
        part = self.running.pop(future)
        try:
            try:
                # Bounded: a Dask future seen done can be lost again (its worker died) before
                # its result is read, and would then wait for a worker that may never come.
                future.result(timeout=_RESULT_WAIT_S)
            except (TimeoutError, FutureTimeout):
                self.running[future] = part  # not over after all: the loop looks again
                return
            release = getattr(future, "release", None)  # Dask: let the worker drop the result
            if release is not None:
                release()
        except (Exception, CancelledError, asyncio.CancelledError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else ""
            retried = self.tries[part] <= self.retries and not _fatal(exc)
            self.last_error = f"range {part}: {type(exc).__name__}: {first}"[:300] + (
                " (started again)" if retried else ""
            )
            if retried:
                self._submit(part)
            elif self.failure is None or pool_broken(exc):
                self.failure = (part, exc)

    def _drain(self) -> None:
        """After a failure: ranges not started are not started, running ones finish."""
        self._book(lambda: self.jobs.set_stopping(self.coordinator), "marking the stop")
        try:
            self.runner.cancel_pending(self.running)
            while self.running:
                done, _ = self.runner.wait(self.running, self.poll)
                for future in done:
                    self.running.pop(future)
                if self._hit is not None and self._hit.is_set():
                    raise KeyboardInterrupt
                self._check_workers()
        finally:
            self._book(lambda: self.jobs.set_stopping(None), "clearing the stop")

    def _look_for_new_ranges(self) -> None:
        rows = self._ranges()
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
        if left < self.smallest_split:
            return
        at = self._split_key(straggler, left // 2)
        if at is not None:
            self._book(lambda: self.jobs.request_split(straggler.part, at), "asking a split")

    # ---------------------------------------------------------------------------- endings

    def _check_workers(self) -> None:
        """Stop the run when the cluster has had no workers for ``worker_wait`` seconds."""
        now = time.monotonic()
        if now - self._workers_checked < _WORKER_CHECK_S:
            return
        self._workers_checked = now
        count = self.runner.workers()
        if count is None or count > 0:
            self._no_workers_since = None
            return
        if self._no_workers_since is None:
            self._no_workers_since = now
        if now - self._no_workers_since < self.worker_wait:
            return
        self.runner.cancel(self.running)
        self.running.clear()
        self._release(None)  # no worker is left to write any of them
        report = self._safe_report()
        raise PartitionFailed(
            f"job {self.jobs.job!r}: the Dask cluster has had no workers for "
            f"{self.worker_wait:g} s; {_committed_words(report)}. Start workers and call "
            "again with the same name to resume (nothing committed is repeated)",
            report=report,
            hint="raise worker_wait= when workers take longer to come back",
        )

    def _fail(self) -> None:
        """Raise the failure recorded by :meth:`_finished`, with what committed."""
        assert self.failure is not None
        # Our tasks are over (drained) or dead (a broken pool): free their ranges at once, so
        # a new call need not wait for their leases to run out.
        self._release(None)
        part, exc = self.failure
        report = self._safe_report()
        state = f"{_committed_words(report)}. Call again with the same name to resume"
        cause = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if pool_broken(exc):
            message = (
                f"job {self.jobs.job!r}: a worker process of the pool died ({cause}); a "
                "concurrent.futures process pool cannot replace it, so the ranges still to run "
                f"were not run; {state} (nothing committed is repeated), with a new pool, or "
                "run on Dask, which replaces dead workers"
            )
        else:
            message = (
                f"range {part} of job {self.jobs.job!r} failed after {self.tries[part] - 1} "
                f"retries: {cause}; {state} (nothing committed is repeated)"
            )
        raise PartitionFailed(message, report=report) from exc

    def _database_gone(self, exc: DatabaseUnavailable) -> None:
        """The database did not answer the coordinator for ``db_wait`` s: stop, say what the last
        look at the job saw (what committed since is at least that)."""
        self.runner.cancel(self.running)  # their writes need the database too
        self._release(set(self.running.values()) if self.runner.sends_tasks else None)
        seen = ""
        if self._last_look is not None:
            when, rows = self._last_look
            finished = [r for r in rows if r.done]
            # Only a finished range's count is exact: a running one's rows_done counts rows
            # handed to fn, some of them not flushed yet.
            seen = (
                f"; {time.monotonic() - when:.0f} s before, {len(finished)} of {len(rows)} "
                f"ranges had finished ({sum(r.rows_done for r in finished):,} rows committed "
                "in them)"
            )
        raise PartitionFailed(
            f"{exc}{seen}; each range committed up to its checkpoint. Call again with the "
            "same name once the database is back to resume (nothing committed is repeated)",
            report=self._safe_report(),
            hint="raise db_wait= to ride out longer outages",
        ) from exc

    def _interrupted(self, exc: KeyboardInterrupt) -> None:
        """Ctrl-C: stop every task of this coordinator within a few seconds, say what committed."""
        if isinstance(self.runner, InProcess):
            # The task ran in this thread and was interrupted where it was: its range is free.
            self.runner.cancel(self.running)
            self._release(None)
        else:
            with contextlib.suppress(Exception):
                self.jobs.set_stopping(self.coordinator, interrupt=True)
            self.runner.cancel_pending(self.running)
            deadline = time.monotonic() + STOP_GRACE_S
            ended: set[int] = set()
            while self.running and time.monotonic() < deadline:
                with contextlib.suppress(Exception):
                    done, _ = self.runner.wait(self.running, 0.1)
                    for future in done:
                        ended.add(self.running.pop(future))
            self.runner.cancel(self.running)  # Dask: drop what still runs (it sees the mark)
            # Free the ranges of tasks that ended (a pool process hit by the same Ctrl-C
            # ended without giving its range back); never one a task may still be writing.
            self._release(ended)
        report = self._safe_report()
        still = (
            f"; {len(self.running)} task(s) still running were told to stop at their next "
            "commit, which is rolled back"
            if self.running
            else ""
        )
        raise Interrupted(
            report,
            f"job {self.jobs.job!r} stopped: {_committed_words(report)}{still}. Call again "
            "with the same name to resume (nothing committed is repeated)",
            "its tasks were stopped",
        ) from exc

    def _release(self, parts: set[int] | None) -> None:
        """Free this coordinator's unfinished ranges (only ``parts`` when given)."""
        with contextlib.suppress(Exception):
            self.jobs.release_owned(f"{self.coordinator}|", parts)

    def _safe_report(self) -> PartitionReport | None:
        """The report, or None when the database cannot give it now."""
        try:
            return self._report()
        except Exception:
            return None


def _committed_words(report: PartitionReport | None) -> str:
    """``3 of 8 ranges finished, 41,200 rows committed`` (or why it is unknown)."""
    if report is None:
        return (
            "what committed could not be read (the database did not answer); each range "
            "committed up to its checkpoint"
        )
    done = sum(r.done for r in report.ranges)
    return (
        f"{done} of {len(report.ranges)} ranges finished, {report.rows:,} rows committed "
        "(each unfinished range up to its checkpoint)"
    )


@contextlib.contextmanager
def _sigint_as_flag(enabled: bool) -> Iterator[threading.Event]:
    """While the block runs, SIGINT sets the event instead of raising wherever the main thread
    happens to be (inside a library's callback it can be swallowed). A second SIGINT raises
    :class:`KeyboardInterrupt` as usual. Only in the main thread, and only in this process: a
    process forked meanwhile (a pool's worker) keeps Python's default behaviour."""
    hit = threading.Event()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield hit
        return
    pid = os.getpid()

    def handler(signum: int, frame: Any) -> None:
        if os.getpid() != pid or hit.is_set():
            raise KeyboardInterrupt
        hit.set()

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except (ValueError, OSError):  # not settable here (an embedded interpreter)
        yield hit
        return
    try:
        yield hit
    finally:
        signal.signal(signal.SIGINT, previous)


def _fatal(exc: BaseException) -> bool:
    """Errors a retry cannot fix: bad arguments and a pool that lost its processes."""
    return isinstance(exc, BatchSourceError) or pool_broken(exc)


def pool_broken(exc: BaseException) -> bool:
    """A stdlib pool that lost a worker process (it runs no more tasks)."""
    return isinstance(exc, BrokenExecutor)


@contextlib.contextmanager
def progress_bar(jobs: JobTable, interval: float) -> Iterator[None]:
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
