from __future__ import annotations

import json
from pathlib import Path

import pytest

from membound.cli.main import main


def test_scale_meets_its_expectation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "scale.json"
    png = tmp_path / "scale.png"
    code = main(
        [
            "scale",
            "tests.judge.scaling_targets:linear_list",
            "--sizes",
            "1e3,1e4,1e5,1e6",
            "--expect",
            "O(n)",
            "--json",
            str(out),
            "--plot",
            str(png),
        ]
    )
    assert 0 == code
    doc = json.loads(out.read_text())
    assert "complexity" == doc["type"]
    assert "O(n)" == doc["result"]["big_o"]
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "O(n)" in capsys.readouterr().out


def test_scale_fails_an_expectation_with_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "scale",
            "tests.judge.scaling_targets:linear_list",
            "--sizes",
            "1e4,1e5,1e6",
            "--expect",
            "O(1)",
        ]
    )
    assert 1 == code
    assert "expected O(1), measured O(n)" in capsys.readouterr().err


def test_an_undecided_verdict_fails_an_expectation(capsys: pytest.CaptureFixture[str]) -> None:
    """A thousand ints fit in memory a fresh interpreter already holds: at 1e3, 1e4 and 1e5
    only two sizes clear the noise floor, and that decides nothing, even if O(n) is right."""
    argv = ["scale", "tests.judge.scaling_targets:linear_list", "--sizes", "1e2,1e3,1e5"]
    code = main([*argv, "--expect", "O(n)"])
    captured = capsys.readouterr()
    assert 1 == code
    assert "undecided" in captured.err
    assert "--sizes" in captured.out  # which sizes would decide


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["scale", "tests.judge.scaling_targets:linear_list", "--sizes", "a,b"], "--sizes"),
        (
            ["scale", "tests.judge.scaling_targets:linear_list", "--expect", "O(2^n)"],
            "unknown complexity",
        ),
        (["scale", "no_such_mod_z:f", "--sizes", "1,2,3"], "No module named 'no_such_mod_z'"),
        (["leaks", "no_such_mod_z:f"], "cannot import no_such_mod_z:f"),
    ],
)
def test_verdict_command_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert 2 == main(argv)
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_leaks_expect_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "leaks.json"
    png = tmp_path / "leaks.png"
    code = main(
        [
            "leaks",
            "tests.judge.leak_targets:session_per_request",
            "--iterations",
            "300",
            "--expect-clean",
            "--json",
            str(out),
            "--plot",
            str(png),
        ]
    )
    assert 1 == code
    captured = capsys.readouterr()
    assert "LEAK" in captured.out
    assert "leak_targets.py" in captured.err
    doc = json.loads(out.read_text())
    assert doc["result"]["leaking"] is True
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert 0 == main(["report", str(out), "--markdown"])
    assert "Kept alive by: module tests.judge.leak_targets" in capsys.readouterr().out


def test_leaks_clean_function_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["leaks", "tests.judge.leak_targets:clean", "--iterations", "200", "--expect-clean"]
    )
    assert 0 == code
    assert "no leak" in capsys.readouterr().out
