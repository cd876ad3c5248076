from __future__ import annotations

import math
import random
import time

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
    # rose, then fell part of the way back and stayed there
    "ramp": [BASE + min(i, 100) * MIB - (60 * MIB if i >= 200 else 0) for i in range(300)],
    "spike": [BASE + (80 * MIB if 100 <= i < 130 else 0) for i in range(300)],
    "sawtooth": [BASE + (i % 50) * MIB for i in range(300)],
    "sawtooth-square": [BASE + (60 * MIB if (i // 25) % 2 else 0) for i in range(300)],
    "leak-sawtooth": [BASE + (i % 50) * MIB + i * 0.4 * MIB for i in range(300)],
    # built something and kept it: a ramp that levelled off, one step, a few steps, and one
    # allocation the run ended on (a block whose last line builds what it keeps)
    "retained-levelled": [BASE + min(i, 100) * MIB for i in range(300)],
    "retained-step": [BASE + (100 * MIB if i >= 100 else 0) for i in range(300)],
    "retained-steps": [
        BASE + 30 * MIB * (i >= 60) + 30 * MIB * (i >= 140) + 40 * MIB * (i >= 220)
        for i in range(300)
    ],
    "retained-at-end": [BASE + max(0, i - 285) * 8 * MIB for i in range(300)],
}
EXPECTED = {
    "flat": "flat",
    "leak": "leak",
    "ramp": "ramp",
    "spike": "spike",
    "sawtooth": "sawtooth",
    "sawtooth-square": "sawtooth",
    "leak-sawtooth": "leak",
    "retained-levelled": "retained",
    "retained-step": "retained",
    "retained-steps": "retained",
    "retained-at-end": "retained",
}


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_synthetic_patterns(name: str, seed: int) -> None:
    """Leaks are judged over repeated units of work (``units=True``); one run never leaks."""
    units = name.startswith("leak")
    growth = mb.classify(timeline(noisy(SYNTHETIC[name], seed)), units=units)
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


def test_too_few_samples_is_unjudged_and_says_why() -> None:
    growth = mb.classify(timeline([1.0, 2.0]))
    assert "unjudged" == growth.pattern
    assert "too few samples" in growth.explanation


def test_a_fall_is_not_growth() -> None:
    values = [BASE + 100 * MIB - min(i, 50) * 2 * MIB for i in range(200)]
    assert mb.classify(timeline(values)).pattern not in ("leak", "ramp")


# --- real workloads, each in a fresh interpreter ----------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (targets.grows, {"retained"}),  # one run that grows to its end: kept, not a leak
        (targets.grows_then_holds, {"retained"}),
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
    if m.growth.pattern == "retained":
        assert m.growth.explanation.startswith(f"retained: {end} held at the end")


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
    assert m.growth.pattern not in ("leak", "ramp", "retained") or "freed" in m.growth.explanation
    assert m.rss_after_release is not None
    assert "held" not in m.growth.explanation or m.rss_end - m.rss_start > m.growth.tolerance_bytes


def test_a_peak_between_samples_is_named_with_the_sampled_figure() -> None:
    """A timeline whose samples missed most of the kernel's peak: flat samples, a spike."""
    values = [50 * MIB] * 100
    anchors = Anchors.of(50 * MIB, 250 * MIB, "VmHWM (reset at start)", 50 * MIB)
    growth = mb.classify(timeline(values), anchors=anchors)
    assert "spike" == growth.pattern
    assert "+200.0 MiB at its peak (VmHWM; the highest sample judged was 0 B)" in growth.explanation


def test_a_rise_that_falls_back_at_the_end_is_no_leak() -> None:
    """Growing for most of the run, then dropping in the last samples (a fetchall() whose list
    is freed at the end): still growing at the end is false."""
    values = [BASE + i * MIB for i in range(150)] + [BASE + 40 * MIB] * 5
    growth = mb.classify(timeline(values))
    assert "leak" != growth.pattern, growth.explanation
    anchors = Anchors.of(BASE, BASE + 149 * MIB, "VmHWM", BASE + 40 * MIB)
    anchored = mb.classify(timeline(values), anchors=anchors)
    assert "ramp" == anchored.pattern
    assert "then fell part of the way back: ended +40.0 MiB over its start" in (
        anchored.explanation
    )


@pytest.mark.parametrize("kept_mib", [1.1, 1.7, 5.0, 12.0])
def test_a_run_that_kept_a_small_share_of_its_rise_returned_near_its_start(
    kept_mib: float,
) -> None:
    """A 250 MiB temporary that leaves a few MiB: a spike whether 1.1 or 1.7 MiB stayed (by
    the tolerance alone, 1.0 MiB, the word changed from run to run of the same job), up to a
    tenth of the rise (past the dead band); past it, part of the way back: a ramp."""
    values = [BASE] * 20 + [BASE + 250 * MIB] * 20 + [BASE + kept_mib * MIB] * 20
    anchors = Anchors.of(BASE, BASE + 250 * MIB, "VmHWM", BASE + kept_mib * MIB)
    growth = mb.classify(timeline(values), MIB, anchors=anchors)
    assert "spike" == growth.pattern, growth.explanation
    assert f"returned near its start: ended +{kept_mib:.1f} MiB over its start" in (
        growth.explanation
    )
    kept = [BASE] * 20 + [BASE + 250 * MIB] * 20 + [BASE + 40 * MIB] * 20
    more = Anchors.of(BASE, BASE + 250 * MIB, "VmHWM", BASE + 40 * MIB)
    assert "ramp" == mb.classify(timeline(kept), MIB, anchors=more).pattern


def test_a_spike_that_ends_far_below_its_start_is_not_near_it() -> None:
    """A command whose level after start-up was data it then freed: it fell below that start,
    it did not return near it."""
    values = [BASE + 115 * MIB] * 20 + [BASE + 160 * MIB] * 20 + [BASE + 8 * MIB] * 20
    anchors = Anchors.of(BASE + 115 * MIB, BASE + 160 * MIB, "VmHWM", BASE + 8 * MIB)
    growth = mb.classify(timeline(values), MIB, anchors=anchors)
    assert "spike" == growth.pattern, growth.explanation
    assert "then fell below its start: ended -107.0 MiB over its start" in growth.explanation
    assert "near its start" not in growth.explanation


def test_over_units_of_work_any_growth_kept_past_the_tolerance_is_no_spike() -> None:
    """Rounds of a service: a 250 MiB peak and 12 MiB kept is not 'returned near its start'."""
    values = [BASE] * 20 + [BASE + 250 * MIB] * 20 + [BASE + 12 * MIB] * 20
    anchors = Anchors.of(BASE, BASE + 250 * MIB, "VmHWM", BASE + 12 * MIB)
    growth = mb.classify(timeline(values), MIB, anchors=anchors, units=True)
    assert "spike" != growth.pattern, growth.explanation


def test_without_anchors_the_words_say_their_figures_are_sampled() -> None:
    growth = mb.classify(timeline([BASE + min(i, 100) * MIB for i in range(300)]))
    assert "retained" == growth.pattern
    assert "at its highest sample" in growth.explanation
    assert "+99.0 MiB held at the end (sampled)" in growth.explanation


# --- retained: a one-shot build that is kept is not a leak -------------------------------------

#: What a 200,000,000-byte buffer built in one block adds to RSS: format_size says 190.7 MiB.
KEPT_BYTES = 200_000_000


#: Headline figures of a run that rose by KEPT_BYTES and held all of it at the end.
KEPT = Anchors.of(BASE, BASE + KEPT_BYTES, "VmHWM (reset at start)", BASE + KEPT_BYTES)


def test_a_build_that_is_kept_is_retained_and_quotes_the_held_figure() -> None:
    """One allocation, then the block goes on holding it (a cell that loads a DataFrame)."""
    values = (
        [BASE] * 20 + [BASE + KEPT_BYTES * k / 10 for k in range(1, 11)] + [BASE + KEPT_BYTES] * 40
    )
    growth = mb.classify(timeline(noisy(values)), anchors=KEPT)
    assert "retained" == growth.pattern, growth.explanation
    assert growth.explanation.startswith("retained: +190.7 MiB held at the end"), growth.explanation
    assert "+190.7 MiB at its peak (VmHWM)" in growth.explanation
    assert "leak" not in growth.explanation


@pytest.mark.parametrize(
    ("level", "rising"),
    [(48, 12), (46, 17)],
    ids=["rise-in-last-quarter", "rise-longer-than-last-quarter"],
)
def test_a_block_that_ends_on_its_one_allocation_is_retained_not_a_leak(
    level: int, rising: int
) -> None:
    """Shapes a real ``track`` drew for ``time.sleep(0.5); data = bytearray(200_000_000)``:
    level, then one rise that the block ended on (the zero-filling of 200 MB lasts 12 to 17
    samples here, more than the last quarter of the run in the second). Its last quarter rises,
    yet nothing grew in the first half of the run: one build, kept, not growth that goes on."""
    values = [BASE] * level + [BASE + KEPT_BYTES * k / rising for k in range(1, rising + 1)]
    growth = mb.classify(timeline(noisy(values)), anchors=KEPT)
    assert "retained" == growth.pattern, growth.explanation
    assert growth.explanation.startswith("retained: +190.7 MiB held at the end"), growth.explanation
    assert "up to its end" in growth.explanation
    assert "still growing" not in growth.explanation


def test_too_short_a_block_is_retained_from_its_headline_figures() -> None:
    """``data = bytearray(100 MB)`` alone lasts a few samples: too few to judge a shape, but the
    run's own start and end figures show what it kept."""
    values = [BASE + 60 * MIB, BASE + 78 * MIB, BASE + 95 * MIB]
    held = BASE + 100_000_000
    growth = mb.classify(timeline(values), anchors=Anchors.of(BASE, held, "VmHWM", held))
    assert "retained" == growth.pattern, growth.explanation
    assert growth.judged
    assert "retained" == growth.label
    assert growth.explanation.startswith("retained: +95.4 MiB held at the end"), growth.explanation
    assert "too few samples (3)" in growth.explanation
    # without the headline figures, or when the end gave the memory back: nothing to say
    assert "unjudged" == mb.classify(timeline(values)).pattern
    freed = Anchors.of(BASE, held, "VmHWM", BASE)
    assert "unjudged" == mb.classify(timeline(values), anchors=freed).pattern
    assert "too short to judge" == mb.classify(timeline(values), anchors=freed).label


def test_a_build_before_the_first_sample_is_retained() -> None:
    """The sampler starts a moment after the block: on a busy machine a quick build can be over
    before the first sample, and the samples stay level at the new height."""
    values = [BASE + KEPT_BYTES] * 30
    growth = mb.classify(timeline(noisy(values)), anchors=KEPT)
    assert "retained" == growth.pattern, growth.explanation
    assert growth.explanation.startswith("retained: +190.7 MiB held at the end"), growth.explanation
    assert "flat" == mb.classify(timeline(noisy(values))).pattern  # the samples alone: level


def test_a_build_freed_again_is_a_spike_though_sampling_began_after_it() -> None:
    """The samples start at the new height and fall back: the headline figures say it rose."""
    values = [BASE + 100 * MIB] * 20 + [BASE] * 30
    anchors = Anchors.of(BASE, BASE + 100 * MIB, "VmHWM", BASE)
    growth = mb.classify(timeline(noisy(values)), anchors=anchors)
    assert "spike" == growth.pattern, growth.explanation
    assert "rose +100.0 MiB at its peak (VmHWM), then returned near its start" in (
        growth.explanation
    )


def test_a_rise_that_fell_most_of_the_way_back_is_not_retained() -> None:
    """The end holds under nine tenths of the peak's rise: a ramp that fell part of the way back."""
    values = [BASE + min(i, 100) * MIB for i in range(200)] + [BASE + 60 * MIB] * 100
    anchors = Anchors.of(BASE, BASE + 100 * MIB, "VmHWM", BASE + 60 * MIB)
    growth = mb.classify(timeline(noisy(values)), anchors=anchors)
    assert "ramp" == growth.pattern, growth.explanation
    assert "then fell part of the way back: ended +60.0 MiB over its start" in growth.explanation


@pytest.mark.parametrize(
    "values",
    [
        # half an hour rising steadily to the end
        [BASE + i * 20 * 1024 for i in range(2000)],
        # level for the first 30 %, then rising steadily for the 23 minutes up to the end
        [BASE + max(0, i - 600) * 30 * 1024 for i in range(2000)],
        # a leak that grows in steps, one every 100 s, up to the end
        [BASE + (i // 100) * 3 * MIB for i in range(2000)],
    ],
    ids=["steady", "late", "steps"],
)
def test_a_long_timeline_that_keeps_rising_to_the_end_is_still_a_leak(values: list[float]) -> None:
    """Over repeated units of work (a service's rounds); one run of the same shape kept what
    it grew, up to its end."""
    line = mb.Timeline.from_values(noisy(values), interval=1.0)
    anchors = Anchors.of(values[0], values[-1], "VmHWM", values[-1])
    for growth in (mb.classify(line, units=True), mb.classify(line, anchors=anchors, units=True)):
        assert "leak" == growth.pattern, growth.explanation
        assert "still growing when it ended" in growth.explanation
    for growth in (mb.classify(line), mb.classify(line, anchors=anchors)):
        assert "retained" == growth.pattern, growth.explanation
        assert "up to its end" in growth.explanation


def test_a_tracked_block_that_keeps_100_mb_is_retained() -> None:
    with mb.track("keeps") as t:
        data = bytearray(100 * MIB)  # zero-filled: every page touched
        time.sleep(0.3)
    m = t.result
    assert m is not None
    assert 100 * MIB == len(data)
    held = m.rss_end - m.rss_start
    assert held > 90 * MIB  # the buffer is still resident at the end
    assert "retained" == m.growth.pattern, m.growth.explanation
    words = f"retained: {mb.format_size(held, signed=True)} held at the end"
    assert m.growth.explanation.startswith(words), m.growth.explanation
    assert "leak" not in m.growth.explanation
    # a few hundred allocator blocks hold it: the words must not say the objects were freed
    assert "the Python objects made were freed" not in m.growth.explanation
    del data


def test_a_tracked_block_that_ends_on_its_allocation_is_retained() -> None:
    """Quiet first, then the block's last line builds what it keeps: no time to level off."""
    with mb.track("ends on it") as t:
        time.sleep(1.5)
        data = bytearray(100 * MIB)
    m = t.result
    assert m is not None
    held = m.rss_end - m.rss_start
    assert held > 90 * MIB
    assert "retained" == m.growth.pattern, m.growth.explanation
    words = f"retained: {mb.format_size(held, signed=True)} held at the end"
    assert m.growth.explanation.startswith(words), m.growth.explanation
    del data


def test_a_tracked_block_that_frees_what_it_built_is_not_retained() -> None:
    with mb.track("frees") as t:
        data = bytearray(100 * MIB)
        time.sleep(0.3)
        del data
        time.sleep(0.3)
    m = t.result
    assert m is not None
    assert m.rss_end - m.rss_start < 10 * MIB  # a buffer this large goes back to the OS
    assert m.rss_peak_delta > 90 * MIB
    assert "spike" == m.growth.pattern, m.growth.explanation
    assert "retained" not in m.growth.explanation
