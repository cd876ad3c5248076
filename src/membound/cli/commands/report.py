"""``membound report results.json``: render a saved result again."""

from __future__ import annotations

import click

from membound.cli._output import emit


@click.command("report")
@click.argument("results", type=click.Path(dir_okay=False))
@click.option("--markdown", is_flag=True, help="Print a Markdown table.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="Write a PNG chart.")
def command(results: str, markdown: bool, plot_path: str | None) -> int:
    """Show a result saved with --json as a table, Markdown or a PNG chart."""
    from membound.report.json import load

    emit(load(results), json_path=None, markdown=markdown, plot_path=plot_path)
    return 0
