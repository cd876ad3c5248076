"""Live progress on a terminal: ``run`` shows elapsed time, RSS, peak and limit; compare and scale
show which run of how many with an ETA. Nothing on a pipe, nothing with ``--quiet``. stderr is a
real pseudo-terminal here (``pty``), as in a user's shell."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

HOLD = "import time; block = bytearray(40 * 2**20); time.sleep(1.5)"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _stderr_on_a_terminal(args: list[str], cwd: Path | None = None) -> tuple[int, str, str]:
    """Run membound with stderr on a pseudo-terminal; (exit code, stdout, terminal text)."""
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "160", "TERM": "xterm"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "membound", *args],
        stdout=subprocess.PIPE,
        stderr=slave,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=cwd,
    )
    os.close(slave)
    seen = bytearray()
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the other side closed
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    out = proc.stdout.read().decode() if proc.stdout else ""
    code = proc.wait(timeout=120)
    return code, out, ANSI.sub("", seen.decode(errors="replace"))


def test_run_shows_elapsed_rss_peak_and_limit_while_it_runs() -> None:
    code, out, terminal = _stderr_on_a_terminal(
        ["run", "--limit", "1GB", "--", sys.executable, "-c", HOLD]
    )
    assert 0 == code, terminal
    lines = re.findall(
        r"(\d+\.\d) s\s+RSS ([\d.]+ MiB)\s+peak ([\d.]+) MiB\s+limit 953\.7 MiB", terminal
    )
    assert len(lines) >= 3, terminal  # refreshed while the command ran
    seconds = [float(s) for s, _, _ in lines]
    assert seconds == sorted(seconds)
    assert max(float(p) for _, _, p in lines) >= 40  # the 40 MiB block, seen live
    assert "Δ peak RSS" in out  # the result itself still goes to stdout


def test_quiet_and_pipes_show_nothing_live() -> None:
    _, _, terminal = _stderr_on_a_terminal(["run", "--quiet", "--", sys.executable, "-c", HOLD])
    assert "RSS" not in terminal, terminal
    assert "peak" not in terminal, terminal
    piped = subprocess.run(
        [sys.executable, "-m", "membound", "run", "--", sys.executable, "-c", HOLD],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "\x1b[" not in piped.stderr
    assert "RSS" not in piped.stderr


@pytest.mark.parametrize("escape_test", ["[bold red]x[/]"])
def test_compare_shows_which_run_of_how_many_with_an_eta(escape_test: str) -> None:
    code, _, terminal = _stderr_on_a_terminal(
        [
            "compare",
            "--repeat",
            "2",
            "--cmd",
            f"{sys.executable} -c 'import time; time.sleep(0.4)'",
            "--cmd",
            f"{sys.executable} -c 'import time; time.sleep(0.4)  # {escape_test}'",
        ]
    )
    assert 0 == code, terminal
    assert re.search(r"\b[0-3]/4\b", terminal), terminal
    assert "ETA" in terminal
    assert escape_test in terminal  # a name is shown as written, never read as markup


@pytest.mark.parametrize("isolate", ["--isolate", "--in-process"])
def test_leaks_shows_its_rounds(isolate: str) -> None:
    code, _, terminal = _stderr_on_a_terminal(
        ["leaks", isolate, "--iterations", "3000", "tests.judge.leak_targets:clean"],
        cwd=Path(__file__).resolve().parents[2],
    )
    assert 0 == code, terminal
    rounds = [int(done) for done, _ in re.findall(r"round (\d+)/(\d+)", terminal)]
    assert rounds, terminal
    assert max(rounds) >= 5  # seen while the hunt went on, not only at its start
