"""Fast rise-and-fall cycles on top of what a run built are a sawtooth, never noise (issue 37).

A job that builds 50 MB it keeps, then makes and frees a 20 MB temporary every 40 ms, read
``flat`` in one run and ``spike`` in the next: each step of its cycles was taken for sampling
noise (a tolerance of 58.8 MiB, over a rise of 72 MiB), and the cycles, all above the middle of
the whole run's range, were not counted as cycles at all.
"""

from __future__ import annotations

import random
import re

import pytest

import membound as mb
from membound.results.lifespan import classify_lifespan

MIB = 2**20


def cycles(period: int, count: int, trough: float, swing: float) -> list[float]:
    """``count`` cycles of ``period`` samples: level at ``trough``, a rise, a peak ``swing``
    over it, then back (a temporary made and freed, as the sampler sees it)."""
    one = [trough] * (period - 2) + [trough + swing / 5, trough + swing]
    return one * count


def built_then_cycling(period: int, phase: int) -> list[float]:
    """A program's birth, its build up to a kept level, then fast cycles over it, then its
    exit; ``phase`` samples of the first cycle are cut (where the sampler happened to start)."""
    birth = [0.0, 8 * MIB]
    build = [8 * MIB + k * 10 * MIB for k in range(1, 8)]
    loop = cycles(period, 40, 60 * MIB, 16 * MIB)[phase:]
    return birth + build + loop + [30 * MIB, 2 * MIB]


@pytest.mark.parametrize("period", [4, 5, 6, 10])
def test_cycles_over_a_kept_build_are_a_sawtooth_whatever_the_phase(period: int) -> None:
    words = set()
    for phase in range(period):
        values = built_then_cycling(period, phase)
        growth = classify_lifespan(mb.Timeline.from_values(values, interval=0.01))
        assert "sawtooth" == growth.pattern, growth.explanation
        # The cycles' own swing (the first falls from the build's top, 18 MiB over the
        # troughs), not the build under them.
        swing = re.search(r"cycles of up to ([0-9.]+) MiB", growth.explanation)
        assert swing is not None, growth.explanation
        assert 16.0 <= float(swing.group(1)) <= 18.0, growth.explanation
        words.add(growth.pattern)
    assert {"sawtooth"} == words


@pytest.mark.parametrize("period", [4, 5, 6, 10])
def test_fast_cycles_are_no_noise(period: int) -> None:
    """The tolerance stays under the cycles' swing: a cycle is movement, not noise."""
    values = cycles(period, 40, 60 * MIB, 16 * MIB)
    growth = mb.classify(mb.Timeline.from_values(values, interval=0.01))
    assert growth.tolerance_bytes < 4 * MIB, growth.explanation
    assert "sawtooth" == growth.pattern, growth.explanation


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_noise_alone_is_still_noise(seed: int) -> None:
    """Readings that jump at random by several MiB around one level (well past 2 % of it) are
    flat: no rise, no cycles."""
    rng = random.Random(seed)
    values = [60 * MIB + rng.gauss(0, 2 * MIB) for _ in range(300)]
    growth = mb.classify(mb.Timeline.from_values(values, interval=0.01))
    assert "flat" == growth.pattern, growth.explanation


def test_a_few_temporaries_over_a_build_are_no_rising_troughs() -> None:
    """A build kept to the end, then two temporaries: one run that kept what it built (its word
    is drawn from its start, peak and end), not cycles whose troughs rose (the start under the
    build is no trough of a cycle)."""
    values = [50 * MIB] * 20 + [150 * MIB] * 40 + [170 * MIB] * 5 + [150 * MIB] * 40
    values += [170 * MIB] * 5 + [150 * MIB] * 40
    growth = mb.classify(mb.Timeline.from_values(values, interval=0.01))
    assert growth.pattern in ("retained", "ramp"), growth.explanation
    assert "troughs rose" not in growth.explanation
    assert "cycles" not in growth.explanation


def batches(troughs: list[float], top: float) -> list[float]:
    """Batches that each rise from a trough to ``top`` over 12 samples and free it all: the
    trough is where the sampler caught the fall (between the free and the next batch)."""
    values: list[float] = []
    for trough in troughs:
        values += [trough + (top - trough) * k / 11 for k in range(12)] + [top * 0.8]
    return [*values, troughs[0]]


#: The troughs of a thread pool's ten batches (four 70 MB arrays each, freed in full) as two
#: runs of the same job read them (MiB): where the sampler caught each fall.
POOL_TROUGHS = ([35, 44, 33, 50, 39, 34, 56, 41, 53], [39, 37, 55, 49, 57, 33, 52, 41, 37])


@pytest.mark.parametrize("troughs", [*POOL_TROUGHS, *(t[::-1] for t in POOL_TROUGHS)])
def test_troughs_scattered_by_the_sampler_are_level(troughs: list[int]) -> None:
    """A line fitted through such troughs rose 11.5 MiB in one run (past a tolerance of
    5.3 MiB): it read "retained ... a sawtooth whose troughs rose", the next run "sawtooth"."""
    for units in (False, True):
        growth = mb.classify(timeline([t * MIB for t in troughs]), units=units)
        assert "sawtooth" == growth.pattern, growth.explanation


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_troughs_that_rise_past_their_scatter_are_a_leak_over_units(seed: int) -> None:
    rng = random.Random(seed)
    troughs = [(rng.uniform(33, 57) + 4 * k) * MIB for k in range(30)]
    growth = mb.classify(timeline(troughs), units=True)
    assert "leak" == growth.pattern, growth.explanation
    assert "troughs rose" in growth.explanation


def timeline(troughs: list[float]) -> mb.Timeline:
    return mb.Timeline.from_values(batches(troughs, 450 * MIB), interval=0.01)


#: Troughs (MiB) of recorded jobs whose troughs hold a level once their cycles run: a process
#: pool of two workers (each task a 200 MB array and its sorted copy) whose workers start one
#: after the other, with the troughs of one worker's arrays first; a loop whose first pass ran
#: on a fresh allocator; a thread pool whose troughs scatter with what each thread still held.
LEVEL_TROUGHS = {
    "pool workers starting one by one": ([63.6, 131.6, 231.1, 230.9, 243.6, 239.6], 422),
    "pool with a lone dip first": ([110.7, 248.9, 230.9, 238.9, 236.9, 232.8, 232.9], 422),
    "allocator warm-up": ([11.8, 15.1, 14.5, 14.5, 14.5], 70),
    "thread pool, nine batches": ([41.0, 54.6, 59.2, 48.4, 45.3, 54.7, 57.3, 58.1, 57.2], 95),
    "thread pool, six batches": ([64.2, 40.6, 60.2, 55.7, 55.0, 61.6], 95),
}


@pytest.mark.parametrize("case", sorted(LEVEL_TROUGHS))
def test_troughs_that_rose_then_held_are_level(case: str) -> None:
    """These read "retained" or "ramp" (troughs rose) in some runs and "sawtooth" in others:
    a lone dip set the middle under the later troughs, and the lowest trough of the earlier
    half was a first cycle's."""
    troughs, top = LEVEL_TROUGHS[case]
    values = batches([t * MIB for t in troughs], top * MIB)
    for units in (False, True):
        growth = mb.classify(mb.Timeline.from_values(values, interval=0.01), units=units)
        assert "sawtooth" == growth.pattern, (case, units, growth.explanation)


def test_a_level_with_two_dips_is_no_sawtooth() -> None:
    """A process pool's two workers held a 150 MB array each and both dipped once between
    rounds, a sample or two: a level with dips, not cycles (all but a few samples within one
    swing)."""
    values = [321 * MIB] * 100 + [271 * MIB] + [321 * MIB] * 100 + [181 * MIB, 301 * MIB]
    values += [321 * MIB] * 100
    growth = mb.classify(mb.Timeline.from_values(values, interval=0.01))
    assert "sawtooth" != growth.pattern, growth.explanation


def rounds(troughs: list[float], top: float) -> list[float]:
    """Rounds of work between two gaps: a rise from 14 MiB to ``top`` over 12 samples, then each
    trough in turn (a fall to it, a rise back to ``top``), then the fall at the end: the
    troughs are exactly those between the first and last peak."""

    def up(start: float) -> list[float]:
        return [start + (top - start) * k / 11 for k in range(12)]

    values = up(14 * MIB)
    for trough in troughs:
        values += [(top + trough) / 2, *up(trough)]
    return [*values, top / 2, 14 * MIB]


@pytest.mark.parametrize("step", [8, 15])
def test_troughs_that_rise_every_cycle_are_no_level(step: int) -> None:
    """A build that keeps part of each step (15 MB of 120) rises three troughs in a row: too
    few to tell their scatter, enough to see that they rose."""
    troughs = [(28 + step * k) * MIB for k in range(3)]
    values = rounds(troughs, 190 * MIB)
    growth = mb.classify(mb.Timeline.from_values(values, interval=0.01), units=True)
    assert "leak" == growth.pattern, growth.explanation
    assert "troughs rose" in growth.explanation


def test_two_troughs_apart_by_what_a_busy_worker_held_are_level() -> None:
    """A process pool's three rounds of tasks: between the first two all workers were idle
    (48 MiB), between the last two one was still busy (86 MiB), in cycles of 260 MiB. Two
    troughs have no third to show a rise that goes on: "retained" in one run of three."""
    values = rounds([48 * MIB, 86 * MIB], 310 * MIB)
    for units in (False, True):
        growth = mb.classify(mb.Timeline.from_values(values, interval=0.01), units=units)
        assert "sawtooth" == growth.pattern, (units, growth.explanation)


def test_two_troughs_that_kept_half_of_each_cycle_rose() -> None:
    values = rounds([100 * MIB, 200 * MIB], 310 * MIB)
    growth = mb.classify(mb.Timeline.from_values(values, interval=0.01), units=True)
    assert "leak" == growth.pattern, growth.explanation


def test_troughs_a_few_mib_up_in_big_cycles_are_level_over_one_run_only() -> None:
    """A numpy pool's troughs stepped up 5 MiB once in cycles of 115 MiB: over one run its
    word is its cycles ("retained" in one run of six, at the peak its last task ended on);
    over units of work that should each give their memory back, 5 MiB kept is worth a leak."""
    values = rounds([t * MIB for t in (56.5, 56.9, 61.9, 61.3, 61.8)], 172 * MIB)
    one_run = mb.classify(mb.Timeline.from_values(values, interval=0.01))
    assert "sawtooth" == one_run.pattern, one_run.explanation
    units = mb.classify(mb.Timeline.from_values(values, interval=0.01), units=True)
    assert "leak" == units.pattern, units.explanation
