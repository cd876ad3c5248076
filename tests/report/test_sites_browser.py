"""The icicle graph of the peak in a real browser: a measurement with sites, written as JSON and
rendered by ``membound report … --html``, opened in headless Chromium. Its blocks are laid out by
the page's CSS alone (no script runs), each as wide as its bytes; the console is clean and the
page requests nothing. The screenshot is kept in ``build/test-artifacts/sites.png``."""

from __future__ import annotations

from pathlib import Path

import pytest

from membound.report.json import dumps
from tests.report.chromium import render_report, visit_cleanly
from tests.report.sited import HOSTILE_FUNCTION, plain_measurement, sited

#: Would load an image and log an error if it reached the page as markup.
HOSTILE = "<img src=x onerror=\"console.error('injected img')\">"
#: Would log an error if it ran (never ``alert``: an open dialog stalls the DevTools session).
SCRIPT = "<script>console.error('injected script')</script>"

PROBE = """(() => {
  const graph = document.querySelector(".mb-icicle > .mb-row");
  const blocks = [...document.querySelectorAll(".mb-node")].map(n => ({
    bytes: Number(n.dataset.bytes),
    width: n.getBoundingClientRect().width,
    y: n.getBoundingClientRect().top,
    parentY: n.parentElement === graph ? null
             : n.parentElement.parentElement.getBoundingClientRect().top,
    height: n.firstElementChild.getBoundingClientRect().height,
    top: n.parentElement === graph,
    parentWidth: n.parentElement.getBoundingClientRect().width,
    parentBytes: n.parentElement === graph ? null
                 : Number(n.parentElement.parentElement.dataset.bytes),
    label: n.firstElementChild.textContent,
  }));
  return {
    graphWidth: graph ? graph.getBoundingClientRect().width : 0,
    blocks,
    scripts: document.scripts.length,
    handlers: document.querySelectorAll("[onerror],[onload],[onclick]").length,
    images: document.images.length,
    cells: [...document.querySelectorAll("td")].map(td => td.textContent),
  };
})()"""


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sites-browser")
    measurement = sited(plain_measurement(), label=f"sites {HOSTILE}")
    sites = [site.to_dict() for site in measurement.peak_sites]
    sites[0]["function"] = HOSTILE
    for site in sites[1:]:
        if site["function"] == HOSTILE_FUNCTION:
            site["function"] = SCRIPT
    measurement = sited(measurement, peak_sites=sites)
    source = folder / "sites.json"
    source.write_text(dumps(measurement))
    return render_report([str(source)], folder / "sites.html")


def test_the_icicle_is_drawn_by_css_alone(page: Path) -> None:
    visit = visit_cleanly(page, PROBE, "sites.png")
    facts = visit.facts
    assert 0 == facts["scripts"]
    assert 0 == facts["handlers"]
    assert 1 == facts["images"]  # the chart; the hostile <img> is text
    assert any(HOSTILE in cell for cell in facts["cells"])
    assert any(SCRIPT in cell for cell in facts["cells"])

    blocks = facts["blocks"]
    assert len(blocks) >= 7
    total = sum(b["bytes"] for b in blocks if b["top"])
    assert facts["graphWidth"] > 500
    for block in blocks:
        assert block["width"] > 0, block
        assert block["height"] > 0, block  # a row of its own, with its label
        above = total if block["top"] else block["parentBytes"]
        expected = block["parentWidth"] * block["bytes"] / above
        assert block["width"] == pytest.approx(expected, abs=1.0), block
        if not block["top"]:
            assert block["y"] > block["parentY"], block  # beneath its caller
    # the outermost frames side by side in one row, not stacked
    assert 1 == len({round(b["y"]) for b in blocks if b["top"]})
    assert any(HOSTILE in b["label"] for b in blocks)
