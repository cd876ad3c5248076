"""A command's timeline runs from its process's birth to its exit: the program loading and the
process tearing down are not growth. A run that is all start-up, or too short, is "too short to
judge", never a leak; a real leak, build or flat run is still named (issue 27)."""

from __future__ import annotations

import random
import sys

import pytest

import membound as mb
from membound.results.growth import Anchors, effective_samples
from membound.results.lifespan import classify_lifespan, exit_start, startup_end

MIB = 2**20
PY = sys.executable


def _timeline(values_mib: list[float], interval: float) -> mb.Timeline:
    rng = random.Random(7)
    noisy = [v * MIB + rng.uniform(-16_000, 16_000) for v in values_mib]
    return mb.Timeline.from_values(noisy, interval=interval)


# --- real commands ---------------------------------------------------------------------------


@pytest.mark.parametrize("interval", [0.005, 0.01])
def test_python_c_1_is_too_short_to_judge(interval: float) -> None:
    m = mb.measure_command([PY, "-c", "1"], interval=interval, quiet=True)
    assert "too short to judge" == m.growth.label, m.growth.explanation
    assert "leak" not in m.growth.explanation


@pytest.mark.parametrize("interval", [0.005, 0.01])
def test_imports_alone_are_no_leak(interval: float) -> None:
    """Imports grow memory from the first instant to the exit: start-up, not a leak (too
    short to judge, or on a slow machine judged over a second half that holds its level)."""
    code = "import json, sqlite3, decimal, asyncio, email.parser, http.client"
    m = mb.measure_command([PY, "-c", code], interval=interval, quiet=True)
    assert "leak" != m.growth.pattern, m.growth.explanation


def test_a_steady_leak_is_a_leak() -> None:
    code = (
        "import time\nx = []\n"
        "for _ in range(150):\n    x.append(bytearray(10**6)); time.sleep(0.01)"
    )
    m = mb.measure_command([PY, "-c", code], quiet=True)
    assert "leak" == m.growth.label, m.growth.explanation
    assert "still growing when it ended" in m.growth.explanation


def test_a_run_that_holds_its_level_is_flat() -> None:
    m = mb.measure_command([PY, "-c", "import time; time.sleep(1)"], quiet=True)
    assert "flat" == m.growth.label, m.growth.explanation
    assert "after its start-up" in m.growth.explanation


def test_a_build_kept_to_the_exit_is_retained() -> None:
    code = "import time\ntime.sleep(0.6)\nx = bytearray(200 * 10**6)\ntime.sleep(0.2)"
    m = mb.measure_command([PY, "-c", code], quiet=True)
    assert "retained" == m.growth.label, m.growth.explanation
    assert "held at the end" in m.growth.explanation


# --- the rule on synthetic timelines ---------------------------------------------------------


def test_a_rise_from_birth_to_exit_with_no_level_is_start_up() -> None:
    """``python3 -c 1`` through a pyenv shim, sampled every 5 ms: 17 samples of processes
    starting, no level, the peak at the very end."""
    values = [0.2, 4.4, 0.7, 9.3, 6.4, 6.2, 11.0, 6.2, 7.8, 13.6, 6.2, 3.1, 7.6, 9.2, 10.4, 12.2]
    values.append(13.2)
    t = _timeline(values, 0.005)
    anchors = Anchors.of(0, 13.6 * MIB, "VmHWM", 13.2 * MIB)
    growth = classify_lifespan(t, anchors=anchors)
    assert not growth.judged
    assert "too short to judge" == growth.label, growth.explanation
    # judged whole, as before, the same samples read as a leak
    assert "leak" == mb.classify(t, anchors=anchors).pattern


def test_the_start_up_ends_at_the_first_level_that_lasts() -> None:
    values = [0.2, 8.5] + [8.5] * 20 + [8.5 + i for i in range(1, 100)]
    t = _timeline(values, 0.01)
    first, level = startup_end(t, MIB)
    assert (1, True) == (first, level)
    growth = classify_lifespan(
        t, anchors=Anchors.of(0, values[-1] * MIB, "VmHWM", values[-1] * MIB)
    )
    assert "leak" == growth.pattern, growth.explanation
    assert growth.explanation.startswith("leak: after its start-up (the first 0.01 s, to 8.5 MiB)")


def test_a_growth_from_the_first_instant_is_judged_over_the_second_half() -> None:
    values = [0.2] + [9.0 + 3 * i for i in range(160)]
    t = _timeline(values, 0.01)
    assert (80, False) == startup_end(t, 2 * MIB)
    growth = classify_lifespan(t)
    assert "leak" == growth.pattern, growth.explanation
    assert "over the second half of its run" in growth.explanation


def test_the_exit_fall_is_left_out() -> None:
    """A leak up to the exit, then CPython tearing down: still a leak, not a ramp."""
    values = [0.2, 8.5, 8.5, 8.5] + [8.5 + i for i in range(1, 120)] + [60.0, 9.0]
    t = _timeline(values, 0.01)
    assert len(values) - 3 == exit_start(t, MIB)
    growth = classify_lifespan(t)
    assert "leak" == growth.pattern, growth.explanation
    assert "up to its exit" in growth.explanation


def test_a_free_long_before_the_exit_is_no_exit_fall() -> None:
    values = [0.2] + [8.5] * 15 + [108.5] * 40 + [8.5] * 40
    t = _timeline(values, 0.01)
    assert len(values) - 1 == exit_start(t, MIB)
    assert "spike" == classify_lifespan(t).pattern


def test_samples_bunched_after_late_ticks_count_as_the_time_they_cover() -> None:
    """Twelve samples within 11 ms at a 10 ms interval: two intervals' worth, too few."""
    t = mb.Timeline(
        times=tuple(i * 0.001 for i in range(12)),
        lows=tuple(float(i * MIB) for i in range(12)),
        highs=tuple(float(i * MIB) for i in range(12)),
        interval=0.01,
        samples=12,
    )
    assert 2 == effective_samples(t)
    growth = mb.classify(t)
    assert "too short to judge" == growth.label, growth.explanation
    assert "too few samples (2)" in growth.explanation
