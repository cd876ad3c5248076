"""Which key columns of a source can hold NULL, by what the database itself says (G1).

A NULL key is never greater than a resume point, so a row with one never comes out of a keyset
run, and nothing says so (in SQLite NULLs also sort first: a first page of NULL keys ends the
run there). So a key column is rejected before the first page unless it is proven never NULL:

* the source leaves NULLs out itself: its WHERE has ``col IS NOT NULL`` as a top-level term
  (``select(t).where(t.c.col.is_not(None))``), or
* the database says the column is NOT NULL. The database is asked, once per run, rather than
  the ``Table`` object, because the two disagree where it matters: application code declares
  ``primary_key=True`` (so SQLAlchemy says NOT NULL) for tables whose DDL allows NULL, and
  SQLite allows NULL in every PRIMARY KEY column not declared NOT NULL except the rowid
  (``INTEGER PRIMARY KEY``, not ``DESC``) and the keys of WITHOUT ROWID tables. PostgreSQL
  primary keys are always NOT NULL.

Never proven, so rejected unless filtered: a column on the NULL-extended side of an outer join
(NOT NULL in its table, NULL in the joined row), a column of a view (views carry no NOT NULL),
and an expression or a set operation's column inside a subquery. A subquery's plain column is
traced to the column it selects, judged inside the subquery (its joins, its WHERE).

Why the schema and not the data (``EXISTS (... WHERE key IS NULL)``): data proves only the
present. A nullable column without NULLs today gets one tomorrow, and the job that passed the
check then fails, or, if the NULL arrives between the check and its page, skips the row in
silence. The data check would also cost a scan for a composite key or an unindexed ``key=``,
where one catalog query costs well under a millisecond. A nullable column that holds no NULL is
one filter away from being accepted, with no schema change.

If the database does not know the table (not created yet, or under another name), the ``Table``
object's ``nullable`` decides; the page query fails on such a table anyway.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from membound.bound.sql.connection import lock_errors, run_statement, translated_schema
from membound.bound.sql.keys import same_column

# Without SQLAlchemy the names stay undefined; connection.require_sqlalchemy() says what to
# install before any of them is used.
with contextlib.suppress(ImportError):
    import sqlalchemy as sa
    from sqlalchemy import exc as sa_exc
    from sqlalchemy.sql import operators
    from sqlalchemy.sql.elements import Null

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["NullableKey", "nullable_keys"]

_VIEW = "a view's column: views carry no NOT NULL"
_DECLARED = "declared without NOT NULL"
_SQLITE_PK = (
    "SQLite allows NULL in a PRIMARY KEY column not declared NOT NULL, except INTEGER PRIMARY KEY"
)
_DOING = "reading which key columns can hold NULL"


@dataclass(frozen=True)
class NullableKey:
    """A key column that can hold NULL in the source's rows."""

    table: str
    """The name of the column's table (or subquery) as the source names it."""
    column: str
    """The column's name."""
    reason: str
    """Why it can hold NULL, in a few words."""

    @property
    def label(self) -> str:
        """``table.column``."""
        return f"{self.table}.{self.column}" if self.table else self.column


def nullable_keys(
    engine: Engine, stmt: Any, cols: list[Any], *, froms: Sequence[Any] | None = None
) -> list[NullableKey]:
    """The key columns of ``stmt`` that can hold NULL, in key order (empty: all proven not).

    One catalog query per table whose columns need the database's word (usually one).

    Args:
        engine: the database to ask.
        stmt: the source's select.
        cols: its key columns.
        froms: ``stmt.get_final_froms()`` when the caller has it already (it costs a compile).

    Raises:
        DatabaseLocked: the database stayed locked past its busy timeout.
    """
    verdicts = [(col, _trace(col, stmt, froms)) for col in cols]
    # Each table is asked once, for all its key columns.
    tables = {id(v[0]): v[0] for _, v in verdicts if isinstance(v, tuple)}
    known = {key: _database_nulls(engine, table) for key, table in tables.items()}
    found = []
    for col, verdict in verdicts:
        if isinstance(verdict, tuple):
            table, base = verdict
            reason = _lookup(known[id(table)], base, engine)
        else:
            reason = verdict
        if reason is not None:
            found.append(NullableKey(_table_name(col), str(col.name), reason))
    return found


# ------------------------------------------------------------------- where a column comes from


def _trace(col: Any, stmt: Any, froms: Sequence[Any] | None) -> str | tuple[Any, Any] | None:
    """None when ``stmt`` proves ``col`` never NULL, a reason when it cannot be proven, or the
    ``(Table, column)`` whose NOT NULL the database must confirm."""
    if _filtered_out(stmt.whereclause, col):
        return None
    table = getattr(col, "table", None)
    froms = stmt.get_final_froms() if froms is None else froms
    if table is not None and any(table is f for f in _null_extended(froms)):
        return "it is on the NULL-extended side of an outer join"
    base_table = table.element if isinstance(table, sa.Alias) else table
    if isinstance(base_table, sa.Table):
        # An alias's column stands for the aliased table's column of the same name.
        base = col if base_table is table else base_table.c.get(col.key)
        if base is not None:
            return base_table, base
    if isinstance(table, (sa.Subquery, sa.CTE)) and isinstance(table.element, sa.Select):
        inner = _selected_column(table, col)
        if inner is None:
            return "it is an expression computed in a subquery, not a table column"
        return _trace(inner, table.element, None)
    return "no schema says it is never NULL (it is not a plain table column)"


def _filtered_out(where: Any, col: Any) -> bool:
    """Whether ``where`` requires ``col IS NOT NULL`` in every row (a top-level AND term)."""
    terms = [where] if where is not None else []
    while terms:
        term = terms.pop()
        if isinstance(term, sa.BooleanClauseList) and term.operator is operators.and_:
            terms.extend(term.clauses)
        elif (
            isinstance(term, sa.BinaryExpression)
            and term.operator is operators.is_not
            and isinstance(term.right, Null)
            and (term.left is col or same_column(term.left, col))
        ):
            return True
    return False


def _surface(from_: Any) -> list[Any]:
    """The tables, aliases and subqueries a FROM item is made of (through joins)."""
    if isinstance(from_, sa.Join):
        return _surface(from_.left) + _surface(from_.right)
    return [from_]


def _null_extended(froms: Sequence[Any]) -> list[Any]:
    """FROM items whose columns an outer join fills with NULL for unmatched rows."""
    found: list[Any] = []
    pending = list(froms)
    while pending:
        from_ = pending.pop()
        if isinstance(from_, sa.Join):
            pending += [from_.left, from_.right]
            if from_.full:
                found += _surface(from_.left) + _surface(from_.right)
            elif from_.isouter:
                found += _surface(from_.right)
    return found


def _selected_column(sub: Any, col: Any) -> Any:
    """The table column a subquery's column selects, or None for an expression."""
    for outer, selected in zip(sub.c, sub.element.selected_columns, strict=False):
        if outer is col:
            inner = selected
            while isinstance(inner, sa.Label):
                inner = inner.element
            if isinstance(inner, sa.Column) and getattr(inner, "table", None) is not None:
                return inner
            return None
    return None


def _table_name(col: Any) -> str:
    table = getattr(col, "table", None)
    if isinstance(table, sa.Table):
        return str(table.fullname)
    return str(getattr(table, "description", None) or "")  # an anonymous subquery: anon_1


# -------------------------------------------------------------------------- what the database says


def _lookup(said: dict[str, str | None] | None, base: Any, engine: Engine) -> str | None:
    """The reason the database gave for column ``base`` (None: NOT NULL); the Table object's
    ``nullable`` when the database does not know the table or column."""
    name = base.name.lower() if engine.dialect.name == "sqlite" else base.name  # SQLite: any case
    if said is None or name not in said:
        return "its Table object says nullable" if base.nullable else None
    return said[name]


def _database_nulls(engine: Engine, table: Any) -> dict[str, str | None] | None:
    """Each column of ``table`` in the database: None when it is NOT NULL, else the reason it
    can hold NULL; None for the whole when the database has no such table."""
    dialect = engine.dialect.name
    if dialect == "sqlite":
        return _sqlite_nulls(engine, table)
    if dialect == "postgresql":
        return _postgresql_nulls(engine, table)
    with lock_errors(_DOING), engine.connect() as conn:
        try:
            schema = translated_schema(engine, table.schema)
            columns = sa.inspect(conn).get_columns(table.name, schema=schema)
        except sa_exc.NoSuchTableError:
            return None
    return {c["name"]: _DECLARED if c["nullable"] else None for c in columns}


@functools.lru_cache(maxsize=32)
def _sqlite_query(quoted_schema: str | None) -> Any:
    """The catalog query for a table in ``quoted_schema`` (None: unqualified), built once: a
    ``text()`` parses its SQL on construction, a quarter of the check's cost."""
    args = "(:t, :s)" if quoted_schema else "(:t)"
    if quoted_schema:
        masters = [f"{quoted_schema}.sqlite_master"]
    else:  # an unqualified name is looked up in temp first, then main
        masters = ["sqlite_temp_master", "sqlite_master"]
    is_view = " + ".join(
        f"(SELECT count(*) FROM {m} WHERE type = 'view' AND name = :t COLLATE NOCASE)"
        for m in masters
    )
    return sa.text(
        'SELECT c.name, c."notnull", upper(c.type), c.pk, '
        f"(SELECT count(*) FROM pragma_table_info{args} WHERE pk > 0), "
        f"(SELECT count(*) FROM pragma_index_list{args} WHERE origin = 'pk'), {is_view} "
        f"FROM pragma_table_info{args} AS c"
    )


def _sqlite_nulls(engine: Engine, table: Any) -> dict[str, str | None] | None:
    # The rowid alias is the one PRIMARY KEY that is never NULL without NOT NULL (a NULL insert
    # gets a new rowid). SQLite makes a column the alias when the table's only key column has
    # the declared type INTEGER and no 'pk' index backs it (``INTEGER PRIMARY KEY DESC`` gets
    # one: SQLite's documented quirk). WITHOUT ROWID tables report their key NOT NULL.
    schema = translated_schema(engine, table.schema)
    query = _sqlite_query(
        engine.dialect.identifier_preparer.quote_schema(schema) if schema else None
    )
    params = {"t": table.name, "s": schema} if schema else {"t": table.name}
    rows = run_statement(engine, None, query, scalars=False, params=params, doing=_DOING)
    if not rows:
        return None
    said: dict[str, str | None] = {}
    for name, notnull, decl_type, pk, pk_columns, pk_indexes, view in rows:
        if view:
            reason: str | None = _VIEW
        elif notnull or (pk == 1 and pk_columns == 1 and decl_type == "INTEGER" and not pk_indexes):
            reason = None
        else:
            reason = _SQLITE_PK if pk else _DECLARED
        said[str(name).lower()] = reason
    return said


@functools.lru_cache(maxsize=1)
def _postgresql_query() -> Any:
    # to_regclass gives NULL (so no rows) for an unknown table instead of an error.
    return sa.text(
        "SELECT a.attname, a.attnotnull, c.relkind FROM pg_catalog.pg_attribute a "
        "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
        "WHERE a.attrelid = to_regclass(CAST(:rel AS text)) AND a.attnum > 0 "
        "AND NOT a.attisdropped"
    )


def _postgresql_nulls(engine: Engine, table: Any) -> dict[str, str | None] | None:
    preparer = engine.dialect.identifier_preparer
    schema = translated_schema(engine, table.schema)
    rel = preparer.quote(table.name)
    if schema:
        rel = f"{preparer.quote_schema(schema)}.{rel}"
    rows = run_statement(
        engine, None, _postgresql_query(), scalars=False, params={"rel": rel}, doing=_DOING
    )
    if not rows:
        return None
    said: dict[str, str | None] = {}
    for name, notnull, kind in rows:
        if kind in ("v", "m"):  # a view or a materialized view: attnotnull is always false
            said[name] = _VIEW
        else:
            said[name] = None if notnull else _DECLARED
    return said
