"""The database side of keyset batching: SQLAlchemy present or not, the engine behind a bind,
statements run in their own short transactions, and locked-database errors in plain words."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from membound._errors import BatchSourceError, DatabaseLocked

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
    "HAVE_SQLALCHEMY",
    "engine_of",
    "is_locked",
    "lock_errors",
    "raise_if_locked",
    "require_sqlalchemy",
    "run_statement",
]

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
