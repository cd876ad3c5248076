"""The same job gets the same word in every run, and one run never says "leak" (issue 37).

Margins: every threshold the classifier uses is decided from figures that sampling jitter does
not move (the run's headline figures, levels that are medians of several samples), with a dead
band around it; a timeline whose figures are further than the band from every threshold keeps
its word whatever the sampler did (when it ticked, a few samples lost, a few % of noise).
"""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import membound as mb
from membound.results.growth import MARGIN, Anchors, Growth

MIB = 2**20
BASE = 50 * MIB
N = 200


def timeline(values: list[float], times: list[float] | None = None) -> mb.Timeline:
    if times is None:
        return mb.Timeline.from_values(values, interval=0.01)
    return mb.Timeline(
        times=tuple(times),
        lows=tuple(values),
        highs=tuple(values),
        interval=0.01,
        samples=len(values),
        source="synthetic",
    )


# --- one run that keeps growing is not a leak ------------------------------------------------


def steady_rise() -> list[float]:
    return [BASE + i * 0.5 * MIB for i in range(N)]


def test_one_run_that_grows_to_its_end_is_retained_with_words_saying_so() -> None:
    values = steady_rise()
    anchors = Anchors.of(BASE, values[-1], "VmHWM", values[-1])
    for growth in (mb.classify(timeline(values)), mb.classify(timeline(values), anchors=anchors)):
        assert "retained" == growth.pattern, growth.explanation
        assert "kept growing up to its end" in growth.explanation
        assert "leak" not in growth.explanation


def test_repeated_units_of_work_that_keep_growing_are_a_leak() -> None:
    growth = mb.classify(timeline(steady_rise()), units=True)
    assert "leak" == growth.pattern, growth.explanation
    assert "still growing when it ended" in growth.explanation


def test_rising_troughs_in_one_run_are_not_a_leak() -> None:
    values = [BASE + (i % 40) * MIB + i * 0.1 * MIB for i in range(N)]
    single = mb.classify(timeline(values))
    assert single.pattern in ("retained", "ramp"), single.explanation
    assert "troughs rose" in single.explanation
    assert "leak" not in single.explanation
    assert "leak" == mb.classify(timeline(values), units=True).pattern


# --- too short to judge says so in its pattern -------------------------------------------------


def test_too_short_to_judge_is_its_own_pattern() -> None:
    growth = mb.classify(timeline([BASE, BASE + MIB, BASE]))
    assert "unjudged" == growth.pattern
    assert "too short to judge" == growth.label
    assert not growth.judged
    assert "unjudged" == growth.to_dict()["pattern"]


def test_a_saved_too_short_flat_still_reads_as_unjudged() -> None:
    """JSON written before the pattern existed: ``flat`` with fewer than ten samples."""
    old = mb.classify(timeline([BASE] * 30)).to_dict() | {"pattern": "flat", "samples": 4}
    growth = Growth.from_dict(old)
    assert "unjudged" == growth.pattern
    assert "too short to judge" == growth.label


# --- margins: jitter never moves a word across a threshold -----------------------------------

#: Shapes by their figures (start, peak, end over BASE, MiB), each clear of every threshold by
#: more than the margin: nothing, a spike, a build kept, a build given partly back; a rise up to
#: the end, from the start or from the middle of the run (where "how long it rose" once decided);
#: a peak of one sample between level stretches (the samples may miss it; the kernel does not).
SHAPES = {
    "flat": (0, 0, 0),
    "spike": (0, 120, 0),
    "retained": (0, 120, 118),
    "ramp": (0, 120, 60),
    "rising": (0, 100, 100),
    "rising-from-the-middle": (0, 100, 100),
    "transient": (0, 150, 0),
}
EXPECTED = {"rising": "retained", "rising-from-the-middle": "retained", "transient": "spike"}


def shape(name: str) -> list[float]:
    _, peak, end = SHAPES[name]
    if name == "rising":
        return [BASE + peak * MIB * i / (N - 1) for i in range(N)]
    if name == "rising-from-the-middle":
        return [BASE + peak * MIB * max(0, i - N // 2) / (N // 2 - 1) for i in range(N)]
    if name == "transient":
        return [BASE + (peak * MIB if i == N // 2 else 0) for i in range(N)]
    out = []
    for i in range(N):
        if i < 50:
            level = 0.0
        elif i < 80:
            level = peak * (i - 49) / 30
        elif i < 120:
            level = peak
        else:
            level = end + (peak - end) * max(0.0, 1 - (i - 120) / 10)
        out.append(BASE + level * MIB)
    return out


def jitter(
    values: list[float], seed: int, noise: float, offset: float, dropped: float
) -> tuple[list[float], list[float]]:
    """The same run sampled another time: each tick late or early by up to ``offset`` of an
    interval, ``noise`` of the run's movement (at least 64 KiB) added, ``dropped`` of the samples
    lost (never the first or last)."""
    rng = random.Random(seed)
    spread = max(max(values) - min(values), 3 * MIB) * noise
    times, out = [], []
    for i, v in enumerate(values):
        if 0 < i < len(values) - 1 and rng.random() < dropped:
            continue
        times.append(i * 0.01 + rng.uniform(0, offset * 0.01))
        out.append(v + rng.uniform(-spread, spread))
    return times, out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(SHAPES)),
    seed=st.integers(0, 10**6),
    noise=st.floats(0.0, 0.03),
    offset=st.floats(0.0, 0.9),
    dropped=st.floats(0.0, 0.1),
    anchored=st.booleans(),
)
def test_sampling_jitter_never_changes_the_word(
    name: str, seed: int, noise: float, offset: float, dropped: float, anchored: bool
) -> None:
    values = shape(name)
    _, peak, end = SHAPES[name]
    anchored = anchored or name == "transient"  # without the kernel's peak, it may be unseen
    anchors = Anchors.of(BASE, BASE + peak * MIB, "VmHWM", BASE + end * MIB) if anchored else None
    expected = mb.classify(timeline(values), anchors=anchors)
    assert EXPECTED.get(name, name) == expected.pattern, expected.explanation
    times, moved = jitter(values, seed, noise, offset, dropped)
    growth = mb.classify(timeline(moved, times), anchors=anchors)
    assert expected.pattern == growth.pattern, growth.explanation


@settings(max_examples=60, deadline=None)
@given(
    share=st.floats(0.0, 0.5),
    peak_mib=st.floats(20.0, 500.0),
    wobble=st.floats(-1.0, 1.0),
)
def test_figures_near_a_threshold_move_the_word_only_within_the_margin(
    share: float, peak_mib: float, wobble: float
) -> None:
    """What the end gave back of the rise (a share of it, where a tenth of the rise is past the
    tolerance), moved by less than the margin of the held-share threshold, keeps its word
    unless it began within the margin of it."""
    peak = peak_mib * MIB

    def word(given_back: float) -> str:
        end = BASE + peak - given_back * peak
        line = [BASE] * 20 + [BASE + peak] * 20 + [end] * 20
        return mb.classify(
            timeline(line), anchors=Anchors.of(BASE, BASE + peak, "VmHWM", end)
        ).pattern

    threshold = 0.1
    if abs(share - threshold) <= 2 * MARGIN * threshold:
        return  # within the band: either word may hold
    moved = share + wobble * MARGIN * threshold / 2
    assert word(share) == word(moved)
