"""``membound leaks pkg.mod:func``: call a function many times and hunt what it keeps."""

from __future__ import annotations

import click

from membound.cli._output import emit, output_options


@click.command("leaks")
@click.argument("target")
@click.option("--iterations", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--warmup", type=click.IntRange(min=0), default=50, show_default=True)
@click.option("--rounds", type=click.IntRange(min=2), default=10, show_default=True)
@click.option(
    "--tolerance", default="64", show_default=True, help="Bytes per call treated as noise."
)
@click.option("--expect-clean", is_flag=True, help="Exit 1 when a leak is found.")
@output_options
def command(
    target: str,
    iterations: int,
    warmup: int,
    rounds: int,
    tolerance: str,
    expect_clean: bool,
    json_path: str | None,
    markdown: bool,
    plot_path: str | None,
) -> int:
    """Call TARGET ('package.module:function', no arguments) repeatedly in this process and
    report whether memory grows per call, where it is allocated, and what keeps it alive."""
    from membound.judge.leaks import find_leaks

    report = find_leaks(
        target, iterations=iterations, warmup=warmup, rounds=rounds, tolerance=tolerance
    )
    emit(report, json_path=json_path, markdown=markdown, plot_path=plot_path)
    if expect_clean and report.leaking:
        click.echo(f"membound: {report.label}: {report.explanation}", err=True)
        return 1
    return 0
