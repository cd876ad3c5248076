from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import pytest

import membound as mb
from tests.measure import targets

MIB = 2**20


def test_compare_targets_interleaved_with_medians() -> None:
    order: list[tuple[str, int]] = []
    result = mb.compare(
        {
            "big": functools.partial(targets.allocate, 120 * MIB),
            "small": functools.partial(targets.allocate, 10 * MIB),
        },
        repeat=2,
        on_run=lambda name, i: order.append((name, i)),
    )
    assert [("big", 0), ("small", 0), ("big", 1), ("small", 1)] == order
    big, small = result.rows
    assert 2 == big.runs
    assert 110 * MIB <= big.rss_peak_delta.median <= 140 * MIB
    assert big.rss_peak_delta.low <= big.rss_peak_delta.median <= big.rss_peak_delta.high
    assert 1.0 == big.ratio
    assert small.ratio is not None
    assert 0.03 < small.ratio < 0.15
    assert result.isolated


def test_compare_commands() -> None:
    result = mb.compare(
        [
            [sys.executable, "-c", "b = bytearray(80 * 2**20)"],
            f"{sys.executable} -c pass",
        ],
        repeat=1,
    )
    heavy, light = result.rows
    assert heavy.rss_peak.median - light.rss_peak.median > 60 * MIB
    assert "ok" == heavy.outcome


def test_compare_a_scenarios_file(tmp_path: Path) -> None:
    file = tmp_path / "bench.py"
    file.write_text(
        "import membound\n\n"
        "@membound.scenario('load all')\n"
        "def load_all():\n    return len(bytearray(60 * 2**20))\n\n"
        "@membound.scenario\n"
        "def streamed():\n    return sum(len(bytearray(2**20)) for _ in range(60))\n\n"
        "def helper():\n    pass\n"
    )
    result = mb.compare(file, repeat=1)
    assert ["load all", "streamed"] == [r.name for r in result.rows]
    assert result.row("load all").rss_peak_delta.median > 50 * MIB
    assert result.row("streamed").rss_peak_delta.median < 10 * MIB


def test_scenarios_file_errors(tmp_path: Path) -> None:
    with pytest.raises(mb.TargetError, match="not found"):
        mb.compare(tmp_path / "missing.py")
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    with pytest.raises(mb.TargetError, match="declares no scenario"):
        mb.compare(empty)
    broken = tmp_path / "broken.py"
    broken.write_text("import no_such_module_abc\n")
    with pytest.raises(mb.TargetError, match="failed to import"):
        mb.compare(broken)


def test_compare_propagates_a_failing_scenario() -> None:
    with pytest.raises(mb.ChildFailed, match="deliberate failure"):
        mb.compare({"bad": targets.raises}, repeat=1)


def test_compare_in_process() -> None:
    """In a fresh interpreter: in this test worker, memory an earlier test freed and the
    allocator kept resident can hold the 30 MiB without the RSS rising (a delta of 4 KiB)."""
    code = (
        "import functools, membound as mb\n"
        "from tests.measure import targets\n"
        "r = mb.compare({'a': functools.partial(targets.allocate, 30 * 2**20)},"
        " isolate=False, repeat=1)\n"
        "print(r.isolated, r.rows[0].name, r.rows[0].rss_peak_delta.median)\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    isolated, name, delta = out.stdout.split()
    assert "False" == isolated
    assert "a" == name
    assert float(delta) > 25 * MIB


def test_a_first_scenario_of_a_few_pages_is_not_divided_by(tmp_path: Path) -> None:
    """A ratio to ~4 KiB of noise read as 19,534×: the first is "≈ 0" instead."""
    from membound.report.sections import comparison_table

    file = tmp_path / "bench.py"
    file.write_text(
        "import membound\n\n"
        "@membound.scenario('nothing')\n"
        "def nothing():\n    return 1\n\n"
        "@membound.scenario('load')\n"
        "def load():\n    return len(bytearray(40 * 2**20))\n"
    )
    result = mb.compare(file, repeat=1)
    nothing, load = result.rows
    assert nothing.rss_peak_delta.median < 64 * 1024
    assert nothing.ratio is None
    assert load.ratio is None
    cells = [row[-1] for row in comparison_table(result).rows]
    assert cells == ["≈ 0", "first ≈ 0"]
