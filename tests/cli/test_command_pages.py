"""Every subcommand has its docs page, generated from click (docs/cli/<name>.md), in the nav."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import click

from membound.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]


def test_every_subcommand_has_a_generated_page_in_the_nav() -> None:
    names = sorted(cli.list_commands(click.Context(cli)))
    assert len(names) >= 8
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for name in names:
        page = (ROOT / "docs" / "cli" / f"{name}.md").read_text(encoding="utf-8")
        module = re.search(r":module: (\S+)", page)
        attribute = re.search(r":command: (\S+)", page)
        assert module is not None, name
        assert attribute is not None, name
        assert f":prog_name: membound {name}" in page
        documented = getattr(importlib.import_module(module.group(1)), attribute.group(1))
        assert documented is cli.get_command(click.Context(cli), name), name
        assert f"cli/{name}.md" in nav, name
    assert sorted(p.stem for p in (ROOT / "docs" / "cli").glob("*.md")) == names
