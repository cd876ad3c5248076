"""The watchdog's pace: the GIL switch interval is lowered for a rise that reaches the next line
soon, never for one step of a slow leak read just after the least was taken."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import pytest

from membound.guard.watchdog.pace import Pace

MIB = 1 << 20
LOW = 0.0005


@pytest.fixture
def pace() -> Iterator[Pace]:
    before = sys.getswitchinterval()
    made = Pace(near_bytes=0, interval=0.1, switch_interval=LOW)
    yield made
    made.release()
    assert before == sys.getswitchinterval()


def _least_taken_now(pace: Pace, base: int) -> None:
    """Read ``base`` until the pace takes it as its least afresh (its window is ``_RISE_S``)."""
    pace.reading(base)
    time.sleep(1.05)
    pace.reading(base)  # the window ended: the least is this reading, taken now


def test_one_step_read_just_after_the_least_keeps_the_switch_interval(pace: Pace) -> None:
    before = sys.getswitchinterval()
    base = 500 * MIB
    _least_taken_now(pace, base)
    time.sleep(0.01)
    # 2 MiB 10 ms after the least: 200 MiB/s if taken over 10 ms, soft 60 MiB away
    pace.reading(base + 2 * MIB, line=base + 60 * MIB)
    assert before == sys.getswitchinterval()


def test_a_ramp_lowers_the_switch_interval_from_its_first_steps(pace: Pace) -> None:
    base = 500 * MIB
    _least_taken_now(pace, base)
    # A ramp faster than the readings: its first 10 MiB read at once, 200 MiB from the line.
    # No sleep between: a loaded machine's long sleep would move the least (a 1 s window) and
    # make the ramp look slow, which is not what this test is about.
    pace.reading(base + 10 * MIB, line=base + 200 * MIB)
    assert LOW == sys.getswitchinterval()


def test_a_kernel_event_lowers_the_switch_interval_until_its_reading_decides(pace: Pace) -> None:
    """The event that wakes the watch lowers the switch interval at once, for the reading it
    calls for (each file read hands the GIL back to the program); a reading that finds
    memory steady gives it back."""
    before = sys.getswitchinterval()
    base = 500 * MIB
    _least_taken_now(pace, base)
    pace.event()
    assert LOW == sys.getswitchinterval()
    pace.reading(base)
    assert before == sys.getswitchinterval()
