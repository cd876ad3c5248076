"""The documentation site as a reader opens it: built by ``mkdocs build --strict`` (what
``make docs`` runs) and opened from disk (``file://``) in headless Chromium, where its search
must still find pages (the ``offline`` plugin: the index is a script, not a fetch)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.report.chromium import Browser, chromium_path

ROOT = Path(__file__).resolve().parents[1]
# One worker runs them all: the site is built once (the module's fixture), not once in every
# xdist worker that gets one of its tests (about 13 s of CPU a build).
pytestmark = pytest.mark.xdist_group("docs-site")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site as ``make docs`` builds it: ``--strict``, not ``--quiet`` (mkdocs then stops
    counting warnings, and ``--strict`` passes a broken link or anchor)."""
    folder = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(folder)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
    )
    assert 0 == done.returncode, done.stderr[-3000:]
    return folder


def search_results(page: str, query: str) -> tuple[list[str], list[str]]:
    """The titles the site's search lists for ``query`` when a reader opens ``page`` from disk,
    opens the search and types; and the URLs of the requests that were not files."""
    executable = chromium_path()
    assert executable, "chromium is needed (the CI script installs Debian's chromium)"
    type_query = (
        "(() => { document.querySelector('label[for=\"__search\"]').click();"
        " const box = document.querySelector('.md-search__input'); box.focus();"
        f" box.value = {json.dumps(query)};"
        " box.dispatchEvent(new KeyboardEvent('keyup', {key: 'g'}));"
        " box.dispatchEvent(new Event('input', {bubbles: true})); })()"
    )
    probe = (
        "[...document.querySelectorAll('.md-search-result__item h1, "
        ".md-search-result__item h2')].map(e => e.textContent.trim())"
    )
    with Browser(executable) as browser:
        s = browser.session
        for domain in ("Page", "Runtime", "Network"):
            browser.call(f"{domain}.enable", s)
        browser.call("Page.navigate", s, url=page)
        browser.wait_for("Page.loadEventFired")
        browser.call("Runtime.evaluate", s, expression=type_query)
        deadline = time.monotonic() + 30
        found: list[str] = []
        while time.monotonic() < deadline and not found:
            time.sleep(0.2)
            value = browser.call("Runtime.evaluate", s, expression=probe, returnByValue=True)
            found = value["result"].get("value") or []
        remote = [
            m["params"]["request"]["url"]
            for m in browser.events
            if m.get("method") == "Network.requestWillBeSent"
            and not m["params"]["request"]["url"].startswith(("file:", "data:"))
        ]
    return found, remote


def test_search_finds_pages_from_disk(site: Path) -> None:
    titles, remote = search_results((site / "index.html").as_uri(), "watchdog")
    assert titles, "the search listed nothing for 'watchdog' on a site opened from disk"
    assert any("watchdog" in title.lower() for title in titles), json.dumps(titles)
    assert [] == remote  # nothing fetched from the network


def test_every_command_has_its_page_on_the_site(site: Path) -> None:
    for name in ("compare", "demo", "leaks", "lint", "report", "run", "scale", "watch"):
        html = (site / "cli" / f"{name}.html").read_text(encoding="utf-8")
        assert f"membound {name}" in html
        assert "--help" in html  # the options table, from click


def test_the_site_builds_with_no_warning(site: Path) -> None:
    """``make test`` checks the site here (``make docs`` is the same build): a broken link or
    anchor, or a docstring the API reference cannot render, fails the build in the fixture."""
    assert (site / "index.html").is_file()
    assert (site / "search" / "search_index.json").is_file()
