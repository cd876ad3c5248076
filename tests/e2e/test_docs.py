"""The documentation site's checks (``make docs``, part of ``make test``): the project's own
``mkdocs.yml`` turns a broken internal link or anchor into a failed build, offline; and README
links only to pages that exist."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _build(folder: Path, pages: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Build ``pages`` with the project's theme and validation settings, strictly."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    site = {
        "site_name": "probe",
        "docs_dir": "docs",
        "site_dir": "site",
        "strict": True,
        "theme": config["theme"],
        "validation": config["validation"],
        "markdown_extensions": config["markdown_extensions"],
    }
    (folder / "mkdocs.yml").write_text(yaml.safe_dump(site))
    for name, text in pages.items():
        (folder / "docs" / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / "docs" / name).write_text(text)
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", *_make_docs_arguments()],
        check=False,
        cwd=folder,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def _make_docs_arguments() -> list[str]:
    """The arguments ``make docs`` gives mkdocs (so that a flag such as ``--quiet``, with which
    mkdocs stops counting warnings and ``--strict`` passes a broken link, is caught here)."""
    recipe = re.search(r"^docs:.*\n\t(.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert recipe is not None, "the Makefile has a docs target"
    words = recipe.group(1).split()
    return words[words.index("$(BIN)/mkdocs") + 1 :]


GOOD = {"index.md": "# Home\n\nSee [the guide](guide.md#how).\n", "guide.md": "# Guide\n\n## How\n"}


def test_the_checks_pass_a_site_whose_links_hold(tmp_path: Path) -> None:
    result = _build(tmp_path, GOOD)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("link", "complaint"),
    [
        ("nowhere.md", "contains a link 'nowhere.md', but the target is not found"),
        ("guide.md#no-such-part", "does not contain an anchor '#no-such-part'"),
    ],
)
def test_a_broken_link_or_anchor_fails_the_build(tmp_path: Path, link: str, complaint: str) -> None:
    result = _build(tmp_path, {**GOOD, "index.md": f"# Home\n\nSee [it]({link}).\n"})
    assert result.returncode != 0
    assert complaint in result.stderr
    assert "Aborted with 1 warnings in strict mode" in result.stdout + result.stderr


def test_readme_links_to_pages_that_exist_and_the_site_lists_every_page() -> None:
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert links, "README links to the docs"
    assert [] == [link for link in links if not (ROOT / link).is_file()]
    config = (ROOT / "mkdocs.yml").read_text()
    pages = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    assert [] == sorted(p for p in pages if p not in config), "a page the site's nav leaves out"
