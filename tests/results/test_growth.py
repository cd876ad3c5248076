from __future__ import annotations

import math
import random

import pytest

import membound as mb
from membound.results.growth import Anchors, theil_sen
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


# --- words agree with the figures beside them --------------------------------------------------


def headline(m: mb.Measurement) -> tuple[str, str]:
    """The Δ peak and the end over the start, as the explanation must quote them."""
    peak = mb.format_size(m.rss_peak - m.rss_start, signed=True)
    end = mb.format_size(m.rss_end - m.rss_start, signed=True)
    return peak, end


@pytest.mark.parametrize(
    "target",
    [
        targets.grows,
        targets.grows_then_holds,
        targets.spike,
        targets.sawtooth,
        targets.builds_then_returns,
        targets.builds_and_frees_small_objects,
    ],
)
def test_isolated_explanations_quote_the_headline_peak(target: object) -> None:
    m = mb.measure(target)  # type: ignore[arg-type]
    peak, end = headline(m)
    assert f"{peak} at its peak" in m.growth.explanation
    if m.growth.pattern in ("ramp", "leak", "spike"):
        assert f"ended {end} over its start" in m.growth.explanation


def test_a_call_that_builds_then_returns_is_no_leak_and_no_ramp() -> None:
    """Memory that grew while the call ran and was freed when it returned: the timeline drops
    at the end, and the verdict says so."""
    m = mb.measure(targets.builds_then_returns)
    assert m.growth.pattern == "spike", m.growth.explanation
    assert "returned near its start" in m.growth.explanation


def test_freed_small_objects_are_said_freed_whatever_rss_did() -> None:
    m = mb.measure(targets.builds_and_frees_small_objects)
    assert m.blocks_delta is not None
    assert abs(m.blocks_delta) < 10_000  # the million dicts are gone
    assert m.growth.pattern not in ("leak", "ramp") or "freed" in m.growth.explanation
    assert m.rss_after_release is not None
    assert "held" not in m.growth.explanation or m.rss_end - m.rss_start > m.growth.tolerance_bytes


def test_a_peak_between_samples_is_named_with_the_sampled_figure() -> None:
    """A timeline whose samples missed most of the kernel's peak: flat samples, a spike."""
    values = [50 * MIB] * 100
    anchors = Anchors.of(50 * MIB, 250 * MIB, "VmHWM (reset at start)", 50 * MIB)
    growth = mb.classify(timeline(values), anchors=anchors)
    assert "spike" == growth.pattern
    assert "+200.0 MiB at its peak (VmHWM; the highest sample was 0 B)" in growth.explanation


def test_a_rise_that_falls_back_at_the_end_is_no_leak() -> None:
    """Growing for most of the run, then dropping in the last samples (a fetchall() whose list
    is freed at the end): still growing at the end is false."""
    values = [BASE + i * MIB for i in range(150)] + [BASE + 10 * MIB] * 5
    growth = mb.classify(timeline(values))
    assert "leak" != growth.pattern, growth.explanation
    anchors = Anchors.of(BASE, BASE + 149 * MIB, "VmHWM", BASE + 10 * MIB)
    anchored = mb.classify(timeline(values), anchors=anchors)
    assert "ramp" == anchored.pattern
    assert "then fell part of the way back: ended +10.0 MiB over its start" in (
        anchored.explanation
    )


def test_without_anchors_the_words_say_their_figures_are_sampled() -> None:
    growth = mb.classify(timeline([BASE + min(i, 100) * MIB for i in range(300)]))
    assert "ramp" == growth.pattern
    assert "at its highest sample" in growth.explanation
    assert "(sampled)" in growth.explanation
