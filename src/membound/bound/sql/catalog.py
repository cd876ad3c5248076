"""What PostgreSQL says about a batched write: the target table's triggers, rules, constraints
and column types, the volatility of the functions a statement calls, and the types it infers for
parameters sent without one.

These are the facts DESIGN §6 G9 asks the database for before a flush runs as one statement
(``unnest_batch.py``): they are read from the system catalogs (``pg_class``, ``pg_trigger``,
``pg_attribute``, ``pg_collation``, ``pg_index``, ``pg_depend``, ``pg_constraint``, ``pg_proc``,
``pg_prepared_statements``) in the flush's own transaction, once per writer and table, so that
what the fast path decides is what the database holds, not what the program's ``Table``
declares. DDL another session commits while a writer runs (a trigger added mid-run) is not seen
until the next writer.

Written here: neither SQLAlchemy's inspector nor psycopg reports triggers, rules, collation
determinism, generated columns' sources or the columns an index's predicate reads; the few
catalog queries below are the documented way to ask.
"""

from __future__ import annotations

import contextlib
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from membound.bound.sql.connection import translated_schema

# SQLAlchemy is the ``sql`` extra: imported as ``executemany.py`` does.
with contextlib.suppress(ImportError):
    import sqlalchemy as sa

__all__ = [
    "ColumnFacts",
    "TableFacts",
    "base_type_names",
    "dollar_parameters",
    "function_safety",
    "inferred_parameter_types",
    "qualified_name",
    "read_table_facts",
]

#: ``pg_trigger.tgtype`` bits (``catalog/pg_trigger.h``).
_FOR_EACH_ROW = 1 << 0
_ON_INSERT = 1 << 2
_ON_DELETE = 1 << 3
_ON_UPDATE = 1 << 4

#: The oldest server whose catalogs carry everything read here (``pg_collation
#: .collisdeterministic`` and ``pg_attribute.attgenerated`` are PostgreSQL 12).
MIN_SERVER = (12,)

_FACTS_SQL = """
SELECT c.relkind::text, c.relhasrules, c.relrowsecurity, c.relhassubclass,
  (SELECT coalesce(json_agg(json_build_object('name', t.tgname, 'type', t.tgtype)), '[]'::json)
     FROM pg_catalog.pg_trigger t
     WHERE t.tgrelid = c.oid AND NOT t.tgisinternal AND t.tgenabled <> 'D') AS triggers,
  (SELECT coalesce(json_agg(json_build_object(
        'num', a.attnum, 'name', a.attname, 'type', a.atttypid::int, 'typmod', a.atttypmod,
        'base', b.typname, 'kind', ty.typtype::text, 'base_kind', b.typtype::text,
        'deterministic', coalesce(co.collisdeterministic, true),
        'generated', a.attgenerated <> '')), '[]'::json)
     FROM pg_catalog.pg_attribute a
     JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
     JOIN pg_catalog.pg_type b
       ON b.oid = CASE WHEN ty.typtype = 'd' THEN ty.typbasetype ELSE ty.oid END
     LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
     WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
  (SELECT coalesce(json_agg(DISTINCT u.n), '[]'::json) FROM (
       SELECT unnest(i.indkey::int2[])::int AS n FROM pg_catalog.pg_index i
       WHERE i.indrelid = c.oid AND (i.indisunique OR i.indisexclusion)
     UNION
       SELECT d.refobjsubid FROM pg_catalog.pg_index i
       JOIN pg_catalog.pg_depend d
         ON d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = i.indexrelid
        AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = c.oid
       WHERE i.indrelid = c.oid AND (i.indisunique OR i.indisexclusion)
     ) u WHERE u.n > 0) AS unique_columns,
  (SELECT coalesce(json_agg(json_build_object('column', ad.adnum, 'reads', d.refobjsubid)),
                   '[]'::json)
     FROM pg_catalog.pg_attrdef ad
     JOIN pg_catalog.pg_depend d
       ON d.classid = 'pg_catalog.pg_attrdef'::regclass AND d.objid = ad.oid
      AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = c.oid
      AND d.refobjsubid > 0 AND d.refobjsubid <> ad.adnum
     WHERE ad.adrelid = c.oid) AS default_reads,
  EXISTS (SELECT 1 FROM pg_catalog.pg_constraint f
          WHERE f.contype = 'f' AND f.confrelid = c.oid) AS referenced
FROM pg_catalog.pg_class c
WHERE c.oid = to_regclass(%(name)s)
"""

_FUNCTIONS_SQL = """
SELECT p.proname::text,
       bool_and(p.provolatile IN ('i', 's')
                AND p.pronamespace = 'pg_catalog'::regnamespace
                AND p.prokind = 'f')
FROM pg_catalog.pg_proc p
WHERE p.proname = ANY(%(names)s)
GROUP BY p.proname
"""

#: Functions SQLAlchemy renders as SQL syntax rather than a call PostgreSQL looks up in
#: ``pg_proc``: none reads a table or changes anything (``current_timestamp`` and its kin are
#: fixed for the transaction).
SQL_SYNTAX_FUNCTIONS = frozenset(
    {
        "coalesce",
        "nullif",
        "greatest",
        "least",
        "current_date",
        "current_time",
        "current_timestamp",
        "localtime",
        "localtimestamp",
        "current_user",
        "session_user",
        "current_role",
        "user",
    }
)

_PLACEHOLDER = re.compile(r"%%|%\(([^)]*)\)s")


@dataclass(frozen=True)
class ColumnFacts:
    """One column of the target table, as the catalog describes it."""

    name: str
    """The column's name in the database."""
    type_oid: int
    """``pg_attribute.atttypid``: the column's own type (a domain's oid for a domain)."""
    has_typmod: bool
    """A length, precision or scale is declared (``varchar(20)``, ``numeric(10,2)``)."""
    base_type: str
    """``pg_type.typname`` of the type, or of a domain's base type (``int4``, ``text``)."""
    is_domain: bool
    """The column's type is a domain (its checks run when a value is assigned)."""
    is_enum: bool
    """The (base) type is an enum."""
    deterministic: bool
    """Comparisons under the column's collation are bytewise (or the type has no collation):
    two strings are equal only when they are the same characters."""
    generated: bool
    """A generated column (``GENERATED ALWAYS AS (…) STORED``)."""


@dataclass(frozen=True)
class TableFacts:
    """What the catalog says about a write's target table."""

    kind: str
    """``pg_class.relkind``: ``r`` a plain table, ``p`` partitioned, ``v`` a view, …"""
    has_rules: bool
    """Rewrite rules may turn the statement into others."""
    row_security: bool
    """Row-level security is enabled: policies may read other rows."""
    has_children: bool
    """Inheritance children or partitions receive the statement too."""
    update_triggers: tuple[str, ...]
    """User triggers (row or statement level, any timing) that fire on UPDATE."""
    delete_triggers: tuple[str, ...]
    """User triggers that fire on DELETE."""
    insert_statement_triggers: tuple[str, ...]
    """User ``FOR EACH STATEMENT`` triggers that fire on INSERT."""
    columns: Mapping[str, ColumnFacts]
    """Every column by name."""
    unique_columns: frozenset[str]
    """Columns a unique or exclusion index reads (its keys, expressions and predicate), and
    the columns generated ones among them are computed from."""
    generated_reads: Mapping[str, frozenset[str]]
    """The columns each generated column is computed from."""
    referenced: bool
    """A foreign key (of any table, this one included) references this table."""


def qualified_name(conn: Any, table: Any) -> str:
    """``table``'s name as the statement will name it: quoted, in the schema the connection's
    ``schema_translate_map`` gives it (unqualified names resolve through ``search_path``, as
    the statement's do)."""
    schema = translated_schema(conn, table.schema)
    preparer = conn.dialect.identifier_preparer
    name = str(preparer.quote(table.name))
    return f"{preparer.quote_schema(schema)}.{name}" if schema else name


def read_table_facts(conn: Any, name: str) -> TableFacts | None:
    """The catalog's facts about the table ``name`` (quoted, maybe schema-qualified), or None
    when there is no such table or the server is older than PostgreSQL 12."""
    version = conn.dialect.server_version_info or ()
    if tuple(version[:1]) < MIN_SERVER:
        return None
    row = conn.exec_driver_sql(_FACTS_SQL, {"name": name}).one()
    kind, rules, security, children, triggers, columns, unique, reads, referenced = row
    if kind is None:
        return None
    by_num = {
        c["num"]: ColumnFacts(
            name=c["name"],
            type_oid=c["type"],
            has_typmod=c["typmod"] != -1,
            base_type=c["base"],
            is_domain=c["kind"] == "d",
            is_enum=c["base_kind"] == "e",
            deterministic=bool(c["deterministic"]),
            generated=bool(c["generated"]),
        )
        for c in columns
    }
    generated: dict[str, set[str]] = {}
    for dep in reads:
        column = by_num.get(dep["column"])
        source = by_num.get(dep["reads"])
        if column is not None and source is not None and column.generated:
            generated.setdefault(column.name, set()).add(source.name)
    unique_names = {by_num[n].name for n in unique if n in by_num}
    for key in list(unique_names):  # a generated key changes when its sources do
        unique_names |= generated.get(key, set())
    return TableFacts(
        kind=kind,
        has_rules=bool(rules),
        row_security=bool(security),
        has_children=bool(children),
        update_triggers=tuple(t["name"] for t in triggers if t["type"] & _ON_UPDATE),
        delete_triggers=tuple(t["name"] for t in triggers if t["type"] & _ON_DELETE),
        insert_statement_triggers=tuple(
            t["name"] for t in triggers if t["type"] & _ON_INSERT and not t["type"] & _FOR_EACH_ROW
        ),
        columns={c.name: c for c in by_num.values()},
        unique_columns=frozenset(unique_names),
        generated_reads={k: frozenset(v) for k, v in generated.items()},
        referenced=bool(referenced),
    )


def function_safety(conn: Any, names: Sequence[str]) -> dict[str, bool]:
    """For each function name, whether every function of that name is a built-in one
    (``pg_catalog``) that is immutable or stable: it reads no table and changes nothing, so it
    gives the same answer however many rows one statement covers. A name in
    :data:`SQL_SYNTAX_FUNCTIONS` is safe; a name the catalog does not know is not."""
    wanted = sorted({n.lower() for n in names} - SQL_SYNTAX_FUNCTIONS)
    found: dict[str, bool] = {}
    if wanted:
        rows = conn.exec_driver_sql(_FUNCTIONS_SQL, {"names": wanted}).all()
        found = {name: bool(safe) for name, safe in rows}
    return {n: n.lower() in SQL_SYNTAX_FUNCTIONS or found.get(n.lower(), False) for n in names}


def base_type_names(conn: Any, names: Sequence[str]) -> dict[str, str | None]:
    """For each SQL type name as a cast writes it (``INTEGER``, ``TIMESTAMP WITH TIME ZONE``,
    ``NUMERIC(10, 2)``), the ``typname`` of its type, or of a domain's base type (``int4``,
    ``timestamptz``, ``numeric``); None for a name the server does not know."""
    found: dict[str, str | None] = {}
    for name in names:
        row = conn.exec_driver_sql(
            "SELECT b.typname::text FROM pg_catalog.pg_type t JOIN pg_catalog.pg_type b "
            "ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END "
            "WHERE t.oid = pg_catalog.to_regtype(%(name)s)",
            {"name": name},
        ).first()
        found[name] = None if row is None else row[0]
    return found


def dollar_parameters(sql: str) -> tuple[str, list[str]] | None:
    """``sql`` in the ``pyformat`` style (``%(name)s``, ``%%``) rewritten with PostgreSQL's own
    placeholders (``$1``), and the names in their order; None when it holds no placeholder."""
    order: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        if match.group(0) == "%%":
            return "%"
        return f"${order.setdefault(match.group(1), len(order) + 1)}"

    text = _PLACEHOLDER.sub(number, sql)
    return (text, list(order)) if order else None


_probes = itertools.count()

#: The types of a prepared statement's parameters, each named by its schema and ``typname``
#: (``pg_catalog.bpchar``, ``pg_catalog."bit"``, ``public.mood``): the name a cast takes with
#: no length. Not ``format_type``'s, whose ``character`` and ``bit`` mean one character or bit
#: in a cast (``'abc'::character`` is ``'a'``).
_INFERRED_SQL = """
SELECT ARRAY(
  SELECT format('%%I.%%I', n.nspname, t.typname)
         || CASE WHEN t.typcategory = 'A' THEN '[]' ELSE '' END
  FROM unnest(p.parameter_types) WITH ORDINALITY AS u(oid, i)
  JOIN pg_catalog.pg_type t ON t.oid = u.oid
  JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
  ORDER BY u.i)
FROM pg_catalog.pg_prepared_statements p
WHERE p.name = %s
"""


def inferred_parameter_types(
    conn: Any, sql: str, declared: Mapping[str, str]
) -> dict[str, str] | None:
    """The type PostgreSQL gives each parameter of ``sql`` (pyformat) when the parameters of
    ``declared`` are sent with those types and the others without one (``unknown``), as the
    driver sends a Python ``str``; None when the statement cannot be prepared (it would fail row
    by row too).

    Asked with ``PREPARE`` inside a savepoint, so a statement the server refuses leaves the
    flush's transaction usable.
    """
    converted = dollar_parameters(sql)
    if converted is None:
        return {}
    text, names = converted
    probe = f"membound_probe_{next(_probes)}"
    types = ", ".join(declared.get(n, "unknown") for n in names)
    try:
        with conn.begin_nested():
            raw = conn.connection.dbapi_connection
            raw.execute(f"PREPARE {probe} ({types}) AS {text}")
            found = raw.execute(_INFERRED_SQL, (probe,)).fetchone()
            raw.execute(f"DEALLOCATE {probe}")
    except sa.exc.DBAPIError:
        return None
    except Exception as exc:  # psycopg's own errors, raised outside SQLAlchemy's wrapper
        if type(exc).__module__.startswith("psycopg"):
            return None
        raise
    if found is None or len(found[0]) != len(names):
        return None
    return dict(zip(names, found[0], strict=True))
