"""Adopting ``membound lint`` on an existing codebase: --fix, --diff, --unsafe-fixes, --add-noqa,
preview rules, per-file defaults for tests and migrations, small-models and large-models."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from membound.cli.main import main
from membound.lint import lint_source
from membound.lint.fixing import add_noqa, comment_rows

FIXABLE = (
    "import os\n"
    "with open('data.txt') as fh:\n"
    "    for line in fh.readlines():\n"
    "        print(line)\n"
    "for i in list(range(total)):  # keep this comment\n"
    "    print(i)\n"
    "squares = [i * i for i in tuple(range(n))]\n"
    "def f(stream):\n"
    "    for line in stream.readlines():\n"
    "        print(line)\n"
    "kept = list(range(n))\n"
)
SAFE_FIXED = (
    "import os\n"
    "with open('data.txt') as fh:\n"
    "    for line in fh:\n"
    "        print(line)\n"
    "for i in range(total):  # keep this comment\n"
    "    print(i)\n"
    "squares = [i * i for i in range(n)]\n"
    "def f(stream):\n"
    "    for line in stream.readlines():\n"
    "        print(line)\n"
    "kept = list(range(n))\n"
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.py").write_text(FIXABLE)
    return tmp_path


def test_diff_shows_safe_fixes_and_writes_nothing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lint", "job.py", "--preview", "--diff"]) == 1
    captured = capsys.readouterr()
    assert "-    for line in fh.readlines():\n+    for line in fh:\n" in captured.out
    assert "+for i in range(total):  # keep this comment\n" in captured.out
    assert "+    for line in stream:" not in captured.out  # unsafe: not without --unsafe-fixes
    assert "Would fix 3 findings in 1 file." in captured.err
    assert (project / "job.py").read_text() == FIXABLE


def test_fix_applies_safe_fixes_and_reports_the_rest(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lint", "job.py", "--preview", "--fix"]) == 1  # two findings have no safe fix
    captured = capsys.readouterr()
    assert (project / "job.py").read_text() == SAFE_FIXED
    codes = [line.split()[1] for line in captured.out.splitlines() if line.startswith("job.py:")]
    assert codes == ["MB103", "MB202"]
    assert "Fixed 3 findings in 1 file; 2 left." in captured.err
    # The unsafe one (a receiver not seen to be a file) waits for --unsafe-fixes.
    assert main(["lint", "job.py", "--preview", "--fix", "--unsafe-fixes"]) == 1
    text = (project / "job.py").read_text()
    assert "for line in stream:\n" in text
    ast.parse(text)
    assert main(["lint", "job.py", "--preview", "--diff"]) == 0  # nothing left to fix


def test_fix_keeps_crlf_and_encoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    source = "# -*- coding: latin-1 -*-\r\n# caf\xe9\r\nfor i in list(range(n)):\r\n    pass\r\n"
    (tmp_path / "old.py").write_bytes(source.encode("latin-1"))
    assert main(["lint", "old.py", "--select", "MB202", "--fix"]) == 0
    assert (tmp_path / "old.py").read_bytes() == source.replace(
        "list(range(n))", "range(n)"
    ).encode("latin-1")


def test_json_carries_the_fix(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["lint", "job.py", "--preview", "--format", "json"])
    rows = json.loads(capsys.readouterr().out)
    fixes = {(r["location"]["row"], r["code"]): r["fix"] for r in rows}
    assert fixes[(3, "MB103")] == {
        "applicability": "safe",
        "message": "iterate the file object",
        "edits": [
            {
                "content": "fh",
                "location": {"row": 3, "column": 17},
                "end_location": {"row": 3, "column": 31},
            }
        ],
    }
    assert fixes[(9, "MB103")]["applicability"] == "unsafe"
    assert fixes[(11, "MB202")] is None


def test_add_noqa_silences_every_finding_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    source = (
        "import sqlite3\n"
        "def f(conn):\n"
        '    rows = conn.execute("""SELECT *\n'
        '        FROM big""").fetchall()\n'
        '    other = conn.execute("SELECT * FROM t").fetchall()  # keep\n'
        '    x = conn.execute("SELECT * FROM u").fetchall()  # noqa: E501\n'
        '    y = conn.execute("SELECT * FROM u" \\\n'
        "        ).fetchall()\n"
        "    return rows, other, x, y\n"
    )
    (tmp_path / "q.py").write_text(source)
    # big tables (a load is a finding only with evidence that its table is big)
    (tmp_path / "sizes.toml").write_text("[tables]\nbig = 1000000\nt = 1000000\nu = 1000000\n")
    (tmp_path / "pyproject.toml").write_text('[tool.membound.lint]\nsizes = "sizes.toml"\n')
    assert main(["lint", "q.py"]) == 1
    capsys.readouterr()
    assert main(["lint", "q.py", "--add-noqa"]) == 0
    assert "Added 4 noqa directives in 1 file." in capsys.readouterr().err
    text = (tmp_path / "q.py").read_text()
    ast.parse(text)
    lines = text.splitlines()
    assert lines[3].endswith('FROM big""").fetchall()  # noqa: MB102')
    assert lines[4].endswith("# keep  # noqa: MB102")
    assert lines[5].endswith("# noqa: E501, MB102")
    assert lines[6].endswith("\\")  # the continuation line is untouched
    assert lines[7].endswith(").fetchall()  # noqa: MB102")
    assert main(["lint", "q.py"]) == 0
    assert main(["lint", "q.py", "--add-noqa"]) == 0  # nothing more to add
    assert (tmp_path / "q.py").read_text() == text


def test_comment_rows_map_strings_and_continuations() -> None:
    source = 'a = """x\ny\nz"""\nb = 1 + \\\n    2\nc = 3\n'
    assert comment_rows(source) == {1: 3, 2: 3, 4: 5}
    fixed, changed = add_noqa(source, lint_findings_at(source, [(1, "MB102"), (4, "MB202")]))
    assert changed == 2
    assert fixed.splitlines()[2] == 'z"""  # noqa: MB102'
    assert fixed.splitlines()[4] == "    2  # noqa: MB202"


def lint_findings_at(source: str, places: list[tuple[int, str]]) -> list:  # type: ignore[type-arg]
    from membound.lint.findings import Finding

    return [Finding("x.py", row, 1, code, "m", row, 2) for row, code in places]


def test_add_noqa_refuses_to_combine_with_fix(project: Path) -> None:
    assert main(["lint", "job.py", "--add-noqa", "--fix"]) == 2
    assert main(["lint", "job.py", "--unsafe-fixes"]) == 2


def test_fix_through_a_real_subprocess(project: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "membound", "lint", "job.py", "--preview", "--fix", "--exit-zero"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (project / "job.py").read_text() == SAFE_FIXED


# -- preview, per-file defaults, models -------------------------------------------------------

DJ = "from django.db import models\nfrom app.models import Book, Site\n"
OWNER = DJ + "def f(author):\n    return [b for b in author.book_set.all() if b.ok]\n"


def test_owner_rows_are_a_preview_variant() -> None:
    assert lint_source(OWNER) == []
    found = lint_source(OWNER, select=["MB101"], preview=["MB101"])
    assert [(f.row, f.code) for f in found] == [(4, "MB101")]


def test_preview_variants_run_when_selected_by_full_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "books.py").write_text(OWNER)
    hint = "books.py:4:24: MB101 hint: "

    def hints(*args: str) -> str:
        capsys.readouterr()
        assert main(["lint", "books.py", "--hints", *args]) == 0  # a hint fails nothing
        return capsys.readouterr().out

    assert hint not in hints()
    assert hint not in hints("--select", "MB1")  # a prefix is not explicit
    assert hint in hints("--select", "MB101")
    assert hint in hints("--preview")
    (tmp_path / "pyproject.toml").write_text("[tool.membound.lint]\npreview = true\n")
    assert hint in hints()


def _tree(tmp_path: Path, settings: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(f"[tool.membound.lint]\n{settings}\n")
    body = DJ + "for b in Book.objects.all():\n    print(b)\n"
    for rel in (
        "app/jobs.py",
        "app/tests/test_jobs.py",
        "tests/conftest.py",
        "app/migrations/0002.py",
    ):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body + "import functools\n@functools.cache\ndef g(n):\n    return n\n")
    return tmp_path


def _found(root: Path, capsys: pytest.CaptureFixture[str]) -> set[tuple[str, str]]:
    capsys.readouterr()
    main(["lint", str(root), "--format", "json"])
    rows = json.loads(capsys.readouterr().out)
    return {(Path(r["filename"]).relative_to(root).as_posix(), r["code"]) for r in rows}


def test_tests_and_migrations_have_their_own_defaults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _tree(tmp_path, 'select = ["MB"]\npreview = true\nlarge-models = ["Book"]')
    assert _found(root, capsys) == {
        ("app/jobs.py", "MB101"),
        ("app/jobs.py", "MB301"),
        ("app/migrations/0002.py", "MB101"),  # a data migration walks the table: kept
    }


def test_per_file_ignores_replaces_and_extend_adds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _tree(
        tmp_path, 'preview = true\nlarge-models = ["Book"]\n[tool.membound.lint.per-file-ignores]\n'
    )
    assert len(_found(root, capsys)) == 8  # no defaults: every file, both rules
    root = _tree(
        tmp_path,
        'preview = true\nlarge-models = ["Book"]\n'
        '[tool.membound.lint.extend-per-file-ignores]\n"app/jobs.py" = ["MB3"]',
    )
    assert _found(root, capsys) == {("app/jobs.py", "MB101"), ("app/migrations/0002.py", "MB101")}


def test_small_and_large_models(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.membound.lint]\nsmall-models = ["Site"]\nlarge-models = ["app.models.Book"]\n'
    )
    (tmp_path / "v.py").write_text(
        DJ
        + "def f(author):\n"
        + "    sites = list(Site.objects.all())\n"
        + "    return [b for b in Book.objects.filter(author=author)]\n"
        + "f(None)\n"  # called: a function nothing calls loads nothing
    )
    assert _found(tmp_path, capsys) == {("v.py", "MB101")}
    capsys.readouterr()
    main(["lint", str(tmp_path / "v.py")])
    assert ":5:" in capsys.readouterr().out  # the Book line, not the Site one


def test_a_model_in_both_lists_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.membound.lint]\nsmall-models = ["Site"]\nlarge-models = ["Site"]\n'
    )
    (tmp_path / "a.py").write_text("x = 1\n")
    assert main(["lint", "a.py"]) == 2
    assert "both small-models and large-models" in capsys.readouterr().err


# -- where the loading rules report by default ------------------------------------------------

LOOP = DJ + "{decorator}def job():\n    for b in Book.objects.all():\n        print(b)\n"


@pytest.mark.parametrize(
    ("filename", "decorator", "where"),
    [
        ("app/migrations/0003_fill.py", "", "in a migration"),
        ("app/management/commands/rebuild.py", "", "in a management command"),
        ("app/tasks.py", "@shared_task\n", "in the task `job`"),
        ("app/tasks.py", "@app.task(bind=True)\n", "in the task `job`"),
        ("db/alembic/versions/0001_x.py", "", None),  # versions/ without alembic imported
    ],
)
def test_batch_jobs_are_the_default_scope(filename: str, decorator: str, where: str | None) -> None:
    found = lint_source(LOOP.format(decorator=decorator), filename)
    if where is None:
        assert found == []
    else:
        assert [f.code for f in found] == ["MB101"]
        assert f"`for` {where}:" in found[0].message


def test_request_code_is_a_preview_variant() -> None:
    source = LOOP.format(decorator="")
    assert lint_source(source, "app/views.py") == []
    assert [f.code for f in lint_source(source, "app/views.py", preview=["MB101"])] == ["MB101"]
    script = source + "if __name__ == '__main__':\n    job()\n"
    assert "in a script" in lint_source(script, "tools/export.py")[0].message
    top = DJ + "for b in Book.objects.all():\n    print(b)\n"
    assert "in module-level code" in lint_source(top, "app/report.py")[0].message


def test_alembic_versions_are_migrations() -> None:
    source = (
        "from alembic import op\nfrom sqlalchemy.orm import Session\n"
        "def upgrade():\n    s = Session(bind=op.get_bind())\n    return s.query(Run).all()\n"
    )
    found = lint_source(source, "store/db_migrations/versions/90e6_tags.py")
    assert [(f.code, "in a migration" in f.message) for f in found] == [("MB102", True)]
    assert lint_source(source, "store/db_migrations/helpers.py") == []


def test_preview_rules_are_out_of_the_default_set(tmp_path: Path) -> None:
    source = "def f(n):\n    ids = list(range(n))\n    return sum(ids)\n"
    assert lint_source(source, "a.py") == []
    assert [f.code for f in lint_source(source, "a.py", select=["MB202"])] == ["MB202"]


def test_mb402_prescribes_copy_once_only_for_a_copy_that_is_only_read() -> None:
    read = (
        "import copy\ndef f(items, tpl):\n    for it in items:\n"
        "        c = copy.deepcopy(tpl)\n        print(c['name'], it)\n"
    )
    kept = "import copy\ndef f(items, tpl):\n    return [copy.deepcopy(tpl) for it in items]\n"
    (one,) = lint_source(read, select=["MB402"])
    assert "copy once before the loop" in one.message
    (other,) = lint_source(kept, select=["MB402"])
    assert "copy once" not in other.message
    assert "if no copy is changed later" in other.message


def test_mb501_names_values_list_only_for_a_column() -> None:
    models = (
        "from django.db import models\n"
        "class User(models.Model):\n"
        "    email = models.EmailField()\n"
        "    team = models.ForeignKey('Team', on_delete=models.CASCADE)\n"
        "    @property\n"
        "    def label(self):\n"
        "        return self.email\n"
    )
    column = models + "emails = [u.email for u in User.objects.all()]\n"
    prop = models + "labels = [u.label for u in User.objects.all()]\n"
    relation = models + "teams = [u.team for u in User.objects.all()]\n"
    unknown = "from django.db import models\nfrom shop.models import Order\n" + (
        "totals = [o.total for o in Order.objects.all()]\n"
    )
    (found,) = lint_source(column)
    assert found.code == "MB501"
    assert "values_list('email', flat=True)" in found.message
    for source in (prop, relation):
        assert [f.code for f in lint_source(source)] == ["MB101"]  # the rows, not a column
    (maybe,) = lint_source(unknown)
    assert maybe.code == "MB501"
    assert "if `total` is a column" in maybe.message


def test_mb102_never_says_add_a_limit_where_one_is_written() -> None:
    for sql in (
        "'SELECT * FROM t LIMIT {}'.format(n)",
        "f'SELECT * FROM t LIMIT {n}'",
        "'SELECT * FROM t LIMIT %s' % (n,)",
        "'SELECT * FROM t WHERE a = ? LIMIT ?'",
    ):
        source = (
            f"import sqlite3\nconn = sqlite3.connect('x')\nrows = conn.execute({sql}).fetchall()\n"
        )
        assert lint_source(source) == [], sql
    unbounded = (
        "import sqlite3\nrows = sqlite3.connect('x').execute('SELECT * FROM t').fetchall()\n"
    )
    (found,) = lint_source(unbounded)
    assert "add a `LIMIT`" in found.message
