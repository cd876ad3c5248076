"""``polling``: live figures reach a display while a block runs, and the last ones when it ends."""

from __future__ import annotations

import time

import pytest

from membound.measure.sampler.polling import polling


def test_a_block_shorter_than_one_period_still_shows_its_last_figures() -> None:
    seen: list[int] = []
    state = [0]
    with polling(lambda: seen.append(state[0]), 60.0, "test-polling"):
        state[0] = 7  # the block's last figure, set long before the first period ends
    assert seen == [7]


def test_ticks_come_while_the_block_runs() -> None:
    seen: list[float] = []
    with polling(lambda: seen.append(time.monotonic()), 0.02, "test-polling"):
        deadline = time.monotonic() + 5
        while len(seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(seen) >= 4  # three during the block, one after it


def test_a_block_that_raises_gets_no_final_tick_and_a_failing_tick_ends_nothing() -> None:
    calls = [0]

    def tick() -> None:
        calls[0] += 1
        raise RuntimeError("a display bug")

    with polling(tick, 60.0, "test-polling"):
        pass
    assert calls[0] == 1  # the final tick ran, its error was logged, nothing raised
    with pytest.raises(KeyError), polling(tick, 60.0, "test-polling"):
        raise KeyError("x")
    assert calls[0] == 1
