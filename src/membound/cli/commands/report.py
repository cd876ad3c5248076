"""``membound report results.json …``: render saved results again, or as one HTML page."""

from __future__ import annotations

import click

from membound.cli.output import Outputs, print_result, writable_path

__all__ = ["command"]


@click.command("report")
@click.argument("results", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--markdown", is_flag=True, help="Print Markdown tables.")
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    callback=writable_path,  # refused before the tables are printed, as `run` refuses it
    help="Write a PNG chart (one file).",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False),
    callback=writable_path,
    help="Write one self-contained HTML page of every result.",
)
def command(
    results: tuple[str, ...], markdown: bool, plot_path: str | None, html_path: str | None
) -> int:
    """Show results saved with --json as tables, Markdown, a PNG chart or an HTML page."""
    from membound.report.json import load

    if plot_path and len(results) > 1:
        raise click.UsageError("--plot draws one results file; use --html for several")
    # Every file is read before anything is printed, so a bad one stops the command cleanly.
    loaded = [load(path) for path in results]
    # The files first, so that a closed stdout cannot lose them; one that cannot be written is
    # named after the tables are printed (Outputs.finish).
    files = Outputs()
    if html_path:
        files.html(loaded, html_path)
    if plot_path:
        files.chart(loaded[0], plot_path)
    # With --html the page is the output; tables go to stdout only when asked for (--markdown)
    # or when nothing else was asked for.
    if markdown or not html_path:
        for i, result in enumerate(loaded):
            if i:
                click.echo()
            print_result(result, markdown=markdown)
    files.finish()
    return 0
