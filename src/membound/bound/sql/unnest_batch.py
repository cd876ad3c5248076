"""A PostgreSQL flush of per-row UPDATEs or DELETEs as one statement over arrays, taken only
where it provably writes what the same statements run row by row would (DESIGN §6 G9).

``executemany`` of ``UPDATE items SET status = 'DONE' WHERE id = :uid`` runs the statement once
per row: psycopg 3 pipelines them, yet the server still plans, executes and acknowledges a
thousand statements a flush. The same flush as one statement joins the table to the items'
values, sent as one array per parameter::

    UPDATE items SET status = %(status)s::VARCHAR
    FROM unnest(%(a0)s::INTEGER[]) WITH ORDINALITY AS _mb_rows(c0, n)
    WHERE items.id = _mb_rows.c0::INTEGER AND items.id = ANY(%(a0)s::INTEGER[])

Row by row, item *k* runs after items 1…*k*-1 have changed the table, fires row triggers in
item order, and has its parameters converted (and checked: lengths, ranges, domains, enum
labels) when PostgreSQL plans it, whether or not its key meets a row. One statement does the
same work only under the conditions below; each is checked, and a flush that does not meet
them all runs row by row (``executemany``, each statement planned for its own values).

**The statement** (read once per statement): an SQLAlchemy ``update()`` or ``delete()`` of one
table (Core or ORM), without RETURNING, CTEs, hints or other tables;

- its WHERE has, as top-level ``AND`` terms, ``column = :parameter`` for at least one column
  (the items' *keys*); its other terms only compare the table's columns with parameters or
  constants (``=``, ``<``, ``IS NULL``, ``AND``/``OR``/``NOT`` …): nothing that can raise, which
  would make the outcome depend on the rows PostgreSQL's plan happens to look at;
- what it reads, in SET and WHERE, is the updated row's own columns, parameters, constants,
  operators, ``CASE``, casts and built-in functions that are immutable or stable
  (``pg_proc.provolatile``; ``now()`` yes, ``nextval()``, ``random()`` and any function of the
  user's no): no subquery, no other table or alias of this one, no ``text()``;
- no column it sets is read by its WHERE (directly, or through a generated column), so no
  item's change decides which row another item meets.

**The table** (read from the catalog once per writer, ``catalog.py``): a plain table without
inheritance children or partitions, rules or row-level security; no user trigger for the
statement's event (row *or* statement level: one statement would fire them in another order,
or once instead of once an item); for an UPDATE, no column it sets is read by a unique or
exclusion index (keys, expressions, predicate; generated keys through their sources): row by
row each item is checked at once, so the order decides; for a DELETE, no foreign key
references the table (``NO ACTION`` checks run at the end of each statement, cascades fire in
item order).

**The values** (every flush): each parameter's values are of one Python type that psycopg sends
one way (not aware and naive datetimes together, not ``Decimal`` beside ``int``), so the array
holds what each statement would have received; integers of other widths only where
SQLAlchemy casts the parameter; not values psycopg sends untyped (a ``str`` enum, read by the
input function of the type PostgreSQL infers for each). A parameter SQLAlchemy does not cast is
cast to the type psycopg sends it as, or to the type PostgreSQL infers (asked with ``PREPARE``)
by its catalog name (``bpchar``, ``"bit"``: never ``character``, which in a cast is one
character). A key parameter is cast to the column's own type, or within integers or within
text (a ``Table`` declaring ``Integer`` for a ``numeric`` key would make ``1.2`` and ``0.8``
one key after the cast). The keys are distinct *as SQL compares them* — the column's
type and collation from the catalog, ``sql_equality.py`` — so no row is met by two items;
where a key repeats, the flush runs in rounds (the first occurrence of each key, then the
second, …), which keeps each row's items in order.

Conversions a statement makes of its parameters when it is planned are made once for the
whole array (the array is cast to the type SQLAlchemy casts each parameter to, or, where it
casts none and sends a string, to the type PostgreSQL infers, asked with ``PREPARE``), so they
raise for every item, as row by row. What row by row checks only at planning — an item whose
key meets no row, but whose value does not fit its column — the one statement would not: when
a statement assigns a parameter directly to a column, the items that met no row (``RETURNING``
their ordinals) run again row by row, which changes nothing and raises what they raised.

The condition names the fast path checks, and what falling back costs, are in
docs/guides/big-table.md.

Written here: SQLAlchemy's fast batch path (``insertmanyvalues``) covers INSERT only, and
neither SQLAlchemy nor the drivers rewrite a keyed UPDATE or DELETE into one statement.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import functools
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from membound.bound.sql.catalog import (
    TableFacts,
    base_type_names,
    function_safety,
    inferred_parameter_types,
)
from membound.bound.sql.sql_equality import canonical_keys

# SQLAlchemy is the ``sql`` extra: imported as ``executemany.py`` does.
with contextlib.suppress(ImportError):
    import sqlalchemy as sa
    from sqlalchemy.ext.compiler import compiles
    from sqlalchemy.sql import operators, visitors
    from sqlalchemy.sql.dml import Delete, Update
    from sqlalchemy.sql.elements import (
        BinaryExpression,
        BindParameter,
        BooleanClauseList,
        ColumnElement,
    )
    from sqlalchemy.sql.selectable import FromClause

__all__ = ["StatementShape", "UnnestPlan", "shape_of"]

#: The alias of the items' values in the rewritten statement, and of its ordinal column.
_ROWS = "_mb_rows"
_ORDINAL = "_mb_n"
#: Markers compiled into the statement, replaced by the unnest source and the key's ANY term.
_FROM_MARK = "__MB_ROWS_SOURCE__"
_ANY_MARK = "__MB_ROWS_KEY__"

#: Visit names of SQL elements that read nothing but the updated row, parameters and
#: constants (functions are checked against the catalog besides).
_ROW_LOCAL = frozenset(
    {
        "binary",
        "bindparam",
        "column",
        "clauselist",
        "expression_clauselist",
        "grouping",
        "null",
        "true",
        "false",
        "case",
        "cast",
        "type_coerce",
        "function",
        "unary",
        "tuple",
        "extract",
        "collation",
    }
)
#: What a WHERE may hold besides its key terms: comparisons that cannot raise.
_NON_RAISING = frozenset(
    {
        "binary",
        "bindparam",
        "column",
        "expression_clauselist",
        "grouping",
        "null",
        "true",
        "false",
        "unary",
    }
)


@functools.cache
def _comparisons() -> frozenset[Any]:
    """Operators that compare (or combine comparisons) without computing anything."""
    return frozenset(
        {
            operators.eq,
            operators.ne,
            operators.lt,
            operators.le,
            operators.gt,
            operators.ge,
            operators.is_,
            operators.is_not,
            operators.is_distinct_from,
            operators.is_not_distinct_from,
            operators.and_,
            operators.or_,
            operators.inv,
            operators.is_true,
            operators.is_false,
        }
    )


#: Python types psycopg sends one way whatever the value (its dumper key is the type).
_ONE_WAY = frozenset({float, decimal.Decimal, bool, bytes, uuid.UUID, dt.date, dt.timedelta, str})
#: Upper bounds of the integer widths psycopg picks by value (int2, int4, int8, numeric).
_INT_WIDTHS = (2**15, 2**31, 2**63)
_INT_NAMES = ("int2", "int4", "int8", "numeric")
#: Type families within which a key parameter's cast changes no value it compares: integers
#: convert exactly (or fail), and strings are compared as text. Any other cast to a type
#: other than the column's may make keys distinct for the column one (``1.2`` and ``0.8``
#: as ``INTEGER``, two times of one day as ``DATE``).
_LOSSLESS_KEY_CASTS = (frozenset({"int2", "int4", "int8"}), frozenset({"text", "varchar"}))


@functools.cache
def _markers() -> tuple[Any, Any]:
    """The two marker elements compiled into a statement (made on first use: SQLAlchemy may
    be missing when this module is imported):

    - a FROM entry standing for the items' values, written in once their types are known;
    - a WHERE term that brings it into FROM and stands for the key's ``column = ANY(array)``.
    """

    class Source(FromClause):
        __visit_name__ = "membound_rows_source"
        named_with_column = False

        @property
        def _from_objects(self) -> list[Any]:
            return [self]

        def _populate_column_collection(self, *args: Any, **kwargs: Any) -> None:
            return None

    class KeyTerm(ColumnElement[bool]):
        __visit_name__ = "membound_rows_key"
        inherit_cache = False

        def __init__(self, source: Any, column: Any) -> None:
            self.source = source
            self.column = column
            self.type = sa.Boolean()

        @property
        def _from_objects(self) -> list[Any]:
            return [self.source]

    @compiles(Source)
    def _compile_source(element: Any, compiler: Any, **kw: Any) -> str:
        return _FROM_MARK

    @compiles(KeyTerm)
    def _compile_key_term(element: Any, compiler: Any, **kw: Any) -> str:
        return f"{compiler.process(element.column, **kw)} = ANY({_ANY_MARK})"

    return Source, KeyTerm


@dataclass(frozen=True)
class StatementShape:
    """What one UPDATE or DELETE does, read from the statement alone (no database)."""

    table: Any
    """The target ``Table``."""
    is_update: bool
    """UPDATE (else DELETE)."""
    keys: tuple[tuple[str, Any], ...]
    """``(parameter, column)`` of each top-level ``column = :parameter`` term."""
    set_columns: frozenset[str]
    """Names of the columns it sets (explicitly, from the items' keys, or by ``onupdate``)."""
    where_columns: frozenset[str]
    """Names of the columns its WHERE reads."""
    functions: tuple[str, ...]
    """Names of the SQL functions it calls."""
    direct: bool
    """An item's parameter is assigned to a column as it is (``SET col = :p``), or used in an
    expression of parameters alone: converting it can fail when the statement is planned,
    whether or not the item meets a row."""


def _terms(clause: Any) -> list[Any]:
    """The top-level ``AND`` terms of a WHERE clause."""
    if isinstance(clause, BooleanClauseList) and clause.operator is operators.and_:
        return [t for sub in clause.clauses for t in _terms(sub)]
    return [clause]


def _target_table(statement: Any) -> Any:
    """The plain ``Table`` an UPDATE or DELETE writes to (an ORM entity's table too)."""
    description = getattr(statement, "entity_description", None) or {}
    table = description.get("table")
    return table if isinstance(table, sa.Table) else None


def _reads_only(
    clause: Any, table: Any, allowed: frozenset[str], functions: set[str]
) -> str | None:
    """None when every element of ``clause`` is of an ``allowed`` kind and every column is one
    of ``table``'s (the functions it calls are added to ``functions``), else what is not."""
    element: Any
    for element in visitors.iterate(clause):
        name = element.__visit_name__
        if name not in allowed:
            what = {"textclause": "text()", "select": "a subquery", "table": "another table"}
            return what.get(name, f"a {name} expression")
        if name == "column" and getattr(element, "table", None) is not table:
            return f"column {getattr(element, 'name', element)} of another table or alias"
        if name == "binary" and isinstance(element.operator, operators.custom_op):
            return f"operator {element.operator.opstring} (one of the user's may do anything)"
        if name == "function":
            if getattr(element, "packagenames", ()):
                return f"function {element.name}() of a schema of its own"
            functions.add(str(element.name))
        if allowed is _NON_RAISING and name in ("binary", "unary"):
            operator = getattr(element, "operator", None)
            if operator is not None and operator not in _comparisons():
                return "a WHERE term that computes (it could raise on rows the key does not meet)"
        if name == "bindparam" and (element.expanding or element.callable is not None):
            return "a parameter expanded or computed per execution"
    return None


def _has_parameter_only_part(value: Any, row_keys: frozenset[str]) -> bool:
    """Whether ``value`` (one SET expression) is an item's parameter alone, or holds an
    expression of parameters and constants alone around one: PostgreSQL computes such a part
    when it plans the statement."""
    if isinstance(value, BindParameter):
        return value.key in row_keys

    def walk(element: Any) -> tuple[bool, bool, bool]:
        """(reads a column, holds an item's parameter, found a parameter-only expression)"""
        if isinstance(element, BindParameter):
            return False, element.key in row_keys, False
        if element.__visit_name__ == "column":
            return True, False, False
        column = row = found = False
        for child in element.get_children():
            c, r, f = walk(child)
            column, row, found = column or c, row or r, found or f
        return column, row, found or (row and not column)

    return walk(value)[2]


def _key_term(term: Any, table: Any, keys: frozenset[str]) -> tuple[str, Any] | None:
    """``(parameter, column)`` when ``term`` is ``column = :parameter`` (either way round) on
    one of ``table``'s columns and an item's parameter."""
    if not isinstance(term, BinaryExpression) or term.operator is not operators.eq:
        return None
    left, right = term.left, term.right
    if isinstance(left, BindParameter):
        left, right = right, left
    if (
        isinstance(right, BindParameter)
        and right.key in keys
        and isinstance(left, sa.Column)
        and left.table is table
    ):
        return right.key, left
    return None


def shape_of(statement: Any, row_keys: Sequence[str]) -> StatementShape | str:
    """The shape of ``statement`` for items with ``row_keys``, or why the one-statement form
    cannot take it (see the module docstring)."""
    if not isinstance(statement, Update | Delete):
        return "not an UPDATE or DELETE"
    if statement._returning:
        return "RETURNING"
    table = _target_table(statement)
    where = statement.whereclause
    if table is None:
        return "not an UPDATE or DELETE of one table"
    if where is None:
        return "no WHERE"
    if statement._hints or statement._prefixes or getattr(statement, "_independent_ctes", ()):
        return "hints, prefixes or CTEs"
    keys = frozenset(row_keys)
    functions: set[str] = set()
    key_terms: list[tuple[str, Any]] = []
    for term in _terms(where):
        found = _key_term(term, table, keys)
        if found is not None:
            key_terms.append(found)
            continue
        refused = _reads_only(term, table, _NON_RAISING, functions)
        if refused is not None:
            return f"its WHERE holds {refused}"
    if not key_terms:
        return "no 'column = :parameter' term on an item's parameter in its WHERE"
    where_columns = frozenset(
        str(getattr(e, "name", "")) for e in visitors.iterate(where) if e.__visit_name__ == "column"
    )
    set_columns: set[str] = set()
    direct = False
    if isinstance(statement, Update):
        if statement._multi_values or statement._post_values_clause is not None:
            return "multiple VALUES"
        values: dict[Any, Any] = dict(statement._values or {})
        named = {getattr(k, "key", k) for k in values}
        bound = {e.key for e in visitors.iterate(statement) if isinstance(e, BindParameter)}
        for key in row_keys:  # an item's key that names a column sets it
            if key in table.c and key not in bound and key not in named:
                values[table.c[key]] = sa.bindparam(key)
        for column in table.columns:  # SQLAlchemy's onupdate= values
            if column.key not in named and column.onupdate is not None:
                default = column.onupdate
                if getattr(default, "is_callable", False):
                    return f"column {column.name}'s onupdate= is computed in Python per row"
                if getattr(default, "is_clause_element", False):
                    values[column] = default.arg
        for target, value in values.items():
            column = table.c[target] if isinstance(target, str) else target
            if getattr(column, "table", None) is not table:
                return "it sets a column of another table"
            set_columns.add(column.name)
            if isinstance(value, ColumnElement) or hasattr(value, "__clause_element__"):
                clause = sa.sql.coercions.expect(sa.sql.roles.ExpressionElementRole, value)
                refused = _reads_only(clause, table, _ROW_LOCAL, functions)
                if refused is not None:
                    return f"it sets {column.name} from {refused}"
                direct = direct or _has_parameter_only_part(clause, keys)
        if not set_columns:
            return "it sets nothing"
    return StatementShape(
        table=table,
        is_update=isinstance(statement, Update),
        keys=tuple(key_terms),
        set_columns=frozenset(set_columns),
        where_columns=where_columns,
        functions=tuple(sorted(functions)),
        direct=direct,
    )


def table_allows(shape: StatementShape, facts: TableFacts | None) -> str | None:
    """None when the catalog's facts allow the one-statement form for ``shape``, else why not
    (a few words, for tests and debugging)."""
    if facts is None:
        return "table not found in the catalog (or a server older than PostgreSQL 12)"
    if facts.kind != "r" or facts.has_children:
        return "not a plain table (partitioned, inherited, a view)"
    if facts.has_rules or facts.row_security:
        return "rules or row-level security"
    triggers = facts.update_triggers if shape.is_update else facts.delete_triggers
    if triggers:
        return f"trigger {triggers[0]}"
    if any(column.name not in facts.columns for _, column in shape.keys):
        return "a key column the catalog does not list"
    if shape.is_update:
        reads = set(shape.where_columns)
        for name in shape.where_columns:
            reads |= facts.generated_reads.get(name, frozenset())
        if shape.set_columns & reads:
            return "it sets a column its WHERE reads"
        if shape.set_columns & facts.unique_columns:
            return "it sets a column a unique or exclusion index reads"
    elif facts.referenced:
        return "a foreign key references the table"
    return None


class _ParameterSlot:
    """How one item parameter travels: its compiled placeholder, SQLAlchemy's cast of it and
    the processor SQLAlchemy applies to its values."""

    __slots__ = ("cast", "collation", "key", "placeholder", "processor", "type_cast")

    def __init__(
        self, key: str, placeholder: str, cast: str, processor: Callable[[Any], Any] | None
    ) -> None:
        self.key = key
        self.placeholder = placeholder
        self.cast = cast
        """What SQLAlchemy writes after the placeholder (``::VARCHAR COLLATE "C"``)."""
        self.type_cast, _, collation = cast.partition(" COLLATE ")
        """The cast without its collation (``::VARCHAR``): what the array is cast to."""
        self.collation = collation or None
        """The collation SQLAlchemy gives the parameter (a string type's), or None."""
        self.processor = processor


def _cast_of(dialect: Any, bind: Any) -> str | None:
    """The cast SQLAlchemy writes after ``bind``'s placeholder (``::INTEGER``), ``""`` for
    none, or None when it wraps the placeholder in SQL (a type's ``bind_expression``)."""
    probe = sa.select(sa.bindparam("membound_probe", type_=bind.type))
    text = str(probe.compile(dialect=dialect))
    start = text.find("%(membound_probe)s")
    end = text.rfind(" AS ")
    if start != len("SELECT ") or end < start:
        return None
    cast = text[start + len("%(membound_probe)s") : end]
    return cast if cast == "" or cast.startswith("::") else None


def _array_type_name(adapters: Any, oid: int) -> str | None:
    """The SQL name of the array type ``oid`` psycopg dumps a list as (``int2[]``)."""
    info = adapters.types.get(oid)
    if info is None or info.array_oid != oid:
        return None
    return f"{info.name}[]"


def _element_type_name(adapters: Any, oid: int) -> str | None:
    """The SQL name of the (non-array) type ``oid`` psycopg dumps a value as (``float8``)."""
    info = adapters.types.get(oid)
    if info is None or info.array_oid == oid:
        return None
    return f"pg_catalog.{info.name}" if info.name in _CATALOG_NAMES else None


#: Types psycopg knows by ``pg_catalog`` names a cast may take as they are.
_CATALOG_NAMES = frozenset(
    {
        "bool", "bytea", "date", "float4", "float8", "int2", "int4", "int8", "interval",
        "json", "jsonb", "numeric", "text", "time", "timestamp", "timestamptz", "timetz",
        "uuid", "varchar",
    }
)  # fmt: skip


def _int_width(values: Iterable[int]) -> int | None:
    """The one width psycopg sends these integers with, or None when they take several."""
    ends = (min(values), max(values))
    widths = {next((i for i, top in enumerate(_INT_WIDTHS) if -top <= v < top), 3) for v in ends}
    return widths.pop() if len(widths) == 1 else None


def _value_form(values: Sequence[Any], cast: str, transformer: Any) -> tuple[str, Any] | str:
    """How one parameter's values go into an array: ``("typed", oid)`` (psycopg's array of
    one element type), ``("unknown", 0)`` (strings or NULLs, typed by a cast), ``("list",
    oid)`` (array values, sent as text and cast back), or why they cannot: psycopg would send
    them in more than one way."""
    present = [v for v in values if v is not None]
    if not present:
        return "unknown", 0
    kinds = {type(v) for v in present}
    if len(kinds) != 1:
        names = ", ".join(sorted(k.__name__ for k in kinds))
        return f"values of several Python types in one parameter ({names})"
    (kind,) = kinds
    if kind is str:
        return "unknown", 0
    if kind is int:
        if cast:
            return "typed", 0
        width = _int_width(present)
        if width is None:
            # Without a cast each is sent as int2, int4 or int8 by its size, and int2 and int8
            # arithmetic differ (overflow).
            return "integers of several widths in a parameter without a cast"
        return "int", _INT_NAMES[width]
    from psycopg.adapt import PyFormat

    if kind is list:
        # An array without an element (empty, or NULLs only) converts to any array type the
        # same: only the others decide the element type.
        present = [v for v in present if any(x is not None for x in _flat(v))] or present[:1]
    if kind not in _ONE_WAY:
        # The dumper psycopg picks for the type, asked how it would send each value (its key):
        # one key for all, or the array would send some values as others' type.
        base = transformer.adapters.get_dumper(kind, PyFormat.AUTO)(kind, transformer)
        first = base.get_key(present[0], PyFormat.AUTO)
        if any(base.get_key(v, PyFormat.AUTO) != first for v in present):
            return f"{kind.__name__} values psycopg sends as different types"
    oid = transformer.get_dumper(present[0], PyFormat.AUTO).oid
    if oid == 0 and kind is not list:
        # Sent untyped, each value is read by the input function of the type PostgreSQL
        # infers for it (a ``str`` enum into ``bytea``); an array of them would be text[].
        return f"{kind.__name__} values psycopg sends without a type"
    return ("list" if kind is list else "typed"), oid


def _flat(value: list[Any]) -> Iterable[Any]:
    """The elements of a (nested) list."""
    for item in value:
        if isinstance(item, list):
            yield from _flat(item)
        else:
            yield item


class UnnestPlan:
    """A statement's one-statement form for one set of item keys: what its shape allows, then
    (:meth:`check`) what the table's catalog allows, then (:meth:`run`) what each flush's
    values allow."""

    def __init__(
        self,
        shape: StatementShape,
        template: str,
        slots: Sequence[_ParameterSlot],
        constants: Mapping[str, Any],
        row_sql: str,
        row_names: Mapping[str, str],
        row_constants: Mapping[str, Any],
    ) -> None:
        self.shape = shape
        self.template = template
        """The statement with markers for the items' source and placeholders for their
        values."""
        self.slots = tuple(slots)
        self.constants = dict(constants)
        """The template's other parameters, by placeholder, as the driver receives them."""
        self.row_sql = row_sql
        """The statement as one item runs it (asked with PREPARE for inferred types)."""
        self.row_names = dict(row_names)
        """Each item parameter's placeholder in :attr:`row_sql`."""
        self.row_constants = dict(row_constants)
        """:attr:`row_sql`'s other parameters, by placeholder."""
        self._key_slots = [next(s for s in self.slots if s.key == k) for k, _ in shape.keys]
        self._facts: TableFacts | None = None
        self._refused: str | None = "not checked against the catalog yet"
        self._statements: dict[tuple[Any, ...], str | None] = {}

    @property
    def refused(self) -> str | None:
        """Why the table's facts rule the form out, or None when they allow it."""
        return self._refused

    def check(self, conn: Any, facts: TableFacts | None) -> None:
        """Decide, from the catalog, whether the form may be used for this table."""
        self._facts = facts
        reason = table_allows(self.shape, facts)
        if reason is None and facts is not None:
            reason = self._key_casts_refusal(conn, facts)
        if reason is None and self.shape.functions:
            safety = function_safety(conn, self.shape.functions)
            unsafe = [name for name, safe in safety.items() if not safe]
            if unsafe:
                reason = f"function {unsafe[0]}() may read a table or change something"
        self._refused = reason

    def _key_casts_refusal(self, conn: Any, facts: TableFacts) -> str | None:
        """Why a key parameter's cast may make two items one key where the column would not
        (the ``Table`` declares another type than the column has), or None. The keys are told
        apart by the column's type (``sql_equality.py``); the statement compares them after
        SQLAlchemy's cast."""
        casts = {slot.key: slot.type_cast[2:] for slot in self._key_slots if slot.type_cast}
        if not casts:
            return None
        names = base_type_names(conn, sorted(set(casts.values())))
        for key, column in self.shape.keys:
            if key not in casts:
                continue
            cast = names.get(casts[key])
            base = facts.columns[column.name].base_type if column.name in facts.columns else None
            if cast is not None and cast == base:
                continue
            if any(cast in family and base in family for family in _LOSSLESS_KEY_CASTS):
                continue
            if cast in _LOSSLESS_KEY_CASTS[1] and base == "bpchar":
                continue  # compared as text: the keys' forms already ignore trailing blanks
            return (
                f"key parameter {key} is cast to {casts[key]}, column {column.name} is "
                f"{base}: keys distinct for the column may be one after the cast"
            )
        return None

    def run(self, conn: Any, rows: Sequence[Mapping[str, Any]], row_by_row: Any) -> str | None:
        """Write ``rows`` as one statement per round; or, without running anything, say why
        the values cannot be proven to give row by row's result (the caller then runs them
        row by row).

        Args:
            conn: the flush's connection, in its transaction.
            rows: the items' parameters, each with the plan's keys.
            row_by_row: ``row_by_row(rows)`` runs items as single statements (each planned for
                its own values): the items that met no row run through it again.
        """
        if self._refused is not None or self._facts is None:
            return self._refused or "no catalog facts"
        columns: dict[str, list[Any]] = {}
        for slot in self.slots:
            values = [row[slot.key] for row in rows]
            if slot.processor is not None:
                values = [slot.processor(v) for v in values]
            columns[slot.key] = values
        transformer = _transformer(conn)
        forms = []
        for slot in self.slots:
            form = _value_form(columns[slot.key], slot.cast, transformer)
            if isinstance(form, str):
                return f"parameter {slot.key}: {form}"
            forms.append(form)
        for slot in self._key_slots:
            if slot.collation not in (None, '"C"', '"POSIX"', '"default"'):
                # An explicit collation on the parameter is the comparison's, whatever the
                # column's is: it may make 'a' and 'A' one key.
                return f"key parameter {slot.key} compared under collation {slot.collation}"
        key_columns = [self._facts.columns[column.name] for _, column in self.shape.keys]
        canonical = canonical_keys(key_columns, [columns[k] for k, _ in self.shape.keys])
        if canonical is None:
            names = ", ".join(c.name for c in key_columns)
            return f"keys ({names}) whose equality in SQL is not Python's for these values"
        statement = self._statement(conn, tuple(forms), transformer)
        if statement is None:
            return "the parameters' types could not be settled"
        for round_ in _rounds(canonical):
            params = dict(self.constants)
            for i, slot in enumerate(self.slots):
                values = columns[slot.key]
                chosen = [values[j] for j in round_] if len(round_) != len(rows) else values
                if forms[i][0] == "list":
                    chosen = [_text_of(transformer, v) for v in chosen]
                params[f"{_ROWS}_a{i}"] = chosen
            result = conn.exec_driver_sql(statement, params)
            if self.shape.direct:
                met = {n for (n,) in result}
                missed = [rows[j] for n, j in enumerate(round_, 1) if n not in met]
                if missed:
                    row_by_row(missed)
        return None

    def _statement(
        self, conn: Any, forms: tuple[tuple[str, Any], ...], transformer: Any
    ) -> str | None:
        """The SQL for values of these forms (cached: a job meets one or two)."""
        if forms in self._statements:
            return self._statements[forms]
        inferred: dict[str, str] | None = {}
        if any(
            kind == "unknown" and not slot.cast
            for (kind, _), slot in zip(forms, self.slots, strict=True)
        ):
            inferred = self._inferred_types(conn, forms, transformer)
        sql = None if inferred is None else self._render(conn, forms, inferred)
        if len(self._statements) < 8:
            self._statements[forms] = sql
        return sql

    def _inferred_types(
        self, conn: Any, forms: tuple[tuple[str, Any], ...], transformer: Any
    ) -> dict[str, str] | None:
        """The types PostgreSQL gives the parameters sent without one, asked once."""
        from psycopg.adapt import PyFormat

        declared: dict[str, str] = {}
        adapters = conn.connection.dbapi_connection.adapters
        for (kind, oid), slot in zip(forms, self.slots, strict=True):
            name = self.row_names[slot.key]
            if kind == "unknown":
                continue
            if kind == "int" or (kind == "typed" and oid == 0):
                declared[name] = "int8"  # integers: the widest psycopg may pick
                continue
            info = adapters.types.get(oid)
            if info is None:
                return None
            declared[name] = f"{info.name}[]" if info.array_oid == oid else info.name
        for name, value in self.row_constants.items():
            if value is None or isinstance(value, str):
                continue
            info = adapters.types.get(transformer.get_dumper(value, PyFormat.AUTO).oid)
            if info is None:
                return None
            declared[name] = info.name
        return inferred_parameter_types(conn, self.row_sql, declared)

    def _render(
        self, conn: Any, forms: tuple[tuple[str, Any], ...], inferred: Mapping[str, str]
    ) -> str | None:
        adapters = conn.connection.dbapi_connection.adapters
        sql = self.template
        arrays: list[str] = []
        names: list[str] = []
        for i, ((kind, oid), slot) in enumerate(zip(forms, self.slots, strict=True)):
            # A typed array goes in psycopg's binary format: the same values, and a third of
            # the time to dump a thousand integers (its text dumper quotes each element).
            param = f"%({_ROWS}_a{i})" + ("b" if kind == "typed" else "s")
            column = f"{_ROWS}.c{i}"
            if kind == "list":
                element = _array_type_name(adapters, oid)
                if element is None and not slot.cast:
                    return None
                array = f"{param}::text[]"
                reference = f"CAST({column} AS {element})" if element else column
            elif kind == "unknown":
                target = slot.type_cast[2:] if slot.cast else inferred.get(self.row_names[slot.key])
                if not target or target.endswith("]"):
                    return None  # an array type: its values would be strings, not lists
                array = f"{param}::{target}[]"
                reference = column
            else:
                if slot.type_cast.endswith("]"):
                    return None
                if slot.cast:
                    array = f"{param}{slot.type_cast}[]"
                else:
                    # Cast to the type psycopg sends them as: a round of NULLs alone (a key
                    # repeated) then has a type too.
                    element = oid if kind == "int" else _element_type_name(adapters, oid)
                    if element is None:
                        return None
                    array = f"{param}::{element}[]"
                reference = column
            arrays.append(array)
            names.append(f"c{i}")
            sql = sql.replace(f"%({slot.placeholder})s", reference)
        if any(f"%({slot.placeholder})s" in sql for slot in self.slots):
            return None
        source = (
            f"unnest({', '.join(arrays)}) WITH ORDINALITY AS "
            f"{_ROWS}({', '.join(names)}, {_ORDINAL})"
        )
        leading = self.slots.index(self._key_slots[0])
        sql = sql.replace(_FROM_MARK, source).replace(_ANY_MARK, arrays[leading])
        if self.shape.direct:
            sql += f" RETURNING {_ROWS}.{_ORDINAL}"
        return sql


def _transformer(conn: Any) -> Any:
    from psycopg.adapt import Transformer

    return Transformer(conn.connection.dbapi_connection)


def _text_of(transformer: Any, value: Any) -> str | None:
    """An array value as the text psycopg would send for it."""
    if value is None:
        return None
    from psycopg.adapt import PyFormat

    dumped = transformer.get_dumper(value, PyFormat.TEXT).dump(value)
    return bytes(dumped).decode()


def _rounds(keys: Sequence[Any]) -> list[list[int]]:
    """Item indexes in rounds: each round holds each key at most once, and an item comes in a
    later round than the items before it with the same key."""
    if len(set(keys)) == len(keys):  # the usual flush: one round
        return [list(range(len(keys)))]
    seen: dict[Any, int] = {}
    rounds: list[list[int]] = []
    for index, key in enumerate(keys):
        depth = seen.get(key, 0)
        seen[key] = depth + 1
        if depth == len(rounds):
            rounds.append([])
        rounds[depth].append(index)
    return rounds


def _placeholders(compiled: Any, keys: Sequence[str]) -> tuple[dict[str, str], dict[str, Any]]:
    """``compiled``'s placeholder of each item parameter (by key), and its other parameters'
    values as the driver receives them (SQLAlchemy's processors applied), by placeholder."""
    escaped = compiled.escaped_bind_names
    processors = compiled._bind_processors
    names: dict[str, str] = {}
    constants: dict[str, Any] = {}
    for bind, name in compiled.bind_names.items():
        placeholder = escaped.get(name, name)
        if bind.key in keys:
            names.setdefault(bind.key, placeholder)
            continue
        value = bind.effective_value
        processor = processors.get(name)
        constants[placeholder] = processor(value) if processor is not None else value
    return names, constants


def unnest_plan(
    conn: Any,
    statement: Any,
    keys: tuple[str, ...],
    compiled: Any,
    compile_options: Mapping[str, Any],
) -> UnnestPlan | str:
    """The one-statement form of ``statement`` for items with ``keys``, or why its shape rules
    it out (the catalog and each flush's values are checked later).

    Args:
        conn: a connection of the engine the flush writes to.
        statement: the statement.
        keys: the items' parameter names.
        compiled: the statement compiled for single items (the row by row SQL).
        compile_options: the options ``compiled`` was made with (schema translation).
    """
    dialect = conn.dialect
    if dialect.name != "postgresql" or dialect.driver != "psycopg":
        return "only on PostgreSQL with psycopg 3"
    shape = shape_of(statement, keys)
    if isinstance(shape, str):
        return shape
    source, key_term = _markers()
    marked = statement.where(key_term(source(), shape.keys[0][1]))
    template_compiled = marked.compile(
        dialect=dialect, column_keys=list(keys), for_executemany=True, **compile_options
    )
    template = template_compiled.string
    if template.count(_FROM_MARK) != 1 or template.count(_ANY_MARK) != 1:
        return "the statement did not compile to one UPDATE or DELETE"
    names, constants = _placeholders(template_compiled, keys)
    row_names, row_constants = _placeholders(compiled, keys)
    processors = template_compiled._bind_processors
    slots: dict[str, _ParameterSlot] = {}
    for bind, name in template_compiled.bind_names.items():
        if bind.key not in keys:
            continue
        cast = _cast_of(dialect, bind)
        if cast is None:
            return f"parameter {bind.key}'s type wraps it in SQL (bind_expression)"
        placeholder = template_compiled.escaped_bind_names.get(name, name)
        slot = slots.setdefault(
            bind.key, _ParameterSlot(bind.key, placeholder, cast, processors.get(name))
        )
        if (slot.placeholder, slot.cast) != (placeholder, cast):
            return f"parameter {bind.key} is cast two ways"
    if set(slots) != set(keys) or set(row_names) != set(keys) or names.keys() != slots.keys():
        return "an item key that is no parameter of the statement"
    ordered = [slots[k] for k in keys]
    return UnnestPlan(
        shape, template, ordered, constants, compiled.string, row_names, row_constants
    )
