"""Planning a keyset run: the source's statement, its key columns (checked unique, and
non-null by what the database says: ``nulls.py``), how to read a row's key, and the bounded
queries built from them."""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from membound._errors import BatchSourceError
from membound.bound.sql.connection import engine_of, run_statement
from membound.bound.sql.keys import Key, compare, same_column
from membound.bound.sql.nulls import NullableKey, nullable_keys

# Without SQLAlchemy the names stay undefined; connection.require_sqlalchemy() says what to
# install before any of them is used.
with contextlib.suppress(ImportError):
    import sqlalchemy as sa
    from sqlalchemy.orm import Mapper, sessionmaker

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["SourcePlan"]

#: Dialects that evaluate row-value comparisons ``(a, b) > (1, 2)`` correctly (and use indexes).
_ROW_VALUE_DIALECTS = frozenset({"postgresql", "sqlite", "mysql", "mariadb"})


class SourcePlan:
    """Everything fixed for a run: the base statement, the key and where it sits in a row.

    Args:
        bind: an Engine or a bound sessionmaker.
        source: a Table, an ORM entity or a ``select()`` without its own paging.
        key: the key columns, or None for the primary key.
        tuples: rows will be read as plain tuples (refused for ORM sources).

    Raises:
        BatchSourceError: the source or key cannot give G1, e.g. a key column that can hold
            NULL (asked of the database, one catalog query; see ``nulls.py``).
        DatabaseLocked: the database stayed locked while its schema was read.
    """

    def __init__(self, bind: Any, source: Any, key: Any, *, tuples: bool = False) -> None:
        self.engine: Engine = engine_of(bind)
        self.sessions: sessionmaker[Any] | None = bind if isinstance(bind, sessionmaker) else None
        self.row_value = self.engine.dialect.name in _ROW_VALUE_DIALECTS
        stmt, self.orm_mapper = _statement(source)
        if tuples and self.orm_mapper is not None:
            raise BatchSourceError(
                "tuples=True reads Core rows, but this source yields ORM objects",
                hint="select the entity's table or columns, e.g. select(User.__table__)",
            )
        self.tuples = tuples
        _reject_paging(stmt)
        # Computed once: for an ORM select it costs a compile (about 0.1 ms).
        froms = stmt.get_final_froms()
        self.table = _single_table(froms)
        cols = self._key_columns(key)
        nullable = nullable_keys(self.engine, stmt, cols, froms=froms)
        if nullable:
            raise BatchSourceError(
                _null_key_message(nullable, self.table),
                hint=(
                    "SQLite cannot add NOT NULL to an existing column (it means rebuilding the "
                    "table); filtering the source needs no schema change"
                    if self.engine.dialect.name == "sqlite"
                    else "filtering the source needs no schema change"
                ),
            )
        self.key_columns = cols
        self.width = len(cols)
        # A Core source's integer key lets the snapshot bound be checked in Python (pages.py).
        # Not for ORM sources: rows read past the bound would still be loaded as objects (load
        # events, eager loaders). Not for types that convert values on the way out.
        dialect = self.engine.dialect
        self.integer_key = (
            self.orm_mapper is None
            and len(cols) == 1
            and isinstance(cols[0].type, sa.Integer)
            and cols[0].type.dialect_impl(dialect).result_processor(dialect, None) is None
        )
        self.where_clause = stmt.whereclause
        # One table: the key is declared unique (primary key or checked constraint). Several
        # (a join): it may repeat, as a one-to-many join repeats its "one" side's key, and a
        # repeated key loses rows at page ends; each page is then checked (read.py).
        self.key_declared_unique = self.table is not None
        self.attr_names: tuple[str, ...] = ()
        self.positions: tuple[int, ...] = ()
        if self.orm_mapper is not None:
            self.attr_names = _attribute_names(self.orm_mapper, cols)
        else:
            # Core rows: the key must be in the row to resume after it; add it when missing.
            stmt, self.positions = _with_key_columns(stmt, cols)
        self.stmt = stmt
        self.key_of: Callable[[Any], Key] = _key_getter(self.attr_names, self.positions)
        """The key of a row (an ORM object or a Core row or tuple) as a tuple: called once per
        row, so built once (``operator.itemgetter``/``attrgetter``, several times faster than a
        generator of lookups)."""
        self.stop: Key | None = None
        """An exclusive upper bound on the key (``stop=``), applied to every query of the run."""

    def _key_columns(self, key: Any) -> list[Any]:
        if key is None:
            return self._primary_key()
        items = list(key) if isinstance(key, (list, tuple)) else [key]
        if not items:
            raise BatchSourceError("key= is empty")
        cols = [self._resolve_column(item) for item in items]
        table = self.table
        if table is not None and not _is_unique(table, cols):
            names = ", ".join(c.name for c in cols)
            raise BatchSourceError(
                f"key ({names}) is not declared unique on table {table.name!r}",
                hint="batch by the primary key, or by columns with a unique constraint or index",
            )
        return cols

    def _primary_key(self) -> list[Any]:
        table = self.table
        if self.orm_mapper is not None:
            cols = list(self.orm_mapper.primary_key)
        elif table is not None:
            cols = list(table.primary_key.columns)
        else:
            raise BatchSourceError(
                "the source selects from several tables; pass key= naming unique non-null columns"
            )
        if not cols:
            name = table.name if table is not None else "the source"
            raise BatchSourceError(
                f"table {name!r} has no primary key, so there is no key to batch by",
                hint="add a primary key, or pass key= naming unique, non-null columns",
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

    # ---------------------------------------------------------------------------- queries

    def run(self, stmt: Any) -> Sequence[Any]:
        """Core rows of a bounded statement, in a short transaction of its own."""
        return run_statement(self.engine, self.sessions, stmt, scalars=False)

    def bounded(self, after: Key | None, start: Key | None, upper: Key | None) -> Any:
        """The source's statement limited to keys after ``after``, from ``start``, up to
        ``upper`` (each optional), and below the run's ``stop`` when it has one."""
        stmt = self.stmt
        if after is not None:
            stmt = stmt.where(compare(self.key_columns, after, ">", self.row_value))
        if start is not None:
            stmt = stmt.where(compare(self.key_columns, start, ">=", self.row_value))
        if upper is not None:
            stmt = stmt.where(compare(self.key_columns, upper, "<=", self.row_value))
        if self.stop is not None:
            stmt = stmt.where(compare(self.key_columns, self.stop, "<", self.row_value))
        return stmt

    def snapshot_max(self, start: Key | None) -> Key | None:
        """The largest key from ``start`` on, now; None when there is no row."""
        stmt = self.bounded(None, start, None)
        stmt = (
            stmt.with_only_columns(*self.key_columns)
            .order_by(*[c.desc() for c in self.key_columns])
            .limit(1)
        )
        rows = self.run(stmt)
        return tuple(rows[0]) if rows else None

    def count(self, after: Key | None, start: Key | None, upper: Key | None) -> int:
        """Rows within the bounds, now (for a progress bar's total)."""
        sub = self.bounded(after, start, upper).subquery()
        rows = self.run(sa.select(sa.func.count()).select_from(sub))
        return int(rows[0][0])

    def rows_with_key(self, key: Key) -> int:
        """How many rows of the source have ``key``: 0, 1, or 2 for "more than one"."""
        stmt = self.stmt.where(*(c == v for c, v in zip(self.key_columns, key, strict=True)))
        rows = self.run(stmt.with_only_columns(sa.literal(1)).limit(2))
        return len(rows)

    def batch_where(self, first: Key, last: Key) -> Any:
        """The source's filter and the key range ``first..last`` (G3)."""
        parts = [
            compare(self.key_columns, first, ">=", self.row_value),
            compare(self.key_columns, last, "<=", self.row_value),
        ]
        if self.where_clause is not None:
            parts.insert(0, self.where_clause)
        return sa.and_(*parts)


def _null_key_message(nullable: list[NullableKey], table: Any) -> str:
    """One line: which key columns can hold NULL, why, and the two ways out."""
    names = ", ".join(n.label for n in nullable)
    reasons = list(dict.fromkeys(n.reason for n in nullable))
    why = reasons[0] if len(reasons) == 1 else "; ".join(f"{n.label}: {n.reason}" for n in nullable)
    sql = " AND ".join(f"{n.label} IS NOT NULL" for n in nullable)
    tests = ", ".join(f"{n.table or 'source'}.c.{n.column}.is_not(None)" for n in nullable)
    source = f"select({table.name})" if table is not None else "source"
    one = len(nullable) == 1
    return (
        f"key column{'' if one else 's'} {names} can hold NULL ({why}); rows with a NULL key "
        f"would never be visited: declare {'it' if one else 'them'} NOT NULL, or leave those "
        f"rows out (WHERE {sql}), e.g. {source}.where({tests})"
    )


def _statement(source: Any) -> tuple[Any, Mapper[Any] | None]:
    """The source as a select, and its ORM mapper when it yields ORM objects."""
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


def _reject_paging(stmt: Any) -> None:
    """Refuse a select with its own ORDER BY, OFFSET, LIMIT or GROUP BY."""
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


def _single_table(froms: Sequence[Any]) -> sa.Table | None:
    if len(froms) == 1 and isinstance(froms[0], sa.Table):
        return froms[0]
    return None


def _is_unique(table: sa.Table, cols: list[Any]) -> bool:
    """Whether the columns include a primary key, unique constraint or unique index."""
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


def _attribute_names(mapper: Mapper[Any], cols: Sequence[Any]) -> tuple[str, ...]:
    """The mapped attribute of each key column (ORM objects carry the key there)."""
    names = []
    for col in cols:
        try:
            prop = mapper.get_property_by_column(col)
        except Exception:  # the key is not a mapped attribute of the entity
            entity = mapper.class_.__name__
            raise BatchSourceError(f"key column {col.name!r} is not mapped on {entity}") from None
        names.append(prop.key)
    return tuple(names)


def _with_key_columns(stmt: Any, cols: Sequence[Any]) -> tuple[Any, tuple[int, ...]]:
    """The statement with every key column selected (added as ``membound_key_<i>`` when
    missing), and each key column's position in a row."""
    selected = list(stmt.selected_columns)
    positions = []
    for i, col in enumerate(cols):
        found = next((p for p, c in enumerate(selected) if c is col or same_column(c, col)), None)
        if found is None:
            stmt = stmt.add_columns(col.label(f"membound_key_{i}"))
            selected.append(col)
            found = len(selected) - 1
        positions.append(found)
    return stmt, tuple(positions)


def _key_getter(attr_names: tuple[str, ...], positions: tuple[int, ...]) -> Callable[[Any], Key]:
    """The row-to-key function: attributes of an ORM object, else positions in a Core row."""
    if attr_names:
        if len(attr_names) == 1:
            name = attr_names[0]
            return lambda row: (getattr(row, name),)
        return cast("Callable[[Any], Key]", operator.attrgetter(*attr_names))
    if len(positions) == 1:
        position = positions[0]
        return lambda row: (row[position],)
    return cast("Callable[[Any], Key]", operator.itemgetter(*positions))
