"""What counts as a batch job for the default policy (MB101/MB102 report whole-table loads
there): command-line commands of click, typer and Flask's CLI too (issue 25: two whole-table
loads in ckan's click commands were reported only with --preview)."""

from __future__ import annotations

import pytest

from membound.lint import lint_source

BODY = "def dump(session):\n    return [u.id for u in session.query(User.id).all()]\n"


@pytest.mark.parametrize(
    ("header", "reported"),
    [
        ("import click\nfrom sqlalchemy.orm import Session\n@click.command()\n", True),
        ("import click\nfrom sqlalchemy.orm import Session\n@cli.command(name='dump')\n", True),
        ("import typer\nfrom sqlalchemy.orm import Session\n@app.command()\n", True),
        ("from flask import Flask\nfrom sqlalchemy.orm import Session\n@app.cli.command()\n", True),
        # a request handler, and a "command" of a library that is no CLI (a chat bot's)
        ("from flask import Flask\nfrom sqlalchemy.orm import Session\n@app.route('/')\n", False),
        ("import discord\nfrom sqlalchemy.orm import Session\n@bot.command()\n", False),
    ],
)
def test_cli_commands_are_batch_jobs(header: str, reported: bool) -> None:
    found = [f for f in lint_source(header + BODY, "app/views.py") if f.code == "MB102"]
    assert reported == bool(found), found
    if reported:
        assert "in the command `dump`" in found[0].message
