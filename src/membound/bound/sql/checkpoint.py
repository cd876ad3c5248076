"""``Checkpoint``: a durable, exclusive resume point in the table ``membound_checkpoints``.

Readers and writers talk to it through its interface only: a reader marks the key being
processed (:meth:`Checkpoint.mark`) and saves a batch's last key when no writer owns the
checkpoint (:meth:`Checkpoint.owned_by_writer`); a ``BatchWriter`` attaches itself
(:meth:`Checkpoint.attach`), tags each write with :attr:`Checkpoint.current`, and saves the
position inside its own transaction (:meth:`Checkpoint.save` with ``connection=``).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import decimal
import json
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from membound._errors import BatchSourceError, DatabaseUnavailable
from membound.bound.sql.connection import (
    DEFAULT_BOOKKEEPING_TIMEOUT_S,
    DatabaseFile,
    bookkeeping_timeouts,
    driver_message,
    engine_of,
    is_disconnect,
    is_locked,
    lock_errors,
    translated_schema,
)
from membound.bound.sql.keys import Key, public_key

# Without SQLAlchemy the names stay undefined; connection.require_sqlalchemy() says what to
# install before any of them is used.
with contextlib.suppress(ImportError):
    import sqlalchemy as sa
    from sqlalchemy import exc as sa_exc

if TYPE_CHECKING:
    from membound.bound.sql.connection import Bind

__all__ = ["Checkpoint", "check_layout", "create_table", "decode_key", "encode_key"]


def _encode_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    if isinstance(value, _dt.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, _dt.date):
        return {"date": value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {"decimal": str(value)}
    if isinstance(value, uuid.UUID):
        return {"uuid": str(value)}
    raise BatchSourceError(f"a checkpoint cannot store a key of type {type(value).__name__}")


def _decode_value(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    ((tag, text),) = value.items()
    decoders: dict[str, Callable[[str], Any]] = {
        "bytes": bytes.fromhex,
        "datetime": _dt.datetime.fromisoformat,
        "date": _dt.date.fromisoformat,
        "decimal": decimal.Decimal,
        "uuid": uuid.UUID,
    }
    return decoders[tag](text)


def encode_key(key: Any) -> str:
    """A key (scalar, or tuple for a composite key) as the JSON text membound's tables store.

    Raises:
        BatchSourceError: a value of a type it cannot store.
    """
    values = key if isinstance(key, tuple) else (key,)
    return json.dumps([_encode_value(v) for v in values])


def decode_key(text: str) -> tuple[Any, ...]:
    """The key tuple stored as ``text`` by :func:`encode_key`."""
    return tuple(_decode_value(v) for v in json.loads(text))


def check_layout(connection: Any, table: sa.Table) -> None:
    """Raise :class:`BatchSourceError` when ``table`` exists without the columns membound uses
    (a table of that name from an older layout, or someone else's).

    Args:
        connection: an open connection (or engine) on the database.
        table: the table as membound defines it.
    """
    schema = translated_schema(connection, table.schema)
    found = {c["name"] for c in sa.inspect(connection).get_columns(table.name, schema=schema)}
    missing = [c.name for c in table.columns if c.name not in found]
    if missing:
        raise BatchSourceError(
            f"the table {table.name} in this database has another layout (columns "
            f"{', '.join(sorted(found))}; missing {', '.join(missing)}): it is from an older "
            "membound or not membound's",
            hint=f"rename or drop {table.name}; membound creates it anew on first use",
        )


def create_table(connection: Any, table: sa.Table) -> None:
    """Create ``table`` unless it exists, then check its layout (:func:`check_layout`).

    Processes that start together all find the table missing and all create it; the losers'
    errors (SQLite: "already exists"; PostgreSQL: a unique violation in its catalog) are
    dropped once the table is there.

    Raises:
        DatabaseUnavailable: the database cannot take the table (a full disk, a read-only
            file), in one line naming the database; a lock timeout or a lost connection is
            raised as the driver's error, for the caller's words and retries.
    """
    try:
        _create(connection, table)
    except sa_exc.OperationalError as exc:
        if is_locked(exc) or is_disconnect(exc):
            raise
        engine = connection.engine if isinstance(connection, sa.Connection) else connection
        raise DatabaseUnavailable(
            f"cannot create membound's table {table.name} in {_where(engine)}: "
            f"{driver_message(exc)}",
            doing=f"creating the table {table.name}",
            hint="free space on the database's disk, or make it writable, then run again",
        ) from exc
    check_layout(connection, table)


def _where(engine: Any) -> str:
    """The database an engine opens, in words (a SQLite file's path; a URL without password)."""
    file = DatabaseFile.of(engine)
    if file is not None:
        return file.path
    return str(engine.url.render_as_string(hide_password=True))


def _create(connection: Any, table: sa.Table) -> None:
    try:
        table.create(connection, checkfirst=True)
    except sa_exc.ProgrammingError as exc:
        if getattr(exc.orig, "sqlstate", None) == "42501":  # insufficient_privilege
            raise BatchSourceError(
                f"cannot create membound's table {table.name} here: "
                f"{str(exc.orig).splitlines()[0]}. Let a role that may create tables make it "
                "once (the first run creates it), then GRANT SELECT, INSERT, UPDATE, DELETE "
                f"ON {table.name} to this one"
            ) from None
        if isinstance(connection, sa.Connection) or not sa.inspect(connection).has_table(
            table.name, schema=translated_schema(connection, table.schema)
        ):
            raise
    except (sa_exc.OperationalError, sa_exc.IntegrityError):
        # Only on an engine: inside a caller's transaction the failed CREATE may have aborted
        # it (PostgreSQL), and that is the caller's to see.
        if isinstance(connection, sa.Connection) or not sa.inspect(connection).has_table(
            table.name, schema=translated_schema(connection, table.schema)
        ):
            raise


_CHECKPOINT_TABLES: dict[str, Any] = {}


def _checkpoint_table() -> sa.Table:
    if "table" not in _CHECKPOINT_TABLES:
        metadata = sa.MetaData()
        _CHECKPOINT_TABLES["table"] = sa.Table(
            "membound_checkpoints",
            metadata,
            sa.Column("name", sa.String(200), primary_key=True),
            sa.Column("position", sa.Text, nullable=True),
            sa.Column("updated_at", sa.String(40), nullable=False),
        )
    return _CHECKPOINT_TABLES["table"]  # type: ignore[no-any-return]


class Checkpoint:
    """A durable, exclusive resume point stored in the table ``membound_checkpoints``.

    The table is created on first use. Positions are keys (scalars or tuples for composite keys;
    ints, floats, strings, bytes, dates, datetimes, decimals and UUIDs), stored as JSON.
    A run given this checkpoint resumes strictly *after* the stored key (G7).

    Args:
        engine: the database holding the checkpoint; for exactly-once it must be the database
            the writes go to, so both commit in one transaction.
        name: identifies the job; one row per name.
        lock_timeout: seconds the checkpoint's own statements wait for a lock another session
            holds on PostgreSQL (its statement timeout is twice that) before
            :class:`~membound.DatabaseLocked`; SQLite waits its busy timeout.
    """

    def __init__(
        self, engine: Bind, name: str, *, lock_timeout: float = DEFAULT_BOOKKEEPING_TIMEOUT_S
    ) -> None:
        self.engine = engine_of(engine)
        self.name = name
        self.lock_timeout = lock_timeout
        self._ready = False
        # Marked by the reader: key of the row (find_each) or batch (in_batches) being processed.
        self._current: Key | None = None
        # The writer that commits this checkpoint with its writes, if any.
        self._writer: object | None = None
        # The SQLite file at first use: a save into a file deleted or replaced since is lost.
        self._file: DatabaseFile | None = None
        # (position, updated_at) of the last row written, committed or not: after a commit
        # whose answer was lost, finding it stored means the commit happened.
        self._last_write: tuple[str | None, str] | None = None
        self._last_stamp: _dt.datetime | None = None

    # -- the reader's and the writer's interface --------------------------------------------

    def ensure_table(self, connection: Any = None) -> None:
        """Create the checkpoint table if it does not exist yet (once per object).

        Args:
            connection: create it on this open connection (a transaction that is about to write
                the position must not wait on a lock it holds itself, as on SQLite).
        """
        if not self._ready:
            table = _checkpoint_table()
            with lock_errors(f"creating the table of checkpoint {self.name!r}"):
                create_table(connection or self.engine, table)
            self._file = DatabaseFile.of(self.engine)
            self._ready = True

    def mark(self, key: Key) -> None:
        """The reader is now processing the row or batch with ``key``."""
        self._current = key

    @property
    def current(self) -> Key | None:
        """The key last marked by the reader (None before the first)."""
        return self._current

    def attach(self, writer: object) -> None:
        """``writer`` commits this checkpoint with its writes from now on."""
        self._writer = writer
        self.ensure_table()

    def detach(self, writer: object) -> None:
        """``writer`` no longer commits this checkpoint (a no-op if another writer took it)."""
        if self._writer is writer:
            self._writer = None

    @property
    def owned_by_writer(self) -> bool:
        """Whether a writer commits the position (else the reader saves it after each batch)."""
        return self._writer is not None

    def fence(self, connection: Any) -> None:
        """Check, inside ``connection``'s transaction, that this process may still commit for
        the checkpoint (a no-op here; a leased range's checkpoint checks its lease). A writer
        calls it in every flush, before its writes."""

    def load(self) -> Key | None:
        """The stored position as a key tuple, or None before the first save.

        Raises:
            DatabaseLocked: the database stayed locked past its busy timeout.
        """
        self.ensure_table()
        table = _checkpoint_table()
        doing = f"loading checkpoint {self.name!r}"
        with (
            lock_errors(doing),
            self.engine.connect() as conn,
            bookkeeping_timeouts(conn, self.lock_timeout, doing=doing, restore=False),
        ):
            text = conn.execute(
                sa.select(table.c.position).where(table.c.name == self.name)
            ).scalar_one_or_none()
        if text is None:
            return None
        return decode_key(text)

    # -- public ------------------------------------------------------------------------------

    @property
    def position(self) -> Any:
        """The stored key (scalar, or tuple for composite keys), or None before the first save.

        Raises:
            DatabaseLocked: the database stayed locked past its busy timeout.
        """
        stored = self.load()
        return None if stored is None else public_key(stored)

    def save(self, position: Any, *, connection: Any = None) -> None:
        """Store ``position``; inside ``connection``'s transaction when given (for atomicity).

        Args:
            position: the last key whose effects are committed.
            connection: an open SQLAlchemy ``Connection`` in a transaction, to commit the
                position together with other writes; by default a transaction of its own.

        Raises:
            BatchSourceError: the position is or holds None (a resume point after NULL would
                select no row: keys are never NULL), or a value of a type it cannot store.
            DatabaseLocked: without ``connection``, the database stayed locked past its busy
                timeout (within ``connection``, the caller's transaction sees the error).
            DatabaseUnavailable: without ``connection``, the database refused the write (a
                full disk, a read-only file), or its SQLite file was deleted or replaced.
        """
        values = position if isinstance(position, tuple) else (position,)
        if any(v is None for v in values):
            raise BatchSourceError(
                f"checkpoint position {position!r} for {self.name!r} holds None; keys are never "
                "NULL, and resuming after NULL would select nothing (use reset() to start over)"
            )
        text = encode_key(values)
        self.ensure_table(connection)
        if connection is not None:
            self._write(connection, text)
            return
        doing = f"saving checkpoint {self.name!r}"
        try:
            with (
                lock_errors(doing),
                self.engine.begin() as conn,
                bookkeeping_timeouts(conn, self.lock_timeout, doing=doing, restore=False),
            ):
                try:
                    self._write(conn, text)
                finally:  # before COMMIT; and a file that changed explains a failed write
                    self._check_file(position)
        except sa_exc.OperationalError as exc:
            if is_disconnect(exc):
                raise  # the caller's to retry
            raise DatabaseUnavailable(  # a full disk, a read-only file
                f"cannot save checkpoint {self.name!r} at {position!r} in "
                f"{_where(self.engine)}: {driver_message(exc)}",
                doing=doing,
                hint="free space on the database's disk, or make it writable, then resume: "
                "the position saved before stays",
            ) from exc

    def _check_file(self, position: Any) -> None:
        """Raise DatabaseUnavailable when the SQLite file was deleted or replaced since first
        use: a save would go into a file nobody opens any more (WAL mode) or fail without a
        reason (rollback journal)."""
        if self._file is not None:
            self._file.check(
                f"saving checkpoint {self.name!r} at {position!r}",
                "the positions saved before went to the original file",
            )

    def _write(self, conn: Any, text: str | None) -> None:
        table = _checkpoint_table()
        stamp = _dt.datetime.now(_dt.timezone.utc)
        if self._last_stamp is not None and stamp <= self._last_stamp:
            # Strictly increasing, so that no two writes of this object leave the same row.
            stamp = self._last_stamp + _dt.timedelta(microseconds=1)
        self._last_stamp = stamp
        now = stamp.isoformat()
        self._last_write = (text, now)
        result = conn.execute(
            sa.update(table).where(table.c.name == self.name).values(position=text, updated_at=now)
        )
        if result.rowcount == 0:
            conn.execute(sa.insert(table).values(name=self.name, position=text, updated_at=now))

    def holds_last_write(self) -> bool:
        """Whether the stored row is the one this object's last save wrote (its position and
        time stamp): after a commit whose answer was lost, whether that commit happened.

        Raises:
            DatabaseLocked: the database stayed locked past its (bookkeeping) lock timeout.
            sqlalchemy.exc.OperationalError: the database is unreachable (retry it).
        """
        if self._last_write is None:
            return False
        table = _checkpoint_table()
        doing = f"reading checkpoint {self.name!r}"
        with (
            lock_errors(doing),
            self.engine.connect() as conn,
            bookkeeping_timeouts(conn, self.lock_timeout, doing=doing, restore=False),
        ):
            row = conn.execute(
                sa.select(table.c.position, table.c.updated_at).where(table.c.name == self.name)
            ).one_or_none()
        return row is not None and (row[0], row[1]) == self._last_write

    def reset(self) -> None:
        """Forget the stored position: the next run starts from the beginning.

        Raises:
            DatabaseLocked: the database stayed locked past its busy timeout.
        """
        self.ensure_table()
        table = _checkpoint_table()
        doing = f"resetting checkpoint {self.name!r}"
        with (
            lock_errors(doing),
            self.engine.begin() as conn,
            bookkeeping_timeouts(conn, self.lock_timeout, doing=doing, restore=False),
        ):
            conn.execute(sa.delete(table).where(table.c.name == self.name))
        self._current = None

    def __repr__(self) -> str:
        return f"Checkpoint(name={self.name!r})"
