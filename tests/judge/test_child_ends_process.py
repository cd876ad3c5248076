"""A target that ends its process (``os._exit(0)``) has no result: ``ChildFailed`` from every
isolated API, exit 2 and one line from the CLI; never "ok", "O(1)" or "best" (issue 27)."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import pytest

import membound as mb
from tests.measure import targets, tree_targets

TARGET = "tests.measure.tree_targets:ends_process"
ROOT = Path(__file__).resolve().parents[2]


def test_measure_raises_child_failed() -> None:
    with pytest.raises(mb.ChildFailed, match="ended without a report") as info:
        mb.measure(tree_targets.ends_process)
    assert 0 == info.value.exit_code
    assert "os._exit" in info.value.hint


def test_complexity_raises_child_failed() -> None:
    with pytest.raises(mb.ChildFailed, match="ended without a report"):
        mb.complexity(tree_targets.ends_process, sizes=(10, 100, 1000), noise_runs=1)


def test_compare_raises_child_failed_and_ranks_nothing() -> None:
    with pytest.raises(mb.ChildFailed, match="ended without a report"):
        mb.compare(
            {"fine": functools.partial(targets.sleeper, 0.01), "ends": tree_targets.ends_process},
            repeat=1,
        )


def test_leaks_says_the_same() -> None:
    with pytest.raises(mb.ChildFailed, match="ended without a report"):
        mb.find_leaks(tree_targets.ends_process, iterations=100, isolate=True)


def _membound(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "membound", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.mark.parametrize(
    "args",
    [
        ["scale", TARGET, "--sizes", "1e2,1e3,1e4"],
        ["leaks", TARGET, "--iterations", "100"],
    ],
    ids=["scale", "leaks"],
)
def test_the_cli_exits_2_with_one_line(args: list[str]) -> None:
    proc = _membound(args, ROOT)
    assert 2 == proc.returncode, proc.stdout + proc.stderr
    assert "ended without a report" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "O(1)" not in proc.stdout


def test_compare_on_the_cli_exits_2(tmp_path: Path) -> None:
    bench = tmp_path / "bench.py"
    bench.write_text(
        "import os\nimport membound\n\n"
        "@membound.scenario\ndef fine():\n    return len(bytearray(2**20))\n\n"
        "@membound.scenario\ndef ends():\n    os._exit(0)\n"
    )
    proc = _membound(["compare", str(bench), "--repeat", "1"], tmp_path)
    assert 2 == proc.returncode, proc.stdout + proc.stderr
    assert "ended without a report" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_run_on_a_script_whose_measure_ends_its_child_fails(tmp_path: Path) -> None:
    """``membound run -- python script.py``: the script's own ``mb.measure`` raises, so the
    command fails (exit 1, a failed command), not "ok"."""
    script = tmp_path / "job.py"
    script.write_text(
        "import os\nimport membound as mb\n\n"
        "def ends():\n    os._exit(0)\n\n"
        "if __name__ == '__main__':\n    mb.measure(ends)\n"
    )
    proc = _membound(["run", "--", sys.executable, str(script)], tmp_path)
    assert 1 == proc.returncode, proc.stdout + proc.stderr
    assert "ChildFailed" in proc.stderr
    assert "ended without a report" in proc.stderr
