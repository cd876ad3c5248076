"""``[tool.membound.lint]``: selection semantics, per-file ignores, streaming helpers, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from membound.lint import ConfigError, lint_paths, load_config
from membound.lint.config import find_config, resolve_selection
from membound.lint.engine import ALL_CODES

pytestmark = pytest.mark.usefixtures("every_rule_by_default")


@pytest.mark.parametrize(
    ("select", "ignore", "expected"),
    [
        (["MB"], [], set(ALL_CODES)),
        (["MB2"], [], {"MB201", "MB202"}),
        (["MB"], ["MB1", "MB2", "MB3", "MB4"], {"MB501"}),
        (["MB201"], ["MB2"], {"MB201"}),  # the more specific selector wins
        (["MB2"], ["MB2"], set()),  # a tie goes to ignore
    ],
)
def test_resolve_selection(select: list[str], ignore: list[str], expected: set[str]) -> None:
    assert expected == set(resolve_selection(select, ignore, ALL_CODES))


def _project(tmp_path: Path, section: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(f"[tool.membound.lint]\n{section}\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "jobs.py").write_text(
        "import functools\n@functools.cache\ndef f(n):\n    return list(range(n))\n"
    )
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("xs = list(range(n))\n")
    (tmp_path / "app" / "tests.py").write_text("ys = list(range(n))\n")  # a Django app's tests
    # Django's runner finds ``test*.py``: a module of tests named ``tests_<topic>.py``
    (tmp_path / "app" / "tests_views.py").write_text("zs = list(range(n))\n")
    return tmp_path


def _codes(root: Path) -> list[tuple[str, str]]:
    config = load_config(root / "pyproject.toml", ALL_CODES)
    result = lint_paths([str(root)], config)
    return [(Path(f.filename).relative_to(root).as_posix(), f.code) for f in result.findings]


def test_select_and_ignore_from_pyproject(tmp_path: Path) -> None:
    root = _project(tmp_path, 'select = ["MB2", "MB3"]\nignore = ["MB301"]')
    # tests/ is left out by the per-file defaults
    assert _codes(root) == [("app/jobs.py", "MB202")]
    other = tmp_path / "again"
    other.mkdir()
    root = _project(
        other, 'select = ["MB2", "MB3"]\nignore = ["MB301"]\n[tool.membound.lint.per-file-ignores]'
    )
    assert _codes(root) == [
        ("app/jobs.py", "MB202"),
        ("app/tests.py", "MB202"),
        ("app/tests_views.py", "MB202"),
        ("tests/test_x.py", "MB202"),
    ]


def test_per_file_ignores(tmp_path: Path) -> None:
    root = _project(tmp_path, '[tool.membound.lint.per-file-ignores]\n"tests/*" = ["MB202"]')
    # the table replaces the defaults: the app's ``tests.py`` is checked again
    assert sorted(_codes(root)) == [
        ("app/jobs.py", "MB202"),
        ("app/jobs.py", "MB301"),
        ("app/tests.py", "MB202"),
        ("app/tests_views.py", "MB202"),
    ]


def test_extend_streaming_calls(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.membound.lint]\nextend-streaming-calls = ["stream_rows"]\n'
    )
    (tmp_path / "job.py").write_text(
        "from app.db import stream_rows\nout = []\nfor r in stream_rows():\n    out.append(r)\n"
    )
    assert _codes(tmp_path) == [("job.py", "MB201")]
    (tmp_path / "pyproject.toml").write_text("[tool.membound.lint]\n")
    assert _codes(tmp_path) == []


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ('selct = ["MB1"]', "unknown key(s) in [tool.membound.lint]: selct"),
        ('select = ["XX9"]', "unknown rule selector 'XX9'"),
        ('select = "MB1"', "select must be a list of strings"),
        ("select = [", "invalid TOML: "),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, section: str, message: str) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[tool.membound.lint]\n{section}\n")
    with pytest.raises(ConfigError, match=None) as info:
        load_config(tmp_path / "pyproject.toml", ALL_CODES)
    assert message in str(info.value)


def test_find_config_walks_up_to_the_file_with_the_section(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.membound.lint]\nselect = ['MB2']\n")
    inner = tmp_path / "pkg" / "sub"
    inner.mkdir(parents=True)
    (tmp_path / "pkg" / "pyproject.toml").write_text("[tool.other]\nx = 1\n")
    assert tmp_path / "pyproject.toml" == find_config([str(inner)])


def test_find_config_stops_at_a_broken_file_that_mentions_membound(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.membound.lint]\nselect = ['MB2']\n")
    inner = tmp_path / "pkg"
    inner.mkdir()
    (inner / "pyproject.toml").write_text("[tool.other\n")
    assert tmp_path / "pyproject.toml" == find_config([str(inner)])  # not ours: skipped
    (inner / "pyproject.toml").write_text("[tool.membound.lint\nselect = ['MB2']\n")
    with pytest.raises(ConfigError, match=r"pyproject.toml: invalid TOML: Expected '\]'"):
        find_config([str(inner)])


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ('preview = "yes"', "preview must be true or false"),
        ("small-models = 3", "small-models must be a list of strings"),
        ("large-models = [1]", "large-models must be a list of strings"),
        ("extend-per-file-ignores = 1", "extend-per-file-ignores must be a table"),
        ('[tool.membound.lint.extend-per-file-ignores]\n"a/*" = ["MB9"]', "unknown rule selector"),
    ],
)
def test_new_settings_are_checked(tmp_path: Path, setting: str, message: str) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[tool.membound.lint]\n{setting}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "pyproject.toml", ALL_CODES)


def test_exclude_and_ruffs_excludes_leave_files_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``exclude`` in [tool.membound.lint], and ruff's ``exclude``/``extend-exclude`` from the
    same pyproject: files found under a folder are left out; a file named is still checked."""
    from membound.cli.main import main

    def linted(*paths: str) -> set[str]:
        main(["lint", "--select", "MB301", *paths])
        out = capsys.readouterr().out
        return {line.split(":")[0] for line in out.splitlines() if ": MB" in line}

    monkeypatch.chdir(tmp_path)
    bad = "import functools\n@functools.cache\ndef f(n):\n    return n\n"
    for name in ("app/a.py", "app/generated/b.py", "vendor/c.py", "app/legacy/d.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(bad)
    assert {"./app/a.py", "./app/generated/b.py", "./vendor/c.py", "./app/legacy/d.py"} == (
        linted(".")
    )
    (tmp_path / "pyproject.toml").write_text(
        '[tool.ruff]\nextend-exclude = ["generated"]\nexclude = ["vendor/*"]\n'
    )
    assert {"./app/a.py", "./app/legacy/d.py"} == linted(".")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.ruff]\nextend-exclude = ["generated"]\n'
        '[tool.membound.lint]\nexclude = ["app/legacy"]\n'
    )
    assert {"./app/a.py", "./vendor/c.py"} == linted(".")
    assert {"app/generated/b.py"} == linted("app/generated/b.py")


def test_migrations_under_ruffs_exclude_are_checked_and_what_it_leaves_out_is_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A project that leaves its migrations out of ruff (generated code, for its style checks)
    had every data migration left out of membound's, in silence: two of four held-out
    applications. ruff's excludes still leave other files out, and a note says how many."""
    from membound.cli.main import main

    monkeypatch.chdir(tmp_path)
    loads = (
        "def forwards(apps, schema_editor):\n    for u in User.objects.all():\n        u.save()\n"
    )
    for name in ("shop/migrations/0002_fill.py", "shop/generated/x.py", "shop/jobs.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(loads)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.ruff]\nexclude = ["migrations", "shop/generated/*"]\n'
    )
    main(["lint", "--hints", "."])
    captured = capsys.readouterr()
    linted = {line.split(":")[0] for line in captured.out.splitlines() if ": MB" in line}
    assert "./shop/migrations/0002_fill.py" in linted, captured.out
    assert "./shop/generated/x.py" not in linted, captured.out
    notes = [line for line in captured.err.splitlines() if "ruff's exclude" in line]
    assert 1 == len(notes), captured.err
    assert "1 file(s) left out by ruff's exclude in pyproject.toml" in notes[0]
    assert (
        "1 migration(s) under ruff's exclude in pyproject.toml checked all the same" in (notes[0])
    )
    # membound's own exclude leaves a migration out, and says nothing of it
    (tmp_path / "pyproject.toml").write_text(
        '[tool.ruff]\nexclude = ["migrations"]\n[tool.membound.lint]\nexclude = ["migrations"]\n'
    )
    main(["lint", "--hints", "."])
    captured = capsys.readouterr()
    assert "migrations/0002_fill.py" not in captured.out
    assert "ruff's exclude" not in captured.err
