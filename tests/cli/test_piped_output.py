"""Output that goes to a pipe or a file keeps every word whole: no table wrapped at a guessed
terminal width ("transactio / n"), Markdown-style rows instead."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

LONG = "all rows in one transaction, collected first and committed once at the very end"


def test_a_piped_comparison_keeps_long_names_and_figures_on_one_line(tmp_path: Path) -> None:
    scenarios = tmp_path / "ways.py"
    scenarios.write_text(
        "import membound as mb\n"
        f"@mb.scenario({LONG!r})\n"
        "def long_name():\n"
        "    return len(bytearray(20 * 2**20))\n"
        "@mb.scenario('short')\n"
        "def short():\n"
        "    return 0\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "membound", "compare", str(scenarios), "--repeat", "1"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={"COLUMNS": "60", "PATH": "/usr/bin:/bin"},
    )
    assert 0 == proc.returncode, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith(f"| {LONG} |")]
    assert 1 == len(rows), proc.stdout
    assert "MiB" in rows[0]
    assert "┃" not in proc.stdout  # no box drawing on a pipe
