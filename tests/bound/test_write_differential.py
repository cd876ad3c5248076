"""Differential test of ``BatchWriter`` (DESIGN §6 G9): random schemas and random lists of
per-row UPDATEs and DELETEs, each run through plain ``Connection.execute`` one by one and
through the writer at several batch sizes, with and without a checkpoint, on real PostgreSQL
and SQLite; full table contents and where it raised must agree (``equivalence.py``).

Schemas draw key kinds (integer, composite, text under a deterministic or a case-insensitive
collation, ``char(n)``, ``uuid``, ``timestamptz``, ``numeric``), columns (numeric with and
without precision, ``varchar(n)``, ``jsonb``, arrays, enums, ``bytea``, domains, generated
columns, defaults from a sequence), a unique column (deferrable or not), a CHECK, foreign keys
(to a parent, with actions, or to the table itself), triggers (BEFORE/AFTER ROW, FOR EACH
STATEMENT writing an audit table) and a table reached through ``schema_translate_map``.
Statements draw keys (the primary key, part of it, a unique or a plain column), extra WHERE
terms (comparisons, arithmetic, a subquery through an alias, ``text()``), SET values
(parameters, constants, expressions, a subquery of the same table, ``nextval()``, ``now()``,
``random()``, the key itself) and items (existing and missing keys, repeats, values equal in
SQL but not in Python, values that do not fit, several Python types in one parameter).

CI runs a bounded, derandomized number of examples; ``MEMBOUND_DIFFERENTIAL_EXAMPLES=N`` runs
N random ones per backend (and keeps Hypothesis's example database); a long run needs the
suite's time limits lifted::

    MEMBOUND_DIFFERENTIAL_EXAMPLES=2000 .venv/bin/python -m pytest -n 2 \
        tests/bound/test_write_differential.py -o faulthandler_timeout=0 --timeout=0
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from tests.bound.equivalence import Item, Place, check, reflect
from tests.bound.helpers import sa

pytest.importorskip("psycopg")

LONG_RUN = int(os.environ.get("MEMBOUND_DIFFERENTIAL_EXAMPLES", "0"))
EXAMPLES = {"postgres": LONG_RUN or 45, "sqlite": LONG_RUN or 25}
#: Writer settings per example (fewer than the named scenarios': each example makes a schema
#: per setting).
CONFIGS: tuple[tuple[int | str, bool], ...] = ((3, False), (1000, True), ("auto", False))

UTC = dt.timezone.utc
BASE_TIME = dt.datetime(2026, 3, 28, 23, 30)
ROWS = 6


# ------------------------------------------------------------------------------ the schema


@dataclass(frozen=True)
class Kind:
    """A column type."""

    name: str
    sql: str
    pg_only: bool = False
    sqlite_sql: str | None = None

    def ddl(self, backend: str) -> str:
        """The type as the backend writes it."""
        return self.sqlite_sql or self.sql if backend == "sqlite" else self.sql


KINDS = {
    k.name: k
    for k in [
        Kind("int", "integer"),
        Kind("bigint", "bigint"),
        Kind("text", 'text COLLATE "C"', sqlite_sql="text"),
        Kind("ci_text", "text COLLATE mb_ci", pg_only=True),
        Kind("char", "char(3)"),
        Kind("uuid", "uuid", pg_only=True),
        Kind("tstz", "timestamptz", pg_only=True),
        Kind("numeric", "numeric"),
        Kind("numeric_p", "numeric(6, 2)"),
        Kind("varchar", "varchar(6)"),
        Kind("jsonb", "jsonb", pg_only=True),
        Kind("intarr", "integer[]", pg_only=True),
        Kind("enum", "mb_mood", pg_only=True),
        Kind("bytea", "bytea", pg_only=True),
        Kind("level", "mb_level", pg_only=True),
        Kind("bool", "boolean"),
        Kind("float", "double precision"),
    ]
}
KEY_KINDS = ["int", "bigint", "text", "ci_text", "char", "uuid", "tstz", "numeric"]
OTHER_KINDS = [
    "int",
    "numeric",
    "numeric_p",
    "varchar",
    "jsonb",
    "intarr",
    "enum",
    "bytea",
    "level",
    "bool",
    "float",
    "text",
    "tstz",
]


def row_value(kind: str, i: int) -> str:
    """The SQL literal of row ``i``'s value for a column of ``kind`` (fill data)."""
    return {
        "int": str(i),
        "bigint": str(i * 1000),
        "text": f"'k{i}'",
        "ci_text": f"'k{i}'",
        "char": f"'c{i}'",
        "uuid": f"'{uuid.UUID(int=i)}'",
        "tstz": f"timestamptz '{(BASE_TIME + dt.timedelta(hours=i)).isoformat()}+00'",
        "numeric": f"{i}.5",
        "numeric_p": f"{i}.25",
        "varchar": f"'v{i}'",
        "jsonb": f"'{{\"i\": {i}}}'",
        "intarr": f"'{{{i},{i + 1}}}'",
        "enum": "'calm'" if i % 2 else "'busy'",
        "bytea": f"'\\x0{i}'",
        "level": str(i),
        "bool": "true" if i % 2 else "false",
        "float": f"{i}.125",
    }[kind]


def python_values(kind: str) -> st.SearchStrategy[Any]:
    """Values an item may carry for a column of ``kind``: existing and missing keys, values
    equal in SQL but not in Python, values that do not fit, other Python types, None."""
    i = st.integers(1, ROWS + 2)
    strategies: dict[str, st.SearchStrategy[Any]] = {
        "int": st.one_of(i, st.sampled_from([0, 2**40, -(2**31) - 1])),
        "bigint": st.one_of(i.map(lambda n: n * 1000), st.sampled_from([7, 2**62])),
        "text": st.one_of(i.map(lambda n: f"k{n}"), st.sampled_from(["K1", "k1 ", "", "z"])),
        "ci_text": st.one_of(i.map(lambda n: f"k{n}"), i.map(lambda n: f"K{n}")),
        "char": st.one_of(i.map(lambda n: f"c{n}"), i.map(lambda n: f"c{n} "), st.just("c1  ")),
        "uuid": st.one_of(
            i.map(lambda n: uuid.UUID(int=n)),
            i.map(lambda n: str(uuid.UUID(int=n)).upper()),
        ),
        "tstz": st.one_of(
            i.map(lambda n: (BASE_TIME + dt.timedelta(hours=n)).replace(tzinfo=UTC)),
            i.map(lambda n: BASE_TIME + dt.timedelta(hours=n)),
        ),
        "numeric": st.one_of(
            i.map(lambda n: decimal.Decimal(f"{n}.5")),
            i,
            st.sampled_from([2.5, decimal.Decimal("2.50"), decimal.Decimal("NaN")]),
        ),
        "numeric_p": st.one_of(
            i.map(lambda n: decimal.Decimal(f"{n}.25")),
            st.sampled_from([decimal.Decimal("123456.7"), 3, 1.125]),
        ),
        "varchar": st.sampled_from(["v1", "short", "much too long", "", "v1 "]),
        "jsonb": st.one_of(st.fixed_dictionaries({"i": i}), st.lists(i, max_size=2), st.just(None)),
        "intarr": st.one_of(st.lists(i, max_size=3), st.just([2**40]), st.just([None])),
        "enum": st.sampled_from(["calm", "busy", "bogus"]),
        "bytea": st.sampled_from([b"\x01", b"\x02", b""]),
        "level": st.sampled_from([1, 2, 0, "3"]),
        "bool": st.sampled_from([True, False]),
        "float": st.sampled_from([0.5, 1.125, -0.0, 2, float("nan")]),
    }
    return st.one_of(strategies[kind], st.just(None)) if kind != "bool" else strategies[kind]


@dataclass(frozen=True)
class Schema:
    """One generated table (``t``), maybe a parent, an audit table, a sequence."""

    backend: str
    key: tuple[str, ...]
    others: tuple[tuple[str, str], ...]
    unique: str | None
    deferrable: bool
    generated: bool
    check: bool
    fk: str | None
    trigger: str | None
    sequence: bool
    translated: bool
    declared: str = "reflected"
    """How the program's ``Table`` declares the columns: as reflected, with other (narrower)
    types than the database has, or without types (SQLAlchemy then casts nothing)."""

    def columns(self) -> list[tuple[str, str]]:
        """(name, kind) of every column the items may name."""
        keys = [(f"k{i}", kind) for i, kind in enumerate(self.key)]
        return keys + list(self.others)

    def ddl(self) -> list[str]:
        pg = self.backend == "postgres"
        table = "mb_tenant.t" if self.translated else "t"
        out: list[str] = []
        if pg:
            out += [
                "CREATE COLLATION IF NOT EXISTS mb_ci (provider = icu, "
                "locale = 'und-u-ks-level2', deterministic = false)",
                "CREATE TYPE mb_mood AS ENUM ('calm', 'busy')",
                "CREATE DOMAIN mb_level AS integer CHECK (VALUE > 0)",
            ]
        if self.sequence:
            out.append("CREATE SEQUENCE tickets")

        parts = [
            f"k{i} {KINDS[kind].ddl(self.backend)} NOT NULL" for i, kind in enumerate(self.key)
        ]
        for name, kind in self.others:
            unique = ""
            if name == self.unique:
                unique = " UNIQUE" + (" DEFERRABLE INITIALLY IMMEDIATE" if self.deferrable else "")
            parts.append(f"{name} {KINDS[kind].ddl(self.backend)}{unique}")
        if self.generated:
            parts.append("g integer GENERATED ALWAYS AS (n * 2) STORED")
        if self.fk == "self":
            parts.append(f"up integer REFERENCES {table} (k0)")
        elif self.fk:
            parts.append(f"pid integer REFERENCES parent (id) ON DELETE {self.fk}")
            out.append("CREATE TABLE parent (id integer PRIMARY KEY)")
            out.append("INSERT INTO parent VALUES (1), (2), (3), (4)")
        if self.check:
            parts.append("CHECK (n < 1000)")
        parts.append(f"PRIMARY KEY ({', '.join(f'k{i}' for i in range(len(self.key)))})")
        out.append(f"CREATE TABLE {table} ({', '.join(parts)})")
        for i in range(1, ROWS + 1):
            names = [f"k{j}" for j in range(len(self.key))] + [n for n, _ in self.others]
            values = [row_value(kind, i) for kind in self.key]
            values += [row_value(kind, i) for _, kind in self.others]
            if self.fk == "self":
                names.append("up")
                values.append(str(i - 1) if i > 1 else "NULL")
            elif self.fk and self.fk != "self":
                names.append("pid")
                values.append(str(i % 4 + 1))
            out.append(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(values)})")
        if self.trigger:
            out += self._trigger_ddl(table)
        if pg:  # a function of the user's: volatile, and it reads the table
            body = "SELECT coalesce(max(n), 0) + 1 FROM " + table
            out.append(
                f"CREATE FUNCTION mb_next() RETURNS integer VOLATILE LANGUAGE sql AS '{body}'"
            )
        if self.translated:  # the program's own schema has a t too: it must stay empty
            out.append("CREATE TABLE t (k0 integer)")
        return out

    def _trigger_ddl(self, table: str) -> list[str]:
        audit = "CREATE TABLE audit (seq integer PRIMARY KEY, what text, n integer)"
        if self.backend == "sqlite":
            body = (
                "INSERT INTO audit (seq, what, n) "
                "VALUES ((SELECT coalesce(max(seq), 0) + 1 FROM audit), 'row', NEW.n);"
            )
            return [
                audit,
                f"CREATE TRIGGER log_rows AFTER UPDATE ON {table} FOR EACH ROW BEGIN {body} END",
            ]
        timing, level = {
            "before_row": ("BEFORE", "ROW"),
            "after_row": ("AFTER", "ROW"),
            "statement": ("AFTER", "STATEMENT"),
        }[self.trigger or "after_row"]
        return [
            "CREATE TABLE audit (seq serial PRIMARY KEY, what text, n integer)",
            "CREATE FUNCTION log_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF TG_LEVEL = 'ROW' THEN INSERT INTO audit (what, n) VALUES (TG_OP, NEW.n); "
            "ELSE INSERT INTO audit (what) VALUES (TG_OP); END IF; "
            "IF TG_OP = 'DELETE' THEN RETURN OLD; END IF; RETURN NEW; END $$",
            f"CREATE TRIGGER log_rows {timing} UPDATE OR DELETE ON {table} "
            f"FOR EACH {level} EXECUTE FUNCTION log_change()",
        ]

    def tables(self) -> list[str]:
        names = ["t"]
        if self.translated:
            names.append("mb_tenant.t")
        if self.trigger:
            names.append("audit")
        return names


@st.composite
def schemas(draw: st.DrawFn, backend: str) -> Schema:
    pg = backend == "postgres"
    usable = [k for k in KEY_KINDS if pg or not KINDS[k].pg_only]
    key = (draw(st.sampled_from(usable)),)
    if draw(st.booleans()):
        key += (draw(st.sampled_from(["text", "int"] + (["ci_text"] if pg else []))),)
    other_kinds = [k for k in OTHER_KINDS if pg or not KINDS[k].pg_only]
    chosen = draw(st.lists(st.sampled_from(other_kinds), min_size=1, max_size=4, unique=True))
    others = [("n", "int")] + [(f"c{i}", kind) for i, kind in enumerate(chosen)]
    unique = draw(st.sampled_from([None, "n", *[name for name, _ in others[1:]]]))
    if unique is not None and dict(others)[unique] in ("jsonb", "intarr", "bool", "enum"):
        unique = None
    return Schema(
        backend=backend,
        key=key,
        others=tuple(others),
        unique=unique,
        deferrable=pg and unique is not None and draw(st.booleans()),
        generated=draw(st.booleans()),
        check=draw(st.booleans()),
        fk=draw(
            st.sampled_from(
                [None, None]
                + (["self"] if key[0] == "int" and len(key) == 1 else [])
                + (["NO ACTION", "CASCADE", "SET NULL"] if pg else [])
            )
        ),
        trigger=draw(
            st.sampled_from([None, None, "after_row"] + (["before_row", "statement"] if pg else []))
        ),
        sequence=pg and draw(st.booleans()),
        translated=pg and draw(st.integers(0, 4)) == 0,
        declared=draw(st.sampled_from(["reflected", "reflected", "reflected", "other", "untyped"])),
    )


# ---------------------------------------------------------------------- statements, items


@dataclass(frozen=True)
class Template:
    """One UPDATE or DELETE the items run."""

    delete: bool
    keys: tuple[str, ...]
    extra: str
    sets: tuple[tuple[str, str], ...]
    odd_names: bool
    form: str = "update"
    """``update`` (or a DELETE), ``from_keys`` (an UPDATE without ``values()``: its SET is
    the item's keys, which may differ from item to item) or ``insert`` (items may leave
    columns to their defaults)."""


SET_WAYS = ["param", "param", "const", "plus_param", "times_two", "subquery", "stable", "volatile"]
EXTRAS = [
    "none",
    "none",
    "cmp_const",
    "cmp_param",
    "is_not_null",
    "arith",
    "alias",
    "text",
    "in_param",
    "in_const",
]


@st.composite
def templates(draw: st.DrawFn, schema: Schema) -> Template:
    key_names = [f"k{i}" for i in range(len(schema.key))]
    others = [name for name, _ in schema.others]
    keys = draw(
        st.sampled_from(
            [tuple(key_names), (key_names[0],), ("n",)]
            + ([(schema.unique,)] if schema.unique else [])
        )
    )
    form = draw(st.sampled_from(["update"] * 6 + ["from_keys", "insert"]))
    delete = form == "update" and draw(st.integers(0, 4)) == 0
    if form != "update":
        names = draw(st.lists(st.sampled_from(others), min_size=1, max_size=3, unique=True))
        return Template(
            delete=False,
            keys=keys if form == "from_keys" else tuple(key_names),
            extra="none",
            sets=tuple((name, "param") for name in names),
            odd_names=False,
            form=form,
        )
    sets: list[tuple[str, str]] = []
    if not delete:
        targets = draw(st.lists(st.sampled_from(others + key_names), min_size=1, max_size=3))
        for name in dict.fromkeys(targets):
            ways = list(SET_WAYS)
            if schema.sequence:
                ways.append("nextval")
            if name in key_names or name == schema.unique:
                ways = ["param", "param", "plus_param"]
            sets.append((name, draw(st.sampled_from(ways))))
    return Template(
        delete=delete,
        keys=keys,
        extra=draw(st.sampled_from(EXTRAS)),
        sets=tuple(sets),
        odd_names=draw(st.integers(0, 5)) == 0,
    )


def _param(template: Template, role: str, column: str) -> str:
    return f"{role} {column}%" if template.odd_names else f"{role}_{column}"


def _numeric_kind(kind: str) -> bool:
    return kind in ("int", "bigint", "numeric", "numeric_p", "float", "level")


def build_statement(schema: Schema, template: Template, t: sa.Table) -> Any:
    kinds = dict(schema.columns())
    where = [t.c[name] == sa.bindparam(_param(template, "k", name)) for name in template.keys]
    extra = template.extra
    if extra == "cmp_const":
        where.append(t.c.n < 5)
    elif extra == "cmp_param":
        where.append(t.c.n <= sa.bindparam(_param(template, "x", "n"), type_=sa.Integer))
    elif extra == "is_not_null":
        where.append(t.c[schema.others[-1][0]].is_not(None))
    elif extra == "arith":
        where.append(t.c.n + 1 > 2)
    elif extra == "alias":
        other = t.alias("other")
        where.append(sa.select(sa.func.count()).select_from(other).scalar_subquery() > 2)
    elif extra == "text":
        where.append(sa.text("(SELECT count(*) FROM t) > 2"))
    elif extra == "in_param":
        where.append(t.c.n.in_(sa.bindparam(_param(template, "in", "n"), expanding=True)))
    elif extra == "in_const":
        where.append(t.c.n.in_([1, 3, 5]))
    if template.form == "insert":
        return sa.insert(t)
    if template.form == "from_keys":
        return sa.update(t).where(*where)
    if template.delete:
        return sa.delete(t).where(*where)
    values: dict[str, Any] = {}
    for name, way in template.sets:
        column = t.c[name]
        kind = kinds[name]
        param = sa.bindparam(_param(template, "v", name), type_=column.type)
        if way == "param" or (not _numeric_kind(kind) and way in ("plus_param", "times_two")):
            values[name] = param
        elif way == "const":
            values[name] = sa.bindparam(f"const_{name}", row_value_python(kind), type_=column.type)
        elif way == "plus_param":
            values[name] = column + param
        elif way == "times_two":
            values[name] = column * 2
        elif way == "subquery":
            values[name] = sa.select(sa.func.max(t.c[name])).scalar_subquery()
        elif way == "stable":  # built-in functions that read nothing but their arguments
            if kind == "tstz":
                values[name] = sa.func.date_trunc("day", column)
            elif kind in ("int", "numeric", "float"):
                values[name] = sa.func.abs(column)
            else:
                values[name] = sa.func.coalesce(column, column)
        elif way == "volatile":  # the user's function: it reads the table
            use = kind == "int" and schema.backend == "postgres"
            values[name] = sa.func.mb_next() if use else column
        elif way == "nextval":
            values[name] = sa.func.nextval("tickets") if kind == "int" else column
    return sa.update(t).where(*where).values(values)


def row_value_python(kind: str) -> Any:
    return {
        "int": 7,
        "bigint": 7000,
        "text": "const",
        "ci_text": "const",
        "char": "cc",
        "uuid": uuid.UUID(int=99),
        "tstz": BASE_TIME.replace(tzinfo=UTC),
        "numeric": decimal.Decimal("7.5"),
        "numeric_p": decimal.Decimal("7.25"),
        "varchar": "const",
        "jsonb": {"const": True},
        "intarr": [7],
        "enum": "busy",
        "bytea": b"\x07",
        "level": 7,
        "bool": True,
        "float": 7.5,
    }[kind]


@dataclass(frozen=True)
class Scenario:
    schema: Schema
    templates: tuple[Template, ...]
    items: tuple[tuple[int, tuple[tuple[str, Any], ...]], ...]

    def build(self, engine: sa.Engine) -> list[Item]:
        (t,) = reflect_t(engine, self.schema)
        statements = [build_statement(self.schema, tpl, t) for tpl in self.templates]
        return [
            (statements[which], dict(params), index)
            for index, (which, params) in enumerate(self.items)
        ]


#: The type a program may declare for a column of each kind instead of the real one: narrower
#: (SQLAlchemy then casts each parameter to it), or as the ORM's defaults would have it.
OTHER_TYPES: dict[str, Any] = {
    "numeric": sa.Integer,
    "numeric_p": sa.Integer,
    "float": sa.Integer,
    "tstz": sa.Date,
    "bigint": sa.Integer,
    "int": sa.BigInteger,
    "char": sa.String,
    "text": sa.String,
    "varchar": sa.Text,
}


def reflect_t(engine: sa.Engine, schema: Schema) -> Iterator[sa.Table]:
    """The table ``t`` as the program declares it: without a schema (a translated engine's
    ``schema_translate_map`` sends it to the tenant's), with the schema's declared types."""
    translate = engine.get_execution_options().get("schema_translate_map")
    if not translate:
        (table,) = reflect(engine, "t")
    else:
        real = sa.Table(
            "t", sa.MetaData(), schema=translate[None], autoload_with=engine, resolve_fks=False
        )
        table = real.to_metadata(sa.MetaData(), schema=None)
    if schema.declared != "reflected":
        kinds = dict(schema.columns())
        for column in table.columns:
            kind = kinds.get(column.name)
            if kind is None:
                continue
            if schema.declared == "untyped":
                column.type = sa.types.NullType()
            elif kind in OTHER_TYPES:
                column.type = OTHER_TYPES[kind]()
    yield table


@st.composite
def scenarios(draw: st.DrawFn, backend: str) -> Scenario:
    schema = draw(schemas(backend))
    chosen = tuple(draw(st.lists(templates(schema), min_size=1, max_size=2)))
    kinds = dict(schema.columns())
    items = []
    for _ in range(draw(st.integers(1, 9))):
        which = draw(st.integers(0, len(chosen) - 1))
        template = chosen[which]
        params: dict[str, Any] = {}
        for name in template.keys:
            params[_param(template, "k", name)] = draw(python_values(kinds[name]))
        for name, way in template.sets:
            if way in ("param", "plus_param") or (
                way == "times_two" and not _numeric_kind(kinds[name])
            ):
                params[_param(template, "v", name)] = draw(python_values(kinds[name]))
        if template.extra == "cmp_param":
            params[_param(template, "x", "n")] = draw(st.integers(0, 8))
        if template.extra == "in_param":
            params[_param(template, "in", "n")] = draw(st.lists(st.integers(0, 8), max_size=3))
        if template.form != "update":  # the keys themselves, and some of the set columns
            named = (lambda n: n) if template.form == "insert" else (lambda n: f"k_{n}")
            params = {named(name): draw(python_values(kinds[name])) for name in template.keys}
            for name, _ in template.sets:
                if draw(st.booleans()):
                    params[name] = draw(python_values(kinds[name]))
        items.append((which, tuple(params.items())))
    return Scenario(schema, chosen, tuple(items))


# ----------------------------------------------------------------------------------- runs


def _settings(backend: str) -> Any:
    return settings(
        max_examples=EXAMPLES[backend],
        deadline=None,
        derandomize=not LONG_RUN,
        database=None if not LONG_RUN else settings.default.database,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.function_scoped_fixture,
            HealthCheck.data_too_large,
        ],
    )


def _run(place: Place, scenario: Scenario) -> None:
    place.translate = scenario.schema.translated
    try:
        check(place, scenario.schema.ddl(), scenario.schema.tables(), scenario.build, CONFIGS)
    finally:
        place.translate = False


@pytest.fixture(scope="module")
def pg_place(postgres_url: str) -> Iterator[Place]:
    place = Place("postgres", url=postgres_url)
    yield place
    place.drop()


@pytest.fixture(scope="module")
def sqlite_place(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("differential")


@pytest.mark.timeout(0 if LONG_RUN else 600)
@_settings("postgres")
@given(data=st.data())
def test_postgresql_writes_what_one_by_one_writes(pg_place: Place, data: st.DataObject) -> None:
    _run(pg_place, data.draw(scenarios("postgres")))


@pytest.mark.timeout(0 if LONG_RUN else 600)
@_settings("sqlite")
@given(data=st.data())
def test_sqlite_writes_what_one_by_one_writes(sqlite_place: Path, data: st.DataObject) -> None:
    _run(Place("sqlite", folder=sqlite_place), data.draw(scenarios("sqlite")))
