"""The engine: noqa, file-level noqa, bad files, discovery, columns, and lint's independence."""

from __future__ import annotations

import ast
import gc
from pathlib import Path

import pytest

import membound.lint
from membound.lint import engine, lint_file, lint_paths, lint_source

pytestmark = pytest.mark.usefixtures("every_rule_by_default")

LOOP = "import copy\nfor s in subs:\n    s.send(copy.deepcopy(payload)){}\n"


def _codes(source: str) -> list[str]:
    return [f.code for f in lint_source(source, "x.py")]


def test_finding_without_noqa() -> None:
    assert _codes(LOOP.format("")) == ["MB402"]


@pytest.mark.parametrize(
    "comment", ["  # noqa", "  # noqa: MB402", "  # NOQA:MB402", "  # noqa: E501, MB402"]
)
def test_noqa_suppresses(comment: str) -> None:
    assert _codes(LOOP.format(comment)) == []


def test_noqa_for_another_code_does_not_suppress() -> None:
    assert _codes(LOOP.format("  # noqa: MB101")) == ["MB402"]


def test_file_level_noqa() -> None:
    assert _codes("# membound: noqa\n" + LOOP.format("")) == []
    assert _codes("# membound: noqa: MB402\n" + LOOP.format("")) == []
    assert _codes("# membound: noqa: MB101\n" + LOOP.format("")) == ["MB402"]
    # Not alone on its line: an ordinary comment mentioning it does not silence the file.
    assert _codes("x = 1  # see membound: noqa docs\n" + LOOP.format("")) == ["MB402"]


def test_select_limits_rules() -> None:
    src = "import functools\n@functools.cache\ndef f(x):\n    return list(range(x))\n"
    assert _codes(src) == ["MB301", "MB202"]
    assert [f.code for f in lint_source(src, select={"MB202"})] == ["MB202"]


def test_columns_are_characters_and_one_based() -> None:
    src = "é = 1; xs = list(range(n))\n"
    (finding,) = lint_source(src, "x.py")
    assert (finding.row, finding.column, finding.end_row, finding.end_column) == (1, 13, 1, 27)


def test_location_spans_the_expression() -> None:
    src = "xs = list(\n    range(n)\n)\n"
    (f,) = lint_source(src)
    assert (f.row, f.column, f.end_row, f.end_column) == (1, 6, 3, 2)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"def f(:\n    pass\n", "syntax error"),
        (b"x = '\xff\xfe caf\xe9'\n", "not valid utf-8"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00", "binary file"),
        (b"# -*- coding: no-such-codec -*-\nx = 1\n", "encoding"),
    ],
)
def test_bad_file_is_one_mb000(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "bad.py"
    path.write_bytes(content)
    findings, error, lines = lint_file(str(path))
    assert findings == []
    assert error is not None
    assert error.message.startswith("MB000 file could not be parsed: ")
    assert reason in error.message.lower()
    assert lines == 0


def test_declared_latin1_file_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "latin.py"
    path.write_bytes(b"# -*- coding: latin-1 -*-\nname = 'caf\xe9'\nxs = list(range(n))\n")
    findings, error, _ = lint_file(str(path))
    assert error is None
    assert [f.code for f in findings] == ["MB202"]


def test_missing_file_is_an_error_not_a_crash(tmp_path: Path) -> None:
    result = lint_paths([str(tmp_path / "nope.py")])
    assert result.all_failed
    assert "MB000" in result.errors[0].message


def test_one_bad_file_does_not_fail_the_run(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("def (:\n")
    (tmp_path / "good.py").write_text("xs = list(range(n))\n")
    result = lint_paths([str(tmp_path)])
    assert not result.all_failed
    assert (result.files_checked, len(result.errors), len(result.findings)) == (1, 1, 1)


def test_discovery_skips_excluded_dirs_and_non_python(tmp_path: Path) -> None:
    for rel in ("a.py", "pkg/b.py", ".venv/c.py", "pkg/__pycache__/d.py", "notes.txt"):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("xs = list(range(n))\n")
    result = lint_paths([str(tmp_path)])
    names = sorted(Path(f.filename).relative_to(tmp_path).as_posix() for f in result.findings)
    assert names == ["a.py", "pkg/b.py"]


def test_parallel_jobs_give_the_same_result(tmp_path: Path) -> None:
    for i in range(60):
        (tmp_path / f"m{i}.py").write_text("import functools\n@functools.cache\ndef f(x): pass\n")
    serial = lint_paths([str(tmp_path)])
    parallel = lint_paths([str(tmp_path)], jobs=2)
    assert serial == parallel
    assert len(serial.findings) == 60


def test_parallel_jobs_read_the_call_graph_across_files_as_one_process_does(
    tmp_path: Path,
) -> None:
    # The evidence's call graph is read in the worker processes with -j: a command in one file
    # that calls a load in another makes that load batch code (a hint without sizes) either way.
    (tmp_path / "app").mkdir()
    (tmp_path / "app/__init__.py").write_text("")
    (tmp_path / "app/cli.py").write_text(
        "import click\nfrom app.jobs import dump\n\n@click.command()\ndef main():\n    dump()\n"
    )
    (tmp_path / "app/jobs.py").write_text(
        "from sqlalchemy.orm import Session\n\n\n"
        "def dump(session):\n    return [u.id for u in session.query(User.id).all()]\n"
    )
    for i in range(60):
        (tmp_path / f"app/m{i}.py").write_text(f"def f{i}(x):\n    return g(x)\n")
    serial = lint_paths([str(tmp_path)])
    parallel = lint_paths([str(tmp_path)], jobs=2)
    assert serial == parallel
    reached = [h for h in serial.hints if h.filename.endswith("jobs.py")]
    assert reached, serial
    assert "that the command `main` runs" in reached[0].message


def test_lint_never_imports_the_rest_of_membound() -> None:
    """DESIGN §2: lint stands alone. Every import under lint/ stays inside membound.lint, or is
    of the base every part may use (``_units`` parses ``max-file-size``, ``_errors`` its error,
    ``_files`` reads a file safely)."""
    root = Path(membound.lint.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [] if node.level else [node.module or ""]
            else:
                continue
            offenders += [
                f"{path.name}: {name}"
                for name in names
                if name.split(".")[0] == "membound"
                and not name.startswith("membound.lint")
                and name not in {"membound._units", "membound._errors", "membound._files"}
            ]
    assert offenders == []
    assert len(list(root.rglob("*.py"))) >= 10


def test_a_crashing_rule_costs_one_file_not_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from membound.lint import engine
    from membound.lint.findings import Rule

    def boom(ctx: object) -> list[object]:
        raise KeyError("bug")

    broken = Rule("MB999", "broken", "", "", "", check=boom)  # type: ignore[arg-type]
    monkeypatch.setattr(engine, "RULES", (*engine.RULES, broken))
    monkeypatch.setattr(engine, "ALL_CODES", (*engine.ALL_CODES, "MB999"))
    (tmp_path / "m.py").write_text("x = 1\n")
    result = lint_paths([str(tmp_path)])
    assert result.all_failed
    assert "internal error, please report: KeyError" in result.errors[0].message


def test_real_code_lints_without_internal_errors() -> None:
    """Robustness on real, varied code: a few standard-library packages parse and every rule
    runs to completion on them (a rule crash would show up as an internal MB000)."""
    import asyncio
    import email
    import json as json_module

    roots = [str(Path(m.__file__).parent) for m in (asyncio, email, json_module)]  # type: ignore[arg-type]
    result = lint_paths(roots)
    assert result.files_checked > 50
    assert [e for e in result.errors if "internal" in e.reason] == []
    assert result.lines_checked > 20_000


def test_hidden_folders_are_skipped_below_the_paths_given(tmp_path: Path) -> None:
    from membound.lint.engine import discover

    (tmp_path / ".cache" / "pkg").mkdir(parents=True)
    (tmp_path / ".cache" / "pkg" / "vendored.py").write_text("x = list(range(10**6))\n")
    (tmp_path / "app.py").write_text("y = 1\n")
    assert [str(tmp_path / "app.py")] == list(discover([str(tmp_path)]))
    hidden = str(tmp_path / ".cache")
    assert [str(tmp_path / ".cache" / "pkg" / "vendored.py")] == list(discover([hidden]))


def _gen0_collections() -> int:
    return int(gc.get_stats()[0]["collections"])


def test_a_run_collects_cyclic_garbage_less_often_and_puts_the_thresholds_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A tree of many small functions: its parse makes far more than 700 container objects, so
    # with CPython's thresholds a run collects hundreds of times.
    for i in range(40):
        body = "".join(f"def f{j}(x):\n    return [x, {{'k': (x, {j})}}]\n\n" for j in range(150))
        (tmp_path / f"m{i}.py").write_text(body)
    gc.collect()
    before = gc.get_threshold()
    collections = {}
    for name, thresholds in (("tuned", engine.LINT_GC_THRESHOLDS), ("default", (700, 10, 10))):
        monkeypatch.setattr(engine, "LINT_GC_THRESHOLDS", thresholds)
        start = _gen0_collections()
        result = lint_paths([str(tmp_path)])
        collections[name] = _gen0_collections() - start
        assert 40 == result.files_checked
        assert before == gc.get_threshold()
    assert collections["default"] > 20 * max(1, collections["tuned"]), collections


def test_a_run_leaves_the_collector_as_the_process_set_it() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(1_000_000, 50, 50)  # higher than the run's: kept
        with engine.fewer_collections():
            assert (1_000_000, 50, 50) == gc.get_threshold()
        gc.disable()  # off: stays off
        with engine.fewer_collections():
            assert not gc.isenabled()
        assert (1_000_000, 50, 50) == gc.get_threshold()
    finally:
        gc.enable()
        gc.set_threshold(*before)
