"""Where the memory was: a measurement's sites in the terminal, Markdown, JSON and HTML reports
(DESIGN §5 rule 9). Real measurements from ``membound.track`` carry hand-made sites, so each
figure shown can be checked against the site it came from."""

from __future__ import annotations

import io
import json
import math
import os
import re
from dataclasses import dataclass
from html import escape
from html.parser import HTMLParser

import pytest
from rich.console import Console

import membound as mb
from membound.report.json import dumps, loads
from membound.report.terminal import renderable, result_text
from membound.results.sites import OTHER_FILE
from tests.report.sited import (
    HOSTILE_FUNCTION,
    MIB,
    NOTE,
    SOURCE,
    end_site_dicts,
    peak_site_dicts,
    plain_measurement,
    sited,
)
from tests.report.test_html import Page, markdown_rows

PEAK = "Where the memory was at the peak"
END = "Still held at the end"


@pytest.fixture(scope="module")
def plain() -> mb.Measurement:
    return plain_measurement()


@pytest.fixture(scope="module")
def measurement(plain: mb.Measurement) -> mb.Measurement:
    return sited(plain)


def shown_rows(text: str) -> list[list[str]]:
    """The cells of every Markdown-style table row in ``text``."""
    return [
        [c.strip() for c in line.strip().strip("|").split(" | ")]
        for line in text.splitlines()
        if line.startswith("| ")
    ]


def expected_peak_rows() -> list[list[str]]:
    """What each peak site's row must say: share, bytes, where (the file relative to the current
    directory when inside it), the caller."""
    return [
        [f"{64 / 140 * 100:.1f} %", "64.0 MiB", "app/jobs.py:42 load_all", "app/main.py:10"],
        [f"{32 / 140 * 100:.1f} %", "32.0 MiB", "app/util.py:7 copy_rows", "app/main.py:10"],
        [f"{16 / 140 * 100:.1f} %", "16.0 MiB", "app/util.py:7 copy_rows", "app/main.py:12"],
        [
            f"{12 / 140 * 100:.1f} %",
            "12.0 MiB",
            "app/jobs.py:50 fetch → sqlite3Malloc (native)",
            "app/main.py:14",
        ],
        [f"{8 / 140 * 100:.1f} %", "8.0 MiB", f"/elsewhere/evil.py:3 {HOSTILE_FUNCTION}", "-"],
        [f"{6 / 140 * 100:.1f} %", "6.0 MiB", "app/main.py:20 a|b [thread loader]", "-"],
        [f"{2 / 140 * 100:.1f} %", "2.0 MiB", "(other) 9 smaller sites", "-"],
    ]


def test_the_expected_rows_follow_the_sites() -> None:
    """The hand-written expectations agree with the site dicts they describe."""
    for row, site in zip(expected_peak_rows(), peak_site_dicts(), strict=True):
        assert f"{site['share'] * 100:.1f} %" == row[0]
        assert mb.format_size(site["bytes"]) == row[1]


def test_the_terminal_text_shows_every_site_under_the_verdict(
    measurement: mb.Measurement,
) -> None:
    text = result_text(measurement)
    rows = shown_rows(text)
    head = ["share", "bytes", "where", "called from"]
    peak_at = rows.index(head)
    expected = [[c.replace("|", "/") for c in row] for row in expected_peak_rows()]
    assert expected == rows[peak_at + 1 : peak_at + 1 + 7]
    lines = text.splitlines()
    # under the verdict and its sentence, before the table of figures
    assert PEAK == lines[lines.index("") + 1]
    assert lines.index(PEAK) < lines.index(END) < lines.index("| measure | value |")
    assert f"Sites: {SOURCE}." in lines
    assert NOTE in lines
    for site in measurement.peak_sites[:-1]:  # the remainder has no line of its own
        inside = site.file.startswith(os.getcwd() + os.sep)
        shown = os.path.relpath(site.file) if inside else site.file
        assert f"{shown}:{site.line}" in text


def test_the_end_table_keeps_the_five_largest_and_sums_the_rest(
    measurement: mb.Measurement,
) -> None:
    rows = shown_rows(result_text(measurement))
    end_at = [i for i, r in enumerate(rows) if r[0] == "share"][1]
    end_rows = rows[end_at + 1 : end_at + 1 + 6]
    sites = end_site_dicts()
    assert [f"keep.py:{10 + i} keep_{i}" for i in range(5)] == [r[2] for r in end_rows[:5]]
    rest = sites[5:]
    assert [
        f"{sum(s['share'] for s in rest) * 100:.1f} %",
        mb.format_size(sum(s["bytes"] for s in rest)),
        f"{OTHER_FILE} the rest",
        "-",
    ] == end_rows[5]
    assert 6 == len([r for r in rows[end_at + 1 :] if r[0].endswith("%")])


def test_six_named_end_sites_show_five_and_the_rest(plain: mb.Measurement) -> None:
    six = sited(plain, end_sites=end_site_dicts()[:6])
    rows = shown_rows(result_text(six))
    end_at = [i for i, r in enumerate(rows) if r[0] == "share"][1]
    wheres = [r[2] for r in rows[end_at + 1 :] if r[0].endswith("%")]
    assert [*(f"keep.py:{10 + i} keep_{i}" for i in range(5)), "(other) the rest"] == wheres
    five = sited(plain, end_sites=end_site_dicts()[:5])
    rows = shown_rows(result_text(five))
    end_at = [i for i, r in enumerate(rows) if r[0] == "share"][1]
    assert 5 == len([r for r in rows[end_at + 1 :] if r[0].endswith("%")])  # nothing to sum


def test_the_rich_terminal_shows_the_same_tables(measurement: mb.Measurement) -> None:
    console = Console(width=200, record=True, force_terminal=True, color_system=None)
    console.print(renderable(measurement))
    text = console.export_text()
    assert text.index(PEAK) < text.index(END) < text.index("RSS peak")
    peak = text[text.index(PEAK) : text.index(END)]
    rows = [
        [c.strip() for c in line.split("│")[1:-1]]
        for line in peak.splitlines()
        if line.startswith("│")
    ]
    assert expected_peak_rows() == rows
    assert f"Sites: {SOURCE}." in text
    assert NOTE in text


def test_the_markdown_report_has_the_site_tables(measurement: mb.Measurement) -> None:
    md = measurement.to_markdown()
    assert f"**{PEAK}**" in md
    assert f"**{END}**" in md
    rows = shown_rows(md)
    expected = [[c.replace("|", "/") for c in row] for row in expected_peak_rows()]
    assert expected == rows[1:8]
    assert (
        "| 4.3 % | 6.0 MiB | app/main.py:20 a/b [thread loader] | - |" in md
    )  # a | in a cell cannot split it
    assert md.index(PEAK) < md.index("| measure | value |")


def test_json_carries_the_sites_and_reads_them_back(measurement: mb.Measurement) -> None:
    text = dumps(measurement)
    result = json.loads(text)["result"]
    fields = {"file", "line", "function", "bytes", "share", "kind", "trace", "native_symbol"}
    fields.update({"thread", "process"})
    assert all(fields == set(site) for site in result["peak_sites"] + result["end_sites"])
    assert peak_site_dicts() == result["peak_sites"]
    assert SOURCE == result["where_source"]
    assert NOTE == result["where_note"]
    again = loads(text)  # loads checks every field against its annotation
    assert measurement == again


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [("share", "most", "malformed membound result"), ("kind", "banana", "peak_sites[0].kind")],
)
def test_json_with_a_malformed_site_is_refused(
    measurement: mb.Measurement, field: str, value: str, named: str
) -> None:
    doc = json.loads(dumps(measurement))
    doc["result"]["peak_sites"][0][field] = value
    with pytest.raises(mb.MemboundError, match=re.escape(named)):
        loads(json.dumps(doc))


@dataclass(eq=False)
class Drawn:
    """One block of the icicle graph as the page has it."""

    bytes: int
    width: float
    """Percent of the block above (of the whole graph for the top row)."""
    kind: str
    title: str
    parent: Drawn | None
    label: str = ""

    @property
    def name(self) -> str:
        """The label without its figures: ``file:line function``."""
        return self.label.split(" · ")[0]

    @property
    def fraction(self) -> float:
        """The block's width as a fraction of the whole graph: its width times its parents'."""
        above = self.parent.fraction if self.parent is not None else 1.0
        return above * self.width / 100


class Icicle(HTMLParser):
    """The icicle graph's blocks, each with the block above it."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Drawn] = []
        self._stack: list[Drawn | None] = []
        self._label: Drawn | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "div":
            return
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if "mb-node" in classes:
            parents = [b for b in self._stack if b is not None]
            match = re.fullmatch(r"width:([0-9.]+)%", a.get("style") or "")
            assert match, a
            block = Drawn(
                bytes=int(a["data-bytes"] or 0),
                width=float(match.group(1)),
                kind=classes[1],
                title=a.get("title") or "",
                parent=parents[-1] if parents else None,
            )
            self.blocks.append(block)
            self._stack.append(block)
        else:
            if "mb-block" in classes:
                self._label = next(b for b in reversed(self._stack) if b is not None)
            self._stack.append(None)

    def handle_endtag(self, tag: str) -> None:
        if tag == "div":
            self._stack.pop()
            self._label = None

    def handle_data(self, data: str) -> None:
        if self._label is not None:
            self._label.label += data


def test_the_html_icicle_draws_each_block_as_wide_as_its_bytes(
    measurement: mb.Measurement,
) -> None:
    out = io.StringIO()
    mb.report.html(measurement, out)
    graph = Icicle(out.getvalue())
    total = sum(s.bytes for s in measurement.peak_sites)
    assert graph.blocks
    for block in graph.blocks:
        assert math.isclose(block.fraction, block.bytes / total, rel_tol=1e-3), block
    by_name = {b.name: b for b in graph.blocks}
    # the caller shared by two sites is one block, on top, holding both
    shared = [b for b in graph.blocks if b.name == "app/main.py:10"]
    assert 1 == len(shared)
    assert shared[0].parent is None
    assert (64 + 32) * MIB == shared[0].bytes
    children = [b.name for b in graph.blocks if b.parent is shared[0]]
    assert ["app/jobs.py:42 load_all", "app/util.py:7 copy_rows"] == children
    # the helper called from another line is another block under that line's caller
    helper = [b for b in graph.blocks if b.name == "app/util.py:7 copy_rows"]
    assert {"app/main.py:10", "app/main.py:12"} == {b.parent.name for b in helper if b.parent}
    assert 2 == len(helper)
    # a native site ends in its native function, under the line that called it
    native = by_name["sqlite3Malloc (native)"]
    assert "native" == native.kind
    assert native.parent is not None
    assert "app/jobs.py:50 fetch" == native.parent.name
    assert "other" == by_name[f"{OTHER_FILE} 9 smaller sites"].kind
    # labels and tooltips give the size and share
    top = by_name["app/main.py:10"]
    assert f"96.0 MiB, {96 / 140 * 100:.1f} %" in top.label
    assert top.title.startswith("app/main.py:10\n96.0 MiB")


def test_the_html_page_runs_nothing_and_escapes_every_name(
    measurement: mb.Measurement,
) -> None:
    out = io.StringIO()
    mb.report.html(measurement, out)
    text = out.getvalue()
    page = Page(text)
    assert [] == page.open
    assert "<script" not in text.lower()
    assert HOSTILE_FUNCTION not in text
    assert escape(HOSTILE_FUNCTION) in text
    assert "script" not in page.tags
    assert "url(" not in text
    assert "http" not in text.split("<body>", 1)[1].split("<footer>", 1)[0]
    # the table beneath the graph, the same cells as Markdown (where a | shows as /)
    assert markdown_rows(measurement) == [[c.replace("|", "/") for c in row] for row in page.rows]
    assert HOSTILE_FUNCTION in page.all_text  # shown as text


def test_a_notebook_shows_the_icicle_too(measurement: mb.Measurement) -> None:
    text = measurement._repr_html_()
    graph = Icicle(text)
    assert len(graph.blocks) >= 7
    assert ".mb-node" in text  # the graph's style travels with it
    assert "<script" not in text.lower()
    assert HOSTILE_FUNCTION not in text


def test_a_measurement_without_sites_shows_nothing_about_them(plain: mb.Measurement) -> None:
    assert () == plain.peak_sites
    assert None is plain.where_source
    out = io.StringIO()
    mb.report.html(plain, out)
    for text in (result_text(plain), plain.to_markdown(), out.getvalue(), plain._repr_html_()):
        assert "Where the memory" not in text
        assert "Sites:" not in text
        assert 'class="mb-node' not in text


def test_a_capture_that_found_nothing_says_so(plain: mb.Measurement) -> None:
    empty = sited(plain, peak_sites=[], end_sites=[], where_note="")
    text = result_text(empty)
    assert "Where the memory" not in text
    assert f"Sites: {SOURCE}." in text
    assert "No sites: the capture held no traced memory at the peak." in text
    noted = sited(plain, peak_sites=[], end_sites=[], where_source=None, where_note=NOTE)
    assert NOTE in result_text(noted)
    assert NOTE in noted.to_markdown()


def test_only_the_end_sites_make_only_the_end_table(plain: mb.Measurement) -> None:
    ended = sited(plain, peak_sites=[])
    text = result_text(ended)
    assert PEAK not in text
    assert END in text
    out = io.StringIO()
    mb.report.html(ended, out)
    assert 'class="mb-node' not in out.getvalue()  # the graph is of the peak
