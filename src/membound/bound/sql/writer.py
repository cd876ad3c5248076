"""``BatchWriter``: buffered writes committed ``batch_size`` at a time, each flush in a short
transaction of its own, with the checkpoint's position in the same transaction (G7)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from membound._errors import BatchSourceError, BatchWriteError
from membound.bound.sql.checkpoint import Checkpoint
from membound.bound.sql.connection import engine_of, is_locked
from membound.bound.sql.keys import Key, public_key

# Without SQLAlchemy the names stay undefined; connection.require_sqlalchemy() says what to
# install before any of them is used.
with contextlib.suppress(ImportError):
    import sqlalchemy as sa

if TYPE_CHECKING:
    from membound.bound.sql.connection import Bind

__all__ = ["BatchWriter"]

_NO_KEY: Any = object()


@dataclass
class PendingWrite:
    """One buffered write: a statement, its parameters, and the key of the row it belongs to."""

    statement: Any
    """The statement (consecutive writes sharing it go out as one executemany)."""
    params: Any
    """Its bound parameters, or None."""
    tag: Key | None
    """The row key the write belongs to, for the checkpoint."""


class BatchWriter:
    """Buffer writes and commit them with executemany, ``batch_size`` items per transaction.

    Each flush runs in its own short transaction. With a ``checkpoint``, the key of the last
    flushed item's row is saved in the same transaction (G7): kill the process at any instant,
    resume with the same checkpoint, and every row's write is applied exactly once. To keep that
    true when one row adds several items, a full buffer is flushed only when the next item
    belongs to a new row (so the buffer may exceed ``batch_size`` by one row's items).

    Use it as a context manager: leaving the block normally flushes the rest; leaving it by an
    exception discards the unflushed items (like a transaction) and adds a note to the exception
    saying how many items were committed.

    Args:
        engine: where to write (an Engine, or a sessionmaker bound to one).
        batch_size: items per transaction (>= 1).
        checkpoint: commit this checkpoint's new position with each flush.

    Raises:
        BatchSourceError: ``batch_size < 1`` or not an integer.
        DatabaseLocked: with a ``checkpoint`` whose table does not exist yet, the database
            stayed locked past its busy timeout while creating it.

    Example:
        >>> cp = Checkpoint(engine, "mark-deleted")          # doctest: +SKIP
        >>> with BatchWriter(engine, checkpoint=cp) as w:    # doctest: +SKIP
        ...     for user in find_each(engine, users, checkpoint=cp):
        ...         w.add(stmt, {"uid": user.id})
    """

    def __init__(
        self, engine: Bind, batch_size: int = 500, checkpoint: Checkpoint | None = None
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise BatchSourceError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        self.engine = engine_of(engine)
        self.batch_size = batch_size
        self.checkpoint = checkpoint
        self._buffer: list[PendingWrite] = []
        self._committed = 0
        self._flushes = 0
        self._in_flight = 0
        self._last_text: tuple[str, Any] | None = None
        if checkpoint is not None:
            checkpoint.attach(self)

    @property
    def committed(self) -> int:
        """Items committed so far."""
        return self._committed

    @property
    def pending(self) -> int:
        """Items buffered and not yet committed."""
        return len(self._buffer)

    def add(self, statement: Any, params: Any = None, *, key: Any = _NO_KEY) -> None:
        """Buffer one write; flush when the buffer is full.

        Args:
            statement: a SQLAlchemy statement (``update(...)``, ``insert(...)``, ``text(...)``) or a
                SQL string. Consecutive items with the same statement are sent as one executemany.
            params: a mapping of bound parameters for this item, or None.
            key: the row key this write belongs to, for the checkpoint. By default the key of the
                row (``find_each``) or batch (``in_batches``) the shared checkpoint is at.

        Raises:
            BatchSourceError: ``key`` is or holds None (nothing is buffered).
            BatchWriteError: a flush this add triggered failed (see :meth:`flush`).
        """
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
        if len(self._buffer) >= self.batch_size and (
            self.checkpoint is None or tag != self._buffer[-1].tag
        ):
            self.flush()
        self._buffer.append(PendingWrite(statement, params, tag))
        if self.checkpoint is None and len(self._buffer) >= self.batch_size:
            self.flush()

    def flush(self) -> int:
        """Commit the buffered items (and the checkpoint position) in one transaction.

        Returns:
            The number of items committed by this flush.

        Raises:
            BatchWriteError: the flush failed and was rolled back; states what was committed.
        """
        items, self._buffer = self._buffer, []
        if not items:
            return 0
        position = items[-1].tag
        # Until the counters below are updated, an interrupt (Ctrl-C) may have landed after
        # the commit: __exit__ then says this flush may or may not have committed.
        self._in_flight = len(items)
        try:
            with self.engine.begin() as conn:
                if self.checkpoint is not None:
                    self.checkpoint.fence(conn)
                for statement, group in _statement_runs(items):
                    params = [item.params for item in group]
                    if params[0] is None:
                        for _ in group:
                            conn.execute(statement)
                    else:
                        conn.execute(statement, params)
                if self.checkpoint is not None and position is not None:
                    self.checkpoint.save(public_key(position), connection=conn)
        except Exception as exc:
            locked = " (the database is locked)" if is_locked(exc) else ""
            self._in_flight = 0
            raise BatchWriteError(
                f"BatchWriter flush {self._flushes + 1} failed{locked} and was rolled back: "
                f"{len(items)} items not applied; {self._committed} items were committed "
                f"by {self._flushes} earlier flushes. Cause: {str(exc).splitlines()[0]}",
                committed=self._committed,
                failed=len(items),
            ) from exc
        self._committed += len(items)
        self._flushes += 1
        self._in_flight = 0
        return len(items)

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
        if not isinstance(exc, BatchWriteError) and hasattr(exc, "add_note"):
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


def _statement_runs(items: list[PendingWrite]) -> Iterator[tuple[Any, list[PendingWrite]]]:
    """Runs of consecutive items sharing one statement object (one executemany each)."""
    run: list[PendingWrite] = []
    for item in items:
        if run and item.statement is not run[0].statement:
            yield run[0].statement, run
            run = []
        run.append(item)
    if run:
        yield run[0].statement, run
