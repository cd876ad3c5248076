"""The HTML report in a real browser: ``membound report … --html`` rendered by headless Chromium
(Debian's, installed by ``.ci/run``), its DOM and console read over the DevTools protocol. Every
chart and table is there and drawn, the console is clean, the page makes no request, user text is
inert. The page's screenshot is kept in ``build/test-artifacts/``."""

from __future__ import annotations

import functools
import io
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

import membound as mb
from membound.report.json import dumps
from tests.judge import leak_targets, scaling_targets
from tests.measure import targets
from tests.report.chromium import render_report, visit_cleanly

MIB = 2**20
#: User text that would run, load or restyle something if it reached the page unescaped.
HOSTILE = (
    "<script>console.error('injected script')</script>"
    "<img src=x onerror=\"console.error('injected img')\"> & </section>"
)

PROBE = """({
  sections: document.querySelectorAll("section").length,
  tables: [...document.querySelectorAll("section")].map(s => s.querySelectorAll("table").length),
  rows: document.querySelectorAll("tbody tr").length,
  images: [...document.images].map(i => ({complete: i.complete, width: i.naturalWidth,
                                          height: i.naturalHeight})),
  scripts: document.scripts.length,
  handlers: document.querySelectorAll("[onerror],[onload],[onclick]").length,
  headings: [...document.querySelectorAll("h2")].map(h => h.textContent),
  width: document.documentElement.scrollWidth,
  viewport: window.innerWidth,
})"""


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four real results, each labelled with hostile text, written as JSON and rendered by the
    CLI into one page."""
    folder = tmp_path_factory.mktemp("browser")
    results = [
        mb.measure(targets.allocate, 20 * MIB, heap=True),
        mb.compare(
            {
                HOSTILE: functools.partial(targets.allocate, 30 * MIB),
                "small": functools.partial(targets.allocate, MIB),
            },
            repeat=1,
        ),
        # An O(1) function: its points are about 0 B, which a log axis cannot show.
        mb.complexity(scaling_targets.const_sum, sizes=(10**3, 10**4, 10**5), repeat=1),
        mb.find_leaks(
            leak_targets.session_per_request, iterations=200, warmup=20, rounds=6, label=HOSTILE
        ),
    ]
    results[0] = replace(results[0], label=HOSTILE)
    paths = []
    for i, result in enumerate(results):
        path = folder / f"r{i}.json"
        path.write_text(dumps(result))
        paths.append(str(path))
    return render_report(paths, folder / "report.html")


def test_the_report_renders_cleanly_in_chromium(page: Path) -> None:
    # the page itself, and nothing else: no script, stylesheet, font or image fetched
    visit = visit_cleanly(page, PROBE, "report.png")
    facts = visit.facts

    assert 4 == facts["sections"]
    assert all(n >= 1 for n in facts["tables"]), facts["tables"]
    assert 4 == len(facts["images"])  # one chart per result
    for image in facts["images"]:
        assert image["complete"]
        assert image["width"] >= 600  # decoded: a broken image has no natural size
        assert image["height"] >= 300
    # the hostile text is shown as text: nothing ran, nothing was added to the page
    assert 0 == facts["scripts"]
    assert 0 == facts["handlers"]
    assert any(HOSTILE in h for h in facts["headings"]), facts["headings"]
    assert facts["width"] <= facts["viewport"]  # long labels wrap: no sideways scrolling

    shot = Image.open(io.BytesIO(visit.png))
    assert shot.size[0] >= 1000
    assert shot.size[1] > 900  # the whole page, beyond the first screen
    assert len(shot.convert("L").getcolors(1 << 16) or []) > 50  # charts drawn, not a blank


def test_a_log_axis_does_not_stretch_to_zero_byte_points() -> None:
    """Points of 0 B cannot sit on a log axis: clamped to one byte they once pulled it down to
    10⁻⁶ MiB. They are marked at the axis's bottom edge instead, and flat series get a linear
    axis; tick labels are plain numbers, never raw ``$10^k$`` markup."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from membound.report.chart import _complexity

    grows = mb.complexity(scaling_targets.linear_list, sizes=(10**4, 10**5, 10**6), repeat=1)
    smallest = min(p.value for p in grows.points) / MIB
    with_zero = replace(grows, points=(replace(grows.points[0], value=0.0), *grows.points[1:]))
    with plt.rc_context({"text.parse_math": False}):  # as chart() draws
        fig = _complexity(plt, with_zero)
        fig.canvas.draw()
    ax = fig.axes[0]
    assert "log" == ax.get_yscale()
    low, _ = ax.get_ylim()
    assert low >= min(p.value for p in grows.points[1:]) / MIB / 10 > smallest / 1000
    labels = [t.get_text() for t in ax.get_yticklabels() + ax.get_xticklabels()]
    assert not any("$" in t or "mathdefault" in t for t in labels), labels
    assert "0 B or less (below the axis)" in ax.get_legend_handles_labels()[1]
    plt.close(fig)

    flat = replace(grows, points=tuple(replace(p, value=4096.0) for p in grows.points))
    fig = _complexity(plt, flat)
    assert "linear" == fig.axes[0].get_yscale()  # 4 KiB at every size: no decades to span
    plt.close(fig)
