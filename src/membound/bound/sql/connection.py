"""The database side of keyset batching: SQLAlchemy present or not, the engine behind a bind,
statements run in their own short transactions, locked-database errors in plain words, and the
faults of the world around a run (DESIGN §5.10, "nothing waits silently"):

* :func:`is_disconnect` tells a lost connection (a server restarted or down, a backend
  terminated) from every other error; :func:`with_db_retry` repeats a statement that is safe to
  repeat through such an outage for up to ``db_wait`` seconds, then raises
  :class:`~membound.DatabaseUnavailable` in one line.
* :func:`bookkeeping_timeouts` bounds membound's own statements (checkpoints, leases) on
  PostgreSQL, where a lock held elsewhere would otherwise make them wait forever.
* :class:`DatabaseFile` notices a SQLite file deleted or replaced under a run.

Why not SQLAlchemy's ``pool_pre_ping``: it tests a connection when it is checked out, so it
cannot help a statement whose connection dies while it runs, or a server that is down for a few
seconds; and it is the engine owner's setting, not membound's to change.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from membound._errors import BatchSourceError, DatabaseLocked, DatabaseUnavailable

try:
    import sqlalchemy as sa
    from sqlalchemy import exc as sa_exc
    from sqlalchemy.orm import Session, sessionmaker
except ImportError:  # pragma: no cover - exercised in a subprocess by the tests
    HAVE_SQLALCHEMY = False
else:
    HAVE_SQLALCHEMY = True

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    Bind = Engine | sessionmaker[Any]

__all__ = [
    "DEFAULT_BOOKKEEPING_TIMEOUT_S",
    "DEFAULT_DB_WAIT_S",
    "HAVE_SQLALCHEMY",
    "DatabaseFile",
    "bookkeeping_timeouts",
    "check_db_wait",
    "driver_message",
    "engine_of",
    "is_disconnect",
    "is_locked",
    "lock_errors",
    "raise_if_locked",
    "require_sqlalchemy",
    "run_statement",
    "translated_schema",
    "with_db_retry",
]

T = TypeVar("T")

#: Seconds ``find_each``, ``in_batches`` and ``BatchWriter`` wait for a database that stopped
#: answering (``db_wait=``) before they raise :class:`~membound.DatabaseUnavailable`.
DEFAULT_DB_WAIT_S = 30.0

#: Lock timeout of membound's own bookkeeping statements (checkpoints, leases) on PostgreSQL.
DEFAULT_BOOKKEEPING_TIMEOUT_S = 30.0

_log = logging.getLogger("membound")

_MISSING_EXTRA = (
    "membound's SQL batching needs SQLAlchemy 2 and psycopg 3: pip install 'membound[sql]'"
)


def require_sqlalchemy() -> None:
    """Raise the install hint when SQLAlchemy is missing."""
    if not HAVE_SQLALCHEMY:
        raise ImportError(_MISSING_EXTRA) from None


def engine_of(bind: Any) -> Engine:
    """The Engine of an Engine or of a bound sessionmaker.

    Raises:
        BatchSourceError: anything else, or a sessionmaker without a bind.
    """
    require_sqlalchemy()
    if isinstance(bind, sa.Engine):
        return bind
    if isinstance(bind, sessionmaker):
        engine = bind.kw.get("bind")
        if isinstance(engine, sa.Engine):
            return engine
        raise BatchSourceError("the sessionmaker has no bind; create it with sessionmaker(engine)")
    raise BatchSourceError(
        f"expected an Engine or a sessionmaker, got {type(bind).__name__}",
        hint="pass create_engine(url) or sessionmaker(engine)",
    )


def translated_schema(bind: Any, schema: str | None) -> str | None:
    """The schema a statement run on ``bind`` (an Engine or Connection) reaches for a table
    declared in ``schema``: the bind's ``schema_translate_map`` applied, as SQLAlchemy applies
    it to the statements themselves (catalog reads must look where the statements write)."""
    translate = bind.get_execution_options().get("schema_translate_map") or {}
    return translate.get(schema, schema)


def is_locked(exc: BaseException) -> bool:
    """Whether ``exc`` says another connection holds a lock (SQLite, PostgreSQL)."""
    text = str(exc).lower()
    if "database is locked" in text or "database table is locked" in text:
        return True
    sqlstate = getattr(getattr(exc, "orig", exc), "sqlstate", None)
    return sqlstate in ("55P03", "40P01")  # lock_not_available, deadlock_detected


def raise_if_locked(exc: BaseException, doing: str = "") -> None:
    """Raise :class:`DatabaseLocked` from ``exc`` when it is a lock timeout.

    Args:
        exc: the error the database gave.
        doing: what membound was doing, for the message (e.g. ``"loading checkpoint 'job'"``).
    """
    if is_locked(exc):
        lines = str(exc).splitlines()
        cause = lines[0] if lines else type(exc).__name__
        context = f" ({doing})" if doing else ""
        raise DatabaseLocked(
            f"the database is locked by another connection{context}: {cause}"
        ) from exc


@contextlib.contextmanager
def lock_errors(doing: str) -> Iterator[None]:
    """Turn a lock timeout raised in the block into :class:`DatabaseLocked` saying ``doing``.

    Other database errors pass through unchanged.
    """
    try:
        yield
    except sa_exc.OperationalError as exc:
        raise_if_locked(exc, doing)
        raise


def run_statement(
    engine: Engine,
    sessions: sessionmaker[Any] | None,
    stmt: Any,
    *,
    scalars: bool,
    params: dict[str, Any] | None = None,
    doing: str = "",
) -> Sequence[Any]:
    """Run ``stmt`` in its own short transaction and return every row (G4).

    Every statement run here is bounded (a page with LIMIT, a max-key or a count query), so
    reading it whole is the point: nothing stays open while the caller works. With a
    sessionmaker, or for ORM objects (``scalars``), the statement runs in a session that is
    closed before returning: its transaction ends, the connection goes back to the pool and the
    objects are detached, so an identity map never outlives one batch.

    Raises:
        DatabaseLocked: the database stayed locked past its busy timeout (the message says
            ``doing`` when given).
    """
    try:
        if sessions is not None or scalars:
            factory = sessions or (lambda: Session(engine))
            with factory() as session:
                result = session.execute(stmt, params)
                if scalars:
                    return result.scalars().all()  # noqa: MB102 (one LIMIT page)
                return result.all()  # noqa: MB102 (one LIMIT page)
        with engine.connect() as conn:
            return conn.execute(stmt, params).all()  # noqa: MB102 (one LIMIT page)
    except sa_exc.OperationalError as exc:
        raise_if_locked(exc, doing)
        raise


# -------------------------------------------------------------------------- lost connections

#: SQLSTATEs of a connection that is gone or not accepted yet, besides class 08 (connection
#: exception): 57P01 admin_shutdown (a fast shutdown or restart, ``pg_terminate_backend``),
#: 57P02 crash_shutdown, 57P03 cannot_connect_now (starting up, shutting down, recovering).
_LOST_STATES = frozenset({"57P01", "57P02", "57P03"})

#: What libpq/psycopg say, without a SQLSTATE, when a connection could not be made or broke.
_LOST_WORDS = (
    "connection refused",
    "server closed the connection",
    "terminating connection",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    # Crash recovery and a standby not promoted yet (57P03; a connect error carries no SQLSTATE)
    "the database system is not yet accepting connections",
    "the database system is not accepting connections",
    "no connection to the server",
    "could not receive data from server",
    "could not send data to server",
    "connection is lost",
    "connection is closed",
    "consuming input failed",
    "sending query failed",
    "connection reset",
    "broken pipe",
    "no route to host",
    "network is unreachable",
    "timeout expired",
    "connection timed out",
    "ssl syscall error",
)

_FIRST_DELAY_S = 0.2
_LAST_DELAY_S = 2.0


def is_disconnect(exc: BaseException) -> bool:
    """Whether ``exc`` says the connection to the database server was lost or could not be
    made, so that the same statement may work on a new connection once the server answers.

    True for SQLAlchemy's ``DBAPIError.connection_invalidated``, PostgreSQL SQLSTATE class 08
    and 57P01-57P03 (a restart, ``pg_terminate_backend``, a server starting up, shutting
    down, or in crash recovery after ``pg_ctl stop -m immediate``), and a driver error without a
    SQLSTATE that names a refused, reset or closed connection or a server that does not accept
    connections yet (psycopg's connect errors carry no SQLSTATE).

    Never for SQLite: there is no server to come back, and its I/O errors ("disk I/O error",
    "database or disk is full", "unable to open database file") are disk or file problems that
    waiting does not fix; a file deleted or replaced under a run is :class:`DatabaseFile`'s
    to notice. Never for a lock or statement timeout, a constraint or a syntax error, nor a
    wrong password or database name (those carry words of their own).
    """
    orig = getattr(exc, "orig", None) or exc
    if isinstance(orig, sqlite3.Error):
        return False
    if getattr(exc, "connection_invalidated", False):
        return True
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if state:
        return str(state).startswith("08") or state in _LOST_STATES
    is_driver_error = hasattr(orig, "sqlstate") or hasattr(orig, "pgcode")
    if not is_driver_error and not (HAVE_SQLALCHEMY and isinstance(exc, sa_exc.DBAPIError)):
        return False
    text = str(orig).lower()
    return any(words in text for words in _LOST_WORDS)


def driver_message(exc: BaseException) -> str:
    """The first line of what the database driver said (SQLAlchemy's wrapper left out)."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return lines[0].strip() if lines else type(orig).__name__


def check_db_wait(db_wait: Any) -> float:
    """``db_wait`` as seconds, or :class:`~membound.BatchSourceError` when it is not a
    number >= 0."""
    if isinstance(db_wait, bool) or not isinstance(db_wait, (int, float)) or not db_wait >= 0:
        raise BatchSourceError(
            f"db_wait must be a number of seconds >= 0 (0: do not wait), got {db_wait!r}"
        )
    return float(db_wait)


def with_db_retry(fn: Callable[[], T], *, doing: str | Callable[[], str], db_wait: float) -> T:
    """``fn()``, called again on a new connection while the database is unreachable.

    Only for work that is safe to repeat: a read, or a write in one transaction that either
    committed or did not and whose outcome the caller establishes (``fn`` must take its own
    connection each call, and end its transaction before returning). Any error that is not a
    lost connection (:func:`is_disconnect`) is raised at once, unchanged. After a failure
    that came after a pause (or the first one) it tries again at once: the pool held other
    connections cut by the same event, SQLAlchemy has just discarded them, and a new one
    usually works. Otherwise it waits, 0.2 s first, doubling up to 2 s. One warning is logged
    (logger ``membound``) when the connection is first lost.

    Args:
        fn: the work.
        doing: what ``fn`` does, for the message ("reading users after key 4000"); a callable
            is asked only when the message is made.
        db_wait: seconds to keep trying after the first failure; 0 raises at the first.

    Raises:
        DatabaseUnavailable: the database stayed unreachable for ``db_wait`` seconds, in one
            line: "the database stopped answering for 30 s while <doing>: <driver's words>";
            the last driver error is its ``__cause__``.
    """
    first: float | None = None
    delay = _FIRST_DELAY_S
    paused = True  # the last try came after a pause (or is the first)
    while True:
        try:
            return fn()
        except Exception as exc:
            if not is_disconnect(exc):
                raise
            now = time.monotonic()
            if first is None:
                first = now
                if db_wait > 0:
                    _log.warning(
                        "membound: lost the database connection while %s (%s); reconnecting "
                        "for up to %g s",
                        _words(doing),
                        driver_message(exc),
                        db_wait,
                    )
            waited = now - first
            if waited >= db_wait:
                what = _words(doing)
                if db_wait > 0:
                    message = f"the database stopped answering for {db_wait:g} s while {what}"
                else:
                    message = f"the database connection was lost while {what} (db_wait=0)"
                raise DatabaseUnavailable(
                    f"{message}: {driver_message(exc)}", doing=what, waited=waited
                ) from exc
            if paused:
                paused = False
                continue
            time.sleep(min(delay, db_wait - waited))
            delay = min(delay * 2, _LAST_DELAY_S)
            paused = True


def _words(doing: str | Callable[[], str]) -> str:
    return doing if isinstance(doing, str) else doing()


# ------------------------------------------------------------------ membound's own statements

# One round trip: the settings in force, as text and in ms (read first: OFFSET 0 keeps the
# subquery from being folded into the outer select), then this transaction's own values, never
# longer than a tighter one already in force (0 is none). set_config(..., true) is SET LOCAL:
# it ends with the transaction. The settings read as intervals ('30s', '500ms', '2min', '0'):
# the pg_settings view would give milliseconds, but it builds every setting of the server to
# answer: 1.7-2.0 ms a call here against 0.35-0.4 ms (with its transaction's end).
_SET_TIMEOUTS = (
    "SELECT old.s, old.l, "
    "set_config('statement_timeout', CASE WHEN old.s_ms = 0 OR old.s_ms > :s "
    "THEN CAST(:s AS text) ELSE old.s END, true), "
    "set_config('lock_timeout', CASE WHEN old.l_ms = 0 OR old.l_ms > :l "
    "THEN CAST(:l AS text) ELSE old.l END, true) "
    "FROM (SELECT current_setting('statement_timeout') AS s, "
    "current_setting('lock_timeout') AS l, "
    "extract(epoch FROM CAST(current_setting('statement_timeout') AS interval)) * 1000 AS s_ms, "
    "extract(epoch FROM CAST(current_setting('lock_timeout') AS interval)) * 1000 AS l_ms "
    "OFFSET 0) AS old"
)
_RESTORE_TIMEOUTS = (
    "SELECT set_config('statement_timeout', :s, true), set_config('lock_timeout', :l, true)"
)


@contextlib.contextmanager
def bookkeeping_timeouts(
    conn: Any,
    seconds: float = DEFAULT_BOOKKEEPING_TIMEOUT_S,
    *,
    doing: str = "",
    restore: bool = True,
) -> Iterator[None]:
    """Bound membound's own bookkeeping statements run in the block (checkpoints, leases).

    On PostgreSQL, ``lock_timeout`` is set to ``seconds`` and ``statement_timeout`` to twice
    that for the rest of ``conn``'s transaction (``SET LOCAL``; the statement timeout is the
    larger so that a lock wait is reported as one), unless the connection has a tighter one
    already; the values in force before are put back when the block ends, unless
    ``restore=False`` (nothing of the user's runs after it in that transaction). SQLite
    waits at most its busy timeout already; other databases are left as they are.

    Args:
        conn: an open SQLAlchemy ``Connection``; a transaction begins if none has.
        seconds: the lock timeout; 0 or less sets none.
        doing: what the block does, for the messages ("saving checkpoint 'job'").
        restore: put the previous values back when the block ends normally.

    Raises:
        DatabaseLocked: a statement in the block waited ``seconds`` for a lock another session
            holds (or a SQLite busy timeout ran out); the transaction must roll back.
        DatabaseUnavailable: a statement in the block ran past the statement timeout.
    """
    if conn.dialect.name != "postgresql" or seconds <= 0:
        with lock_errors(doing):
            yield
        return
    lock_ms = max(int(seconds * 1000), 1)
    previous = conn.execute(sa.text(_SET_TIMEOUTS), {"s": 2 * lock_ms, "l": lock_ms})
    # The settings before, and the ones in force now (as PostgreSQL writes them: "30s").
    statement_was, lock_was, statement_now, lock_now = previous.one()
    try:
        yield
    except sa_exc.OperationalError as exc:
        raise_if_locked(exc, f"{doing}, after waiting {lock_now}" if doing else "")
        if "statement timeout" in str(exc):
            raise DatabaseUnavailable(
                f"the database did not finish {doing or 'a bookkeeping statement'} within "
                f"{statement_now}: {driver_message(exc)}",
                doing=doing,
                waited=2 * seconds,
            ) from exc
        raise
    if restore:
        conn.execute(sa.text(_RESTORE_TIMEOUTS), {"s": statement_was, "l": lock_was})


# --------------------------------------------------------------------------- the SQLite file


@dataclass(frozen=True)
class DatabaseFile:
    """A SQLite database file as it was when a run started: its path and its identity.

    A connection keeps the file it opened, even once the path names another file or none:
    writes after the file was deleted or replaced would go on into a file nobody can open any
    more, and be lost without an error. :meth:`check` (one ``stat``) before each commit stops
    that.
    """

    path: str
    """The absolute path the engine opens."""
    device: int
    """``st_dev`` of the file at start."""
    inode: int
    """``st_ino`` of the file at start."""

    @classmethod
    def of(cls, engine: Engine) -> DatabaseFile | None:
        """The file behind a SQLite engine now; None for other databases, in-memory and
        temporary databases, URI filenames, and a file that does not exist (yet)."""
        if engine.dialect.name != "sqlite":
            return None
        name = engine.url.database
        if not name or name == ":memory:" or name.startswith("file:"):
            return None
        path = os.path.abspath(name)
        try:
            st = os.stat(path)
        except OSError:
            return None
        return cls(path, st.st_dev, st.st_ino)

    def changed(self) -> str | None:
        """None while the path still names the same file, else what became of it, in words."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return "was deleted"
        except OSError as exc:
            return f"cannot be found any more ({exc.strerror})"
        if (st.st_dev, st.st_ino) != (self.device, self.inode):
            return "was replaced by another file"
        return None

    def check(self, doing: str, committed: str) -> None:
        """Raise :class:`~membound.DatabaseUnavailable` when the file changed since start.

        Args:
            doing: what was about to commit ("committing BatchWriter flush 3 (500 items)").
            committed: what committed before, in words, for the message.
        """
        what = self.changed()
        if what is not None:
            raise DatabaseUnavailable(
                f"the SQLite file {self.path} {what} during the run, so membound stopped "
                f"before {doing} (it would have gone into a file nobody can open); {committed}",
                doing=doing,
                hint="restore the database file and run again; a checkpoint resumes after "
                "what committed",
            )
