"""The leak trend speaks of a service's floor: a floor that rose and then held is a cache filling
(``ramp``), never the ``retained`` of a one-shot block, which ``membound.classify`` says of the
same floors."""

from __future__ import annotations

from membound.guard.watchdog.trend import LeakTrend
from membound.results import Timeline, classify

MB = 1e6


def test_a_floor_that_rose_and_held_is_a_ramp_not_retained() -> None:
    trend = LeakTrend(120.0)
    verdicts = []
    for i in range(3000):  # five minutes, a reading every 0.1 s
        t = i / 10
        # a cache that fills over 40 s, a minute in, then holds
        if trend.add(t, 300 * MB + min(max(t - 60, 0), 40) / 40 * 80 * MB):
            verdicts.append(trend.verdict())
    patterns = [v.pattern for v in verdicts]
    assert "ramp" in patterns, patterns
    assert "retained" not in patterns
    assert not any(v.leaking for v in verdicts)
    ramp = next(v for v in verdicts if v.pattern == "ramp")
    assert ramp.explanation.startswith("ramp: "), ramp.explanation
    # the same kind of floors, judged as a block's timeline, are "retained": the trend renames it
    floors = Timeline.from_values([300 * MB] * 20 + [380 * MB] * 40, interval=2.0)
    assert "retained" == classify(floors).pattern
