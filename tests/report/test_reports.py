from __future__ import annotations

import functools
import io
import json
from pathlib import Path

import pytest
from PIL import Image

import membound as mb
from membound.report.json import SCHEMA, dumps, load, loads
from membound.report.markdown import MarkdownReporter
from tests.measure import targets

MIB = 2**20


@pytest.fixture(scope="module")
def measurement() -> mb.Measurement:
    return mb.measure(targets.grows, 20)


@pytest.fixture(scope="module")
def comparison() -> mb.Comparison:
    return mb.compare(
        {
            "big": functools.partial(targets.allocate, 50 * MIB),
            "small": functools.partial(targets.allocate, MIB),
        },
        repeat=2,
    )


def test_json_round_trip_of_a_measurement(measurement: mb.Measurement, tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(dumps(measurement))
    doc = json.loads(path.read_text())
    assert SCHEMA == doc["schema"]
    assert "measurement" == doc["type"]
    assert measurement == load(path)


def test_json_round_trip_of_a_comparison(comparison: mb.Comparison) -> None:
    again = loads(dumps(comparison))
    assert isinstance(again, mb.Comparison)
    assert comparison.to_dict() == again.to_dict()


def test_json_keys_are_stable(measurement: mb.Measurement) -> None:
    keys = set(json.loads(dumps(measurement))["result"])
    for key in (
        "label",
        "duration_s",
        "rss_start",
        "rss_end",
        "rss_peak",
        "rss_peak_delta",
        "heap_current",
        "heap_peak",
        "gc_collections",
        "gc_pause_s",
        "timeline",
        "growth",
    ):
        assert key in keys


@pytest.mark.parametrize("text", ["not json", '{"schema": "other/9"}', "[1, 2]"])
def test_loads_rejects_foreign_documents(text: str) -> None:
    with pytest.raises(mb.MemboundError):
        loads(text)


def test_markdown_tables(measurement: mb.Measurement, comparison: mb.Comparison) -> None:
    md = measurement.to_markdown()
    assert "| Δ peak RSS |" in md
    assert "1 MiB = 2^20 bytes" in md
    table = comparison.to_markdown().splitlines()
    assert table[0].startswith("| scenario | peak RSS | Δ peak RSS |")
    assert table[2].startswith("| big |")
    assert table[3].startswith("| small |")
    out = io.StringIO()
    MarkdownReporter(comparison).render(out)
    assert out.getvalue() == comparison.to_markdown()


@pytest.mark.parametrize("which", ["measurement", "comparison"])
def test_png_is_a_valid_image(
    which: str,
    measurement: mb.Measurement,
    comparison: mb.Comparison,
    tmp_path: Path,
) -> None:
    result = measurement if which == "measurement" else comparison
    path = tmp_path / "chart.png"
    mb.report.chart(result, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.size[0] >= 600
        assert img.size[1] >= 300


def test_the_heap_tracing_cost_printed_is_the_benchmarks() -> None:
    """The slowdown quoted beside heap figures comes from ``make bench`` (overhead.json)."""
    from membound.report.sections import HEAP_TRACING_SLOWDOWN, MEMRAY_TRACING_SLOWDOWN

    root = Path(__file__).resolve().parents[2]
    doc = json.loads((root / "benchmarks" / "results" / "overhead.json").read_text())
    measured = doc["variants"]["track(heap=True)"]["median_ratio_vs_plain"]
    assert round(measured, 1) == HEAP_TRACING_SLOWDOWN
    memray = doc["variants"]["track(heap='memray')"]["median_ratio_vs_plain"]
    assert round(memray, 1) == MEMRAY_TRACING_SLOWDOWN


def test_the_heap_cost_note_keeps_its_units() -> None:
    """The sentence is capitalised, not lowered: "MiB" and "RSS" stay as written."""
    comparison = mb.compare(
        {"a": functools.partial(targets.allocate, 2**20)}, repeat=1, isolate=False, heap=True
    )
    from membound.report.sections import comparison_note

    note = comparison_note(comparison)
    assert "Tracemalloc's own memory, up to " in note
    assert "RSS figures" in note
    assert "iB" in note.split("up to ", 1)[1].split(",")[0]


def test_a_command_has_no_rss_at_start_and_says_so() -> None:
    """A command starts from nothing: its "RSS at start" is not a reading of 0 B."""
    import sys

    from membound.report.sections import measurement_table

    m = mb.measure_command([sys.executable, "-c", "x = bytearray(8 * 2**20)"])
    cells = dict(measurement_table(m).rows)
    assert cells["RSS at start"] == "none: the command starts from nothing (Δ peak RSS is its peak)"
    assert m.rss_peak_delta == m.rss_peak


def test_the_chart_of_a_block_counts_time_from_the_blocks_start() -> None:
    """The chart's time axis starts at the block's start. A block begins once the sampler has
    taken its first sample, so its points start there; a timeline whose sampling began later
    (the sampler took longer than its wait to start) is drawn that much later."""
    import dataclasses
    import time

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from membound.report.chart import plot_timeline
    from membound.results.timeline import STARTED_AFTER

    with mb.track("block") as t:
        time.sleep(0.1)
    m = t.result
    assert m is not None
    assert STARTED_AFTER not in m.timeline.extra
    late = dataclasses.replace(m.timeline, extra={**m.timeline.extra, STARTED_AFTER: 0.25})
    for timeline, offset in ((m.timeline, 0.0), (late, 0.25)):
        fig, ax = plt.subplots()
        plot_timeline(ax, timeline, m.label)
        xs = ax.get_lines()[0].get_xdata()
        assert xs[0] == pytest.approx(offset + timeline.times[0])
        plt.close(fig)
