"""Keyset batches over SQL in short transactions, a checkpointed batch writer (DESIGN §6).

Why membound has its own loop instead of using a peer's: SQLAlchemy ``yield_per`` and Django
``iterator()`` keep one cursor (and so one read transaction) open for the whole loop, which blocks
SQLite writers and pins PostgreSQL snapshots and WAL checkpoints; Rails ``find_each`` leaves
transactions to the caller and resumes inclusively; sqlakeyset pages but has no loop and no
checkpoint. None separates read and write batch sizes or commits a checkpoint in the same
transaction as the writes. The contract implemented here:

* G1 every row present for the whole run comes out exactly once: ordering is by a unique, non-null
  key and each batch resumes *strictly after* the previous batch's last key.
* G2 each batch is read committed. ``finish="snapshot"`` (the default) freezes the largest key at
  start, so rows inserted later with larger keys are not visited; ``finish=None`` follows them.
* G3 :meth:`Batch.where` re-applies the source's filter and the batch's key range.
* G4 each batch is fetched completely in its own short transaction, and the connection goes back to
  the pool *before* the batch is handed to user code.
* G6 a batch whose first key is not greater than the previous batch's last key raises
  :class:`~membound.KeyOrderError` (the database and Python disagree on key order, or a key moved).
* G7 a :class:`Checkpoint` stores the last key whose effects are committed; resume is exclusive.
  With ``BatchWriter(checkpoint=...)`` the position commits in the same transaction as each flush.

Bounds: ``start`` and ``finish`` values are inclusive; a checkpoint position is exclusive.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import itertools
import json
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

from membound._errors import BatchSourceError, BatchWriteError, DatabaseLocked, KeyOrderError
from membound.bound._driver_pages import DriverPathUnavailable, DriverQuery, driver_path_allowed
from membound.bound._rss import current_rss

try:
    import sqlalchemy as sa
    from sqlalchemy import exc as sa_exc
    from sqlalchemy.orm import Mapper, Session, sessionmaker
except ImportError:  # pragma: no cover - exercised in a subprocess by the tests
    _HAVE_SQLALCHEMY = False
else:
    _HAVE_SQLALCHEMY = True

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.sql.elements import ColumnElement

    Bind = Engine | sessionmaker[Any]

__all__ = ["Batch", "BatchWriter", "Checkpoint", "find_each", "in_batches"]

_MISSING_EXTRA = (
    "membound's SQL batching needs SQLAlchemy 2 and psycopg 3: pip install 'membound[sql]'"
)

#: Dialects that evaluate row-value comparisons ``(a, b) > (1, 2)`` correctly (and use indexes).
_ROW_VALUE_DIALECTS = frozenset({"postgresql", "sqlite", "mysql", "mariadb"})

Key = tuple[Any, ...]


def _require_sqlalchemy() -> None:
    if not _HAVE_SQLALCHEMY:
        raise ImportError(_MISSING_EXTRA) from None


# --------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Batch:
    """One batch of rows, already fetched completely; no transaction is open while you hold it."""

    rows: Sequence[Any]
    """The rows (Core ``Row`` objects) or ORM objects (detached) of this batch, in key order."""
    first_key: Any
    """Key of the first row: a scalar for a one-column key, a tuple for a composite key."""
    last_key: Any
    """Key of the last row, same shape as ``first_key``."""
    index: int
    """Position of this batch in the run, from 0."""
    _where: Any = field(default=None, repr=False, compare=False)
    """What ``where()`` needs: the run's plan and the batch's key range (private)."""

    def where(self) -> ColumnElement[bool]:
        """A WHERE clause selecting exactly this batch: the source's filter and its key range.

        Use it for set-based DML per batch (G3), e.g.
        ``conn.execute(update(users).where(batch.where()).values(status="TEMP_DELETED"))``.
        The range is ``first_key <= key <= last_key``; it fits single-table sources.
        """
        plan, first, last = self._where  # built on demand: most loops never call where()
        return plan.batch_where(first, last)  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------------------- keys


def _as_tuple(value: Any, width: int) -> Key:
    if width == 1:
        return value if isinstance(value, tuple) and len(value) == 1 else (value,)
    if not isinstance(value, (tuple, list)) or len(value) != width:
        raise BatchSourceError(f"the key has {width} columns; give start/finish as a {width}-tuple")
    return tuple(value)


def _public_key(key: Key) -> Any:
    return key[0] if len(key) == 1 else key


def _compare(cols: Sequence[Any], vals: Key, op: str, row_value: bool) -> ColumnElement[bool]:
    """``cols <op> vals`` in lexicographic order; op is one of ``>``, ``>=``, ``<=``.

    Row values are used where the dialect supports them; elsewhere the equivalent expansion
    ``a > x OR (a = x AND b > y) ...`` gives the same rows (G8: tested against each other).
    """
    ops: dict[str, Callable[[Any, Any], Any]] = {
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
        "<=": lambda a, b: a <= b,
    }
    if len(cols) == 1:
        return ops[op](cols[0], vals[0])  # type: ignore[no-any-return]
    if row_value:
        return ops[op](sa.tuple_(*cols), sa.tuple_(*vals))  # type: ignore[no-any-return]
    strict: Callable[[Any, Any], Any] = (lambda a, b: a < b) if op == "<=" else ops[">"]
    terms = []
    for i in range(len(cols)):
        prefix = [cols[j] == vals[j] for j in range(i)]
        terms.append(sa.and_(*prefix, strict(cols[i], vals[i])))
    if op in (">=", "<="):
        terms.append(sa.and_(*[c == v for c, v in zip(cols, vals, strict=True)]))
    return sa.or_(*terms)


def _same_column(a: Any, b: Any) -> bool:
    return (
        getattr(a, "table", None) is not None
        and getattr(a, "table", None) is getattr(b, "table", None)
        and getattr(a, "name", None) == getattr(b, "name", None)
    )


# ----------------------------------------------------------------------------------------- plan


def _engine_of(bind: Any) -> Engine:
    _require_sqlalchemy()
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


class _Plan:
    """Everything fixed for a run: the base statement, the key, how rows are fetched."""

    def __init__(self, bind: Any, source: Any, key: Any, *, tuples: bool = False) -> None:
        self.engine = _engine_of(bind)
        self.sessionmaker: sessionmaker[Any] | None = (
            bind if isinstance(bind, sessionmaker) else None
        )
        self.row_value = self.engine.dialect.name in _ROW_VALUE_DIALECTS
        stmt, self.orm_mapper = self._statement(source)
        if tuples and self.orm_mapper is not None:
            raise BatchSourceError(
                "tuples=True reads Core rows, but this source yields ORM objects",
                hint="select the entity's table or columns, e.g. select(User.__table__)",
            )
        self.tuples = tuples
        self._reject_paging(stmt)
        self.table = self._single_table(stmt)
        cols = self._key_columns(key)
        self.key_columns = cols
        self.width = len(cols)
        # A Core source's integer key lets the snapshot bound be checked in Python (fetch_page).
        # Not for ORM sources: rows read past the bound would still be loaded as objects (load
        # events, eager loaders). Not for types that convert values on the way out.
        dialect = self.engine.dialect
        self.integer_key = (
            self.orm_mapper is None
            and len(cols) == 1
            and isinstance(cols[0].type, sa.Integer)
            and cols[0].type.dialect_impl(dialect).result_processor(dialect, None) is None
        )
        self._low_names = tuple(f"membound_lo_{i}" for i in range(len(cols)))
        self._high_names = tuple(f"membound_hi_{i}" for i in range(len(cols)))
        self.where_clause = stmt.whereclause
        if self.orm_mapper is not None:
            names = []
            for col in cols:
                try:
                    prop = self.orm_mapper.get_property_by_column(col)
                except Exception:  # the key is not a mapped attribute of the entity
                    entity = self.orm_mapper.class_.__name__
                    raise BatchSourceError(
                        f"key column {col.name!r} is not mapped on {entity}"
                    ) from None
                names.append(prop.key)
            self.attr_names: tuple[str, ...] = tuple(names)
            self.positions: tuple[int, ...] = ()
        else:
            # Core rows: the key must be in the row to resume after it; add it when missing.
            selected = list(stmt.selected_columns)
            positions = []
            for i, col in enumerate(cols):
                found = next(
                    (p for p, c in enumerate(selected) if c is col or _same_column(c, col)), None
                )
                if found is None:
                    stmt = stmt.add_columns(col.label(f"membound_key_{i}"))
                    selected.append(col)
                    found = len(selected) - 1
                positions.append(found)
            self.positions = tuple(positions)
            self.attr_names = ()
        self.stmt = stmt
        self._pages: dict[tuple[str, bool, int], Any] = {}
        self._driver_queries: dict[int, DriverQuery | None] = {}
        self._connected_once = False

    @staticmethod
    def _statement(source: Any) -> tuple[Any, Mapper[Any] | None]:
        if isinstance(source, sa.Table):
            return sa.select(source), None
        if isinstance(source, sa.Select):
            descriptions = source.column_descriptions
            if len(descriptions) == 1:
                entity = descriptions[0].get("entity")
                if entity is not None and descriptions[0].get("expr") is entity:
                    return source, sa.inspect(entity)
            return source, None
        inspected = sa.inspect(source, raiseerr=False)
        if isinstance(inspected, Mapper):
            return sa.select(source), inspected
        raise BatchSourceError(
            f"cannot batch over {type(source).__name__}: give a Table, an ORM entity or a select()"
        )

    @staticmethod
    def _reject_paging(stmt: Any) -> None:
        for attr, what in (
            ("_order_by_clauses", "ORDER BY"),
            ("_offset_clause", "OFFSET"),
            ("_limit_clause", "LIMIT"),
            ("_group_by_clauses", "GROUP BY"),  # groups have no unique row key to resume after
        ):
            value = getattr(stmt, attr, None)
            # Clauses refuse bool(); an empty ORDER BY is an empty tuple.
            if value is not None and not (isinstance(value, tuple) and not value):
                raise BatchSourceError(
                    f"the source select has its own {what}; membound orders by the key and pages "
                    "by key ranges itself",
                    hint="remove order_by()/offset()/limit(); use start=/finish= to bound the run",
                )

    @staticmethod
    def _single_table(stmt: Any) -> sa.Table | None:
        froms = stmt.get_final_froms()
        if len(froms) == 1 and isinstance(froms[0], sa.Table):
            return froms[0]
        return None

    def _key_columns(self, key: Any) -> list[Any]:
        table = self.table
        if key is None:
            if self.orm_mapper is not None:
                cols = list(self.orm_mapper.primary_key)
            elif table is not None:
                cols = list(table.primary_key.columns)
            else:
                raise BatchSourceError(
                    "the source selects from several tables; pass key= naming unique non-null "
                    "columns"
                )
            if not cols:
                name = table.name if table is not None else "the source"
                raise BatchSourceError(
                    f"table {name!r} has no primary key, so there is no key to batch by",
                    hint="add a primary key, or pass key= naming unique, non-null columns",
                )
            return cols
        items = list(key) if isinstance(key, (list, tuple)) else [key]
        if not items:
            raise BatchSourceError("key= is empty")
        cols = [self._resolve_column(item) for item in items]
        for col in cols:
            if col.nullable:
                raise BatchSourceError(
                    f"key column {col.table.name}.{col.name} is nullable; NULL keys are never "
                    "greater than a resume point, so such rows would be skipped",
                    hint="declare the key column NOT NULL (nullable=False)",
                )
        if table is not None and not self._is_unique(table, cols):
            names = ", ".join(c.name for c in cols)
            raise BatchSourceError(
                f"key ({names}) is not declared unique on table {table.name!r}",
                hint="batch by the primary key, or by columns with a unique constraint or index",
            )
        return cols

    def _resolve_column(self, item: Any) -> Any:
        if isinstance(item, str):
            if self.table is None or item not in self.table.c:
                raise BatchSourceError(f"key column {item!r} not found in the source table")
            return self.table.c[item]
        clause = item.__clause_element__() if hasattr(item, "__clause_element__") else item
        if not isinstance(clause, sa.Column):
            raise BatchSourceError(f"key must name table columns, got {item!r}")
        return clause

    @staticmethod
    def _is_unique(table: sa.Table, cols: list[Any]) -> bool:
        names = {c.name for c in cols}
        candidate_sets = [{c.name for c in table.primary_key.columns}]
        candidate_sets += [
            {c.name for c in con.columns}
            for con in table.constraints
            if isinstance(con, sa.UniqueConstraint)
        ]
        candidate_sets += [{c.name for c in ix.columns} for ix in table.indexes if ix.unique]
        candidate_sets += [{c.name} for c in table.columns if c.unique]
        return any(s and s <= names for s in candidate_sets)

    # --------------------------------------------------------------------------- execution

    def key_of(self, row: Any) -> Key:
        if self.orm_mapper is not None:
            return tuple(getattr(row, name) for name in self.attr_names)
        return tuple(row[p] for p in self.positions)

    def bounded(self, after: Key | None, start: Key | None, upper: Key | None) -> Any:
        stmt = self.stmt
        if after is not None:
            stmt = stmt.where(_compare(self.key_columns, after, ">", self.row_value))
        if start is not None:
            stmt = stmt.where(_compare(self.key_columns, start, ">=", self.row_value))
        if upper is not None:
            stmt = stmt.where(_compare(self.key_columns, upper, "<=", self.row_value))
        return stmt

    def page_statement(self, lower: str, has_upper: bool, batch_size: int) -> Any:
        """The batch query for a bound shape, built once with bind parameters and reused.

        Reusing one statement object lets SQLAlchemy reuse its cache key and compiled SQL, so
        a batch costs one execute, not a statement build and compile.
        """
        cache_key = (lower, has_upper, batch_size)
        cached = self._pages.get(cache_key)
        if cached is not None:
            return cached
        cols = self.key_columns
        stmt = self.stmt
        if lower != "none":
            params = tuple(
                sa.bindparam(name, type_=c.type)
                for name, c in zip(self._low_names, cols, strict=True)
            )
            stmt = stmt.where(
                _compare(cols, params, ">" if lower == "after" else ">=", self.row_value)
            )
        if has_upper:
            params = tuple(
                sa.bindparam(name, type_=c.type)
                for name, c in zip(self._high_names, cols, strict=True)
            )
            stmt = stmt.where(_compare(cols, params, "<=", self.row_value))
        stmt = stmt.order_by(*cols).limit(batch_size)
        self._pages[cache_key] = stmt
        return stmt

    def fetch_page(
        self, batch_size: int, after: Key | None, start: Key | None, upper: Key | None
    ) -> Sequence[Any]:
        """The next page: up to ``batch_size`` rows with keys after ``after`` (or from ``start``)
        and not beyond ``upper``, in key order."""
        lower = "after" if after is not None else "start" if start is not None else "none"
        # An integer key's upper bound is applied here rather than in SQL: the database would
        # test it on every row (measured: 3-4% of a SQLite page read), Python once per page.
        # Only integers: Python and the database agree on their order whatever the collation.
        upper_in_sql = upper is not None and not (self.integer_key and type(upper[0]) is int)
        stmt = self.page_statement(lower, upper_in_sql, batch_size)
        params: dict[str, Any] = {}
        low = after if after is not None else start
        if low is not None:
            params.update(zip(self._low_names, low, strict=True))
        if upper_in_sql:
            params.update(zip(self._high_names, upper, strict=True))  # type: ignore[arg-type]
        if self.tuples:
            rows = self.fetch_tuples(stmt, params)
        else:
            rows = self.fetch(stmt, scalars=self.orm_mapper is not None, params=params)
        if upper is not None and not upper_in_sql and rows and self.key_of(rows[-1]) > upper:
            key_of = self.key_of
            # Rows are in key order, so the ones within the bound are a prefix.
            rows = [row for row in rows if key_of(row) <= upper]
        return rows

    def fetch_tuples(self, stmt: Any, params: dict[str, Any]) -> Sequence[Any]:
        """A page as plain tuples, read on the driver when that gives the same rows (G4, G8).

        A sessionmaker's session may route, filter or hook statements (``get_bind``,
        ``do_orm_execute``), so with one the pages always go through the session.
        """
        if id(stmt) not in self._driver_queries:  # first use of this page shape
            self._driver_queries[id(stmt)] = self._driver_query(stmt)
        query = self._driver_queries[id(stmt)]
        if query is None:
            return [tuple(row) for row in self.fetch(stmt, scalars=False, params=params)]
        try:
            return query.run(params)
        except sa_exc.OperationalError as exc:
            _raise_if_locked(exc)
            raise

    def _driver_query(self, stmt: Any) -> DriverQuery | None:
        if self.sessionmaker is not None or not driver_path_allowed(self.engine):
            return None
        if not self._connected_once:
            # The dialect finishes initialising on the first connection: compile after it.
            self.fetch(sa.select(sa.literal(1)), scalars=False)
            self._connected_once = True
        try:
            return DriverQuery(self.engine, stmt)
        except DriverPathUnavailable:
            return None

    def fetch(
        self, stmt: Any, *, scalars: bool, params: dict[str, Any] | None = None
    ) -> Sequence[Any]:
        """Run ``stmt`` in its own short transaction and return every row (G4).

        Every statement run here is bounded (a page with LIMIT, a max-key or a count query), so
        reading it whole is the point: nothing stays open while the caller works.
        """
        try:
            if self.sessionmaker is not None or scalars:
                factory = self.sessionmaker or (lambda: Session(self.engine))
                # Closing the session ends its transaction, returns the connection to the pool
                # and detaches the objects, so the identity map never outlives one batch.
                with factory() as session:
                    result = session.execute(stmt, params)
                    if scalars:
                        return result.scalars().all()  # noqa: MB102 (one LIMIT page)
                    return result.all()  # noqa: MB102 (one LIMIT page)
            with self.engine.connect() as conn:
                return conn.execute(stmt, params).all()  # noqa: MB102 (one LIMIT page)
        except sa_exc.OperationalError as exc:
            _raise_if_locked(exc)
            raise

    def snapshot_max(self, start: Key | None) -> Key | None:
        stmt = self.bounded(None, start, None)
        stmt = (
            stmt.with_only_columns(*self.key_columns)
            .order_by(*[c.desc() for c in self.key_columns])
            .limit(1)
        )
        rows = self.fetch(stmt, scalars=False)
        return tuple(rows[0]) if rows else None

    def count(self, after: Key | None, start: Key | None, upper: Key | None) -> int:
        sub = self.bounded(after, start, upper).subquery()
        rows = self.fetch(sa.select(sa.func.count()).select_from(sub), scalars=False)
        return int(rows[0][0])

    def batch_where(self, first: Key, last: Key) -> Any:
        parts = [
            _compare(self.key_columns, first, ">=", self.row_value),
            _compare(self.key_columns, last, "<=", self.row_value),
        ]
        if self.where_clause is not None:
            parts.insert(0, self.where_clause)
        return sa.and_(*parts)


def _is_locked(exc: BaseException) -> bool:
    text = str(exc).lower()
    if "database is locked" in text or "database table is locked" in text:
        return True
    sqlstate = getattr(getattr(exc, "orig", exc), "sqlstate", None)
    return sqlstate in ("55P03", "40P01")  # lock_not_available, deadlock_detected


def _raise_if_locked(exc: BaseException) -> None:
    if _is_locked(exc):
        raise DatabaseLocked(
            f"the database is locked by another connection: {str(exc).splitlines()[0]}"
        ) from exc


# ------------------------------------------------------------------------------------- reading


def in_batches(
    engine_or_sessionmaker: Bind,
    source: Any,
    batch_size: int = 1000,
    key: Any = None,
    start: Any = None,
    finish: Any = "snapshot",
    checkpoint: Checkpoint | None = None,
    progress: bool = False,
    *,
    wal_checkpoint: bool = False,
    tuples: bool = False,
) -> Iterator[Batch]:
    """Yield the source's rows as :class:`Batch` objects in key order, O(batch_size) memory.

    Args:
        engine_or_sessionmaker: where to read. With a ``sessionmaker`` each batch runs in a fresh
            session from it; with an ``Engine``, Core sources use a pooled connection per batch.
        source: a ``Table``, an ORM entity class, or a ``select()`` with filters but without
            ORDER BY, OFFSET or LIMIT. ``select(Entity)`` and entity classes yield ORM objects,
            each batch loaded in a fresh Session closed before the batch is yielded (objects
            are detached: load what you need eagerly). A Core select that does not select
            the key columns gets them added as ``membound_key_<i>`` (needed to resume).
        batch_size: rows per batch (>= 1).
        key: the column(s) to order and resume by: the primary key by default, or a unique,
            non-null column / tuple of columns (names, ``Column`` objects or ORM attributes).
        start: first key to visit, inclusive (a tuple for composite keys).
        finish: ``"snapshot"`` (default) stops at the largest key present at start; ``None``
            follows rows inserted during the run; a key value stops there, inclusive.
        checkpoint: resume strictly after the checkpoint's stored key. When no ``BatchWriter``
            owns the checkpoint, a batch's last key is saved once the loop asks for the next
            batch (or ends), i.e. after your code for that batch returned: at-least-once. For
            exactly-once, give the same checkpoint to a ``BatchWriter`` (see the README recipe).
        progress: show a rich progress bar with rows/s, ETA (from a count taken at start) and RSS.
        wal_checkpoint: on SQLite, run ``PRAGMA wal_checkpoint(PASSIVE)`` between batches so the
            WAL file stays small while the loop writes.
        tuples: Core sources only: rows are plain tuples in the select's column order instead of
            SQLAlchemy ``Row`` objects (no ``row.name`` access). Each page's statement is
            compiled by SQLAlchemy once and run straight on a pooled DBAPI connection, with the
            same type processing SQLAlchemy applies; the fastest read (about the speed of one
            raw driver cursor). With a sessionmaker, engine listeners or execution options, a
            driver other than pysqlite/psycopg 3, or SQL finished at execution time, the pages
            go through SQLAlchemy instead (same rows, as tuples).

    Raises:
        BatchSourceError: unusable source or key, ``batch_size < 1``, or ``tuples=True`` with an
            ORM source (raised at the call).
        KeyOrderError: a batch's first key is not greater than the previous batch's last key.
        DatabaseLocked: the database stayed locked past its busy timeout while reading a batch.
    """
    plan, pages = _start(
        engine_or_sessionmaker,
        source,
        batch_size=batch_size,
        key=key,
        start=start,
        finish=finish,
        checkpoint=checkpoint,
        progress=progress,
        wal_checkpoint=wal_checkpoint,
        tuples=tuples,
    )
    return _batches(plan, pages)


def _start(
    bind: Bind,
    source: Any,
    *,
    batch_size: int,
    key: Any,
    start: Any,
    finish: Any,
    checkpoint: Checkpoint | None,
    progress: bool,
    wal_checkpoint: bool,
    tuples: bool,
) -> tuple[_Plan, Iterator[Sequence[Any]]]:
    """Check the arguments, fix the resume point and high-water mark, and return the pages."""
    _require_sqlalchemy()
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise BatchSourceError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    plan = _Plan(bind, source, key, tuples=tuples)
    if isinstance(finish, str) and finish != "snapshot":
        raise BatchSourceError(f"finish must be 'snapshot', None or a key value, got {finish!r}")
    # Resume point and high-water mark are fixed here, at the call, not at the first next():
    # "snapshot" means the largest key when in_batches()/find_each() was called.
    after: Key | None = None
    start_key = None if start is None else _as_tuple(start, plan.width)
    if checkpoint is not None:
        stored = checkpoint._load_key()
        if stored is not None:
            after = _as_tuple(stored, plan.width)
    if finish == "snapshot":
        upper = plan.snapshot_max(start_key)
        if upper is None:
            return plan, iter(())
    else:
        upper = None if finish is None else _as_tuple(finish, plan.width)
    return plan, _page_loop(
        plan,
        batch_size=batch_size,
        after=after,
        start_key=start_key,
        upper=upper,
        checkpoint=checkpoint,
        progress=progress,
        wal_checkpoint=wal_checkpoint,
    )


def _batches(plan: _Plan, pages: Iterator[Sequence[Any]]) -> Iterator[Batch]:
    # No enumerate(): its reused result tuple would keep the previous page alive while the
    # next one loads.
    index = -1
    for rows in pages:
        index += 1
        first, last = plan.key_of(rows[0]), plan.key_of(rows[-1])
        batch = Batch(
            rows=rows,
            first_key=_public_key(first),
            last_key=_public_key(last),
            index=index,
            _where=(plan, first, last),
        )
        del rows
        yield batch
        del batch  # not alive while the next page loads (see _page_loop)


def _page_loop(
    plan: _Plan,
    *,
    batch_size: int,
    after: Key | None,
    start_key: Key | None,
    upper: Key | None,
    checkpoint: Checkpoint | None,
    progress: bool,
    wal_checkpoint: bool,
) -> Iterator[Sequence[Any]]:
    """Each page's rows, fetched completely before they are yielded (G4); checks G6, saves
    a checkpoint without a writer once the caller asks for the next page."""
    bar = _Progress(plan.count(after, start_key, upper)) if progress else None
    index = 0
    try:
        while True:
            rows = plan.fetch_page(batch_size, after, start_key, upper)
            if not rows:
                return
            last = plan.key_of(rows[-1])
            if after is not None:
                first = plan.key_of(rows[0])
                if not first > after:
                    raise KeyOrderError(
                        f"batch {index} starts at key {_public_key(first)!r}, which is not "
                        f"greater than the previous last key {_public_key(after)!r}"
                    )
            if checkpoint is not None:
                checkpoint._current = last
            count = len(rows)
            yield rows
            # Drop this generator's reference before the next page is fetched: with it, two
            # pages are alive while the next one loads, and the garbage collector's young
            # generation keeps finding (and promoting) the old page's objects. Measured on 1M
            # ORM rows: about 10% of the loop's time.
            del rows
            # Reaching here means the caller finished with the batch and asked for the next.
            if checkpoint is not None and checkpoint._writer is None:
                checkpoint.save(_public_key(last))
            if bar is not None:
                bar.advance(count)
            if wal_checkpoint and plan.engine.dialect.name == "sqlite":
                with plan.engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            after, start_key = last, None
            index += 1
            # A short batch means the fixed range is exhausted; following new rows
            # (finish=None) needs one more query to see rows inserted meanwhile.
            if count < batch_size and upper is not None:
                return
    finally:
        if bar is not None:
            bar.close()


def find_each(
    engine_or_sessionmaker: Bind,
    source: Any,
    batch_size: int = 1000,
    key: Any = None,
    start: Any = None,
    finish: Any = "snapshot",
    checkpoint: Checkpoint | None = None,
    progress: bool = False,
    *,
    wal_checkpoint: bool = False,
    tuples: bool = False,
) -> Iterator[Any]:
    """Yield the source's rows one at a time, reading them in keyset batches (see ``in_batches``).

    Memory stays O(batch_size) whatever the table size, and no transaction or cursor is open
    while the loop body runs (G4). With a ``checkpoint`` shared with a ``BatchWriter``, every
    ``writer.add`` is tagged with the key of the row being processed, so the writer can commit
    the resume position together with the writes (G7).

    Args:
        engine_or_sessionmaker: see :func:`in_batches`.
        source: see :func:`in_batches`.
        batch_size: rows read per query.
        key: see :func:`in_batches`.
        start: see :func:`in_batches`.
        finish: see :func:`in_batches`.
        checkpoint: see :func:`in_batches`.
        progress: see :func:`in_batches`.
        wal_checkpoint: see :func:`in_batches`.
        tuples: see :func:`in_batches`.

    Raises:
        BatchSourceError: unusable source or key, or ``batch_size < 1`` (raised at the call).
        KeyOrderError: keys did not increase between batches.
        DatabaseLocked: the database stayed locked past its busy timeout.
    """
    plan, pages = _start(
        engine_or_sessionmaker,
        source,
        batch_size=batch_size,
        key=key,
        start=start,
        finish=finish,
        checkpoint=checkpoint,
        progress=progress,
        wal_checkpoint=wal_checkpoint,
        tuples=tuples,
    )
    if checkpoint is None:
        return _each(pages)
    return _each_tagged(pages, checkpoint, plan.key_of)


class _Rows(itertools.chain[Any]):
    """find_each's rows: a chain over the pages (each page's rows handed out in C, no Python
    frame resumed per row: a generator around it cost 2.5% of a SQLite read) that also has a
    generator's ``close()``, which ends the page loop (and its progress bar) at once."""

    __slots__ = ("_pages",)
    _pages: Iterator[Sequence[Any]]

    def close(self) -> None:
        """Stop, as a generator's ``close()``: no further page is read, no further row comes."""
        close = getattr(self._pages, "close", None)
        if close is not None:
            close()
        for _ in self:  # the rest of the page in hand (at most one batch, already in memory)
            pass


def _each(pages: Iterator[Sequence[Any]]) -> Iterator[Any]:
    rows = cast(_Rows, _Rows.from_iterable(pages))
    rows._pages = pages
    return rows


def _each_tagged(
    pages: Iterator[Sequence[Any]], checkpoint: Checkpoint, key_of: Callable[[Any], Key]
) -> Iterator[Any]:
    for rows in pages:
        for row in rows:
            checkpoint._current = key_of(row)
            yield row
        del rows, row  # neither alive while the next page loads (see _page_loop)


class _Progress:
    """A rich progress bar: rows, rows/s, ETA from the count at start, and current RSS."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )

        # stderr: the loop's own output on stdout stays clean when piped.
        self._progress = Progress(
            TextColumn("[bold]batches"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]} rows/s"),
            TimeRemainingColumn(),
            TextColumn("RSS {task.fields[rss]}"),
            console=Console(stderr=True),
        )
        self._task = self._progress.add_task("rows", total=total, rate="-", rss="-")
        self._started = time.perf_counter()
        self._done = 0
        self._progress.start()

    def advance(self, n: int) -> None:
        from membound._units import format_size

        self._done += n
        elapsed = max(time.perf_counter() - self._started, 1e-9)
        self._progress.update(
            self._task,
            advance=n,
            rate=f"{self._done / elapsed:,.0f}",
            rss=format_size(current_rss()),
        )

    def close(self) -> None:
        self._progress.stop()


# ---------------------------------------------------------------------------------- checkpoint


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
    """

    def __init__(self, engine: Bind, name: str) -> None:
        self.engine = _engine_of(engine)
        self.name = name
        self._ready = False
        # Set by the reader: key of the row (find_each) or batch (in_batches) being processed.
        self._current: Key | None = None
        # The BatchWriter that commits this checkpoint with its writes, if any.
        self._writer: BatchWriter | None = None

    def _ensure_table(self) -> None:
        if not self._ready:
            _checkpoint_table().create(self.engine, checkfirst=True)
            self._ready = True

    def _load_key(self) -> Any:
        self._ensure_table()
        table = _checkpoint_table()
        with self.engine.connect() as conn:
            text = conn.execute(
                sa.select(table.c.position).where(table.c.name == self.name)
            ).scalar_one_or_none()
        if text is None:
            return None
        values = tuple(_decode_value(v) for v in json.loads(text))
        return _public_key(values)

    @property
    def position(self) -> Any:
        """The stored key (scalar, or tuple for composite keys), or None before the first save."""
        return self._load_key()

    def save(self, position: Any, *, connection: Any = None) -> None:
        """Store ``position``; inside ``connection``'s transaction when given (for atomicity).

        Args:
            position: the last key whose effects are committed.
            connection: an open SQLAlchemy ``Connection`` in a transaction, to commit the
                position together with other writes; by default a transaction of its own.
        """
        if connection is not None and not self._ready:
            # Create it on the caller's connection: another connection would wait on the lock
            # that this very transaction holds (SQLite).
            _checkpoint_table().create(connection, checkfirst=True)
            self._ready = True
        self._ensure_table()
        values = position if isinstance(position, tuple) else (position,)
        text = json.dumps([_encode_value(v) for v in values])
        if connection is None:
            with self.engine.begin() as conn:
                self._write(conn, text)
        else:
            self._write(connection, text)

    def _write(self, conn: Any, text: str | None) -> None:
        table = _checkpoint_table()
        now = _dt.datetime.now(_dt.timezone.utc).isoformat()
        result = conn.execute(
            sa.update(table).where(table.c.name == self.name).values(position=text, updated_at=now)
        )
        if result.rowcount == 0:
            conn.execute(sa.insert(table).values(name=self.name, position=text, updated_at=now))

    def reset(self) -> None:
        """Forget the stored position: the next run starts from the beginning."""
        self._ensure_table()
        table = _checkpoint_table()
        with self.engine.begin() as conn:
            conn.execute(sa.delete(table).where(table.c.name == self.name))
        self._current = None

    def __repr__(self) -> str:
        return f"Checkpoint(name={self.name!r})"


# ------------------------------------------------------------------------------------- writing


_NO_KEY: Any = object()


@dataclass
class _Item:
    statement: Any
    params: Any
    tag: Key | None


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
        self.engine = _engine_of(engine)
        self.batch_size = batch_size
        self.checkpoint = checkpoint
        self._buffer: list[_Item] = []
        self._committed = 0
        self._flushes = 0
        self._last_text: tuple[str, Any] | None = None
        if checkpoint is not None:
            checkpoint._writer = self
            checkpoint._ensure_table()

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
        """
        if isinstance(statement, str):
            if self._last_text is None or self._last_text[0] != statement:
                self._last_text = (statement, sa.text(statement))
            statement = self._last_text[1]
        if key is not _NO_KEY:
            tag: Key | None = key if isinstance(key, tuple) else (key,)
        elif self.checkpoint is not None:
            tag = self.checkpoint._current
        else:
            tag = None
        if len(self._buffer) >= self.batch_size and (
            self.checkpoint is None or tag != self._buffer[-1].tag
        ):
            self.flush()
        self._buffer.append(_Item(statement, params, tag))
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
        try:
            with self.engine.begin() as conn:
                for statement, group in _groups(items):
                    params = [item.params for item in group]
                    if params[0] is None:
                        for _ in group:
                            conn.execute(statement)
                    else:
                        conn.execute(statement, params)
                if self.checkpoint is not None and position is not None:
                    self.checkpoint.save(_public_key(position), connection=conn)
        except Exception as exc:
            locked = " (the database is locked)" if _is_locked(exc) else ""
            raise BatchWriteError(
                f"BatchWriter flush {self._flushes + 1} failed{locked} and was rolled back: "
                f"{len(items)} items not applied; {self._committed} items were committed "
                f"by {self._flushes} earlier flushes. Cause: {str(exc).splitlines()[0]}",
                committed=self._committed,
                failed=len(items),
            ) from exc
        self._committed += len(items)
        self._flushes += 1
        return len(items)

    def close(self) -> None:
        """Flush the rest and release the checkpoint."""
        try:
            self.flush()
        finally:
            self._release()

    def _release(self) -> None:
        if self.checkpoint is not None and self.checkpoint._writer is self:
            self.checkpoint._writer = None

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
            exc.add_note(
                f"membound.BatchWriter: {self._committed} items were committed; {discarded} "
                "buffered items were discarded"
            )
        return False


def _groups(items: list[_Item]) -> Iterator[tuple[Any, list[_Item]]]:
    """Runs of consecutive items sharing one statement object (one executemany each)."""
    run: list[_Item] = []
    for item in items:
        if run and item.statement is not run[0].statement:
            yield run[0].statement, run
            run = []
        run.append(item)
    if run:
        yield run[0].statement, run
