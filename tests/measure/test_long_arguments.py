"""Any command the OS can run can be measured, whatever the length of its arguments: the
sampler's configuration travels on its stdin, not as one argument that Linux caps at 128 KiB
(``MAX_ARG_STRLEN``). A command the OS itself refuses (E2BIG) gets one line saying so (issue 27)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import membound as mb

#: Prints how many arguments it got and their total length.
COUNT = "import sys; print(len(sys.argv) - 1, sum(map(len, sys.argv[1:])))"
#: 240 KB of arguments, none over Linux's 128 KiB for one: the OS runs this.
LONG_ARGS = ["x" * 60_000] * 4


def test_measure_command_with_240_kb_of_arguments() -> None:
    m = mb.measure_command([sys.executable, "-c", COUNT, *LONG_ARGS], quiet=True)
    assert "ok" == m.outcome, m.outcome_detail
    assert 0 == m.exit_code


def test_the_cli_runs_it_and_the_command_gets_every_byte() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "membound", "run", "--", sys.executable, "-c", COUNT, *LONG_ARGS],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert 0 == proc.returncode, proc.stderr[-2000:]
    assert proc.stdout.startswith("4 240000\n"), proc.stdout[:200]


def test_a_single_argument_over_128_kib_is_refused_by_the_os_in_one_line() -> None:
    with pytest.raises(mb.TargetError) as info:
        mb.measure_command([sys.executable, "-c", "#" + "x" * 200_000], quiet=True)
    message = str(info.value)
    assert "E2BIG" in message
    assert "the system refused to start the command" in message
    assert "\n" not in message
    assert sys.executable not in message  # not membound's own interpreter
    assert "file or stdin" in info.value.hint
