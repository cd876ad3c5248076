"""Every number in the growth words is the number in the table beside it (issue 37): the peak
the words quote is the table's Δ peak RSS, the levels a command's growth is judged between are
rows of the table, and a line named as keeping what was held holds it."""

from __future__ import annotations

import re

import membound as mb
from membound.measure.where.engine import kept_by
from membound.report.sections import measurement_table
from membound.results import PeakSite
from membound.results.growth import Anchors
from membound.results.lifespan import classify_lifespan

MIB = 2**20


def command(values_mib: list[float], peak_mib: float) -> mb.Measurement:
    """A command's measurement as ``measure_command`` makes it: from nothing, its words judged
    between its start-up and its exit."""
    line = mb.Timeline.from_values([v * MIB for v in values_mib], interval=0.01)
    peak, end = int(peak_mib * MIB), int(values_mib[-1] * MIB)
    growth = classify_lifespan(line, anchors=Anchors.of(0, peak, "VmHWM", end))
    return mb.Measurement(
        label="job",
        kind="command",
        duration_s=line.duration_s,
        rss_start=0,
        rss_end=end,
        rss_peak=peak,
        rss_peak_delta=peak,
        rss_peak_source="VmHWM",
        heap_current=None,
        heap_peak=None,
        gc_collections=None,
        gc_pause_s=None,
        timeline=line,
        growth=growth,
    )


SIZE = re.compile(r"[+-]?\d+(?:\.\d+)? (?:B|KiB|MiB|GiB)")


def test_a_commands_words_quote_the_table() -> None:
    """Start-up to 279.3 MiB, a rise to the peak, a kept level, the exit: the peak the words
    quote is Δ peak RSS, and the levels they measure from are in the table."""
    values = [0.5] + [279.3] * 60 + [279.3 + 20.3 * i for i in range(1, 11)] + [420.0] * 60
    m = command([*values, 30.0], 482.4)
    rows = dict(measurement_table(m).rows)
    words = m.growth.explanation
    assert f"{rows['Δ peak RSS']} at its peak" in words, words
    assert "279.3 MiB" == rows["RSS after start-up"]
    assert "420.0 MiB" == rows["RSS before exit"]
    # its last sample was taken as it tore down, and the row says so
    assert "30.0 MiB (its last sample, taken as it exited)" == rows["RSS at end"]
    figures = set(rows.values())
    quoted = {
        s.lstrip("+")
        for s in SIZE.findall(words.split(" (tolerance")[0])
        if not s.startswith(("+", "-"))
    }
    assert quoted <= figures | {"0 B"}, (quoted - figures, words)


def test_a_durations_words_are_of_the_part_judged_not_the_runs_wall_time() -> None:
    """A command that grows up to its exit after its start-up: the words time the rise within
    the part judged, and never call that part "the run" (whose wall time is in the table)."""
    values = [0.5] + [30.0] * 60 + [30.0 + 2.0 * i for i in range(1, 81)] + [190.0, 20.0]
    m = command(values, 190.0)
    words = m.growth.explanation
    wall = float(dict(measurement_table(m).rows)["wall time"].removesuffix(" s"))
    runs = [float(x) for x in re.findall(r"of the (\d+\.\d+) s run", words)]
    assert all(abs(x - wall) < 0.01 for x in runs), (wall, words)
    assert re.search(r"of the \d+\.\d+ s judged", words), words


def test_a_command_judged_whole_has_no_level_rows() -> None:
    m = command([10.0] * 30, 10.0)
    labels = [label for label, _ in measurement_table(m).rows]
    assert "RSS after start-up" in labels  # a level after start-up was found
    assert "RSS before exit" not in labels  # no exit fall: its end is the RSS at end
    assert "10.0 MiB" == dict(measurement_table(m).rows)["RSS at end"]


def _retained(held: float) -> mb.Growth:
    line = mb.Timeline.from_values([50 * MIB] * 5 + [50 * MIB + held] * 30, interval=0.01)
    return mb.classify(
        line, anchors=Anchors.of(50 * MIB, 50 * MIB + held, "VmHWM", 50 * MIB + held)
    )


def _site(nbytes: int) -> PeakSite:
    return PeakSite("prices.py", 9, "load", nbytes, 1.0)


def test_a_line_that_holds_what_was_held_is_named_as_keeping_it() -> None:
    growth = kept_by(_retained(1400 * MIB), (_site(1300 * MIB),), 1400 * MIB)
    assert "held at the end (by prices.py:9 in load)" in growth.explanation


def test_a_line_that_holds_little_of_it_is_named_with_its_own_figure() -> None:
    """1.4 GiB held, the largest line still held at the end holds 1.0 MiB (native memory no
    tracer saw, or pages the allocator kept): the words never say it was held by that line."""
    growth = kept_by(_retained(1400 * MIB), (_site(MIB),), 1400 * MIB)
    assert "(by prices.py" not in growth.explanation
    assert "the largest line still held at the end, prices.py:9 in load, holds 1.0 MiB" in (
        growth.explanation
    )


def test_what_no_traced_allocation_held_is_said_to_be_no_live_object() -> None:
    """A traced run read "+62.6 MiB held at the end (the largest line … holds 2.0 MiB of it)"
    beside an end table of 2.0 MiB in all: the words say what every line held together and
    that the rest was no live allocation."""
    sites = (_site(MIB), PeakSite("other.py", 3, "f", MIB // 2, 1.0))
    growth = kept_by(_retained(62 * MIB), sites, 62 * MIB)
    assert "every line still held at the end holds 1.5 MiB" in growth.explanation
    assert "the rest was no live allocation" in growth.explanation
    # where the lines hold most of it, nothing more is said
    growth = kept_by(_retained(62 * MIB), (_site(40 * MIB), _site(20 * MIB)), 62 * MIB)
    assert "the rest was no live allocation" not in growth.explanation
