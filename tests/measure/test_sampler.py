from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

from membound.measure.sampler.process import Sampler
from membound.results.downsample import Downsampler
from membound.results.timeline import Timeline


def test_downsampler_stays_bounded_and_keeps_extremes_over_100k_samples() -> None:
    rng = random.Random(7)
    values = [rng.uniform(0, 1000) for _ in range(100_000)]
    values[54_321] = 5_000.0  # a lone spike must survive downsampling
    values[77_777] = -5.0
    down = Downsampler(10_000)
    for i, v in enumerate(values):
        down.add(i * 0.01, v)
    assert len(down.times) <= 10_000
    assert 100_000 == down.samples
    assert max(values) == max(down.highs)
    assert min(values) == min(down.lows)
    assert list(down.times) == sorted(down.times)
    assert down.stride > 1


def test_timeline_from_values_is_bounded() -> None:
    timeline = Timeline.from_values(range(100_000), max_points=1000)
    assert len(timeline) <= 1000
    assert 99_999 == timeline.peak
    assert 100_000 == timeline.samples


def test_real_sampler_run_of_many_samples_stays_bounded() -> None:
    sampler = Sampler(os.getpid(), interval=0.0005, max_points=200).start()
    time.sleep(1.0)
    report = sampler.stop()
    assert report.timeline.samples > 400  # many more samples than points kept
    assert len(report.timeline) <= 200
    assert report.max_rss > 0


def _live_after(sampler: Sampler, after: float) -> float:
    """Wait until the sampler's live figures (rewritten about every 0.1 s) come from a sample
    taken more than ``after`` seconds into its run; that sample's time. A fixed sleep is
    shorter than a busy machine can take to start a sampler (about 70 ms with two busy CPU
    loops beside the tests) or to let it sample again."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        figures = sampler.live()
        if figures is not None and figures[0] > after:
            return figures[0]
        time.sleep(0.005)
    raise AssertionError(f"no sample after {after:.3f} s in 30 s: {sampler.live()}")


def test_sampler_sees_a_native_allocation_in_this_process(tmp_path: Path) -> None:
    sampler = Sampler(os.getpid(), interval=0.005, status=str(tmp_path / "status")).start()
    _live_after(sampler, -1.0)  # its first sample is taken: the sampler is up
    block = bytearray(150 * 2**20)
    figures = sampler.live()  # written before the block was made, or since
    assert figures is not None
    _live_after(sampler, figures[0])  # written since: sampled with the block made
    report = sampler.stop()
    del block
    low = min(report.timeline.lows)
    # Most of the 150 MiB: the rest of a test runner's RSS moves by a few MiB meanwhile (a full
    # run once read 138.9 MiB here); without the block it would be about 0.
    assert report.max_rss - low > 120 * 2**20


def test_sampler_limit_kills_the_watched_group() -> None:
    code = "import time\nb=[]\nwhile True:\n b.append(bytearray(8<<20)); time.sleep(0.001)"
    sampler = Sampler(None, interval=0.005, limit=100 * 2**20).start()
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    sampler.attach(proc.pid, proc.pid)
    try:
        proc.wait(timeout=30)
    finally:
        report = sampler.stop()
    assert -9 == proc.returncode
    assert report.limit_hit_at is not None
    assert report.limit_hit_rss is not None
    assert report.limit_hit_rss > 100 * 2**20


def test_sampler_that_was_never_attached_stops_cleanly() -> None:
    report = Sampler(None).start().stop()
    assert 0 == report.timeline.samples


def test_an_announcing_sampler_says_when_its_first_sample_is_taken() -> None:
    sampler = Sampler(os.getpid(), interval=0.005, announce=True).start()
    assert sampler.wait_until_sampling(30.0)
    time.sleep(0.05)
    report = sampler.stop()
    assert report.timeline.samples >= 2
    assert report.start <= time.monotonic()


def test_a_report_after_a_wait_that_gave_up_still_reads() -> None:
    sampler = Sampler(os.getpid(), interval=0.005, announce=True).start()
    assert not sampler.wait_until_sampling(0.0)  # the line comes later, before the report
    # Long enough for the sampler process to start and sample more than once even on a busy
    # machine (0.2 s gave one sample at a load of 10: its interpreter was still starting).
    time.sleep(1.0)
    report = sampler.stop()
    assert report.timeline.samples >= 2


def test_a_sampler_not_asked_to_announce_is_not_waited_for() -> None:
    sampler = Sampler(os.getpid(), interval=0.005).start()
    started = time.monotonic()
    assert not sampler.wait_until_sampling(30.0)
    assert time.monotonic() - started < 1.0
    assert sampler.stop().timeline.samples >= 1
