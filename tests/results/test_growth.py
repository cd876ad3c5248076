from __future__ import annotations

import math
import random

import pytest

import membound as mb
from membound.results.growth import theil_sen
from tests.measure import targets

MIB = 2**20
BASE = 50 * MIB


def noisy(values: list[float], seed: int = 1, amplitude: float = 64 * 1024) -> list[float]:
    rng = random.Random(seed)
    return [v + rng.uniform(-amplitude, amplitude) for v in values]


def timeline(values: list[float]) -> mb.Timeline:
    return mb.Timeline.from_values(values, interval=0.01)


SYNTHETIC = {
    "flat": [BASE] * 300,
    "leak": [BASE + i * 0.5 * MIB for i in range(300)],
    "ramp": [BASE + min(i, 100) * MIB for i in range(300)],
    "spike": [BASE + (80 * MIB if 100 <= i < 130 else 0) for i in range(300)],
    "sawtooth": [BASE + (i % 50) * MIB for i in range(300)],
    "sawtooth-square": [BASE + (60 * MIB if (i // 25) % 2 else 0) for i in range(300)],
    "leak-sawtooth": [BASE + (i % 50) * MIB + i * 0.4 * MIB for i in range(300)],
}
EXPECTED = {
    "flat": "flat",
    "leak": "leak",
    "ramp": "ramp",
    "spike": "spike",
    "sawtooth": "sawtooth",
    "sawtooth-square": "sawtooth",
    "leak-sawtooth": "leak",
}


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_synthetic_patterns(name: str, seed: int) -> None:
    growth = mb.classify(timeline(noisy(SYNTHETIC[name], seed)))
    assert EXPECTED[name] == growth.pattern, growth.explanation
    assert growth.explanation.startswith(EXPECTED[name])
    assert "tolerance" in growth.explanation


def test_slopes_are_robust_to_an_outlier() -> None:
    values = [BASE + i * 1000.0 for i in range(200)]
    values[100] = 10 * BASE
    growth = mb.classify(timeline(values))
    assert math.isclose(growth.slope_bytes_per_step, 1000.0, rel_tol=0.01)
    assert math.isclose(growth.slope_bytes_per_s, 100_000.0, rel_tol=0.01)


def test_theil_sen_exact_line() -> None:
    assert math.isclose(theil_sen([0, 1, 2, 3], [1, 3, 5, 7]), 2.0)


def test_tolerance_is_stated_and_settable() -> None:
    values = [BASE + (i % 2) * 3 * MIB for i in range(100)]
    assert "flat" == mb.classify(timeline(values), tolerance=4 * MIB).pattern
    assert "flat" != mb.classify(timeline(values), tolerance=1 * MIB).pattern
    assert 4 * MIB == mb.classify(timeline(values), tolerance=4 * MIB).tolerance_bytes


def test_too_few_samples_is_flat_and_says_why() -> None:
    growth = mb.classify(timeline([1.0, 2.0]))
    assert "flat" == growth.pattern
    assert "too few samples" in growth.explanation


def test_a_fall_is_not_growth() -> None:
    values = [BASE + 100 * MIB - min(i, 50) * 2 * MIB for i in range(200)]
    assert mb.classify(timeline(values)).pattern not in ("leak", "ramp")


# --- real workloads, each in a fresh interpreter ----------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (targets.grows, {"leak"}),
        (targets.grows_then_holds, {"ramp"}),
        (targets.sawtooth, {"sawtooth"}),
        (targets.spike, {"spike"}),
        (targets.sleeper, {"flat"}),
    ],
)
def test_real_workloads(target: object, expected: set[str]) -> None:
    args = (0.5,) if target is targets.sleeper else ()
    m = mb.measure(target, *args)  # type: ignore[arg-type]
    assert m.growth.pattern in expected, m.growth.explanation
