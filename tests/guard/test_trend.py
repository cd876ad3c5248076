"""The leak trend: a steady leak is flagged with a time to the limit; a sawtooth, fragmentation
and a cache filling to its bound are not. Synthetic series with known answers, then real child
processes watched from outside (the window and the clock are parameters: seconds here)."""

from __future__ import annotations

import math
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from membound.guard.watchdog.core import Watchdog, WatchdogEvent
from membound.guard.watchdog.trend import LeakTrend

MB = 1e6
LIMIT = 1 << 30
WORKLOADS = str(Path(__file__).parent / "apps" / "workloads.py")


def _alarms(shape: Callable[[float], float], seconds: float = 600.0, window: float = 120.0):
    """Feed ``shape`` sampled every 0.1 s into a trend; the times of its alarms and the last
    verdict."""
    trend = LeakTrend(window)
    alarms: list[float] = []
    verdict = None
    for i in range(int(seconds * 10)):
        t = i / 10
        if trend.add(t, shape(t)):
            verdict = trend.verdict(LIMIT)
            if verdict.leaking:
                alarms.append(t)
    assert verdict is not None
    return alarms, verdict


def test_a_steady_leak_is_flagged_within_five_minutes_with_its_time_to_the_limit() -> None:
    noise = random.Random(7)
    rate = 2 * MB / 60  # 2 MB/min on a 300 MB base, busy requests above it

    def shape(t: float) -> float:
        busy = noise.uniform(0, 20 * MB) if t % 7 < 3 else 0.0
        return 300 * MB + rate * t + busy + noise.gauss(0, 50e3)

    alarms, verdict = _alarms(shape)
    assert alarms, verdict.explanation
    assert alarms[0] <= 300
    true_eta = (LIMIT - (300 * MB + rate * 600)) / rate
    assert verdict.time_to_limit_s is not None
    assert abs(verdict.time_to_limit_s - true_eta) <= 0.25 * true_eta
    assert "leak" == verdict.pattern
    assert f"{verdict.time_to_limit_s:.0f} s away" in verdict.explanation


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("sawtooth", lambda t: 300 * MB + (t % 13) / 13 * 80 * MB),
        (
            "fragmentation",
            lambda t: 300 * MB + 30 * MB * (1 - math.exp(-t / 60)) + (t % 9) * 4 * MB,
        ),
        ("cache filling for half the window", lambda t: 300 * MB + min(t, 60) / 60 * 50 * MB),
        ("cache filling later", lambda t: 300 * MB + min(max(t - 200, 0), 60) / 60 * 50 * MB),
        ("flat", lambda t: 300 * MB),
    ],
)
def test_no_alarm_for_shapes_that_are_no_leak(name: str, shape: Callable[[float], float]) -> None:
    alarms, verdict = _alarms(shape)
    assert [] == alarms, f"{name}: {verdict.explanation}"


def test_nothing_is_judged_before_the_window_fills() -> None:
    trend = LeakTrend(100)
    for i in range(600):  # 60 s of a steep leak: not three quarters of the window yet
        trend.add(i / 10, 1e8 + 1e6 * i)
    verdict = trend.verdict(LIMIT)
    assert "unknown" == verdict.pattern
    assert not verdict.leaking
    assert verdict.time_to_limit_s is None


def test_the_trend_keeps_a_bounded_number_of_floors() -> None:
    trend = LeakTrend(10, slices=20)
    for i in range(100_000):
        trend.add(i / 100, float(i))
    assert 20 == len(trend._floors)


def _watch(kind: str, seconds: float, window: str) -> tuple[list[WatchdogEvent], Watchdog]:
    """Run a workload for ``seconds`` and watch it from outside with a leak window."""
    child = subprocess.Popen(
        [sys.executable, WORKLOADS, kind, str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    child.stdout.readline()  # ready: its imports are done
    alarms: list[WatchdogEvent] = []
    dog = Watchdog(
        pid=child.pid,
        limit="2 GB",
        interval=0.05,
        leak_window=window,
        on_soft=None,
        on_leak=alarms.append,
        switch_interval=None,
    )
    try:
        with dog:
            child.wait(timeout=seconds + 30)
    finally:
        child.kill()
        child.wait()
    return alarms, dog


@pytest.mark.slow
def test_a_real_leaking_process_raises_the_alarm() -> None:
    alarms, dog = _watch("leak", 9, "4 s")
    assert 1 == len(alarms), dog.verdict.explanation
    trend = alarms[0].trend
    assert trend is not None
    # 2.5 MiB/s kept: the floor's slope says so within a quarter
    assert abs(trend.slope_bytes_per_s - 2.5 * (1 << 20)) <= 0.25 * 2.5 * (1 << 20)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sawtooth", "cache"])
def test_real_sawtooth_and_bounded_cache_raise_no_alarm(kind: str) -> None:
    alarms, dog = _watch(kind, 9, "4 s")
    assert [] == alarms, dog.verdict.explanation
    assert dog.readings > 50


def test_a_leak_that_grows_in_steps_is_flagged() -> None:
    noise = random.Random(3)
    alarms, verdict = _alarms(
        lambda t: 300 * MB + 20 * MB * (t // 15) + noise.gauss(0, 100e3), seconds=400, window=60
    )
    assert alarms, verdict.explanation
