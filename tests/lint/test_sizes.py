"""Table sizes as evidence (issue 25): read from real SQLite and PostgreSQL databases, written
to a sizes file and read back; a small table's load is silent, a big one's is reported in any
context with its size; bad sources are one line and exit 2."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from membound.cli.main import main
from membound.lint.db_sizes import COUNT_CAP, read_database_sizes
from membound.lint.sizes import SizesError, read_sizes_file

MODELS = """\
from django.db import models

class Invoice(models.Model):
    total = models.IntegerField()

class Role(models.Model):
    name = models.CharField(max_length=20)
    class Meta:
        db_table = "core_role"

class Draft(models.Model):
    body = models.TextField()
"""
#: A request path (not a batch job): by default nothing here is reported.
VIEWS = """\
from billing.models import Draft, Invoice, Role

def report(request):
    out = []
    for inv in Invoice.objects.all():
        out.append(inv.total)
    for role in Role.objects.all():
        out.append(role.name)
    for draft in Draft.objects.all():
        out.append(draft.body)
    first = list(Invoice.objects.all()[:10])
    return out, first, Invoice.objects.count()
"""
FILES = """\
from sqlalchemy.orm import DeclarativeBase, Session

class Base(DeclarativeBase):
    pass

class File(Base):
    __tablename__ = "files"

def all_files(session: Session):
    return session.query(File).all()

def some_files(session: Session):
    return session.query(File).limit(50).all()

def raw(conn):
    cur = conn.cursor()
    cur.execute("SELECT f.id FROM files f JOIN core_role r ON r.id = f.id")
    rows = cur.fetchall()
    cur.execute("SELECT name FROM core_role")
    return rows, cur.fetchall()
"""
#: A batch job: by default its unbounded loads are reported; a small table's are not.
COMMAND = """\
from django.core.management.base import BaseCommand
from billing.models import Role

class Command(BaseCommand):
    def handle(self, *args, **options):
        for role in Role.objects.all():
            print(role.name)
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "proj"
    for path, text in {
        "billing/models.py": MODELS,
        "billing/views.py": VIEWS,
        "core/files.py": FILES,
        "billing/management/commands/roles.py": COMMAND,
    }.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    monkeypatch.chdir(tmp_path)
    return root


def _sqlite(path: Path, analyse: bool) -> str:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE billing_invoice (id INTEGER PRIMARY KEY, total INT)")
    conn.execute("CREATE TABLE core_role (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("CREATE TABLE files (id INTEGER PRIMARY KEY, size INT)")
    conn.execute("CREATE INDEX files_size ON files(size)")
    conn.executemany("INSERT INTO billing_invoice(total) VALUES (?)", ((i,) for i in range(25_000)))
    conn.executemany("INSERT INTO core_role(name) VALUES (?)", ((str(i),) for i in range(5)))
    conn.executemany("INSERT INTO files(size) VALUES (?)", ((i,) for i in range(60_000)))
    if analyse:
        conn.execute("ANALYZE")
    conn.commit()
    conn.close()
    return f"sqlite:///{path}"


def _lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if ": MB" in line]


def test_without_sizes_a_request_path_is_silent(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The management command's unbounded load only, and as a hint: nothing shows its table
    # is big (a hint fails nothing)
    assert 0 == main(["lint", "proj", "--hints"])
    out = capsys.readouterr().out
    assert ["proj/billing/management/commands/roles.py"] == [
        line.split(":")[0] for line in _lines(out)
    ]
    assert ": MB101 hint: " in out


@pytest.mark.parametrize("analyse", [True, False], ids=["sqlite_stat1", "count"])
def test_sqlite_sizes_decide_what_is_reported(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], analyse: bool
) -> None:
    url = _sqlite(tmp_path / "app.db", analyse)
    assert 1 == main(["lint", "--db", url, "proj"])
    found = _lines(capsys.readouterr().out)
    where = sorted(":".join(line.split(":")[:2]) for line in found)
    assert [
        "proj/billing/views.py:5",  # 25k invoices, on a request path
        "proj/core/files.py:10",  # session.query(File).all(): 60k files
        "proj/core/files.py:18",  # fetchall of a join with files
    ] == where, found
    source = "sqlite_stat1" if analyse else f"count(*), capped at {COUNT_CAP:,}"
    assert f"≈25k rows of `billing_invoice` ({source})" in found[0]
    assert f"≈60k rows of `files` ({source})" in found[1]


def test_write_sizes_then_read_them_back(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _sqlite(tmp_path / "app.db", analyse=False)
    sizes = tmp_path / "membound-sizes.toml"
    assert 0 == main(["lint", "--db", url, "--write-sizes", str(sizes)])
    assert "wrote the sizes of 3 tables" in capsys.readouterr().err
    read = read_sizes_file(sizes)
    assert {"billing_invoice": 25_000, "core_role": 5, "files": 60_000} == dict(read.tables)
    assert 1 == main(["lint", "--db", url, "proj"])
    from_db = [line.split(" (")[0] for line in _lines(capsys.readouterr().out)]
    assert 1 == main(["lint", "--sizes", str(sizes), "proj"])
    from_file = _lines(capsys.readouterr().out)
    assert from_db == [line.split(" (")[0] for line in from_file]
    assert "(membound-sizes.toml)" in from_file[0]
    # and from the configuration, with the threshold raised above every table
    (project / "pyproject.toml").write_text(
        f'[tool.membound.lint]\nsizes = "{sizes}"\nsmall-table-rows = 100000\n'
    )
    assert 0 == main(["lint", "proj"])


def test_models_in_the_sizes_file_and_declared_models_win(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sizes = tmp_path / "s.toml"
    sizes.write_text('[tables]\nbilling_invoice = 5\n[models]\n"billing.models.Draft" = 900000\n')
    assert 1 == main(["lint", "--sizes", str(sizes), "proj"])
    found = _lines(capsys.readouterr().out)
    assert any("views.py:9:" in line and "≈900k rows of `Draft`" in line for line in found)
    assert not any("views.py:5:" in line for line in found)  # 5 invoices: small
    (project / "pyproject.toml").write_text(
        f'[tool.membound.lint]\nsizes = "{sizes}"\nsmall-models = ["Draft"]\n'
    )
    assert 0 == main(["lint", "proj"])  # the command's load of a table of no known size: a hint
    assert not any("views.py" in line for line in _lines(capsys.readouterr().out))


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[tables]\nfiles = -3\n", "rows cannot be negative"),
        ('[tables]\nfiles = "many"\n', "rows must be a whole number"),
        ("[tabels]\nfiles = 3\n", "unknown key(s) tabels"),
        ("[tables\n", "not a TOML sizes file"),
    ],
)
def test_a_bad_sizes_file_is_one_line_and_exit_2(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, words: str
) -> None:
    sizes = tmp_path / "bad.toml"
    sizes.write_text(text)
    assert 2 == main(["lint", "--sizes", str(sizes), "proj"])
    err = capsys.readouterr().err
    assert words in err.splitlines()[0], err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("not a url", "is not a database URL"),
        ("mysql://u@127.0.0.1/db", "only PostgreSQL and SQLite"),
        ("sqlite:///no/such/dir/app.db", "unable to open database file"),
        ("postgresql://postgres@127.0.0.1:1/postgres", "--db postgresql+psycopg://"),
    ],
)
def test_a_bad_database_is_one_line_and_exit_2(
    project: Path, capsys: pytest.CaptureFixture[str], url: str, words: str
) -> None:
    assert 2 == main(["lint", "--db", url, "proj"])
    err = capsys.readouterr().err
    assert words in err.splitlines()[0], err
    assert "Traceback" not in err


def test_write_sizes_needs_db(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert 2 == main(["lint", "--write-sizes", "s.toml", "proj"])
    assert "--write-sizes needs --db" in capsys.readouterr().err


def test_a_locked_sqlite_database_times_out(tmp_path: Path) -> None:
    url = _sqlite(tmp_path / "app.db", analyse=False)
    holder = sqlite3.connect(tmp_path / "app.db")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(SizesError, match="database is locked"):
            read_database_sizes(url, timeout_s=0.5)
    finally:
        holder.rollback()
        holder.close()


@pytest.fixture
def pg(postgres_url: str) -> Iterator[str]:
    from sqlalchemy import create_engine, text

    engine = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for statement in (
            "DROP SCHEMA IF EXISTS sizes_audit CASCADE",
            "DROP TABLE IF EXISTS sizes_big, sizes_small, sizes_never, sizes_events",
            "CREATE SCHEMA sizes_audit",
            "CREATE TABLE sizes_big (id int)",
            "CREATE TABLE sizes_small (id int)",
            "CREATE TABLE sizes_never (id int)",
            "CREATE TABLE sizes_events (id int)",
            "CREATE TABLE sizes_audit.sizes_events (id int)",
            "INSERT INTO sizes_big SELECT generate_series(1, 30000)",
            "INSERT INTO sizes_small SELECT generate_series(1, 7)",
            "INSERT INTO sizes_events SELECT generate_series(1, 11)",
            "INSERT INTO sizes_audit.sizes_events SELECT generate_series(1, 40000)",
            "ANALYZE sizes_big, sizes_small, sizes_events, sizes_audit.sizes_events",
        ):
            conn.execute(text(statement))
    try:
        yield postgres_url
    finally:
        engine.dispose()


def test_postgres_sizes_from_its_statistics(pg: str) -> None:
    sizes = read_database_sizes(pg)
    assert 30_000 == sizes.tables["sizes_big"]
    assert 7 == sizes.tables["sizes_small"]
    # in two schemas: the search path's unqualified, both qualified
    assert 11 == sizes.tables["sizes_events"]
    assert 11 == sizes.tables["public.sizes_events"]
    assert 40_000 == sizes.tables["sizes_audit.sizes_events"]
    assert "sizes_never" not in sizes.tables  # empty and never analysed: unknown, not 0
    assert sizes.table_rows("SIZES_BIG") == 30_000  # unquoted SQL names ignore case


def test_a_never_analysed_postgres_table_is_not_called_empty(pg: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(pg, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP TABLE IF EXISTS sizes_fresh"))
        conn.execute(text("CREATE TABLE sizes_fresh (id int)"))
        conn.execute(text("INSERT INTO sizes_fresh SELECT generate_series(1, 50000)"))
        reltuples = conn.execute(
            text("SELECT reltuples FROM pg_class WHERE relname = 'sizes_fresh'")
        ).scalar()
    engine.dispose()
    assert reltuples is not None
    assert reltuples <= 0  # never analysed
    rows = read_database_sizes(pg).tables.get("sizes_fresh")
    assert rows is None or rows >= 10_000, rows  # unknown, or the collector's count


def test_postgres_catalog_locked_times_out_in_one_line(
    pg: str, capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(pg)
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        with engine.connect() as conn:
            conn.execute(text("LOCK TABLE pg_catalog.pg_class IN ACCESS EXCLUSIVE MODE"))
            locked.set()
            release.wait(30)
            conn.rollback()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(30)
        with pytest.raises(SizesError, match="no answer within 1 s"):
            read_database_sizes(pg, timeout_s=1)
    finally:
        release.set()
        holder.join(30)
        engine.dispose()


def test_wrong_credentials_are_one_line(pg: str, capsys: pytest.CaptureFixture[str]) -> None:
    url = pg.replace("postgres@", "nobody_here:secret@")
    with pytest.raises(SizesError) as caught:
        read_database_sizes(url)
    words = str(caught.value)
    assert "nobody_here" in words
    assert "secret" not in words  # the password is never shown
    assert "\n" not in words


MIGRATION = """\
from django.db import migrations


def forwards(apps, schema_editor):
    Invoice = apps.get_model("billing", "Invoice")
    for invoice in Invoice.objects.all():
        invoice.save()
    Role = apps.get_model("billing.Role")
    for role in Role.objects.all():
        role.save()
    Legacy = apps.get_model("legacy", "Entry")
    for entry in Legacy.objects.all():
        entry.save()
"""


def test_models_fetched_with_get_model_have_their_sizes(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Migrations fetch models with ``apps.get_model``: the class of that name maps the
    table (``Role``'s ``db_table``), else Django's default name does (``legacy_entry``)."""
    folder = project / "billing" / "migrations"
    folder.mkdir()
    (folder / "0002_touch.py").write_text(MIGRATION)
    sizes = tmp_path / "s.toml"
    sizes.write_text("[tables]\nbilling_invoice = 30000\ncore_role = 3\nlegacy_entry = 70000\n")
    assert 1 == main(["lint", "--sizes", str(sizes), "proj/billing/migrations", "proj/billing"])
    found = [line for line in _lines(capsys.readouterr().out) if "0002_touch" in line]
    assert 2 == len(found), found  # the 3 roles are small: silent even in a migration
    assert "in a migration, ≈30k rows of `billing_invoice`" in found[0]
    assert "in a migration, ≈70k rows of `legacy_entry`" in found[1]
