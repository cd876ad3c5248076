"""Sizes reach a SQLAlchemy statement through what it selects from: a model's columns
(``query(Host.id)``), a Core table (``select(node_tbl)`` with ``node_tbl = sa.table(...)``), a
model or table that a loop or a function's parameter takes in turn, every table of the schema.
And a value made from one row's key bounds a filter like the key itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from membound.lint import LintConfig, lint_paths
from membound.lint.sizes import TableSizes

MODELS = """\
from sqlalchemy import Column, Integer, String
from sqlalchemy.orm import declarative_base

Base = declarative_base()


class Host(Base):
    __tablename__ = "host"
    id = Column(Integer, primary_key=True)
    ip = Column(String)


class Workspace(Base):
    __tablename__ = "workspace"
    id = Column(Integer, primary_key=True)
    name = Column(String)


class Grant(Base):
    __tablename__ = "grants"
    id = Column(Integer, primary_key=True)
    role_name = Column(String)
"""

COMMANDS = """\
import click
import sqlalchemy as sa
from sqlalchemy import select

from app.models import Base, Grant, Host, Workspace, db


@click.command()
def host_ids():
    return db.session.query(Host.id).all()  # line 10: host's rows, one column


@click.command()
def host_pairs():
    return db.session.execute(select(Host.id, Host.ip)).all()  # line 15


@click.command()
def workspaces():
    return db.session.query(Workspace.id).all()  # line 20: a small table


@click.command()
def core_table():
    conn = db.session.connection()
    nodes = sa.table("host", sa.column("id"), sa.column("ip"))
    rows = conn.execute(select(nodes.c.id)).fetchall()  # line 27
    return rows + conn.execute(nodes.select()).fetchall()  # line 28


@click.command()
def each_model():
    for model in (Workspace, Host):
        print(db.session.query(model).all())  # line 34: Host is one of them


@click.command()
def by_parameter():
    def check(model, label):
        return db.session.query(model.id).all()  # line 40: Host is one of them

    check(Workspace, "workspaces")
    check(Host, "hosts")


@click.command()
def export():
    for table in reversed(Base.metadata.sorted_tables):
        print(db.session.execute(table.select()).fetchall())  # line 49: every table


def grants_of(session, user):
    return session.query(Grant).filter(Grant.role_name == role_of(user.id)).all()  # line 53


def role_of(key):
    return f"user-{key}"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "models.py").write_text(MODELS + "\ndb = None\n")
    (app / "commands.py").write_text(COMMANDS)
    return tmp_path


def _found(project: Path, sizes: TableSizes) -> dict[int, str]:
    result = lint_paths([str(project)], LintConfig(sizes=sizes))
    return {f.row: f.message for f in result.findings if f.filename.endswith("commands.py")}


def test_a_statement_is_sized_by_the_tables_it_selects_from(project: Path) -> None:
    sizes = TableSizes(
        tables={"host": 260_000, "workspace": 400, "grants": 90_000}, source="t", from_file=True
    )
    found = _found(project, sizes)
    assert sorted(found) == [10, 15, 27, 28, 34, 40, 49], found
    assert all("260k rows of `host`" in found[row] for row in found), found


def test_without_a_big_table_there_is_no_finding(project: Path) -> None:
    """The same code with ``host`` small: nothing it selects from is big."""
    sizes = TableSizes(
        tables={"host": 300, "workspace": 400, "grants": 900}, source="t", from_file=True
    )
    assert _found(project, sizes) == {}


FETCHED_KEYS = """\
import click
import sqlalchemy as sa

from app.models import Host, db


@click.command()
def existing(page=100):
    ids = db.session.execute(sa.select(Host.id).limit(page)).scalars().all()
    return db.session.execute(sa.select(Host.id).where(Host.id.in_(ids))).scalars().all()


@click.command()
def children():
    ids = sa.select(Host.id).where(Host.ip.is_(None))
    return db.session.execute(sa.select(Host.ip).where(Host.id.in_(ids))).scalars().all()  # 16
"""


def test_keys_fetched_into_a_list_bound_the_next_statement(project: Path) -> None:
    """``.all()`` of an executed statement is a list in memory: keys in it bound a query like
    any list in hand; a statement given to ``in_`` is a subquery, no such list."""
    (project / "app" / "commands.py").write_text(FETCHED_KEYS)
    sizes = TableSizes(tables={"host": 260_000}, source="t", from_file=True)
    assert sorted(_found(project, sizes)) == [16]


LOOPS = """\
import click
import sqlalchemy as sa
from sqlalchemy import MetaData, Table

from app.models import Host, db


def inspect_table(metadata, name):
    return Table(name, metadata, autoload_with=metadata.bind)


@click.command()
def each_host():
    for host in db.session.query(Host):  # line 14: the ORM buffers the whole result
        print(host)


@click.command()
def streamed():
    for host in db.session.query(Host).yield_per(1000):
        print(host)


@click.command()
def fetched():
    for host in db.session.query(Host).all():  # line 26: reported at the .all()
        print(host)


class RegisterMigration:
    def __init__(self, number):
        self.number = number

    def __call__(self, migration):
        return migration


@RegisterMigration(9)
def fill_slugs(conn):
    hosts = inspect_table(MetaData(), "host")
    for row in conn.execute(hosts.select()):  # line 41: a migration over host
        print(row)


def one_host(session, host_id):
    return [h for h in session.query(Host).filter(Host.id == host_id)]  # one row
"""


def test_a_loop_over_a_query_or_result_holds_every_row(project: Path) -> None:
    """A ``for`` over a SQLAlchemy query or result reads the whole result first, unless it
    streams (``yield_per``) or is bounded; a migration a project registers with a decorator is
    batch code, and a helper named for tables names its table by a string."""
    (project / "app" / "commands.py").write_text(LOOPS)
    sizes = TableSizes(tables={"host": 260_000}, source="t", from_file=True)
    found = _found(project, sizes)
    assert sorted(found) == [14, 26, 41], found
    assert "a migration" in found[41]
    assert "260k rows of `host`" in found[41]
    assert "`.all()`" in found[26]
    assert "`for` over a SQLAlchemy query" in found[14]
    without = lint_paths([str(project)], LintConfig())
    assert {(h.row, h.kind) for h in without.hints if h.filename.endswith("commands.py")} == {
        (14, "hint"),
        (26, "hint"),
        (41, "hint"),
    }


RANKED = """\
import click
import sqlalchemy as sa

from app.models import Host, db


@click.command()
def latest_per_address():
    rn = sa.func.row_number().over(partition_by=Host.ip, order_by=Host.id.desc()).label("rn")
    ranked = sa.select(Host.id, rn).subquery()
    query = sa.select(Host).join(ranked, Host.id == ranked.c.id).where(ranked.c.rn == 1)
    return db.session.execute(query).scalars().all()


@click.command()
def every_rank():
    rn = sa.func.row_number().over(partition_by=Host.ip).label("rn")
    ranked = sa.select(Host.id, rn).subquery()
    query = sa.select(Host).join(ranked, Host.id == ranked.c.id).where(ranked.c.rn > 1)
    return db.session.execute(query).scalars().all()  # line 20: all but the first of each
"""


def test_a_window_rank_filter_keeps_the_first_rows_of_each_partition(project: Path) -> None:
    (project / "app" / "commands.py").write_text(RANKED)
    sizes = TableSizes(tables={"host": 260_000}, source="t", from_file=True)
    assert sorted(_found(project, sizes)) == [20]


NOT_BOUNDS = """\
import sqlite3

import click
import sqlalchemy as sa

from app.models import Grant, Host, Workspace, db


def status_of(key):
    return "running"


@click.command()
def pages(page=1):
    for h in Host.query.paginate(page=page, per_page=20):  # one page
        print(h)
    stmt = sa.select(Host).execution_options(yield_per=500)
    for h in db.session.scalars(stmt):  # streams
        print(h)
    for row in db.session.execute(sa.select(Host), execution_options={"stream_results": True}):
        print(row)
    for row in sqlite3.connect("x.db").execute("SELECT * FROM host"):  # sqlite3 streams
        print(row)


@click.command()
def every_key():
    ids = db.session.execute(sa.select(Workspace.id)).scalars().all()
    return db.session.execute(sa.select(Host).where(Host.id.in_(ids))).scalars().all()  # 29


@click.command()
def a_state(job):
    return db.session.query(Grant).filter(Grant.status == status_of(job.id)).all()  # 34


@click.command()
def another_label():
    level = sa.func.row_number().over(partition_by=Host.ip).label("level")
    print(level)
    return db.session.execute(sa.select(Host).where(Host.level == 1)).all()  # 41: no rank


def skip_if_migrations_pending(func):
    return func


@skip_if_migrations_pending
def view():
    return db.session.query(Host).all()  # line 50: a view, not a migration
"""


def test_what_bounds_a_loop_and_what_does_not(project: Path) -> None:
    """Found by a review: a page, a statement that streams and a sqlite3 cursor are no whole
    loads; a list of every key, a state made from a key, a decorator that only mentions
    migrations are no bounds or batch code."""
    (project / "app" / "commands.py").write_text(NOT_BOUNDS)
    sizes = TableSizes(
        tables={"host": 260_000, "workspace": 400, "grants": 90_000}, source="t", from_file=True
    )
    result = lint_paths([str(project)], LintConfig(sizes=sizes))
    found = {f.row: f.message for f in result.findings if f.filename.endswith("commands.py")}
    assert sorted(found) == [29, 34, 41, 50], found
    assert "in a migration" not in found[50]


WITH_PARENT = """\
import click
import sqlalchemy as sa
from sqlalchemy.orm import with_parent

from app.models import Host, Workspace, db


@click.command()
def of_one_workspace(ws):
    for h in db.session.scalars(sa.select(Host).where(with_parent(ws, Workspace.hosts))):
        print(h)
    return db.session.query(Host).with_parent(ws).all()


@click.command()
def of_every_workspace():
    return db.session.query(Host).all()  # line 17
"""


def test_with_parent_keeps_one_objects_rows(project: Path) -> None:
    (project / "app" / "commands.py").write_text(WITH_PARENT)
    sizes = TableSizes(tables={"host": 260_000}, source="t", from_file=True)
    assert sorted(_found(project, sizes)) == [17]
