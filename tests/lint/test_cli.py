"""``membound lint`` through ``main([...])`` and once as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from membound.cli.main import main

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
    assert main(["lint", "broken.py", "ok.py"]) == 0
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
        [sys.executable, "-m", "membound", "lint", "--format", "json", "."],
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
