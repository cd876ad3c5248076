"""``BatchWriter`` writes exactly what its statements run one by one write (DESIGN §6 G9), on
the classes of difference a differential run found in the one-statement flush and the driver
path (issue 35), each a named scenario compared with one by one (``equivalence.py``): same table
contents, raised or not in the same flush, the checkpoint at what committed. And the fast path
stays taken where it is proven: the ways the writer sent its items are checked too."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import membound as mb
from tests.bound.equivalence import Item, Place, check, reflect
from tests.bound.helpers import sa

pytest.importorskip("psycopg")

UTC = dt.timezone.utc
#: The ways ``BatchWriter.sent`` counts.
ONE_STATEMENT, ROW_BY_ROW = "one statement", "row by row"


@pytest.fixture
def pg(postgres_url: str) -> Iterator[Place]:
    place = Place("postgres", url=postgres_url)
    yield place
    place.drop()


@pytest.fixture(params=["postgres", "sqlite"])
def anywhere(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Place]:
    if request.param == "postgres":
        place = Place("postgres", url=request.getfixturevalue("postgres_url"))
    else:
        place = Place("sqlite", folder=tmp_path)
    yield place
    place.drop()


def _rows(n: int, ddl: str, fill: str) -> list[str]:
    return [ddl, fill.format(n=n)]


# ------------------------------------------------------------------ silent changes of data


def test_aware_and_naive_datetimes_in_one_parameter_keep_their_offsets(pg: Place) -> None:
    """psycopg dumps a list mixing them as one type: every aware value lost its offset."""
    ddl = [
        "CREATE TABLE ev (id int PRIMARY KEY, at timestamptz)",
        "INSERT INTO ev SELECT g, NULL FROM generate_series(1, 6) g",
    ]

    def build(engine: sa.Engine) -> list[Item]:
        (ev,) = reflect(engine, "ev")
        stmt = sa.update(ev).where(ev.c.id == sa.bindparam("k")).values(at=sa.bindparam("t"))
        noon = dt.datetime(2026, 3, 1, 12, 0)
        return [
            (stmt, {"k": i, "t": noon.replace(tzinfo=UTC) if i % 2 else noon}, i)
            for i in range(1, 7)
        ]

    verdict = check(pg, ddl, ["ev"], build)
    assert ONE_STATEMENT not in verdict.ways


def test_a_timestamptz_key_given_aware_and_naive_meets_the_rows_one_by_one_meets(
    pg: Place,
) -> None:
    ddl = [
        "CREATE TABLE ev (at timestamptz PRIMARY KEY, n int NOT NULL)",
        "INSERT INTO ev SELECT timestamptz '2026-03-01 12:00+00' + g * interval '1 hour', 0 "
        "FROM generate_series(0, 5) g",
    ]

    def build(engine: sa.Engine) -> list[Item]:
        (ev,) = reflect(engine, "ev")
        stmt = sa.update(ev).where(ev.c.at == sa.bindparam("k")).values(n=ev.c.n * 10 + 1)
        base = dt.datetime(2026, 3, 1, 12, 0)
        keys = [base + dt.timedelta(hours=h) for h in range(6)]
        return [(stmt, {"k": k if h % 2 else k.replace(tzinfo=UTC)}, h) for h, k in enumerate(keys)]

    check(pg, ddl, ["ev"], build)


def test_keys_equal_under_a_case_insensitive_collation_meet_one_row_in_order(pg: Place) -> None:
    ddl = [
        "CREATE COLLATION IF NOT EXISTS mb_ci (provider = icu, locale = 'und-u-ks-level2', "
        "deterministic = false)",
        "CREATE TABLE tags (name text COLLATE mb_ci PRIMARY KEY, n int NOT NULL)",
        "INSERT INTO tags VALUES ('alpha', 0), ('beta', 0)",
    ]

    def build(engine: sa.Engine) -> list[Item]:
        (tags,) = reflect(engine, "tags")
        stmt = sa.update(tags).where(tags.c.name == sa.bindparam("k")).values(n=tags.c.n * 10 + 1)
        return [(stmt, {"k": k}, i) for i, k in enumerate(["alpha", "ALPHA", "beta", "Alpha"])]

    verdict = check(pg, ddl, ["tags"], build)
    assert ONE_STATEMENT not in verdict.ways


def test_char_keys_that_differ_by_trailing_blanks_meet_one_row_in_order(pg: Place) -> None:
    ddl = [
        "CREATE TABLE codes (code char(4) PRIMARY KEY, n int NOT NULL)",
        "INSERT INTO codes VALUES ('ab', 0), ('cd', 0)",
    ]

    def build(engine: sa.Engine) -> list[Item]:
        (codes,) = reflect(engine, "codes")
        stmt = sa.update(codes).where(codes.c.code == sa.bindparam("k"))
        stmt = stmt.values(n=codes.c.n * 10 + sa.bindparam("v"))
        return [(stmt, {"k": k, "v": i}, i) for i, k in enumerate(["ab", "ab ", "cd", "ab  "])]

    check(pg, ddl, ["codes"], build)


def test_a_set_that_reads_its_own_table_sees_the_items_before_it(pg: Place) -> None:
    ddl = [
        "CREATE TABLE queue (id int PRIMARY KEY, pos int)",
        "INSERT INTO queue SELECT g, g FROM generate_series(1, 10) g",
    ]

    def build(engine: sa.Engine) -> list[Item]:
        (queue,) = reflect(engine, "queue")
        last = sa.select(sa.func.max(queue.c.pos) + 1).scalar_subquery()
        stmt = sa.update(queue).where(queue.c.id == sa.bindparam("k")).values(pos=last)
        return [(stmt, {"k": k}, k) for k in (3, 5, 7)]

    verdict = check(pg, ddl, ["queue"], build)
    assert ONE_STATEMENT not in verdict.ways


def test_a_where_that_reads_its_own_table_through_an_alias_or_text(pg: Place) -> None:
    ddl = [
        "CREATE TABLE stock (id int PRIMARY KEY, qty int NOT NULL)",
        "INSERT INTO stock SELECT g, g FROM generate_series(1, 8) g",
    ]

    def build(engine: sa.Engine) -> list[Item]:
        (stock,) = reflect(engine, "stock")
        other = stock.alias("other")
        total = sa.select(sa.func.sum(other.c.qty)).scalar_subquery()
        by_alias = (
            sa.update(stock)
            .where(stock.c.id == sa.bindparam("k"), total > sa.bindparam("floor"))
            .values(qty=0)
        )
        by_text = (
            sa.update(stock)
            .where(stock.c.id == sa.bindparam("k"))
            .where(sa.text("(SELECT sum(qty) FROM stock) > 20"))
            .values(qty=0)
        )
        items: list[Item] = [(by_alias, {"k": k, "floor": 25}, k) for k in (8, 7, 6, 5)]
        return items + [(by_text, {"k": k}, 10 + k) for k in (4, 3, 2)]

    verdict = check(pg, ddl, ["stock"], build)
    assert ONE_STATEMENT not in verdict.ways


def test_a_where_on_a_generated_unique_column_whose_source_the_set_changes(pg: Place) -> None:
    ddl = [
        "CREATE TABLE people (id int PRIMARY KEY, email text NOT NULL, "
        "email_key text GENERATED ALWAYS AS (lower(email)) STORED UNIQUE, n int NOT NULL)",
        "INSERT INTO people (id, email, n) VALUES (1, 'A@x', 0), (2, 'B@x', 0)",
    ]

    def build(engine: sa.Engine) -> list[Item]:
        (people,) = reflect(engine, "people")
        stmt = (
            sa.update(people)
            .where(people.c.email_key == sa.bindparam("k"))
            .values(email=sa.bindparam("e"), n=people.c.n + 1)
        )
        return [
            (stmt, {"k": "a@x", "e": "C@x"}, 1),
            (stmt, {"k": "c@x", "e": "D@x"}, 2),
            (stmt, {"k": "b@x", "e": "E@x"}, 3),
        ]

    check(pg, ddl, ["people"], build)


def test_nextval_in_set_numbers_the_rows_in_item_order(pg: Place) -> None:
    ddl = [
        "CREATE SEQUENCE tickets",
        "CREATE TABLE orders (id int PRIMARY KEY, ticket bigint)",
        "INSERT INTO orders SELECT g, NULL FROM generate_series(1, 12) g",
    ]

    def build(engine: sa.Engine) -> list[Item]:
        (orders,) = reflect(engine, "orders")
        stmt = (
            sa.update(orders)
            .where(orders.c.id == sa.bindparam("k"))
            .values(ticket=sa.func.nextval("tickets"))
        )
        return [(stmt, {"k": k}, i) for i, k in enumerate([9, 2, 11, 4, 7, 1])]

    verdict = check(pg, ddl, ["orders"], build)
    assert ONE_STATEMENT not in verdict.ways


@pytest.mark.parametrize("level", ["ROW", "STATEMENT"])
def test_audit_triggers_fire_as_often_and_in_the_order_they_do_one_by_one(
    pg: Place, level: str
) -> None:
    ddl = [
        "CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)",
        "INSERT INTO accounts SELECT g, 100 FROM generate_series(1, 10) g",
        "CREATE TABLE audit (seq serial PRIMARY KEY, account int, balance int)",
        "CREATE FUNCTION log_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF TG_LEVEL = 'ROW' THEN INSERT INTO audit (account, balance) "
        "VALUES (NEW.id, NEW.balance); ELSE INSERT INTO audit (account) VALUES (NULL); END IF; "
        "RETURN NULL; END $$",
        f"CREATE TRIGGER audit_rows AFTER UPDATE ON accounts FOR EACH {level} "
        "EXECUTE FUNCTION log_change()",
    ]

    def build(engine: sa.Engine) -> list[Item]:
        (accounts,) = reflect(engine, "accounts")
        stmt = (
            sa.update(accounts)
            .where(accounts.c.id == sa.bindparam("k"))
            .values(balance=accounts.c.balance - sa.bindparam("amount"))
        )
        return [(stmt, {"k": k, "amount": k * 3}, i) for i, k in enumerate([8, 3, 10, 1, 5])]

    verdict = check(pg, ddl, ["accounts", "audit"], build)
    assert ONE_STATEMENT not in verdict.ways


def test_a_before_row_trigger_that_updates_another_row(pg: Place) -> None:
    ddl = [
        "CREATE TABLE nodes (id int PRIMARY KEY, parent int, touched int NOT NULL DEFAULT 0)",
        "INSERT INTO nodes SELECT g, CASE WHEN g > 1 THEN g - 1 END, 0 "
        "FROM generate_series(1, 6) g",
        "CREATE FUNCTION touch_child() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF pg_trigger_depth() = 1 THEN "
        "UPDATE nodes SET touched = touched + 1 WHERE parent = NEW.id; END IF; "
        "RETURN NEW; END $$",
        "CREATE TRIGGER touch BEFORE UPDATE ON nodes FOR EACH ROW EXECUTE FUNCTION touch_child()",
    ]

    def build(engine: sa.Engine) -> list[Item]:
        (nodes,) = reflect(engine, "nodes")
        stmt = (
            sa.update(nodes)
            .where(nodes.c.id == sa.bindparam("k"))
            .values(touched=nodes.c.touched + 10)
        )
        return [(stmt, {"k": k}, k) for k in (2, 3, 4, 5, 6)]

    check(pg, ddl, ["nodes"], build)


def test_numeric_plus_a_python_float_computes_as_one_by_one(pg: Place) -> None:
    ddl = [
        "CREATE TABLE prices (id int PRIMARY KEY, amount numeric NOT NULL)",
        "INSERT INTO prices SELECT g, 0.1 * g FROM generate_series(1, 6) g",
    ]

    def build(engine: sa.Engine) -> list[Item]:
        (prices,) = reflect(engine, "prices")
        stmt = (
            sa.update(prices)
            .where(prices.c.id == sa.bindparam("k"))
            .values(amount=prices.c.amount + sa.bindparam("x", type_=sa.Float))
        )
        return [(stmt, {"k": k, "x": 0.1 + k / 3}, k) for k in range(1, 7)]

    verdict = check(pg, ddl, ["prices"], build)
    assert ONE_STATEMENT in verdict.ways


# ------------------------------------------------------------- raised where one by one raised


@pytest.mark.parametrize(
    ("column", "bad"),
    [
        ("name varchar(4)", "much too long"),
        ("amount numeric(5, 2)", decimal.Decimal("123456.78")),
        ("code mb_code", "NOT LOWER"),
    ],
    ids=["varchar", "numeric", "domain"],
)
def test_a_value_that_does_not_fit_raises_even_where_its_key_meets_no_row(
    pg: Place, column: str, bad: Any
) -> None:
    name = column.split(maxsplit=1)[0]
    ddl = [
        "CREATE DOMAIN mb_code AS text CHECK (VALUE ~ '^[a-z]+$')",
        f"CREATE TABLE fits (id int PRIMARY KEY, {column})",
        "INSERT INTO fits SELECT g, NULL FROM generate_series(1, 20) g",
    ]

    def build(engine: sa.Engine) -> list[Item]:
        (fits,) = reflect(engine, "fits")
        stmt = (
            sa.update(fits).where(fits.c.id == sa.bindparam("k")).values({name: sa.bindparam("v")})
        )
        good: Any = {"name": "ok", "amount": decimal.Decimal("1.50"), "code": "abc"}[name]
        items: list[Item] = [(stmt, {"k": k, "v": good}, k) for k in range(1, 16)]
        return [*items, (stmt, {"k": 999, "v": bad}, 999), (stmt, {"k": 16, "v": good}, 1000)]

    verdict = check(pg, ddl, ["fits"], build)
    assert verdict.failed_at == 15


def test_deleting_a_parent_and_its_child_fails_as_it_does_one_by_one(pg: Place) -> None:
    ddl = [
        "CREATE TABLE tree (id int PRIMARY KEY, parent int REFERENCES tree (id))",
        "INSERT INTO tree VALUES (1, NULL), (2, 1), (3, NULL), (4, 3)",
    ]

    def build(engine: sa.Engine) -> list[Item]:
        (tree,) = reflect(engine, "tree")
        stmt = sa.delete(tree).where(tree.c.id == sa.bindparam("k"))
        return [(stmt, {"k": k}, k) for k in (4, 3, 1, 2)]

    verdict = check(pg, ddl, ["tree"], build)
    assert verdict.failed_at == 2


def test_swapping_a_deferrable_unique_column_fails_as_it_does_one_by_one(pg: Place) -> None:
    ddl = [
        "CREATE TABLE seats (id int PRIMARY KEY, seat text UNIQUE DEFERRABLE INITIALLY IMMEDIATE)",
        "INSERT INTO seats VALUES (1, 'A'), (2, 'B')",
    ]

    def build(engine: sa.Engine) -> list[Item]:
        (seats,) = reflect(engine, "seats")
        stmt = (
            sa.update(seats).where(seats.c.id == sa.bindparam("k")).values(seat=sa.bindparam("s"))
        )
        return [(stmt, {"k": 1, "s": "B"}, 1), (stmt, {"k": 2, "s": "A"}, 2)]

    verdict = check(pg, ddl, ["seats"], build)
    assert verdict.failed_at == 0


@pytest.mark.parametrize(
    "values",
    [
        [decimal.Decimal("1.5"), 2, decimal.Decimal("2.25")],
        [1.5, 2, 2.25],
        [dt.date(2026, 1, 2), dt.datetime(2026, 1, 3, 4, 5)],
    ],
    ids=["decimal+int", "float+int", "date+datetime"],
)
def test_mixed_python_types_in_one_parameter_write_what_one_by_one_writes(
    anywhere: Place, values: list[Any]
) -> None:
    kind = "timestamp" if isinstance(values[0], dt.date) else "numeric"
    ddl = [
        f"CREATE TABLE mixed (id int PRIMARY KEY, v {kind})",
        "INSERT INTO mixed VALUES (1, NULL), (2, NULL), (3, NULL)",
    ]

    def build(engine: sa.Engine) -> list[Item]:
        (mixed,) = reflect(engine, "mixed")
        stmt = sa.update(mixed).where(mixed.c.id == sa.bindparam("k")).values(v=sa.bindparam("v"))
        return [(stmt, {"k": i + 1, "v": v}, i) for i, v in enumerate(values)]

    check(anywhere, ddl, ["mixed"], build)


# ---------------------------------------------------- what SQLAlchemy applies to a statement


def test_schema_translate_map_decides_where_the_writes_go(anywhere: Place, tmp_path: Path) -> None:
    if anywhere.kind == "postgres":
        ddl = [
            "CREATE SCHEMA IF NOT EXISTS mb_tenant",
            "DROP TABLE IF EXISTS mb_tenant.box",
            "CREATE TABLE mb_tenant.box (id int PRIMARY KEY, v int NOT NULL)",
            "INSERT INTO mb_tenant.box SELECT g, 0 FROM generate_series(1, 5) g",
            "CREATE TABLE box (id int PRIMARY KEY, v int NOT NULL)",
            "INSERT INTO box SELECT g, 0 FROM generate_series(1, 5) g",
        ]
        engine = anywhere.fresh(ddl)
    else:
        engine = anywhere.fresh(["CREATE TABLE box (id int PRIMARY KEY, v int NOT NULL)"])
        tenant = tmp_path / "tenant.db"
        sa.event.listen(
            engine,
            "connect",
            lambda dbapi, _: dbapi.execute(f"ATTACH DATABASE '{tenant}' AS mb_tenant"),
        )
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS mb_tenant.box")
            conn.exec_driver_sql("CREATE TABLE mb_tenant.box (id int PRIMARY KEY, v int NOT NULL)")
            for table in ("box", "mb_tenant.box"):
                conn.exec_driver_sql(f"INSERT INTO {table} VALUES (1,0),(2,0),(3,0),(4,0),(5,0)")
    box = sa.Table("box", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                   sa.Column("v", sa.Integer))  # fmt: skip
    tenant_engine = engine.execution_options(schema_translate_map={None: "mb_tenant"})
    stmt = sa.update(box).where(box.c.id == sa.bindparam("k")).values(v=box.c.v + sa.bindparam("n"))
    with mb.BatchWriter(tenant_engine, batch_size=100) as writer:
        for k in range(1, 6):
            writer.add(stmt, {"k": k, "n": k * 10})
    with engine.connect() as conn:
        home = conn.exec_driver_sql("SELECT sum(v) FROM box").scalar()
        tenant_sum = conn.exec_driver_sql("SELECT sum(v) FROM mb_tenant.box").scalar()
    engine.dispose()
    assert (0, 150) == (home, tenant_sum)
    if anywhere.kind == "postgres":
        assert writer.sent[ONE_STATEMENT] == 5


def test_parameter_names_sqlalchemy_escapes_reach_the_driver(anywhere: Place) -> None:
    ddl = [
        "CREATE TABLE odd (id int PRIMARY KEY, v int NOT NULL)",
        "INSERT INTO odd VALUES (1, 0), (2, 0), (3, 0)",
    ]

    def build(engine: sa.Engine) -> list[Item]:
        (odd,) = reflect(engine, "odd")
        stmt = (
            sa.update(odd)
            .where(odd.c.id == sa.bindparam("row id"))
            .values(v=odd.c.v + sa.bindparam("50% more"))
        )
        return [(stmt, {"row id": k, "50% more": k * 7}, k) for k in (1, 3)]

    verdict = check(anywhere, ddl, ["odd"], build)
    if anywhere.kind == "postgres":
        assert ONE_STATEMENT in verdict.ways


# ---------------------------------------------------------- the fast path where it is proven


def test_boolean_constants_uuid_keys_and_jsonb_enum_array_values_go_as_one_statement(
    pg: Place,
) -> None:
    ddl = [
        "CREATE TYPE mb_mood AS ENUM ('calm', 'busy')",
        "CREATE TABLE docs (id uuid PRIMARY KEY, done boolean NOT NULL, body jsonb, "
        "mood mb_mood, tags int[], n int NOT NULL)",
    ]
    ids = [uuid.UUID(int=i * 7919) for i in range(1, 9)]
    ddl.append(
        "INSERT INTO docs VALUES " + ", ".join(f"('{u}', false, NULL, NULL, NULL, 0)" for u in ids)
    )

    def build(engine: sa.Engine) -> list[Item]:
        (docs,) = reflect(engine, "docs")
        docs.c.mood.type = sa.Enum("calm", "busy", name="mb_mood")
        docs.c.tags.type = sa.ARRAY(sa.Integer)
        stmt = (
            sa.update(docs)
            .where(docs.c.id == sa.bindparam("k"))
            .values(
                done=True,
                body=sa.bindparam("b", type_=docs.c.body.type),
                mood=sa.bindparam("m"),
                tags=sa.bindparam("t"),
                n=docs.c.n + 1,
            )
        )
        return [
            (
                stmt,
                {
                    "k": u,
                    "b": {"i": i, "x": [i]},
                    "m": "busy" if i % 2 else "calm",
                    "t": [i, i + 1] if i % 3 else [],
                },
                i,
            )
            for i, u in enumerate(ids)
        ]

    verdict = check(pg, ddl, ["docs"], build)
    assert ONE_STATEMENT in verdict.ways
    assert [None] * len(verdict.runs) == [r.writer.row_by_row_reason for r in verdict.runs]


class _Base(DeclarativeBase):
    pass


class Job(_Base):
    """An ORM entity, as a user's job would write it."""

    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[str]


def test_orm_update_and_delete_of_an_entity_go_as_one_statement(pg: Place) -> None:
    ddl = [
        "CREATE TABLE jobs (id int PRIMARY KEY, state text NOT NULL)",
        "INSERT INTO jobs SELECT g, 'new' FROM generate_series(1, 9) g",
    ]

    def build(engine: sa.Engine) -> list[Item]:
        done = sa.update(Job).where(Job.id == sa.bindparam("k")).values(state="done")
        gone = sa.delete(Job).where(Job.id == sa.bindparam("k"))
        return [(done, {"k": k}, k) for k in range(1, 7)] + [
            (gone, {"k": 8}, 8),
            (gone, {"k": 9}, 9),
        ]

    verdict = check(pg, ddl, ["jobs"], build)
    assert ONE_STATEMENT in verdict.ways  # a flush's lone item goes as itself
    assert [None] * len(verdict.runs) == [r.writer.row_by_row_reason for r in verdict.runs]


def test_a_repeated_key_runs_in_rounds_that_keep_each_rows_order(pg: Place) -> None:
    ddl = [
        "CREATE TABLE tally (id int PRIMARY KEY, v int NOT NULL)",
        "INSERT INTO tally SELECT g, 0 FROM generate_series(1, 5) g",
    ]

    def build(engine: sa.Engine) -> list[Item]:
        (tally,) = reflect(engine, "tally")
        stmt = (
            sa.update(tally)
            .where(tally.c.id == sa.bindparam("k"))
            .values(v=tally.c.v * 10 + sa.bindparam("d"))
        )
        keys = [2, 3, 2, 5, 2, 3]
        return [(stmt, {"k": k, "d": i + 1}, i) for i, k in enumerate(keys)]

    verdict = check(pg, ddl, ["tally"], build, configs=[(1000, False), (1000, True)])
    assert {ONE_STATEMENT} == verdict.ways
    assert verdict.runs[0].writer.row_by_row_reason is None


def test_the_writer_says_why_it_went_row_by_row(pg: Place) -> None:
    engine = pg.fresh(
        [
            "CREATE TABLE logged (id int PRIMARY KEY, v int NOT NULL)",
            "INSERT INTO logged SELECT g, 0 FROM generate_series(1, 4) g",
            "CREATE FUNCTION nothing() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RETURN NEW; END $$",
            "CREATE TRIGGER audit_rows BEFORE UPDATE ON logged FOR EACH ROW "
            "EXECUTE FUNCTION nothing()",
        ]
    )
    (logged,) = reflect(engine, "logged")
    stmt = sa.update(logged).where(logged.c.id == sa.bindparam("k")).values(v=1)
    with mb.BatchWriter(engine) as writer:
        for k in range(1, 5):
            writer.add(stmt, {"k": k})
    engine.dispose()
    assert {ONE_STATEMENT: 0, ROW_BY_ROW: 4, "sqlalchemy": 0} == writer.sent
    assert writer.row_by_row_reason is not None
    assert "trigger audit_rows" in writer.row_by_row_reason


def test_a_failed_flush_leaves_nothing_behind_and_names_the_item(anywhere: Place) -> None:
    """The item is found by running the flush's items again one by one in a transaction that
    is rolled back; on SQLite a savepoint there would have committed the first of them (a
    RELEASE outside a transaction is a COMMIT)."""
    pg = anywhere.kind == "postgres"
    trigger = (
        [
            "CREATE FUNCTION log_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "INSERT INTO audit (n) VALUES (NEW.n); RETURN NULL; END $$",
            "CREATE TRIGGER log AFTER UPDATE ON box FOR EACH ROW EXECUTE FUNCTION log_row()",
        ]
        if pg
        else [
            "CREATE TRIGGER log AFTER UPDATE ON box FOR EACH ROW BEGIN "
            "INSERT INTO audit (n) VALUES (NEW.n); END"
        ]
    )
    ddl = [
        "CREATE TABLE box (id varchar(4) PRIMARY KEY, n int NOT NULL)",
        "INSERT INTO box VALUES ('a', 1), ('b', 2), ('c', 3)",
        "CREATE TABLE audit (seq integer PRIMARY KEY"
        + (" GENERATED ALWAYS AS IDENTITY" if pg else "")
        + ", n int)",
        *trigger,
    ]

    def build(engine: sa.Engine) -> list[Item]:
        (box,) = reflect(engine, "box")
        stmt = sa.update(box).where(box.c.id == sa.bindparam("k")).values(n=sa.bindparam("v"))
        return [(stmt, {"k": "a", "v": 10}, "a"), (stmt, {"k": "b", "v": None}, "b")]

    verdict = check(anywhere, ddl, ["box", "audit"], build)
    assert verdict.failed_at == 1
    message = verdict.runs[0].raised
    assert message is not None
    assert "item 2 of 2 (key 'b') raised in 'UPDATE box SET n=" in message
    assert "\n" not in message


def test_string_keys_under_a_collation_sqlalchemy_casts_them_to(pg: Place) -> None:
    """A ``String(collation=…)`` column's parameter is cast ``::VARCHAR COLLATE "…"``: the
    array takes the type alone, and an explicit collation that may make two keys one (a
    case-insensitive one) sends the flush row by row."""
    ddl = [
        "CREATE COLLATION IF NOT EXISTS mb_ci (provider = icu, locale = 'und-u-ks-level2', "
        "deterministic = false)",
        'CREATE TABLE words (w text COLLATE "C" PRIMARY KEY, n int NOT NULL)',
        "INSERT INTO words VALUES ('a', 0), ('A', 0), ('b', 0)",
    ]

    def build(engine: sa.Engine) -> list[Item]:
        meta = sa.MetaData()
        exact = sa.Table(
            "words", meta, sa.Column("w", sa.String(collation="C"), primary_key=True),
            sa.Column("n", sa.Integer),
        )  # fmt: skip
        loose = sa.Table(
            "words", sa.MetaData(), sa.Column("w", sa.String(collation="mb_ci"), primary_key=True),
            sa.Column("n", sa.Integer),
        )  # fmt: skip
        by_exact = sa.update(exact).where(exact.c.w == sa.bindparam("k")).values(n=exact.c.n + 1)
        by_loose = sa.update(loose).where(loose.c.w == sa.bindparam("k")).values(n=loose.c.n * 10)
        items: list[Item] = [(by_exact, {"k": k}, i) for i, k in enumerate(["a", "A", "b"])]
        return items + [(by_loose, {"k": k}, 3 + i) for i, k in enumerate(["a", "B", "A"])]

    verdict = check(pg, ddl, ["words"], build)
    assert ONE_STATEMENT in verdict.ways
    assert ROW_BY_ROW in verdict.ways


# ---------------------------------------- classes a second, independent differential run found


class _Person(_Base):
    """Single-table inheritance: SQLAlchemy adds ``kind IN (…)`` to a subclass's statements."""

    __tablename__ = "person"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None]
    kind: Mapped[str]
    __mapper_args__: ClassVar[dict[str, Any]] = {
        "polymorphic_on": "kind",
        "polymorphic_identity": "person",
    }


class _Admin(_Person):
    __mapper_args__: ClassVar[dict[str, Any]] = {"polymorphic_identity": "admin"}


_TRIO = [
    "CREATE TABLE t (id integer PRIMARY KEY, v integer, s text)",
    "INSERT INTO t VALUES (1, 1, 'a'), (2, 2, 'b'), (3, 3, 'c')",
]


def test_in_lists_run_each_item_with_its_own_list(anywhere: Place) -> None:
    """An expanding parameter cannot go in an executemany: one by one, each item's list is
    rendered for it. So is a literal list, and the ``IN`` the ORM adds for a subclass."""

    def build(engine: sa.Engine) -> list[Item]:
        (t,) = reflect(engine, "t")
        some = (
            sa.update(t)
            .where(t.c.id == sa.bindparam("k"), t.c.v.in_(sa.bindparam("vs", expanding=True)))
            .values(s="z")
        )
        literal = sa.update(t).where(t.c.id == sa.bindparam("k"), t.c.s.in_(["a", "z"]))
        gone = sa.delete(t).where(t.c.id.in_(sa.bindparam("ks", expanding=True)))
        return [
            (some, {"k": 1, "vs": [1, 2]}, 0),
            (some, {"k": 2, "vs": [2]}, 1),
            (literal.values(v=0), {"k": 1}, 2),
            (literal.values(v=0), {"k": 2}, 3),
            (gone, {"ks": [1]}, 4),
            (gone, {"ks": [2, 3]}, 5),
        ]

    check(anywhere, _TRIO, ["t"], build)

    ddl = [
        "CREATE TABLE person (id integer PRIMARY KEY, name text, kind text NOT NULL)",
        "INSERT INTO person VALUES (1, 'a', 'admin'), (2, 'b', 'admin'), (3, 'c', 'person')",
    ]

    def orm(engine: sa.Engine) -> list[Item]:
        rename = (
            sa.update(_Admin).where(_Admin.id == sa.bindparam("k")).values(name=sa.bindparam("n"))
        )
        gone = sa.delete(_Admin).where(_Admin.id == sa.bindparam("k"))
        return [
            (rename, {"k": 1, "n": "x"}, 0),
            (rename, {"k": 3, "n": "y"}, 1),
            (gone, {"k": 2}, 2),
            (gone, {"k": 3}, 3),
        ]

    check(anywhere, ddl, ["person"], orm)


def test_items_naming_other_parameters_write_what_each_names(anywhere: Place) -> None:
    """SQLAlchemy compiles an INSERT's columns, or the SET of an UPDATE without ``values()``,
    from the item's keys: items of one statement with other keys are other statements."""
    ddl = ["CREATE TABLE t (id integer PRIMARY KEY, v integer, s text DEFAULT 'dflt')"]

    def inserts(engine: sa.Engine) -> list[Item]:
        (t,) = reflect(engine, "t")
        add = sa.insert(t)
        return [
            (add, {"id": 1, "v": 1, "s": "a"}, 1),
            (add, {"id": 2, "v": 2}, 2),
            (add, {"id": 3, "v": 3}, 3),
            (add, {"id": 4, "v": 4, "s": "b"}, 4),
        ]

    check(anywhere, ddl, ["t"], inserts)

    def updates(engine: sa.Engine) -> list[Item]:
        (t,) = reflect(engine, "t")
        change = sa.update(t).where(t.c.id == sa.bindparam("k"))  # SET from the item's keys
        return [
            (change, {"k": 1, "v": 5}, 1),
            (change, {"k": 2, "v": 6, "s": "x"}, 2),
            (change, {"k": 3, "s": "y"}, 3),
        ]

    check(anywhere, _TRIO, ["t"], updates)


@pytest.mark.parametrize(
    ("column", "declared", "row", "keys"),
    [
        ("numeric", sa.Integer, "1", (decimal.Decimal("1.2"), decimal.Decimal("0.8"))),
        ("double precision", sa.Integer, "1", (1.2, 0.8)),
        ("numeric(6,2)", sa.Integer, "1", (decimal.Decimal("1.001"), decimal.Decimal("1.00"))),
        (
            "timestamp",
            sa.Date,
            "'2020-01-01'",
            (dt.datetime(2020, 1, 1, 10), dt.datetime(2020, 1, 1, 11)),
        ),
        (
            "timestamptz",
            sa.Date,
            "'2020-01-01'",
            (dt.datetime(2020, 1, 1, 10, tzinfo=UTC), dt.datetime(2020, 1, 1, 11, tzinfo=UTC)),
        ),
    ],
)  # fmt: skip
def test_keys_the_declared_type_casts_to_one_value_meet_the_row_once_each(
    pg: Place, column: str, declared: Any, row: str, keys: tuple[Any, Any]
) -> None:
    """A ``Table`` that declares a narrower type than the column: SQLAlchemy casts each key to
    it, so keys distinct for the column become one value, and one by one meets that row once
    per item."""
    ddl = [
        f"CREATE TABLE t (id {column} PRIMARY KEY, v integer)",
        f"INSERT INTO t VALUES ({row}, 1)",
    ]

    def build(engine: sa.Engine) -> list[Item]:
        t = sa.Table(
            "t", sa.MetaData(), sa.Column("id", declared, primary_key=True),
            sa.Column("v", sa.Integer),
        )  # fmt: skip
        stmt = (
            sa.update(t).where(t.c.id == sa.bindparam("k")).values(v=t.c.v * 10 + sa.bindparam("d"))
        )
        return [(stmt, {"k": keys[0], "d": 1}, 0), (stmt, {"k": keys[1], "d": 2}, 1)]

    check(pg, ddl, ["t"], build, configs=[(1000, False), (1000, True)])


def test_a_repeated_keys_later_round_of_only_nulls(pg: Place) -> None:
    ddl = [
        "CREATE TABLE t (id integer PRIMARY KEY, f double precision, n numeric)",
        "INSERT INTO t VALUES (1, 1, 1), (2, 2, 2)",
    ]

    def build(engine: sa.Engine) -> list[Item]:
        t = sa.Table(
            "t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("f", sa.Float), sa.Column("n", sa.Numeric),
        )  # fmt: skip
        stmt = (
            sa.update(t)
            .where(t.c.id == sa.bindparam("k"))
            .values(f=sa.bindparam("nf"), n=sa.bindparam("nn"))
        )
        return [
            (stmt, {"k": 1, "nf": 0.5, "nn": decimal.Decimal("1.5")}, 0),
            (stmt, {"k": 2, "nf": 0.25, "nn": None}, 1),
            (stmt, {"k": 1, "nf": None, "nn": None}, 2),
        ]

    check(pg, ddl, ["t"], build)


def test_untyped_parameters_for_char_and_bit_columns_keep_their_length(pg: Place) -> None:
    """A column declared without a type casts nothing: PostgreSQL infers ``bpchar``/``bit``,
    whose unsized form is one character or bit long."""
    ddl = [
        "CREATE TABLE t (id integer PRIMARY KEY, c char(3), b bit(3))",
        "INSERT INTO t VALUES (1, 'a', '000'), (2, 'a', '000')",
    ]

    def build(engine: sa.Engine) -> list[Item]:
        t = sa.Table(
            "t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), sa.Column("c"),
            sa.Column("b"),
        )  # fmt: skip
        chars = sa.update(t).where(t.c.id == sa.bindparam("k")).values(c=sa.bindparam("x"))
        bits = sa.update(t).where(t.c.id == sa.bindparam("k")).values(b=sa.bindparam("x"))
        return [
            (chars, {"k": 1, "x": "abc"}, 0),
            (chars, {"k": 2, "x": "xyz"}, 1),
            (bits, {"k": 1, "x": "101"}, 2),
            (bits, {"k": 2, "x": "111"}, 3),
        ]

    check(pg, ddl, ["t"], build)


def test_str_enum_values_for_an_untyped_parameter(pg: Place) -> None:
    import enum

    class Colour(str, enum.Enum):
        RED = "red"
        X = "x"

    ddl = ["CREATE TABLE t (id integer PRIMARY KEY, c bytea)", "INSERT INTO t (id) VALUES (1), (2)"]

    def build(engine: sa.Engine) -> list[Item]:
        t = sa.Table(
            "t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), sa.Column("c")
        )
        stmt = sa.update(t).where(t.c.id == sa.bindparam("k")).values(c=sa.bindparam("x"))
        return [(stmt, {"k": 1, "x": Colour.RED}, 0), (stmt, {"k": 2, "x": Colour.X}, 1)]

    check(pg, ddl, ["t"], build)


def test_an_update_that_sets_nothing_raises_as_it_does_one_by_one(anywhere: Place) -> None:
    """``update(t).where(t.c.id == :k)`` with only the key: one by one an empty SET, a syntax
    error; never a SET of the table's first column."""
    ddl = [
        "CREATE TABLE t (note text, id integer PRIMARY KEY, v integer)",
        "INSERT INTO t VALUES ('keep me', 1, 1), ('keep me too', 2, 2)",
    ]

    def build(engine: sa.Engine) -> list[Item]:
        (t,) = reflect(engine, "t")
        stmt = sa.update(t).where(t.c.id == sa.bindparam("k"))
        return [(stmt, {"k": 1}, 0), (stmt, {"k": 2}, 1)]

    verdict = check(anywhere, ddl, ["t"], build)
    assert 0 == verdict.failed_at


def test_an_error_raised_in_python_is_a_batch_write_error_saying_what_committed(
    anywhere: Place,
) -> None:
    """An integer SQLite cannot hold (``OverflowError`` in the driver), a ``str`` for a
    ``LargeBinary`` (a ``TypeError`` in psycopg): the flush is rolled back and the writer says
    so in its own error, naming the item."""
    big = 2**64 if anywhere.kind == "sqlite" else "not bytes"
    ddl = [
        "CREATE TABLE t (id integer PRIMARY KEY, v integer, b "
        + ("blob" if anywhere.kind == "sqlite" else "bytea")
        + ")",
        "INSERT INTO t VALUES (1, 1, NULL), (2, 2, NULL), (3, 3, NULL)",
    ]

    def build(engine: sa.Engine) -> list[Item]:
        t = sa.Table(
            "t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("v", sa.Integer), sa.Column("b", sa.LargeBinary),
        )  # fmt: skip
        field = "v" if anywhere.kind == "sqlite" else "b"
        stmt = sa.update(t).where(t.c.id == sa.bindparam("k")).values({field: sa.bindparam("x")})
        good = 5 if field == "v" else b"ok"
        return [(stmt, {"k": 1, "x": good}, 0), (stmt, {"k": 2, "x": big}, 1)]

    verdict = check(anywhere, ddl, ["t"], build)
    assert 1 == verdict.failed_at
    message = verdict.runs[0].raised
    assert message is not None
    assert "item 2 of 2 (key 1)" in message


def test_a_mapping_the_caller_fills_again_for_each_row_writes_each_rows_values(
    anywhere: Place,
) -> None:
    """``add()`` takes the item's values when it is called: a loop that refills one dict gets
    each row's own values, as one by one does."""
    engine = anywhere.fresh(_TRIO)
    (t,) = reflect(engine, "t")
    stmt = sa.update(t).where(t.c.id == sa.bindparam("k")).values(v=sa.bindparam("nv"))
    params: dict[str, int] = {}
    with mb.BatchWriter(engine, 100) as writer:
        for k in (1, 2, 3):
            params["k"], params["nv"] = k, k * 10
            writer.add(stmt, params)
    with engine.connect() as conn:
        written = conn.execute(sa.select(t.c.id, t.c.v).order_by(t.c.id)).all()
    engine.dispose()
    assert [(1, 10), (2, 20), (3, 30)] == [tuple(r) for r in written]


def test_a_list_of_items_in_one_add_is_refused_in_one_line(anywhere: Place) -> None:
    engine = anywhere.fresh(_TRIO)
    (t,) = reflect(engine, "t")
    stmt = sa.update(t).where(t.c.id == sa.bindparam("k")).values(v=0)
    with mb.BatchWriter(engine) as writer:
        with pytest.raises(mb.BatchSourceError) as refused:
            writer.add(stmt, [{"k": 1}, {"k": 2}])
        assert 0 == writer.pending
    engine.dispose()
    assert "\n" not in str(refused.value)
    assert "one add() per row" in str(refused.value)
