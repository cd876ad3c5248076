"""``membound lint`` through ``main([...])`` and once as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from membound.cli.main import main

pytestmark = pytest.mark.usefixtures("every_rule_by_default")

BAD = "import functools\n@functools.cache\ndef f(n):\n    return list(range(n))\n"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.py").write_text(BAD)
    (tmp_path / "ok.py").write_text("x = 1\n")
    return tmp_path


def test_exit_1_with_findings(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "bad.py", "ok.py"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert [" ".join(o.split()[:2]) for o in out[:2]] == ["bad.py:2:2: MB301", "bad.py:4:12: MB202"]
    assert out[-1] == "Found 2 findings in 1 file."


def test_exit_0_when_clean_and_with_exit_zero(project: Path) -> None:
    assert main(["lint", "ok.py"]) == 0
    assert main(["lint", "bad.py", "--exit-zero"]) == 0


def test_select_and_ignore(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "bad.py", "--select", "MB2", "--format", "json"]) == 1
    assert [d["code"] for d in json.loads(capsys.readouterr().out)] == ["MB202"]
    assert main(["lint", "bad.py", "--select", "MB1,MB202", "--ignore", "MB202"]) == 0


def test_unknown_selector_is_a_usage_error(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lint", "bad.py", "--select", "E501"]) == 2
    assert "unknown rule selector 'E501'" in capsys.readouterr().err


def test_config_error_exits_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "pyproject.toml").write_text("[tool.membound.lint]\nselct = []\n")
    assert main(["lint", "bad.py"]) == 2
    assert "unknown key(s)" in capsys.readouterr().err
    assert main(["lint", "bad.py", "--isolated"]) == 1


def test_pyproject_is_found_and_applied(project: Path) -> None:
    (project / "pyproject.toml").write_text('[tool.membound.lint]\nignore = ["MB2", "MB3"]\n')
    assert main(["lint", "bad.py"]) == 0


def test_bad_files_exit_2_only_when_every_input_failed(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "broken.py").write_bytes(b"def (:\n")
    (project / "blob.py").write_bytes(b"\x00\x01\x02")
    assert main(["lint", "broken.py", "blob.py"]) == 2
    err = capsys.readouterr().err
    assert "broken.py:1:5: MB000 file could not be parsed: syntax error" in err
    assert "blob.py:1:1: MB000 file could not be parsed: binary file" in err
    assert "Traceback" not in err
    capsys.readouterr()
    # a file that could not be checked is a finding (MB000): exit 1, never "All checks passed!"
    assert main(["lint", "broken.py", "ok.py"]) == 1
    out = capsys.readouterr().out
    assert "All checks passed!" not in out
    assert "1 file could not be checked (MB000, listed on stderr)." in out
    assert main(["lint", "broken.py", "ok.py", "--exit-zero"]) == 0
    assert main(["lint", "broken.py", "bad.py"]) == 1


def test_statistics_and_output_files(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", ".", "--statistics", "--json", "out.json"]) == 1
    assert (
        capsys.readouterr().out
    ) == "    1\tMB202\tmaterialized-range\n    1\tMB301\tunbounded-cache\n"
    assert len(json.loads((project / "out.json").read_text())) == 2
    assert main(["lint", ".", "--format", "sarif", "-o", "out.sarif"]) == 1
    assert json.loads((project / "out.sarif").read_text())["version"] == "2.1.0"


def test_github_format(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "bad.py", "--format", "github"]) == 1
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(
        "::warning file=bad.py,line=2,col=2,endLine=2,endColumn=17,title=MB301::"
    )


def test_subprocess_python_m_membound(project: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "membound", "lint", "--preview", "--format", "json", "."],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert [d["code"] for d in json.loads(proc.stdout)] == ["MB301", "MB202"]
    assert proc.stderr == ""


def test_help_lists_every_rule(capsys: pytest.CaptureFixture[str]) -> None:
    from membound.lint import RULES

    assert main(["lint", "--help"]) == 0
    out = capsys.readouterr().out
    assert [r.code for r in RULES if f"{r.code} {r.name}" not in out] == []


def test_missing_path_and_empty_directory(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lint", "no-such-file.py"]) == 2
    assert "no-such-file.py:1:1: MB000 file could not be parsed: " in capsys.readouterr().err
    (project / "empty").mkdir()
    assert main(["lint", "empty"]) == 0
    assert "no Python files found" in capsys.readouterr().err


def _one_line_error(err: str) -> str:
    """The error line of a configuration error: one ``membound: error:`` line plus one hint."""
    assert "Traceback" not in err
    assert "Usage:" not in err
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith("membound: error: "), err
    assert lines[1].startswith("hint: "), err
    return lines[0]


def test_pyproject_that_is_not_toml_exits_2(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The table header lacks its closing bracket: before the fix the file was skipped and the
    # findings the user had ignored came back with exit 1.
    (project / "pyproject.toml").write_text('[tool.membound.lint\nignore = ["MB2", "MB3"]\n')
    assert main(["lint", "bad.py"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    line = _one_line_error(err)
    assert str(project / "pyproject.toml") in line
    assert "invalid TOML: Expected ']' at the end of a table declaration (at line 1" in line
    assert "--isolated" in err
    assert main(["lint", "bad.py", "--isolated"]) == 1


def test_broken_pyproject_of_another_tool_is_skipped(project: Path) -> None:
    # Only a file that mentions membound can hold its settings; an unrelated broken pyproject
    # between the inputs and the real configuration does not stop the upward search.
    (project / "pyproject.toml").write_text('[tool.membound.lint]\nignore = ["MB2", "MB3"]\n')
    (project / "pkg").mkdir()
    (project / "pkg" / "bad.py").write_text(BAD)
    (project / "pkg" / "pyproject.toml").write_text("[tool.black\nline-length = 99\n")
    assert main(["lint", "pkg/bad.py"]) == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[tool.membound.lint\n", "invalid TOML: Expected ']'"),
        ('[tool.membound.lint]\nselect = ["MB1"\n', "invalid TOML: "),
        ("[tool.membound]\nlint = 1\n", "[tool.membound.lint] must be a table, not int"),
        ("[tool]\nmembound = 'x'\n", "[tool.membound] must be a table, not str"),
        ('[tool.membound.lint]\nselect = "MB1"\n', "select must be a list of strings"),
        ("[tool.membound.lint]\nignore = [1]\n", "ignore must be a list of strings"),
        ("[tool.membound.lint]\nper-file-ignores = []\n", "per-file-ignores must be a table"),
        (
            '[tool.membound.lint.per-file-ignores]\n"tests/*" = "MB1"\n',
            "per-file-ignores.tests/* must be a list of strings",
        ),
        (
            "[tool.membound.lint]\nextend-streaming-calls = 3\n",
            "extend-streaming-calls must be a list of strings",
        ),
    ],
)
@pytest.mark.parametrize("how", ["found", "--config"])
def test_bad_configuration_is_one_line_and_exit_2(
    project: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str, how: str
) -> None:
    (project / "pyproject.toml").write_text(text)
    args = ["lint", "bad.py"] + (["--config", "pyproject.toml"] if how == "--config" else [])
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == ""
    line = _one_line_error(err)
    assert "pyproject.toml" in line
    assert expected in line


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: None, "cannot read: No such file or directory"),
        (lambda p: p.mkdir(), "cannot read: Is a directory"),
        (lambda p: p.write_bytes(b"[tool.membound.lint]\nselect = ['\xff']\n"), "not UTF-8"),
    ],
    ids=["missing", "directory", "not-utf8"],
)
def test_unreadable_config_file_is_one_line_and_exit_2(
    project: Path,
    capsys: pytest.CaptureFixture[str],
    make: Callable[[Path], object],
    expected: str,
) -> None:
    make(project / "conf.toml")
    assert main(["lint", "bad.py", "--config", "conf.toml"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    line = _one_line_error(err)
    assert "conf.toml" in line
    assert expected in line


def test_unknown_selector_in_pyproject_is_one_line(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "pyproject.toml").write_text('[tool.membound.lint]\nselect = ["E501"]\n')
    assert main(["lint", "bad.py"]) == 2
    assert "unknown rule selector 'E501'" in _one_line_error(capsys.readouterr().err)


def test_json_lists_files_that_could_not_be_parsed(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "broken.py").write_bytes(b"def (:\n")
    (project / "zz.py").write_text(BAD)
    args = ["lint", "bad.py", "broken.py", "zz.py", "--format", "json", "--json", "also.json"]
    assert main(args) == 1
    out = capsys.readouterr().out
    data = json.loads(out)
    assert [(d["filename"], d["code"]) for d in data] == [
        ("bad.py", "MB301"),
        ("bad.py", "MB202"),
        ("broken.py", "MB000"),
        ("zz.py", "MB301"),
        ("zz.py", "MB202"),
    ]
    mb000 = data[2]
    assert set(mb000) == set(data[0])  # the same fields as a finding
    assert mb000["message"].startswith("file could not be parsed: syntax error")
    assert {k: v for k, v in mb000.items() if k != "message"} == {
        "code": "MB000",
        "name": None,
        "filename": "broken.py",
        "location": {"row": 1, "column": 5},
        "end_location": {"row": 1, "column": 5},
        "noqa_row": None,
        "fix": None,
        "url": None,
        "kind": "error",
    }
    assert json.loads((project / "also.json").read_text()) == data
    # Every input failed: exit 2, and the JSON still says why.
    (project / "blob.py").write_bytes(b"\x00\x01")
    assert main(["lint", "broken.py", "blob.py", "--format", "json"]) == 2
    data = json.loads(capsys.readouterr().out)
    assert [(d["filename"], d["code"]) for d in data] == [
        ("blob.py", "MB000"),
        ("broken.py", "MB000"),
    ]
    assert data[0]["message"].startswith("file could not be parsed: binary file")
