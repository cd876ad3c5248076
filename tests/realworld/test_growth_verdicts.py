"""Growth verdicts on real code, each in a fresh interpreter: memory freed but kept by the
allocator, memory released, a real leak run once (a logger per request) and a sawtooth (a flushed
buffer). Each explanation quotes the figures beside it."""

from __future__ import annotations

import membound as mb
from tests.realworld import workloads


def quoted(m: mb.Measurement) -> tuple[str, str]:
    return (
        mb.format_size(m.rss_peak - m.rss_start, signed=True),
        mb.format_size(m.rss_end - m.rss_start, signed=True),
    )


def test_memory_kept_by_live_survivors_is_said_so() -> None:
    m = mb.measure(workloads.fragmented_after_free)
    peak, end = quoted(m)
    assert "ramp" == m.growth.pattern, m.growth.explanation
    assert f"rose {peak} at its peak" in m.growth.explanation
    assert f"fell part of the way back: ended {end} over its start" in m.growth.explanation
    assert m.rss_after_release is not None
    assert "malloc_trim(0)" in m.growth.explanation


def test_released_memory_is_a_spike_back_to_the_start() -> None:
    m = mb.measure(workloads.released_after_use)
    peak, end = quoted(m)
    assert "spike" == m.growth.pattern, m.growth.explanation
    assert f"rose {peak} at its peak" in m.growth.explanation
    assert f"returned near its start: ended {end}" in m.growth.explanation
    assert m.rss_peak_delta > 140 * 2**20


def test_a_logger_per_request_run_once_kept_growing_up_to_its_end() -> None:
    """One run of sixty requests: it kept growing up to its end, worded so, but one run cannot
    show that each request should have given its memory back: "retained", not "leak" (a leak
    hunt, ``find_leaks``, calls it again and again and says leak)."""
    m = mb.measure(workloads.logger_per_request)
    peak, end = quoted(m)
    assert "retained" == m.growth.pattern, m.growth.explanation
    assert m.growth.explanation.startswith(f"retained: {end} held at the end")
    assert "kept growing up to its end" in m.growth.explanation
    assert f"{peak} at its peak" in m.growth.explanation


def test_a_flushed_buffer_is_a_sawtooth() -> None:
    m = mb.measure(workloads.buffered_writer)
    assert "sawtooth" == m.growth.pattern, m.growth.explanation
    assert "troughs level" in m.growth.explanation
