"""Reading one page: the page statement for a bound shape (built once, reused), and the fetch
strategy chosen once per run, as SQLAlchemy's ``engine/cursor.py`` picks a fetch strategy class
when a result is set up rather than testing flags on every fetch.

Strategies: what SQLAlchemy returns (ORM objects through a short-lived Session, or Core ``Row``
objects through a pooled connection or the run's sessionmaker), and plain tuples straight from
the driver (``driver.py``) where that gives the same rows, else SQLAlchemy's rows as tuples.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Sequence
from typing import Any, Protocol

from membound.bound.sql.connection import raise_if_locked, run_statement
from membound.bound.sql.driver import DriverPathUnavailable, DriverQuery, driver_path_allowed
from membound.bound.sql.keys import Key, compare
from membound.bound.sql.plan import SourcePlan

# Without SQLAlchemy the names stay undefined; connection.require_sqlalchemy() says what to
# install before any of them is used.
with contextlib.suppress(ImportError):
    import sqlalchemy as sa
    from sqlalchemy import exc as sa_exc

__all__ = ["LowerBound", "PageReader"]


class LowerBound(enum.Enum):
    """Where a page starts."""

    NONE = "none"
    """At the first key."""
    FROM = "from"
    """At ``start``, inclusive (the first page of a run given ``start=``)."""
    AFTER = "after"
    """Strictly after the previous page's last key (every later page, and resumes)."""


class FetchStrategy(Protocol):
    """Runs one page statement in its own short transaction and returns all its rows (G4)."""

    def fetch(self, stmt: Any, params: dict[str, Any]) -> Sequence[Any]:
        """Every row of ``stmt`` with ``params``."""
        ...


class StatementRows:
    """The rows SQLAlchemy returns: ORM objects (``scalars``), loaded in a Session closed (so
    detached) before the page is returned, or Core ``Row`` objects from a pooled connection
    (or from the run's sessionmaker)."""

    def __init__(self, plan: SourcePlan, *, scalars: bool) -> None:
        self.plan = plan
        self.scalars = scalars

    def fetch(self, stmt: Any, params: dict[str, Any]) -> Sequence[Any]:
        plan = self.plan
        return run_statement(plan.engine, plan.sessions, stmt, scalars=self.scalars, params=params)


class DriverTuples:
    """Plain tuples, read on the driver when that gives the same rows (G4, G8).

    A sessionmaker's session may route, filter or hook statements (``get_bind``,
    ``do_orm_execute``), so with one the pages always go through the session, as tuples.
    """

    def __init__(self, plan: SourcePlan) -> None:
        self.plan = plan
        self._rows = StatementRows(plan, scalars=False)
        self._queries: dict[int, DriverQuery | None] = {}
        self._connected_once = False

    def fetch(self, stmt: Any, params: dict[str, Any]) -> Sequence[Any]:
        if id(stmt) not in self._queries:  # first use of this page shape
            self._queries[id(stmt)] = self._driver_query(stmt)
        query = self._queries[id(stmt)]
        if query is None:
            return [tuple(row) for row in self._rows.fetch(stmt, params)]
        try:
            return query.run(params)
        except sa_exc.OperationalError as exc:
            raise_if_locked(exc)
            raise

    def _driver_query(self, stmt: Any) -> DriverQuery | None:
        plan = self.plan
        if plan.sessions is not None or not driver_path_allowed(plan.engine):
            return None
        if not self._connected_once:
            # The dialect finishes initialising on the first connection: compile after it.
            plan.run(sa.select(sa.literal(1)))
            self._connected_once = True
        try:
            return DriverQuery(plan.engine, stmt)
        except DriverPathUnavailable:
            return None


def fetch_strategy(plan: SourcePlan) -> FetchStrategy:
    """The way pages of ``plan`` are fetched, chosen once."""
    if plan.tuples:
        return DriverTuples(plan)
    return StatementRows(plan, scalars=plan.orm_mapper is not None)


class PageReader:
    """Reads pages of a planned source: up to ``batch_size`` rows after a key, in key order."""

    def __init__(self, plan: SourcePlan, batch_size: int) -> None:
        self.plan = plan
        self.batch_size = batch_size
        self.strategy = fetch_strategy(plan)
        width = plan.width
        self._low_names = tuple(f"membound_lo_{i}" for i in range(width))
        self._high_names = tuple(f"membound_hi_{i}" for i in range(width))
        self._stop_names = tuple(f"membound_stop_{i}" for i in range(width))
        # ``stop`` is fixed for the run: in SQL unless the key is an integer (see ``page``).
        stop = plan.stop
        self._stop_in_sql = stop is not None and not (plan.integer_key and type(stop[0]) is int)
        self._statements: dict[tuple[LowerBound, bool], Any] = {}

    def resize(self, batch_size: int) -> None:
        """Read pages of ``batch_size`` rows from now on (``batch_size="auto"``).

        The statements built for the old size are dropped, and so is the fetch strategy (its
        compiled driver queries are keyed by statement): a run holds one size's statements.
        """
        if batch_size != self.batch_size:
            self.batch_size = batch_size
            self._statements.clear()
            self.strategy = fetch_strategy(self.plan)

    def statement(self, lower: LowerBound, has_upper: bool) -> Any:
        """The page query for a bound shape, built once with bind parameters and reused.

        Reusing one statement object lets SQLAlchemy reuse its cache key and compiled SQL, so
        a page costs one execute, not a statement build and compile.
        """
        cache_key = (lower, has_upper)
        cached = self._statements.get(cache_key)
        if cached is not None:
            return cached
        plan = self.plan
        cols = plan.key_columns
        stmt = plan.stmt
        if lower is not LowerBound.NONE:
            params = tuple(
                sa.bindparam(name, type_=c.type)
                for name, c in zip(self._low_names, cols, strict=True)
            )
            op = ">" if lower is LowerBound.AFTER else ">="
            stmt = stmt.where(compare(cols, params, op, plan.row_value))
        if has_upper:
            params = tuple(
                sa.bindparam(name, type_=c.type)
                for name, c in zip(self._high_names, cols, strict=True)
            )
            stmt = stmt.where(compare(cols, params, "<=", plan.row_value))
        if self._stop_in_sql:
            params = tuple(
                sa.bindparam(name, type_=c.type)
                for name, c in zip(self._stop_names, cols, strict=True)
            )
            stmt = stmt.where(compare(cols, params, "<", plan.row_value))
        stmt = stmt.order_by(*cols).limit(self.batch_size)
        self._statements[cache_key] = stmt
        return stmt

    def page(self, after: Key | None, start: Key | None, upper: Key | None) -> Sequence[Any]:
        """The next page: rows with keys after ``after`` (or from ``start``) and not beyond
        ``upper``, in key order."""
        if after is not None:
            lower, low = LowerBound.AFTER, after
        elif start is not None:
            lower, low = LowerBound.FROM, start
        else:
            lower, low = LowerBound.NONE, None
        plan = self.plan
        # An integer key's upper bound is applied here rather than in SQL: the database would
        # test it on every row (measured: 3-4% of a SQLite page read), Python once per page.
        # Only integers: Python and the database agree on their order whatever the collation.
        upper_in_sql = upper is not None and not (plan.integer_key and type(upper[0]) is int)
        stmt = self.statement(lower, upper_in_sql)
        params: dict[str, Any] = {}
        if low is not None:
            params.update(zip(self._low_names, low, strict=True))
        if upper_in_sql:
            params.update(zip(self._high_names, upper, strict=True))  # type: ignore[arg-type]
        stop = plan.stop
        if self._stop_in_sql:
            params.update(zip(self._stop_names, stop, strict=True))  # type: ignore[arg-type]
        rows = self.strategy.fetch(stmt, params)
        if upper is not None and not upper_in_sql and rows and plan.key_of(rows[-1]) > upper:
            key_of = plan.key_of
            # Rows are in key order, so the ones within the bound are a prefix.
            rows = [row for row in rows if key_of(row) <= upper]
        if stop is not None and not self._stop_in_sql and rows and plan.key_of(rows[-1]) >= stop:
            key_of = plan.key_of
            rows = [row for row in rows if key_of(row) < stop]
        return rows
