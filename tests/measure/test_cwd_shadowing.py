"""A ``types.py`` or ``json.py`` in the current folder must not replace the standard module in
membound's own children (the isolated run, the leak hunt, the heap runner) before their imports
are done; the user's module in that folder still imports (issue 27)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import membound as mb

MODULE = (
    "def grows(n=0):\n"
    "    return len(bytearray(8_000_000))\n\n"
    "_KEPT = []\n\n"
    "def leaks():\n"
    "    _KEPT.append(bytearray(1000))\n"
)
SHADOW = 'raise RuntimeError("the standard module was replaced by this folder\'s file")\n'
CLI = Path(sys.executable).with_name("membound")


@pytest.fixture(params=["types", "json"])
def shadowed(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The current folder: the user's module beside a file named like a standard module; and
    this process's import path starts with the current folder, as under ``python -c``."""
    (tmp_path / "usermod.py").write_text(MODULE)
    (tmp_path / f"{request.param}.py").write_text(SHADOW)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend("")
    return tmp_path


def test_isolated_measure(shadowed: Path) -> None:
    m = mb.measure("usermod:grows")
    assert m.rss_peak_delta > 4_000_000


def test_isolated_leak_hunt(shadowed: Path) -> None:
    report = mb.find_leaks("usermod:leaks", iterations=200, isolate=True)
    assert report.bytes_per_call > 0


@pytest.mark.skipif(not CLI.exists(), reason=f"no membound script beside {sys.executable}")
@pytest.mark.parametrize(
    "args",
    [
        ["leaks", "usermod:leaks", "--iterations", "200"],
        ["scale", "usermod:grows", "--sizes", "1e2,1e3,1e4"],
        ["run", "--heap", "--", sys.executable, "-c", "import usermod; usermod.grows()"],
    ],
    ids=["leaks", "scale", "run-heap"],
)
def test_the_cli(shadowed: Path, args: list[str]) -> None:
    proc = subprocess.run(
        [str(CLI), *args], capture_output=True, text=True, timeout=240, check=False
    )
    assert "replaced by this folder" not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
