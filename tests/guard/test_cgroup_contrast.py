"""The contrast that is the guard's reason to exist: a fast ramp into a 300 MiB cgroup is
OOM-killed without the watchdog and stopped by it, with the cgroup's ``oom_kill`` unchanged,
run after run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.guard.cgroup_helpers import memory_cgroup

RAMP = str(Path(__file__).parent / "apps" / "ramp.py")
LIMIT = 300 << 20
RUNS = 20


def _ramp(mode: str) -> tuple[int, str, int, int]:
    """Run the ramp in a fresh 300 MiB cgroup: exit status, output, OOM kills, peak charge."""
    with memory_cgroup(LIMIT) as group:
        done = group.run([sys.executable, RAMP, mode])
        return done.returncode, done.stdout + done.stderr, group.oom_kills(), group.peak()


def test_without_the_watchdog_the_ramp_is_oom_killed() -> None:
    code, output, kills, _ = _ramp("none")
    assert -9 == code, output
    assert 1 == kills


@pytest.mark.slow
def test_the_watchdog_stops_the_ramp_before_the_oom_killer_every_time() -> None:
    outcomes = [_ramp("wd") for _ in range(RUNS)]
    # The claim: never an OOM kill, every run stopped by the watchdog. How far past hard it got
    # is the benchmark's business (bench_guard.py), not a test's on a loaded machine.
    summary = [(code, kills, peak >> 20) for code, _, kills, peak in outcomes]
    for code, output, kills, _ in outcomes:
        assert 0 == kills, (output, summary)
        assert 3 == code, (output, summary)
        assert "stopped holding" in output
        assert "events=cgroup-v1-thresholds" in output or "events=cgroup-v2" in output
