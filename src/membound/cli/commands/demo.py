"""``membound demo``: the seed experiments on an embedded SQLite file, side by side."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from membound._units import format_size
from membound.cli._output import progress, table
from membound.report.chart import chart
from membound.report.json import dumps


@click.command("demo")
@click.option("--rows", type=click.IntRange(min=1000), default=1_000_000, show_default=True)
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="membound-demo",
    show_default=True,
    help="Folder for the JSON, Markdown and PNG files.",
)
def command(rows: int, repeat: int, out: str) -> int:
    """Run the seed experiments (load-all vs OFFSET vs keyset pages on SQLite, list vs range,
    whole-file read vs chunks), each run in a fresh process, and print the comparisons."""
    from membound.demo.runner import DemoGroup, DemoResult, run_demo

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    console = Console()
    summary: list[str] = ["# membound demo", ""]

    def show(result: DemoResult) -> None:
        key, c = result.group.key, result.comparison
        console.print(table(c))
        (folder / f"{key}.json").write_text(dumps(c) + "\n", encoding="utf-8")
        (folder / f"{key}.md").write_text(f"## {result.group.title}\n\n{c.to_markdown()}")
        chart(c, folder / f"{key}.png")
        summary.extend(
            [f"## {result.group.title}", "", c.to_markdown(), f"![{key}]({key}.png)", ""]
        )

    def heading(group: DemoGroup) -> None:
        console.rule(f"[bold]{group.title}")

    with progress(repeat * 7, "demo") as advance:
        results = run_demo(
            rows,
            repeat,
            on_group=heading,
            on_run=lambda name, i: advance(f"{name} (run {i + 1}/{repeat})"),
            on_result=show,
        )
    sql = results[0].comparison
    load_all = sql.rows[0].rss_peak_delta.median
    keyset = sql.rows[2].rss_peak_delta.median
    ratio = load_all / keyset if keyset > 0 else float("inf")
    line = (
        f"load all needed {format_size(load_all)} more at its peak; keyset pages "
        f"{format_size(keyset)}: {ratio:.0f}× less, for the same rows."
    )
    summary.append(line)
    (folder / "summary.md").write_text("\n".join(summary) + "\n", encoding="utf-8")
    click.echo(line)
    click.echo(f"Wrote JSON, Markdown and PNG files to {folder}/")
    return 0
