"""The HTML page: one section per real result, escaped text, Markdown's cells, embedded PNGs."""

from __future__ import annotations

import base64
import functools
import importlib
import io
import subprocess
import sys
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

import membound as mb
from membound.report.html import HtmlReporter
from tests.judge import leak_targets, scaling_targets
from tests.measure import targets

MIB = 2**20
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DATA_URI = "data:image/png;base64,"
SCRIPT = "<script>alert('x')</script>"
VOID = {"meta", "img", "br", "hr", "link", "input"}
Result = mb.Measurement | mb.Comparison | mb.Complexity | mb.LeakReport


class Page(HTMLParser):
    """Parses a page and keeps what the tests look at: tags, text, table rows, images."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []
        self.rows: list[list[str]] = []
        self.imgs: list[dict[str, str | None]] = []
        self.sections = 0
        self._cell: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "img":
            self.imgs.append(dict(attrs))
        if tag == "section":
            self.sections += 1
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self._cell = []
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open, f"</{tag}> closes nothing"
        assert tag == self.open.pop(), f"</{tag}> closes the wrong element"
        if tag in ("td", "th"):
            assert self._cell is not None
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    @property
    def all_text(self) -> str:
        return "".join(self.text)


def markdown_rows(result: Result) -> list[list[str]]:
    """Header and body rows of every table in the result's Markdown report."""
    return [
        line.strip().strip("|").strip().split(" | ")
        for line in result.to_markdown().splitlines()
        if line.startswith("| ")
    ]


def render(results: Result | list[Result]) -> tuple[str, Page]:
    out = io.StringIO()
    mb.report.html(results, out)
    text = out.getvalue()
    return text, Page(text)


def assert_png(src: str | None) -> None:
    assert src is not None
    assert src.startswith(DATA_URI)
    png = base64.b64decode(src[len(DATA_URI) :], validate=True)
    assert PNG_SIGNATURE == png[:8]
    with Image.open(io.BytesIO(png)) as img:
        img.verify()


@pytest.fixture(scope="module")
def measurement() -> mb.Measurement:
    return mb.measure(targets.grows, 20)


@pytest.fixture(scope="module")
def comparison() -> mb.Comparison:
    return mb.compare(
        {
            "big": functools.partial(targets.allocate, 50 * MIB),
            f"small {SCRIPT}": functools.partial(targets.allocate, MIB),
        },
        repeat=2,
    )


@pytest.fixture(scope="module")
def complexity() -> mb.Complexity:
    return mb.complexity(scaling_targets.linear_list, sizes=(10**3, 10**4, 10**5))


@pytest.fixture(scope="module")
def leaks() -> mb.LeakReport:
    return mb.find_leaks(
        leak_targets.session_per_request, iterations=200, warmup=20, rounds=6, label=SCRIPT
    )


def verdict_of(result: Result) -> str:
    if isinstance(result, mb.Measurement):
        return result.growth.pattern
    if isinstance(result, mb.Comparison):
        return "lowest Δ peak RSS"
    if isinstance(result, mb.Complexity):
        return result.big_o
    return "LEAK" if result.leaking else "no leak"


def label_of(result: Result) -> str:
    if isinstance(result, mb.Comparison):
        return result.rows[-1].name
    return result.label


@pytest.mark.parametrize("which", ["measurement", "comparison", "complexity", "leaks"])
def test_one_section_per_result_type(which: str, request: pytest.FixtureRequest) -> None:
    result: Result = request.getfixturevalue(which)
    text, page = render(result)
    assert [] == page.open  # every element closed, in order
    assert 1 == page.sections
    label = label_of(result)
    assert escape(label) in text
    assert label in page.all_text
    assert verdict_of(result) in page.all_text
    assert markdown_rows(result) == page.rows
    assert 1 == len(page.imgs)
    assert_png(page.imgs[0]["src"])


@pytest.mark.parametrize("which", ["measurement", "comparison", "complexity", "leaks"])
def test_every_result_shows_itself_in_a_notebook(
    which: str, request: pytest.FixtureRequest
) -> None:
    result: Result = request.getfixturevalue(which)
    text = result._repr_html_()
    page = Page(text)
    assert [] == page.open
    assert "script" not in page.tags  # the labels are escaped here too
    assert label_of(result) in page.all_text
    assert verdict_of(result) in page.all_text
    assert markdown_rows(result) == page.rows
    assert_png(page.imgs[0]["src"])  # matplotlib is installed: the chart is inline
    printed: list[str] = []
    result._repr_pretty_(type("P", (), {"text": lambda _, t: printed.append(t)})(), False)
    assert [result.to_markdown()] == printed


def test_a_partition_report_shows_itself_in_a_notebook() -> None:
    from membound.bound.sql.partition.run import PartitionReport, RangeReport

    ranges = (
        RangeReport(None, "a|<b>", 10, 12, 0, 1, 0.5, 2**20, True),
        RangeReport("a|<b>", None, 5, 4, 1, 0, None, None, False),
    )
    report = PartitionReport(f"job {SCRIPT}", ranges, 15, 16, 1, 1, 2.0, "in-process")
    page = Page(report._repr_html_())
    assert "script" not in page.tags
    assert f"job {SCRIPT}" in page.all_text
    assert ["'a|<b>'", "None", "5", "4", "1", "0", "—", "—", "no"] == page.rows[-1]
    assert 3 == len(page.rows)


def test_the_leak_verdict_its_sites_and_chain(leaks: mb.LeakReport) -> None:
    assert leaks.leaking
    _, page = render(leaks)
    cells = [cell for row in page.rows for cell in row]
    assert f"{leaks.sites[0].file}:{leaks.sites[0].line}" in cells
    assert "tests.judge.leak_targets.Session" in cells
    assert "Kept alive by: " + " → ".join(leaks.chain) in page.all_text


def test_the_complexity_points_are_in_the_table(complexity: mb.Complexity) -> None:
    _, page = render(complexity)
    ns = [row[0] for row in page.rows[1:]]
    assert ["1,000", "10,000", "100,000"] == ns
    assert [mb.format_size(p.value) for p in complexity.points] == [r[1] for r in page.rows[1:]]


def test_labels_are_escaped(comparison: mb.Comparison, leaks: mb.LeakReport) -> None:
    text, page = render([comparison, leaks])
    assert "script" not in page.tags
    assert SCRIPT not in text
    assert escape(SCRIPT) in text
    assert page.all_text.count(SCRIPT) >= 2


def test_several_results_make_one_page(
    measurement: mb.Measurement,
    comparison: mb.Comparison,
    complexity: mb.Complexity,
    leaks: mb.LeakReport,
    tmp_path: Path,
) -> None:
    path = tmp_path / "report.html"
    results: list[Result] = [measurement, comparison, complexity, leaks]
    mb.report.html(results, path)
    text = path.read_text(encoding="utf-8")
    page = Page(text)
    assert 4 == page.sections
    assert 4 == len(page.imgs)
    for img in page.imgs:
        assert_png(img["src"])
    for i in range(1, 5):
        assert f'href="#result-{i}"' in text
        assert f'id="result-{i}"' in text
    # self-contained: nothing is fetched from elsewhere
    assert not {"script", "link", "iframe"} & set(page.tags)
    assert all(img["src"] and img["src"].startswith("data:") for img in page.imgs)
    assert 'src="http' not in text
    assert 'href="http' not in text
    assert "url(" not in text


def test_reporter_class_and_function_write_the_same_page(
    measurement: mb.Measurement, tmp_path: Path
) -> None:
    out = io.StringIO()
    HtmlReporter(measurement).render(out)
    path = tmp_path / "m.html"
    mb.report.html([measurement], path)
    assert out.getvalue() == path.read_text(encoding="utf-8")


def test_without_matplotlib_the_chart_is_left_out(
    complexity: mb.Complexity, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    text, page = render(complexity)
    assert [] == page.imgs
    assert "Chart left out" in page.all_text
    assert "pip install &#x27;membound[plot]&#x27;" in text
    assert complexity.big_o in page.all_text


def test_unwritable_path_raises_and_writes_nothing(
    measurement: mb.Measurement, tmp_path: Path
) -> None:
    path = tmp_path / "missing-dir" / "out.html"
    with pytest.raises(OSError, match="No such file"):
        mb.report.html(measurement, path)
    assert not path.parent.exists()


@pytest.mark.parametrize(
    ("results", "error"),
    [([], ValueError), ([{"label": "x"}], TypeError), ("not a result", TypeError)],
)
def test_rejects_what_is_not_a_result(results: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        mb.report.html(results, io.StringIO())  # type: ignore[arg-type]


def test_mb_report_html_is_the_function() -> None:
    module = importlib.import_module("membound.report.html")
    assert module.html is mb.report.html
    assert "html" in mb.report.__all__


def test_importing_membound_does_not_import_matplotlib() -> None:
    code = "import sys, membound; print('matplotlib' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "False" == out.stdout.strip()
