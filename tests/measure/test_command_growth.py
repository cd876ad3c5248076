"""A command's timeline runs from its process's birth to its exit: the program loading and the
process tearing down are not growth. A run that is all start-up, or too short, is "too short to
judge", never a leak; a build or flat run is still named (issue 27). A command is one run:
memory that keeps growing up to its exit is "retained", never "leak" (issue 37), which needs
repeated units of work."""

from __future__ import annotations

import random
import sys
from dataclasses import replace

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
def test_python_c_1_names_no_growth(interval: float) -> None:
    """All start-up: too short to judge; or, on a busy machine that starves it while it loads
    or ends (then its life lasts tenths of a second), judged over a level that holds: flat.
    Never a leak, never something retained: what it holds once loaded is its size."""
    m = mb.measure_command([PY, "-c", "1"], interval=interval, quiet=True)
    assert m.growth.label in ("too short to judge", "flat"), m.growth.explanation
    assert "leak" not in m.growth.explanation


@pytest.mark.parametrize("interval", [0.005, 0.01])
def test_imports_alone_are_no_leak(interval: float) -> None:
    """Imports grow memory from the first instant to the exit: start-up, not a leak (too
    short to judge, or on a slow machine judged over work that holds its level, or
    over the level a starved start-up paused at when that pause lasted long)."""
    code = "import json, sqlite3, decimal, asyncio, email.parser, http.client"
    m = mb.measure_command([PY, "-c", code], interval=interval, quiet=True)
    assert "leak" != m.growth.pattern, m.growth.explanation


def test_a_steady_rise_to_the_exit_is_retained_not_a_leak() -> None:
    code = (
        "import time\nx = []\n"
        "for _ in range(150):\n    x.append(bytearray(10**6)); time.sleep(0.01)"
    )
    m = mb.measure_command([PY, "-c", code], quiet=True)
    assert "retained" == m.growth.label, m.growth.explanation
    assert "kept growing up to its end" in m.growth.explanation


def test_a_run_that_holds_its_level_is_flat() -> None:
    m = mb.measure_command([PY, "-c", "import time; time.sleep(1)"], quiet=True)
    assert "flat" == m.growth.label, m.growth.explanation
    assert "after its start-up" in m.growth.explanation


def test_a_build_kept_to_the_exit_is_retained() -> None:
    """Kept 1 s: on a busy machine, filling the 200 MB can take a second, and a run whose last
    quarter still rises is still growing when it ended."""
    code = "import time\ntime.sleep(0.6)\nx = bytearray(200 * 10**6)\ntime.sleep(1.0)"
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
    # judged whole, one run never reads as a leak
    assert "leak" != mb.classify(t, anchors=anchors).pattern


def test_the_start_up_ends_at_the_first_level_that_lasts() -> None:
    values = [0.2, 8.5] + [8.5] * 20 + [8.5 + i for i in range(1, 100)]
    t = _timeline(values, 0.01)
    first, level = startup_end(t, MIB)
    assert (1, True) == (first, level)
    growth = classify_lifespan(
        t, anchors=Anchors.of(0, values[-1] * MIB, "VmHWM", values[-1] * MIB)
    )
    assert "retained" == growth.pattern, growth.explanation
    assert growth.explanation.startswith(
        "retained: after its start-up (the first 0.01 s, to 8.5 MiB)"
    )


def test_work_too_short_is_timed_as_its_work_not_as_the_run() -> None:
    """Too short: the duration said is that of the work after the start-up, named so (the
    table's wall time is the whole run's)."""
    values = [0.2] + [9.0 + 3 * i for i in range(40)]
    growth = classify_lifespan(_timeline(values, 0.01), 2 * MIB)
    assert not growth.judged, growth.explanation
    assert "its work lasted 0.39 s" in growth.explanation, growth.explanation
    assert "it lasted" not in growth.explanation


def test_a_growth_from_the_first_instant_is_judged_from_where_its_program_started() -> None:
    values = [0.2] + [9.0 + 3 * i for i in range(160)]
    t = _timeline(values, 0.01)
    assert (1, False) == startup_end(t, 2 * MIB)
    growth = classify_lifespan(t)
    assert "retained" == growth.pattern, growth.explanation
    assert "after its start-up (the first 0.01 s, to 9.0 MiB; no level held" in (growth.explanation)


def test_a_start_up_through_several_programs_ends_at_the_last_one_started() -> None:
    """``python3 job.py`` through a pyenv shim: bash, then pyenv's scripts, then the
    interpreter, each ``exec`` falling back near nothing; then the job builds. Its work starts
    at the last fall to that floor, not at the first sample."""
    shim = [0.2, 3.1, 6.1, 6.5, 9.1, 10.2, 9.0, 7.6, 9.3, 3.7, 1.9, 7.7, 8.6]
    values = shim + [8.6 + 2 * i for i in range(1, 120)]
    t = _timeline(values, 0.01)
    assert (shim.index(1.9), False) == startup_end(t, MIB)
    assert "retained" == classify_lifespan(t).pattern


def test_a_buffer_freed_while_the_work_goes_on_is_no_restart() -> None:
    """A file read into one string (78 MiB), parsed, the string freed at once while the
    parsed objects keep growing: a fall that leaves far more than the interpreter is the
    job's, and the start-up stays at the interpreter just loaded."""
    values = [0.6, 7.8, 8.0, 9.0, 10.2, 12.0, 20.0, 29.0, 36.0, 45.0, 54.0, 63.0, 73.0, 78.0]
    values += [45.0 + 1.5 * i for i in range(110)]
    t = _timeline(values, 0.01)
    assert (1, False) == startup_end(t, MIB)


def test_a_build_held_about_as_long_as_it_took_is_work_on_a_quiet_or_busy_machine() -> None:
    """200 MB built in 1 KB pieces over 0.27 s (0.75 s on a busy machine), held 0.3 s, given
    back to the kernel over 0.4 s, then 0.3 s more before the exit. Taken as a start-up and
    an exit, the run read "flat" (quiet) or "too short to judge" (busy): it is a spike, on
    both."""
    for stretch in (1.0, 2.8):
        rise = round(27 * stretch)
        values = [0.2, 7.8] + [9.6 + 205 * i / rise for i in range(1, rise + 1)]
        values += [214.7] * 30 + [214.7 - 5.2 * i for i in range(1, 40)] + [8.9] * 30
        t = _timeline(values, 0.01)
        assert len(values) - 1 == exit_start(t, 4 * MIB), stretch
        growth = classify_lifespan(t, anchors=Anchors.of(0, 214.7 * MIB, "VmHWM", 8.9 * MIB))
        assert "spike" == growth.pattern, (stretch, growth.explanation)


def test_the_exit_fall_is_left_out() -> None:
    """Growth up to the exit, then CPython tearing down: kept up to its end, not a ramp."""
    values = [0.2, 8.5, 8.5, 8.5] + [8.5 + i for i in range(1, 120)] + [60.0, 9.0]
    t = _timeline(values, 0.01)
    assert len(values) - 3 == exit_start(t, MIB)
    growth = classify_lifespan(t)
    assert "retained" == growth.pattern, growth.explanation
    assert "up to its exit" in growth.explanation


def test_a_level_before_the_exit_is_where_the_work_ended() -> None:
    """Big temporaries freed, a smaller result kept for 0.3 s, then CPython tearing down: the
    exit falls from the kept level, not from the temporaries' peak (which the run gave back)."""
    values = [0.2] + [8.8] * 60 + [8.8 + 18.6 * i for i in range(1, 11)]
    values += [69.0] * 30 + [5.0]
    t = _timeline(values, 0.01)
    assert len(values) - 2 == exit_start(t, MIB)
    anchors = Anchors.of(0, 194.8 * MIB, "VmHWM", 5 * MIB)
    growth = classify_lifespan(t, anchors=anchors)
    assert "ramp" == growth.pattern, growth.explanation
    assert "+194.8 MiB at its peak (VmHWM), +186.0 MiB over its 8.8 MiB after start-up" in (
        growth.explanation
    )
    assert "ended +60.2 MiB over its 8.8 MiB after start-up, at 69.0 MiB before its exit" in (
        growth.explanation
    )
    assert (8.8 * MIB, 69.0 * MIB) == pytest.approx(
        (growth.level_start, growth.level_end), abs=2**16
    )


@pytest.mark.parametrize("stall", [3, 5, 9])
def test_a_teardown_stalled_half_way_down_is_still_the_exit(stall: int) -> None:
    """Seen under load: a 200 MB ``bytearray`` kept to the end, then CPython's teardown
    unmapping it, descheduled half way down for a few samples. A level where the work ended
    is a level (``MIN_SAMPLES`` samples, as at the bottom), not a stall of the teardown: read
    as one, the run "fell part of the way back" and said ramp, not retained."""
    values = [0.2] + [8.5] * 60 + [199.3] * 100 + [81.4] * stall + [44.3]
    t = _timeline(values, 0.01)
    assert 160 == exit_start(t, MIB)
    anchors = Anchors.of(0, 199.3 * MIB, "VmHWM", 44.3 * MIB)
    growth = classify_lifespan(t, anchors=anchors)
    assert "retained" == growth.pattern, growth.explanation


def test_a_level_the_run_later_gives_back_is_its_work_not_its_start_up() -> None:
    """A Pool of two workers holding 150 MB each for 1.9 s, closed, then the parent hashing at
    31 MiB (its start-up and the pool's start fluctuating there): the 360 MiB level was taken
    for the start-up, and the run read "flat: no growth: it fell 328.6 MiB from its start". What
    a program loads it keeps to its exit: a spike from where it started."""
    rng = random.Random(3)
    values = [0.2, 7.8] + [31.0 + rng.choice((-6.0, 6.0)) for _ in range(30)]
    values += [360.0] * 190 + [31.0] * 60 + [25.0, 9.0]
    t = _timeline(values, 0.01)
    assert (1, False) == startup_end(t, 4 * MIB)
    growth = classify_lifespan(t, 4 * MIB, anchors=Anchors.of(0, 360 * MIB, "VmHWM", 9 * MIB))
    assert "spike" == growth.pattern, growth.explanation


def test_a_level_reached_by_falling_from_a_peak_is_its_work_not_its_start_up() -> None:
    """250 MB and 150 MB arrays built over 0.55 s, the first freed, the second kept to the exit
    while the run hashes: the 171.4 MiB level was taken for the start-up (it lasts longer than
    twice the rise) and the run read "spike: returned near its start". It rose past that level
    from where its program started: a ramp, kept in part."""
    values = [0.2, 7.8] + [7.8 + 7.3 * i for i in range(1, 56)] + [410.0, 171.4]
    values += [171.4] * 150 + [9.0]
    t = _timeline(values, 0.01)
    assert (1, False) == startup_end(t, 4 * MIB)
    growth = classify_lifespan(t, 4 * MIB, anchors=Anchors.of(0, 410 * MIB, "VmHWM", 9 * MIB))
    assert "ramp" == growth.pattern, growth.explanation


def test_a_peak_within_the_tolerance_of_the_last_sample_is_not_a_missed_end() -> None:
    """The kernel's peak 40 KiB over the last sample before the exit fall: the sample is where
    the run ended (it said "it fell from its peak, 257.7 MiB … still growing at its last sample
    before, 257.7 MiB")."""
    values = [0.2] + [8.5] * 30 + [8.5 + 2.5 * i for i in range(1, 100)] + [60.0, 9.0]
    t = _timeline(values, 0.01)
    peak = max(t.highs[:-2]) + 40 * 1024
    growth = classify_lifespan(t, MIB, anchors=Anchors.of(0, peak, "VmHWM", 9 * MIB))
    assert "retained" == growth.pattern, growth.explanation
    assert "still growing at its last sample" not in growth.explanation, growth.explanation


@pytest.mark.parametrize("held", [8, 10, 12])
def test_a_level_of_a_tenth_of_a_second_before_the_exit_fall_is_the_exit(held: int) -> None:
    """Seen on a numpy job (30 M rows sorted and summed, then its end): a 114 MiB temporary
    freed as it ended, the rest held 8 to 10 samples, then the teardown. Against a level of
    ``MIN_SAMPLES`` the run read "ramp" in some runs and "retained" in others; a level where
    the work ended lasts as long as a bottom the run went on at (``EXIT_SETTLE_SAMPLES``)."""
    values = [0.2] + [20.0] * 30 + [20.0 + 8.13 * i for i in range(1, 101)] + [833.0] * 50
    values += [783.0] + [719.0] * held + [261.0, 32.0]
    t = _timeline(values, 0.01)
    assert 180 == exit_start(t, 16 * MIB)
    growth = classify_lifespan(t, anchors=Anchors.of(0, 833 * MIB, "VmHWM", 32 * MIB))
    assert "retained" == growth.pattern, growth.explanation


@pytest.mark.parametrize("bottom", [2, 5, 9])
def test_a_teardown_that_frees_then_finishes_at_the_bottom_is_the_exit(bottom: int) -> None:
    """A kept list freed by CPython's teardown in one sampling interval, the rest of the
    teardown a few samples at the bottom (under load, longer than the fall took): still the
    exit, not "freed, then went on" — that needs a level at the bottom (``MIN_SAMPLES``
    samples), not a few samples of the interpreter ending (a loaded run said "spike" for a
    job that appends to a kept list up to its end)."""
    values = [0.2, 8.5, 8.5, 8.5] + [8.5 + i for i in range(1, 120)] + [8.6] * bottom
    t = _timeline(values, 0.01)
    assert len(values) - bottom - 1 == exit_start(t, MIB)
    growth = classify_lifespan(t)
    assert "retained" == growth.pattern, growth.explanation


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


def _sampled(points: list[tuple[float, float]], interval: float) -> mb.Timeline:
    """A timeline from (seconds, MiB) samples, at their own times (a sampler that ran late)."""
    return mb.Timeline(
        times=tuple(t for t, _ in points),
        lows=tuple(v * MIB for _, v in points),
        highs=tuple(v * MIB for _, v in points),
        interval=interval,
        samples=len(points),
    )


def test_a_start_up_starved_at_its_first_sample_is_no_leak() -> None:
    """Seen under load: ``python -c "import json, …"`` sampled every 5 ms, its first sample
    after most of its loading, then starved for 70 ms at 8.5 MiB (a level, with no rise seen
    before it), then importing up to its exit. Judged from that pause it read as a leak."""
    values = [8.5] * 15 + [8.5 + 0.7 * i for i in range(1, 21)] + [10.0]
    t = _timeline(values, 0.005)
    assert (0, True) == startup_end(t, MIB)
    growth = classify_lifespan(t, anchors=Anchors.of(0, 22.5 * MIB, "VmHWM", 10 * MIB))
    assert "too short to judge" == growth.label, growth.explanation
    assert "a start-up that paused" in growth.explanation
    # the same shape over a longer run is judged: a pause does not last 0.25 s and more
    values = [8.5] * 60 + [8.5 + 0.7 * i for i in range(1, 21)] + [10.0]
    growth = classify_lifespan(_timeline(values, 0.005))
    assert growth.judged, growth.explanation


def test_a_level_begins_at_its_median_not_at_the_end_of_the_rise() -> None:
    """Seen under load: imports rising to 22.3 MiB, the level's first samples still the end
    of that rise (21.5 MiB), and a last tick of 0.4 MiB: +1.1 MiB "retained" from the first
    sample of the level; over the level itself (22.3 MiB), nothing grew."""
    values = [7.4 + 0.5 * i for i in range(28)] + [21.5, 21.5, 22.1] + [22.3] * 60 + [22.7] * 4
    t = _timeline(values, 0.005)
    growth = classify_lifespan(t, anchors=Anchors.of(0, 22.7 * MIB, "VmHWM", 22.7 * MIB))
    assert "flat" == growth.label, growth.explanation
    assert "to 22.3 MiB" in growth.explanation
    assert "within the tolerance" in growth.explanation


def test_a_leak_whose_last_steps_were_not_sampled_before_its_exit_is_a_leak() -> None:
    """Seen under load: 150 × 1 MB, a starved sampler's last sample before the exit fall 57 ms
    after the one before (149.3 MiB); the kernel's peak (152.1 MiB) came in that gap, where
    the leak was going. Against the last sample, the run fell from its peak: a ramp."""
    points = [(0.0, 0.0)] + [(0.01 * i, 8.5 + 0.95 * i) for i in range(1, 148)]
    points += [(points[-1][0] + 0.057, 91.0), (points[-1][0] + 0.076, 10.1)]
    t = _sampled(points, 0.01)
    anchors = Anchors.of(0, 152.1 * MIB, "VmHWM", 10.1 * MIB)
    growth = classify_lifespan(t, anchors=anchors)
    assert "retained" == growth.label, growth.explanation
    assert "it fell from its peak, 152.1 MiB" in growth.explanation
    # a peak the growth could not reach in that gap is not taken as the end
    growth = classify_lifespan(t, anchors=replace(anchors, peak=200 * MIB))
    assert "ramp" == growth.label, growth.explanation


def test_a_starved_sampler_judges_the_work_by_its_time() -> None:
    """A leak from the first instant over 1.3 s, sampled every 10 ms but by a sampler that
    managed one tick in three: its 44 samples after the start-up last 1.3 s, long enough to
    tell growth from a start-up."""
    points = [(0.03 * i, 8.5 + 3 * i) for i in range(45)]
    t = _sampled(points, 0.01)
    assert (1, False) == startup_end(t, 2 * MIB)
    growth = classify_lifespan(t)
    assert "retained" == growth.label, growth.explanation
    # as many samples from a sampler that kept up: a third of the time, a start-up's
    growth = classify_lifespan(_sampled([(0.01 * i, v) for i, (_, v) in enumerate(points)], 0.01))
    assert "too short to judge" == growth.label, growth.explanation


def test_a_build_into_the_exit_after_a_long_level_is_still_retained() -> None:
    """A level of 1 s is no start-up pause: a build the run ended on, up to its exit."""
    values = [0.2] + [8.5] * 100 + [8.5 + 10 * i for i in range(1, 11)] + [60.0, 9.0]
    t = _timeline(values, 0.01)
    growth = classify_lifespan(t, anchors=Anchors.of(0, 108.5 * MIB, "VmHWM", 9 * MIB))
    assert "retained" == growth.label, growth.explanation
