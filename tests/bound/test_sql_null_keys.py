"""Key columns that can hold NULL (G1): rejected before the first page, or proven safe.

Keyset batching resumes with ``key > last``, which is never true for NULL, so a row with a NULL
key would silently never come out. What counts is what the database allows, not the Python
``Table`` definition: SQLite accepts NULL in a ``TEXT PRIMARY KEY`` that SQLAlchemy's metadata
calls non-nullable. Tables here are made with raw DDL on real SQLite files and real PostgreSQL.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from sqlalchemy.orm import DeclarativeBase, sessionmaker

from membound import BatchSourceError, BatchWriter, Checkpoint, find_each, in_batches
from tests.bound.helpers import Db, sa

_names = itertools.count()


def _name(prefix: str) -> str:
    return f"{prefix}_{next(_names)}"


def text_keyed(db: Db, ddl_key: str, *, rows: int = 3000) -> tuple[str, list[str]]:
    """A table ``(id <ddl_key>, v INT)`` with ``rows`` rows, every third id NULL.

    Returns its name and the non-NULL ids in key order.
    """
    name = _name("nk")
    with db.engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {name} (id {ddl_key}, v INTEGER)")
        values = [{"id": None if i % 3 == 0 else f"k{i:05d}", "v": i} for i in range(rows)]
        conn.execute(sa.text(f"INSERT INTO {name} (id, v) VALUES (:id, :v)"), values)
    db.metadata.reflect(db.engine, only=[name])  # so the postgres fixture drops it afterwards
    return name, sorted(str(v["id"]) for v in values if v["id"] is not None)


def declared(name: str) -> sa.Table:
    """The table as application code often declares it: ``primary_key=True`` (so SQLAlchemy's
    metadata says NOT NULL) whatever the database's DDL says."""
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("id", sa.String(20), primary_key=True),
        sa.Column("v", sa.Integer),
    )


def entity(table: sa.Table) -> Any:
    class Base(DeclarativeBase):
        pass

    return type("Row", (Base,), {"__table__": table})


def _source(kind: str, db: Db, name: str) -> Any:
    if kind == "reflected":
        return sa.Table(name, sa.MetaData(), autoload_with=db.engine)
    if kind == "declared":
        return declared(name)
    if kind == "select":
        table = declared(name)
        return sa.select(table.c.id, table.c.v).where(table.c.v >= 0)
    return entity(declared(name))


#: PostgreSQL primary keys are always NOT NULL: the primary-key cases are SQLite's alone.
sqlite_only = pytest.mark.parametrize("db", ["sqlite-journal", "sqlite-wal"], indirect=True)


# ------------------------------------------------------------------ primary keys, chosen for you


@sqlite_only
@pytest.mark.parametrize("kind", ["reflected", "declared", "select", "orm"])
def test_null_text_primary_key_is_rejected_before_the_first_page(db: Db, kind: str) -> None:
    """The issue's case: 3,000 rows, 1,000 of them with a NULL TEXT PRIMARY KEY: 2,000 came
    out and nothing said so."""
    name, ids = text_keyed(db, "TEXT PRIMARY KEY")
    source = _source(kind, db, name)
    pattern = rf"^key column {name}\.id can hold NULL .* IS NOT NULL"
    for run in (find_each, in_batches):
        with pytest.raises(BatchSourceError, match=pattern) as info:
            run(db.engine, source, batch_size=500)  # at the call, before any page
        assert "\n" not in str(info.value)
    with pytest.raises(BatchSourceError, match=pattern):
        find_each(sessionmaker(db.engine), source)
    # The way out the message names: a source that leaves NULL keys out is safe.
    if kind == "orm":
        objects = sa.select(source).where(source.id.is_not(None))
        assert ids == [o.id for o in find_each(db.engine, objects, batch_size=500)]
        return
    table = declared(name)
    safe = sa.select(table).where(table.c.id.is_not(None))
    assert ids == [r.id for r in find_each(db.engine, safe, batch_size=500)]
    assert ids == [r[0] for r in find_each(db.engine, safe, batch_size=500, tuples=True)]


@sqlite_only
def test_null_composite_primary_key_names_every_nullable_column(db: Db) -> None:
    name = _name("ck")
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE {name} (a INT, b TEXT NOT NULL, c TEXT, PRIMARY KEY (a, b, c))"
        )
        conn.exec_driver_sql(
            f"INSERT INTO {name} VALUES (1, 'x', 'p'), (NULL, 'y', 'q'), (2, 'z', NULL)"
        )
    table = sa.Table(name, sa.MetaData(), autoload_with=db.engine)
    with pytest.raises(BatchSourceError, match=rf"^key columns {name}\.a, {name}\.c can hold NULL"):
        find_each(db.engine, table)
    safe = sa.select(table).where(table.c.a.is_not(None), table.c.c.isnot(None))
    assert [(1, "x", "p")] == [tuple(r) for r in find_each(db.engine, safe)]


@sqlite_only
@pytest.mark.parametrize(
    ("columns", "nullable"),
    [
        ("(id INTEGER PRIMARY KEY, v INT)", False),  # the rowid itself: NULL gets a new rowid
        ("(id integer primary key, v INT)", False),
        ("(id INTEGER, v INT, PRIMARY KEY (id))", False),
        ("(id INTEGER PRIMARY KEY DESC, v INT)", True),  # SQLite's quirk: not a rowid alias
        ("(id INT PRIMARY KEY, v INT)", True),  # INT is not INTEGER: not a rowid alias
        ("(id BIGINT PRIMARY KEY, v INT)", True),
        ("(id TEXT PRIMARY KEY NOT NULL, v INT)", False),
        ("(id TEXT PRIMARY KEY, v INT) WITHOUT ROWID", False),  # enforces NOT NULL itself
    ],
)
def test_sqlite_primary_keys_follow_what_sqlite_allows(
    db: Db, columns: str, nullable: bool
) -> None:
    name = _name("pk")
    with db.engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {name} {columns}")
        conn.exec_driver_sql(f"INSERT INTO {name} (id, v) VALUES (1, 1), (2, 2)")
        if nullable:
            conn.exec_driver_sql(f"INSERT INTO {name} (id, v) VALUES (NULL, 3)")
    reflected = sa.Table(name, sa.MetaData(), autoload_with=db.engine)
    for key in (None, "id"):  # chosen from the primary key, or named explicitly
        if nullable:
            with pytest.raises(BatchSourceError, match=rf"key column {name}\.id can hold NULL"):
                find_each(db.engine, reflected, key=key)
        else:
            rows = find_each(db.engine, reflected, key=key, batch_size=1)
            assert [("1", 1), ("2", 2)] == [(str(r.id), r.v) for r in rows]


# --------------------------------------------------------------- key=, views, joins (all backends)


def test_explicit_key_nullable_in_the_database_but_not_in_the_table_object(db: Db) -> None:
    name = _name("ek")
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, code VARCHAR(10) UNIQUE)"
        )
        conn.exec_driver_sql(f"INSERT INTO {name} VALUES (1, 'b'), (2, NULL), (3, 'a')")
    db.metadata.reflect(db.engine, only=[name])
    table = sa.Table(
        name,
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(10), nullable=False, unique=True),  # not what the DB says
    )
    with pytest.raises(BatchSourceError, match=rf"^key column {name}\.code can hold NULL"):
        find_each(db.engine, table, key="code")
    with pytest.raises(BatchSourceError, match=rf"{name}\.code can hold NULL"):
        in_batches(db.engine, table, key=table.c.code)
    assert ["a", "b"] == [
        r.code
        for r in find_each(db.engine, table.select().where(table.c.code != None), key="code")  # noqa: E711
    ]


def test_view_key_columns_are_not_known_to_be_non_null(db: Db) -> None:
    """A view carries no NOT NULL, whatever its Table object declares: filter it, or batch
    the table."""
    base = db.users(5)
    name = _name("view")
    with db.engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE VIEW {name} AS SELECT id, status FROM {base.name}")
    try:
        view = sa.Table(
            name,
            sa.MetaData(),
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("status", sa.String(20)),
        )
        with pytest.raises(BatchSourceError, match=rf"^key column {name}\.id can hold NULL"):
            find_each(db.engine, view)
        safe = sa.select(view).where(view.c.id.is_not(None))
        assert [1, 2, 3, 4, 5] == [r.id for r in find_each(db.engine, safe, batch_size=2)]
    finally:
        with db.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP VIEW {name}")


def test_key_on_the_outer_side_of_an_outer_join_is_rejected(db: Db) -> None:
    users = db.users(6)
    extra = sa.Table(
        _name("extra"),
        db.metadata,
        sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("note", sa.String(10), nullable=False),
    )
    extra.create(db.engine)
    with db.engine.begin() as conn:
        conn.execute(extra.insert(), [{"user_id": i, "note": f"n{i}"} for i in (2, 4)])
    joined = sa.select(users.c.id, extra.c.user_id, extra.c.note).select_from(
        users.outerjoin(extra, extra.c.user_id == users.c.id)
    )
    # extra.user_id is NOT NULL in its table, but NULL for users without an extra row.
    with pytest.raises(BatchSourceError, match=rf"key column {extra.name}\.user_id can hold NULL"):
        find_each(db.engine, joined, key=extra.c.user_id)
    full = sa.select(users.c.id, extra.c.note).select_from(
        users.join(extra, extra.c.user_id == users.c.id, full=True)
    )
    if db.kind == "postgres":  # SQLite has FULL OUTER JOIN only from 3.39
        with pytest.raises(BatchSourceError, match=rf"key column {users.name}\.id can hold NULL"):
            find_each(db.engine, full, key=users.c.id)
    # The preserved side is fine, and so is a filter that drops the NULL-extended rows.
    assert [1, 2, 3, 4, 5, 6] == [r.id for r in find_each(db.engine, joined, key=users.c.id)]
    inner = joined.where(extra.c.user_id.is_not(None))
    assert [2, 4] == [r.user_id for r in find_each(db.engine, inner, key=extra.c.user_id)]


def test_subquery_key_is_traced_to_its_table(db: Db) -> None:
    """A subquery's column is judged by the column it selects, in the subquery's own FROM."""
    users = db.users(4)
    extra = sa.Table(
        _name("extra"),
        db.metadata,
        sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=False),
    )
    extra.create(db.engine)
    with db.engine.begin() as conn:
        conn.execute(extra.insert(), [{"user_id": 3}])
    plain = sa.select(users.c.id, users.c.status).where(users.c.id > 1).subquery()
    assert [2, 3, 4] == [r.id for r in find_each(db.engine, sa.select(plain), key=plain.c.id)]
    inner = sa.select(users.c.id.label("uid"), extra.c.user_id.label("eid")).select_from(
        users.outerjoin(extra, extra.c.user_id == users.c.id)
    )
    sub = inner.subquery()
    with pytest.raises(BatchSourceError, match=r"key column .*eid can hold NULL .*outer join"):
        find_each(db.engine, sa.select(sub), key=sub.c.eid)
    assert [1, 2, 3, 4] == [r.uid for r in find_each(db.engine, sa.select(sub), key=sub.c.uid)]
    # Filtered inside the subquery or outside it: both leave the NULL-extended rows out.
    filtered = inner.where(extra.c.user_id.is_not(None)).subquery()
    assert [3] == [r.eid for r in find_each(db.engine, sa.select(filtered), key=filtered.c.eid)]
    outside = sa.select(sub).where(sub.c.eid.is_not(None))
    assert [3] == [r.eid for r in find_each(db.engine, outside, key=sub.c.eid)]


# ------------------------------------------------------- None in key values, checkpoints, writer


def test_none_in_a_key_value_is_rejected(db: Db) -> None:
    """``(a, b) >= (1, NULL)`` is never true: such a bound or resume point gave an empty run."""
    table = db.pairs(_name("pn"), 4)
    with pytest.raises(BatchSourceError, match=r"start .*None"):
        find_each(db.engine, table, start=(1, None))
    with pytest.raises(BatchSourceError, match=r"finish .*None"):
        in_batches(db.engine, table, finish=(None, "x"))
    cp = Checkpoint(db.engine, _name("cpn"))
    with pytest.raises(BatchSourceError, match=r"checkpoint position .*None"):
        cp.save((2, None))
    with pytest.raises(BatchSourceError, match=r"checkpoint position .*None"):
        cp.save(None)
    assert cp.position is None  # nothing was stored
    with BatchWriter(db.engine, checkpoint=cp) as writer:
        with pytest.raises(BatchSourceError, match=r"key .*None"):
            writer.add(table.update().values(v=1), key=None)
        assert 0 == writer.pending
    assert 12 == len(list(find_each(db.engine, table, checkpoint=cp)))
