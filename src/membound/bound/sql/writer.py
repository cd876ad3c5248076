"""``BatchWriter``: buffered writes committed ``batch_size`` at a time, each flush in a short
transaction of its own, with the checkpoint's position in the same transaction (G7).

A flush that loses its connection (a database restarted, a backend terminated) is tried again
on a new one for up to ``db_wait`` seconds, exactly once: a failure before COMMIT was sent
rolled the flush back, so it is redone; a COMMIT that got no answer may or may not have
happened, and only the checkpoint can say which (its row holds the position and time stamp
this flush wrote, or the one before). Without a checkpoint that outcome is unknown, and the
writer stops saying so rather than risk applying the flush twice.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

from membound._errors import (
    BatchSourceError,
    BatchWriteError,
    DatabaseLocked,
    DatabaseUnavailable,
)
from membound.bound.sql.autosize import AUTO, PageSizer, check_batch_size, sampled_bytes_per_row
from membound.bound.sql.checkpoint import Checkpoint
from membound.bound.sql.connection import (
    DEFAULT_DB_WAIT_S,
    DatabaseFile,
    bookkeeping_timeouts,
    check_db_wait,
    driver_message,
    engine_of,
    is_disconnect,
    is_locked,
    with_db_retry,
)
from membound.bound.sql.executemany import BatchPlans
from membound.bound.sql.keys import Key, public_key

# Without SQLAlchemy the names stay undefined; connection.require_sqlalchemy() says what to
# install before any of them is used.
with contextlib.suppress(ImportError):
    import sqlalchemy as sa

if TYPE_CHECKING:
    from membound.bound.sql.connection import Bind

__all__ = ["BatchWriter"]

_NO_KEY: Any = object()


#: One buffered write: ``(statement, params, tag)`` — the statement (consecutive writes sharing it
#: go out as one executemany), its bound parameters or None, and the row key it belongs to for
#: the checkpoint. A plain tuple: one is made per row, and a dataclass costs several times more.
PendingWrite = tuple[Any, Any, "Key | None"]
_STATEMENT, _PARAMS, _TAG = 0, 1, 2


class BatchWriter:
    """Buffer writes and commit them with executemany, ``batch_size`` items per transaction.

    Each flush runs in its own short transaction. With a ``checkpoint``, the key of the last
    flushed item's row is saved in the same transaction (G7): kill the process at any instant,
    resume with the same checkpoint, and every row's write is applied exactly once. To keep that
    true when one row adds several items, a full buffer is flushed only when the next item
    belongs to a new row (so the buffer may exceed ``batch_size`` by one row's items).

    A flush sends each statement's items together: ``executemany`` at the driver, and on
    PostgreSQL a keyed ``update()`` or ``delete()`` (``WHERE id = :uid``, a unique key) as one
    statement over arrays of the items' values, where that does the same work (see
    ``bound/sql/unnest_batch.py``; a ``FOR EACH STATEMENT`` trigger then fires once a flush).

    Use it as a context manager: leaving the block normally flushes the rest; leaving it by an
    exception discards the unflushed items (like a transaction) and adds a note to the exception
    saying how many items were committed.

    A flush that loses its connection is retried for up to ``db_wait`` seconds, and applied
    exactly once (see the module docstring); on SQLite, a database file deleted or replaced
    during the run stops the writer before its next commit (the writes would be lost).

    Args:
        engine: where to write (an Engine, or a sessionmaker bound to one).
        batch_size: items per transaction (>= 1), or ``"auto"``: each flush sized from the
            ones before it to take about ``target_batch_s`` (a fixed cost per flush plus a cost
            per item, as ``in_batches`` sizes its pages), with at most ``max_batch_memory`` of
            buffered items; the first flush holds 1,000. ``batch_size`` then reads the size
            the next flush will have.
        checkpoint: commit this checkpoint's new position with each flush.
        lock_timeout: seconds a flush's statements may wait for a lock another session holds
            (PostgreSQL ``lock_timeout``, SQLite busy timeout) before the flush stops with
            :class:`~membound.DatabaseLocked`; None (default) leaves the database's own
            setting. The checkpoint's statements always wait at most 30 s on PostgreSQL.
        db_wait: seconds to keep reconnecting when the database stops answering, before
            :class:`~membound.DatabaseUnavailable`; 0 stops at once.
        target_batch_s: with ``batch_size="auto"``, seconds a flush should take.
        max_batch_memory: with ``batch_size="auto"``, the memory buffered items may take
            (bytes or a size such as ``"64 MB"``).

    Raises:
        BatchSourceError: ``batch_size`` neither an integer >= 1 nor ``"auto"``, a
            ``lock_timeout`` or ``db_wait`` that is not a number of seconds, or a
            ``target_batch_s`` or ``max_batch_memory`` out of range.
        DatabaseLocked: with a ``checkpoint`` whose table does not exist yet, the database
            stayed locked past its busy timeout while creating it.
        DatabaseUnavailable: with a ``checkpoint``, its table could not be created (a full
            disk), or the database did not answer for ``db_wait`` seconds.

    Example:
        >>> cp = Checkpoint(engine, "mark-deleted")          # doctest: +SKIP
        >>> with BatchWriter(engine, checkpoint=cp) as w:    # doctest: +SKIP
        ...     for user in find_each(engine, users, checkpoint=cp):
        ...         w.add(stmt, {"uid": user.id})
    """

    def __init__(
        self,
        engine: Bind,
        batch_size: int | Literal["auto"] = 500,
        checkpoint: Checkpoint | None = None,
        *,
        lock_timeout: float | None = None,
        db_wait: float = DEFAULT_DB_WAIT_S,
        target_batch_s: float = 0.5,
        max_batch_memory: int | str = "64 MB",
    ) -> None:
        check_batch_size(batch_size)
        # "auto": each flush's size from the flushes before it (the reads' tuner, fed with
        # flush times and the buffered items' sizes).
        self._sizer = PageSizer(target_batch_s, max_batch_memory) if batch_size == AUTO else None
        self.engine = engine_of(engine)
        self.batch_size: int = self._sizer.size if self._sizer is not None else int(batch_size)
        self.checkpoint = checkpoint
        self.lock_timeout = _check_lock_timeout(lock_timeout, self.engine.dialect.name)
        self.db_wait = check_db_wait(db_wait)
        self._buffer: list[PendingWrite] = []
        # How this writer's statements are sent, and the catalog facts that decide it.
        self._plans = BatchPlans()
        self._committed = 0
        self._flushes = 0
        self._in_flight = 0
        self._last_text: tuple[str, Any] | None = None
        # The SQLite file at start (or at the first flush, when it does not exist yet).
        self._file = DatabaseFile.of(self.engine)
        self._file_pending = self._file is None and self.engine.dialect.name == "sqlite"
        # The last try's COMMIT got no answer: the checkpoint says whether it happened.
        self._unsure = False
        # An error this writer raised with its own account of what committed (no note).
        self._raised: BaseException | None = None
        if checkpoint is not None:
            with_db_retry(
                lambda: checkpoint.attach(self),
                doing=f"creating the table of checkpoint {checkpoint.name!r}",
                db_wait=self.db_wait,
            )

    @property
    def committed(self) -> int:
        """Items committed so far."""
        return self._committed

    @property
    def pending(self) -> int:
        """Items buffered and not yet committed."""
        return len(self._buffer)

    @property
    def sent(self) -> dict[str, int]:
        """Items sent so far each way: ``"one statement"`` (a flush's keyed UPDATE or DELETE
        as one statement over arrays, PostgreSQL), ``"row by row"`` (the driver's
        executemany) and ``"sqlalchemy"`` (SQLAlchemy's own execution), counted when sent
        (a flush rolled back afterwards counts too). See :attr:`row_by_row_reason`."""
        return dict(self._plans.sent)

    @property
    def row_by_row_reason(self) -> str | None:
        """Why the last items that were not sent as one statement were not (a few words:
        "trigger audit_rows", "keys (email) whose equality in SQL is not Python's for these
        values"), or None while every item went as one statement."""
        return self._plans.reason

    def add(self, statement: Any, params: Any = None, *, key: Any = _NO_KEY) -> None:
        """Buffer one write; flush when the buffer is full.

        Args:
            statement: a SQLAlchemy statement (``update(...)``, ``insert(...)``, ``text(...)``) or a
                SQL string. Consecutive items with the same statement are sent as one executemany.
            params: a mapping of bound parameters for this item, or None. The mapping is
                copied when it is added (a loop may fill one dict again for the next row); the
                values in it are not (a list or dict value changed before the flush is
                written as it is then).
            key: the row key this write belongs to, for the checkpoint. By default the key of the
                row (``find_each``) or batch (``in_batches``) the shared checkpoint is at.

        Raises:
            BatchSourceError: ``key`` is or holds None, or ``params`` is neither a mapping nor
                None (a list of rows: one ``add()`` per row); nothing is buffered.
            BatchWriteError: a flush this add triggered failed (see :meth:`flush`).
        """
        if params is not None:
            if not isinstance(params, Mapping):
                raise BatchSourceError(
                    f"BatchWriter.add: params must be one item's mapping of parameters or None, "
                    f"got {type(params).__name__}; for several rows, one add() per row"
                )
            params = dict(params)
        if isinstance(statement, str):
            if self._last_text is None or self._last_text[0] != statement:
                self._last_text = (statement, sa.text(statement))
            statement = self._last_text[1]
        tag: Key | None
        if key is not _NO_KEY:
            given: Key = key if isinstance(key, tuple) else (key,)
            if any(v is None for v in given):
                # Saved as the checkpoint's position, it would make the resumed run empty.
                raise BatchSourceError(
                    f"BatchWriter.add: key {key!r} holds None; give the row's key (never NULL), "
                    "or leave key= out to use the key the reader is at"
                )
            tag = given
        elif self.checkpoint is not None:
            tag = self.checkpoint.current
        else:
            tag = None
        buffer = self._buffer
        if len(buffer) >= self.batch_size and (self.checkpoint is None or tag != buffer[-1][_TAG]):
            self.flush()
            buffer = self._buffer
        buffer.append((statement, params, tag))
        if self.checkpoint is None and len(buffer) >= self.batch_size:
            self.flush()

    def flush(self) -> int:
        """Commit the buffered items (and the checkpoint position) in one transaction.

        Returns:
            The number of items committed by this flush.

        Raises:
            BatchWriteError: the flush failed and was rolled back, or (without a checkpoint)
                its COMMIT got no answer so whether it happened is unknown; states what was
                committed.
            DatabaseLocked: a statement of the flush waited past ``lock_timeout`` (or the
                database's lock or busy timeout) for a lock another session holds; the flush
                was rolled back.
            DatabaseUnavailable: the database did not answer for ``db_wait`` seconds, or the
                SQLite file was deleted or replaced; states what was committed.
        """
        items, self._buffer = self._buffer, []
        if not items:
            return 0
        position = items[-1][_TAG]
        # Until the counters below are updated, an interrupt (Ctrl-C) may have landed after
        # the commit: __exit__ then says this flush may or may not have committed.
        self._in_flight = len(items)
        self._unsure = False
        began = time.perf_counter()
        try:
            with_db_retry(
                lambda: self._attempt(items, position),
                doing=lambda: self._doing(len(items)),
                db_wait=self.db_wait,
            )
        except (BatchWriteError, DatabaseUnavailable) as exc:  # they say what committed
            self._in_flight = 0
            self._raised = exc
            raise
        except Exception as exc:
            self._in_flight = 0
            try:
                self._check_file(len(items))  # the file's fate explains the error
            except DatabaseUnavailable as gone:
                self._raised = gone
                raise gone from exc
            error = self._failed(exc, items)
            self._raised = error
            raise error from exc
        self._committed += len(items)
        self._flushes += 1
        self._in_flight = 0
        if self._sizer is not None:
            sample = [_values(item[_PARAMS]) for item in items[:: max(1, len(items) // 3)][:3]]
            self.batch_size = self._sizer.observe(
                len(items), time.perf_counter() - began, 0, sampled_bytes_per_row(sample)
            )
        return len(items)

    def _attempt(self, items: list[PendingWrite], position: Key | None) -> None:
        """One try at committing ``items`` (and the checkpoint at ``position``)."""
        checkpoint = self.checkpoint
        if self._unsure and checkpoint is not None:
            # The last try's COMMIT got no answer. It happened if the checkpoint's row is the
            # one it wrote; else it rolled back (the connection died without committing).
            if checkpoint.holds_last_write():
                self._unsure = False
                return
            self._unsure = False
        committing = False
        try:
            with self.engine.connect() as conn:
                restore = self._sqlite_busy_timeout(conn)
                try:
                    with conn.begin():
                        self._write(conn, items, position)
                        committing = True  # from here on, a failure is in the COMMIT
                finally:
                    restore()
        except Exception as exc:
            if committing and is_disconnect(exc):
                if checkpoint is not None and position is not None:
                    self._unsure = True
                    raise  # tried again: the next try asks the checkpoint first
                raise BatchWriteError(
                    f"BatchWriter flush {self._flushes + 1} lost its connection while "
                    f"committing, so whether its {len(items)} items committed is unknown; "
                    f"{self._committed} items were committed by {self._flushes} earlier flushes "
                    f"before it. Cause: {driver_message(exc)}",
                    committed=self._committed,
                    failed=len(items),
                    hint="give the writer a checkpoint (it tells a lost COMMIT apart), or make "
                    "the writes safe to apply twice, and check the last flush's rows",
                ) from exc
            raise

    def _write(self, conn: Any, items: list[PendingWrite], position: Key | None) -> None:
        """The flush's statements in ``conn``'s transaction: writes, then fence and checkpoint.

        The fence (a leased range's lease check) comes after the writes, beside the checkpoint,
        so that both run under one setting of the bookkeeping timeouts, which need no restoring
        as nothing of the user's follows them: five round trips a flush instead of seven. Its
        guarantee is the same, as it runs before the COMMIT: a range taken over rolls the
        flush back.
        """
        checkpoint = self.checkpoint
        if self.lock_timeout is not None and conn.dialect.name == "postgresql":
            conn.execute(
                sa.text("SELECT set_config('lock_timeout', :ms, true)"),
                {"ms": str(max(int(self.lock_timeout * 1000), 1))},
            )
        for statement, group in _statement_runs(items):
            params = [item[_PARAMS] for item in group]
            if params[0] is None:
                self._plans.row_by_row_plans(conn)
                for _ in group:
                    conn.execute(statement)
            else:
                self._plans.execute(conn, statement, params)
        # A plain Checkpoint's fence does nothing: no timeouts to set for it alone.
        fenced = checkpoint is not None and type(checkpoint).fence is not Checkpoint.fence
        if checkpoint is not None and (position is not None or fenced):
            doing = f"saving checkpoint {checkpoint.name!r}"
            with bookkeeping_timeouts(conn, checkpoint.lock_timeout, doing=doing, restore=False):
                checkpoint.fence(conn)
                if position is not None:
                    checkpoint.save(public_key(position), connection=conn)
        if self._file_pending:  # the file exists now: this connection opened it
            self._file, self._file_pending = DatabaseFile.of(self.engine), False
        self._check_file(len(items))

    def _check_file(self, count: int) -> None:
        """Raise DatabaseUnavailable when the SQLite file was deleted or replaced: in WAL mode
        the writes would commit into the old file, lost; in rollback-journal mode SQLite
        refuses them ("attempt to write a readonly database") without saying why."""
        if self._file is not None:
            self._file.check(
                f"committing BatchWriter flush {self._flushes + 1} ({count} items)",
                f"{self._committed} items were committed by {self._flushes} earlier flushes, "
                "into the original file",
            )

    def _sqlite_busy_timeout(self, conn: Any) -> Callable[[], None]:
        """Set SQLite's busy timeout to ``lock_timeout`` on ``conn`` for one flush; returns
        what puts the connection's own back (it goes back to the pool)."""
        if self.lock_timeout is None or conn.dialect.name != "sqlite":
            return _nothing
        raw = conn.connection.dbapi_connection
        before = raw.execute("PRAGMA busy_timeout").fetchone()[0]
        raw.execute(f"PRAGMA busy_timeout = {max(int(self.lock_timeout * 1000), 1)}")
        return lambda: raw.execute(f"PRAGMA busy_timeout = {int(before)}")

    def _doing(self, count: int) -> str:
        """The flush being committed and what committed before it, for messages."""
        if self._unsure and self.checkpoint is not None:
            state = (
                f"its COMMIT got no answer: checkpoint {self.checkpoint.name!r} holds the "
                "position of what committed"
            )
        else:
            state = "it was rolled back"
        return (
            f"committing BatchWriter flush {self._flushes + 1} of {count} items ({state}; "
            f"{self._committed} items were committed by {self._flushes} earlier flushes)"
        )

    def _failed(self, exc: Exception, items: list[PendingWrite]) -> Exception:
        """The error for a flush that failed and rolled back: DatabaseLocked for a lock
        timeout, BatchWriteError otherwise (naming the item that raised, found by trying the
        items again one by one); both say what committed."""
        count = len(items)
        rolled_back = (
            f"BatchWriter flush {self._flushes + 1} was rolled back: {count} items not applied; "
            f"{self._committed} items were committed by {self._flushes} earlier flushes"
        )
        if isinstance(exc, DatabaseLocked):  # a checkpoint statement's bookkeeping timeout
            return DatabaseLocked(f"{exc}; {rolled_back}")
        if is_locked(exc):
            waited = (
                f"lock_timeout={self.lock_timeout:g} s"
                if self.lock_timeout is not None
                else "the database's lock or busy timeout"
            )
            return DatabaseLocked(
                f"{rolled_back}: it waited {waited} for a lock another connection holds "
                f"(a LOCK TABLE, a long transaction). Cause: {driver_message(exc)}"
            )
        found = self._first_failing(items)
        if found is None:
            cause = (
                f"{_error_words(exc)} (its items run again one by one, in a transaction "
                "rolled back, raised nothing)"
            )
            item = None
        else:
            item, cause = found[0] + 1, found[1]
        return BatchWriteError(
            f"BatchWriter flush {self._flushes + 1} failed and was rolled back: "
            f"{len(items)} items not applied; {self._committed} items were committed "
            f"by {self._flushes} earlier flushes. Cause: {cause}",
            committed=self._committed,
            failed=len(items),
            item=item,
        )

    def _first_failing(self, items: list[PendingWrite]) -> tuple[int, str] | None:
        """The flush's first item that raises when its items run again one by one (in a
        transaction that is always rolled back, each statement bounded to 10 s on
        PostgreSQL), and its words: which item, its key, its statement and what the database
        said; None when none raises that way (the failure did not recur)."""
        try:
            with self.engine.connect() as conn:
                transaction = conn.begin()
                try:
                    if conn.dialect.name == "postgresql":
                        conn.exec_driver_sql(
                            "SELECT set_config('statement_timeout', '10s', true), "
                            "set_config('lock_timeout', '5s', true)"
                        )
                    self._plans.row_by_row_plans(conn)
                    for index, (statement, params, tag) in enumerate(items):
                        try:
                            if params is None:
                                conn.execute(statement)
                            else:
                                conn.execute(statement, params)
                        except Exception as exc:  # the driver's, or one raised in Python
                            words = _item_words(index, len(items), statement, params, tag, exc)
                            return index, words
                finally:
                    transaction.rollback()
        except Exception:  # the database is gone again: the flush's own error stands
            return None
        return None

    def close(self) -> None:
        """Flush the rest and release the checkpoint."""
        try:
            self.flush()
        finally:
            self._release()

    def _release(self) -> None:
        if self.checkpoint is not None:
            self.checkpoint.detach(self)

    def __enter__(self) -> BatchWriter:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        if exc is None:
            self.close()
            return False
        discarded = len(self._buffer)
        self._buffer = []
        self._release()
        own = exc is self._raised or isinstance(exc, BatchWriteError)
        if not own and hasattr(exc, "add_note"):
            unsure = ""
            if self._in_flight:
                where = " (the checkpoint's position says which)" if self.checkpoint else ""
                unsure = (
                    f"; a flush of {self._in_flight} items was interrupted and may or may not "
                    f"have committed{where}"
                )
            exc.add_note(
                f"membound.BatchWriter: {self._committed} items were committed; {discarded} "
                f"buffered items were discarded{unsure}"
            )
        return False


def _nothing() -> None:
    pass


def _check_lock_timeout(lock_timeout: Any, dialect: str) -> float | None:
    if lock_timeout is None:
        return None
    if (
        isinstance(lock_timeout, bool)
        or not isinstance(lock_timeout, (int, float))
        or not lock_timeout > 0
    ):
        raise BatchSourceError(
            f"lock_timeout must be a number of seconds > 0, got {lock_timeout!r}"
        )
    if dialect not in ("postgresql", "sqlite"):
        raise BatchSourceError(
            f"lock_timeout= is supported on PostgreSQL and SQLite, not on {dialect}",
            hint="set the database's own lock wait timeout on the engine's connections",
        )
    return float(lock_timeout)


def _item_words(
    index: int, count: int, statement: Any, params: Any, tag: Key | None, exc: Exception
) -> str:
    """One line naming a failed item: its place in the flush, its key, its statement."""
    key = public_key(tag) if tag is not None else params
    text = " ".join(str(statement).split())
    if len(text) > 80:
        text = text[:77] + "..."
    shown = repr(key)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"item {index + 1} of {count} (key {shown}) raised in {text!r}: {_error_words(exc)}"


def _error_words(exc: BaseException) -> str:
    """What the driver said, or for an error raised in Python (an ``OverflowError`` of the
    driver's conversion) its type and message."""
    if isinstance(exc, sa.exc.DBAPIError):
        return driver_message(exc)
    orig = getattr(exc, "orig", None) or exc
    return f"{type(orig).__name__}: {driver_message(orig)}"


def _values(params: Any) -> tuple[Any, ...]:
    """An item's parameters as a tuple, for sizing it."""
    if params is None:
        return ()
    return tuple(params.values()) if isinstance(params, Mapping) else tuple(params)


def _statement_runs(items: list[PendingWrite]) -> Iterator[tuple[Any, list[PendingWrite]]]:
    """Runs of consecutive items sharing one statement object (one executemany each)."""
    if items and all(item[_STATEMENT] is items[0][_STATEMENT] for item in items):
        yield items[0][_STATEMENT], items  # the common case: one statement for the batch
        return
    run: list[PendingWrite] = []
    for item in items:
        if run and item[_STATEMENT] is not run[0][_STATEMENT]:
            yield run[0][_STATEMENT], run
            run = []
        run.append(item)
    if run:
        yield run[0][_STATEMENT], run
