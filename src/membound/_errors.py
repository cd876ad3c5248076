"""Every error membound raises, in one place; all derive from :class:`MemboundError`.

The CLI turns any ``MemboundError`` into a one-line message (``str(error)``) plus its ``hint``
and exit code 2, never a traceback.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BatchSourceError",
    "BatchWriteError",
    "ChildFailed",
    "CommandNotFound",
    "DatabaseLocked",
    "DatabaseUnavailable",
    "Interrupted",
    "KeyOrderError",
    "LeaseLost",
    "LimitExceeded",
    "MemboundError",
    "MemoryBudgetExceeded",
    "PartitionFailed",
    "SizeError",
    "StopRequested",
    "TargetError",
    "TaskMemoryRefused",
    "describe_exception",
    "failure_words",
]


class MemboundError(Exception):
    """Base class of every error membound raises on purpose."""

    hint: str = ""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        if hint:
            self.hint = hint


class SizeError(MemboundError, ValueError):
    """A size string could not be parsed (``parse_size("lots")``)."""

    hint = "write sizes like '512MB', '1.5GiB' or a number of bytes"


class TargetError(MemboundError):
    """A measured target is unusable: not importable, not callable, or not module-level."""

    hint = "give a module-level function as 'package.module:function' or 'path/to/file.py:function'"


class CommandNotFound(TargetError):
    """The command to run does not exist or is not executable."""

    hint = "check the command name and PATH; put the command after '--'"


class ChildFailed(MemboundError):
    """The measured child raised, crashed or was killed by a signal membound did not send.

    Attributes:
        traceback: the child's traceback text, when it raised a Python exception.
        exit_code: the child's exit status (negative: killed by that signal).
        measurement: what was measured up to the failure, when anything was (a
            ``Measurement``; typed loosely because errors sit below the result types).
    """

    hint = "the measured code itself failed; the child's traceback is shown above"

    def __init__(
        self,
        message: str,
        *,
        traceback: str = "",
        exit_code: int | None = None,
        measurement: Any = None,
        hint: str = "",
    ) -> None:
        super().__init__(message, hint=hint)
        self.traceback = traceback
        self.exit_code = exit_code
        self.measurement = measurement


class LimitExceeded(MemboundError):
    """A memory limit or timeout stopped the measured run.

    Attributes:
        measurement: the measurement up to the stop (its ``outcome`` says which limit).
    """

    hint = "raise the limit, or make the code use less memory"

    def __init__(self, message: str, *, measurement: Any = None, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.measurement = measurement


class KeyOrderError(MemboundError):
    """Keyset iteration saw a key that did not increase: a key changed during the run (G6)."""

    hint = "batch keys must be unique, non-null and immutable while the loop runs"


class MemoryBudgetExceeded(MemboundError):
    """Process memory crossed the budget of a ``memory_budget`` block.

    A safety device, so not a one-off: while RSS is over the budget it is raised again at every
    check, and again when the block ends if the budget was ever exceeded inside it. When the
    block's data cap refused an allocation, the ``MemoryError`` is its ``__cause__``.

    Attributes:
        limit: the budget in bytes (absolute RSS, or growth since entry when relative).
        observed: the highest RSS (or growth) in bytes seen over it; None when an allocation
            was refused before RSS crossed the budget.
    """

    hint = "the block used more memory than its budget; bound the work it does"

    # The message has a default because the budget watcher raises the class asynchronously in
    # another thread (PyThreadState_SetAsyncExc instantiates it without arguments).
    def __init__(
        self,
        message: str = "memory budget exceeded",
        *,
        limit: int | None = None,
        observed: int | None = None,
        hint: str = "",
    ) -> None:
        super().__init__(message, hint=hint)
        self.limit = limit
        self.observed = observed


class TaskMemoryRefused(MemboundError):
    """A Celery task kept meeting the guard's ``MemoryError`` in its child: memory did not come
    back, or every run once more met the refusal again. Deliberately no ``MemoryError``: Celery
    stops the whole worker when a task fails with one, where this fails the task alone (as an
    OOM kill would have, with ``WorkerLostError``) and the worker goes on. The ``MemoryError``
    is its ``__cause__``."""

    hint = "the task needs more memory than its child had room for beside the others"


class BatchSourceError(MemboundError, ValueError):
    """A batch source or its options cannot give the batching guarantees (DESIGN §6).

    Raised for a table without a usable key, nullable key columns, a source that carries its own
    ORDER BY / OFFSET / LIMIT / GROUP BY, ``batch_size < 1`` and unsupported LMDB databases.
    """

    hint = "batch over a unique, non-null, immutable key; let membound order and page the rows"


class BatchWriteError(MemboundError):
    """A ``BatchWriter`` flush failed; that flush was rolled back.

    Attributes:
        committed: items committed by earlier flushes (they stay committed).
        failed: items in the flush that was rolled back.
        discarded: items still buffered and dropped (never sent).
        item: the position (from 1) in the failed flush of the item that raised, when the
            flush's items, tried again one by one, found it; else None.
    """

    hint = "resume from the checkpoint: committed items and their position are durable"

    def __init__(
        self,
        message: str,
        *,
        committed: int,
        failed: int,
        discarded: int = 0,
        hint: str = "",
        item: int | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.committed = committed
        self.failed = failed
        self.discarded = discarded
        self.item = item


class LeaseLost(MemboundError):
    """Another worker holds the lease on a key range now: this worker's lease ran out (it
    stalled past the lease, or its heartbeat could not reach the database) and the range was
    taken over. Nothing this worker had not committed is applied; its transaction rolled back."""

    hint = "raise lease= above the longest pause a batch can take, or keep the database reachable"


class PartitionFailed(MemboundError):
    """A key range of ``run_partitioned`` failed after its retries.

    Attributes:
        report: the ``PartitionReport`` of what finished (typed loosely: errors sit below the
            result types); every range it lists as done committed, the failed one committed up
            to its checkpoint.
    """

    hint = "fix the cause and run again with the same name: finished ranges are not redone"

    def __init__(self, message: str, *, report: Any = None, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.report = report


class DatabaseLocked(MemboundError):
    """The database stayed locked by another connection for longer than its busy timeout."""

    hint = (
        "another connection holds a write lock or a long read transaction; shorten it, or raise "
        "the busy timeout (SQLite: connect_args={'timeout': seconds})"
    )


class DatabaseUnavailable(MemboundError):
    """The database stopped answering for longer than ``db_wait`` (a lost connection, a server
    restarting or down), or can no longer take membound's writes where the run started (its
    SQLite file was deleted or replaced, its disk is full). The message says what membound was
    doing and what had committed.

    Attributes:
        doing: what membound was doing when it gave up, in words.
        waited: seconds it waited for the database to answer again (0 when it did not wait).
    """

    hint = (
        "check that the database is running, reachable and has space, then run again: "
        "a checkpoint resumes after what committed"
    )

    def __init__(
        self, message: str, *, doing: str = "", waited: float = 0.0, hint: str = ""
    ) -> None:
        super().__init__(message, hint=hint)
        self.doing = doing
        self.waited = waited


class StopRequested(BaseException):
    """membound's own stop: its timer ran out, or membound itself got SIGTERM or SIGHUP.

    A ``BaseException``, so that the measured code's ``except Exception`` cannot swallow it; never
    reported as a failure of the measured code.

    Attributes:
        signum: the signal that asked membound to stop, or None for its own timer.
    """

    def __init__(self, signum: int | None = None) -> None:
        super().__init__(signum)
        self.signum = signum


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped work made of several runs; what finished is kept.

    A ``KeyboardInterrupt``, so that code which stops on Ctrl-C still stops.

    Attributes:
        partial: the result of the runs that finished (a ``Comparison`` or a ``Complexity``;
            typed loosely because errors sit below the result types), or None when too little
            finished to make one.
        finished: what finished and what was lost, in words.
        stopped: what happened to the processes membound started, in words (the default says
            they were stopped; a watch of another process leaves it running).
    """

    def __init__(
        self,
        partial: Any,
        finished: str,
        stopped: str = "the measured processes were stopped",
    ) -> None:
        super().__init__(finished)
        self.partial = partial
        self.finished = finished
        self.stopped = stopped


def describe_exception(exc: BaseException) -> str:
    """``exc`` in one line, ``Type: first line of its message``, whatever the exception.

    An exception whose ``__str__`` itself raises still gets a line, with its type, so that
    reporting a failure never fails.
    """
    name = type(exc).__name__
    if isinstance(exc, SystemExit):
        return f"SystemExit({_safe_repr(exc.code)})"
    try:
        text = str(exc)
    except Exception as inner:  # its __str__ raised: say so rather than fail
        return f"{name} (its message could not be printed: {type(inner).__name__})"
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"{name}: {first}" if first else name


def failure_words(exc: BaseException) -> str:
    """What the measured code did, as a verb phrase: ``called sys.exit(3)`` or
    ``raised ValueError: bad input``."""
    if isinstance(exc, SystemExit):
        return f"called sys.exit({_safe_repr(exc.code)})"
    return f"raised {describe_exception(exc)}"


def _safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception:  # a repr that raises
        return f"<unprintable {type(value).__name__}>"
