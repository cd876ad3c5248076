"""``membound run``/``compare`` with ``--write-baseline FILE`` (record, merged into the file) and
``--baseline FILE`` (exit 1 when a peak rose beyond its noise), on real commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from membound.cli.main import main

HOLD = "import os; x = bytearray({} * 2**20); x[::4096] = b'x' * len(x[::4096])"


def _run(mib: int, *options: str) -> int:
    return main(["run", *options, "--", sys.executable, "-c", HOLD.format(mib)])


def test_run_records_then_flags_a_rise_and_not_the_same_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = tmp_path / "b.json"
    assert _run(20, "--write-baseline", str(base)) == 0
    assert "baseline: 1 recorded to" in capsys.readouterr().err
    ((name, entry),) = json.loads(base.read_text())["entries"].items()
    assert name.startswith(sys.executable + " -c 'import os; x = bytearray(20 * 2**20)")
    assert entry["runs"] == 1
    assert entry["rss_peak"] > 20 * 2**20

    assert _run(20, "--baseline", str(base)) == 0
    assert "1 checked against" in capsys.readouterr().err

    # The same argv with more memory is another command: nothing in the baseline to check it
    # against, which a gate must not pass as "no regression" (exit 1, saying why).
    assert _run(60, "--baseline", str(base)) == 1
    err = capsys.readouterr().err
    assert "0 checked against" in err
    assert f"nothing in this run is in {base}" in err
    assert "nothing was checked" in err


def test_compare_flags_the_scenario_whose_peak_rose_and_merges_what_it_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    scenarios = tmp_path / "scen.py"
    scenarios.write_text(
        "import os, membound as mb\n"
        "@mb.scenario('list')\n"
        "def as_list():\n"
        "    x = [0] * (1_000_000 + int(os.environ.get('EXTRA', '0')))\n"
        "@mb.scenario('small')\n"
        "def small():\n"
        "    x = [0] * 1000\n"
    )
    base = tmp_path / "b.json"
    base.write_text('{"membound_baseline": 1, "python": "3.11", "entries": {"kept": {}}}\n')
    assert main(["compare", str(scenarios), "--heap", "--write-baseline", str(base)]) == 0
    entries = json.loads(base.read_text())["entries"]
    assert sorted(entries) == ["kept", "list", "small"]  # merged with what the file held
    assert 7 * 2**20 < entries["list"]["heap_peak"] < 9 * 2**20
    assert entries["list"]["runs"] == 3
    capsys.readouterr()

    monkeypatch.setenv("EXTRA", str(1_000_000))
    assert main(["compare", str(scenarios), "--heap", "--baseline", str(base)]) == 1
    err = capsys.readouterr().err
    assert "2 checked against" in err
    assert "1 regressed" in err
    assert "baseline: list: regressed: heap peak rose:" in err
    assert "small: regressed" not in err


@pytest.mark.parametrize(
    ("content", "option", "message"),
    [
        (None, "--baseline", "cannot read the baseline"),
        ("{}", "--baseline", "not a membound baseline"),
        ("{}", "--write-baseline", "not a membound baseline"),
    ],
)
def test_a_bad_baseline_file_stops_before_the_run_with_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str | None,
    option: str,
    message: str,
) -> None:
    path = tmp_path / "b.json"
    if content is not None:
        path.write_text(content)
    marker = tmp_path / "ran"
    code = main(
        ["run", option, str(path), "--", sys.executable, "-c", f"open({str(marker)!r}, 'w')"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert not marker.exists()  # nothing ran
    if content is not None:
        assert path.read_text() == content  # and the file was left alone
