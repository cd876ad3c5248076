"""``membound leaks pkg.mod:func``: call a function many times and hunt what it keeps."""

from __future__ import annotations

import click

from membound.cli.output import (
    DEFAULT_TIMEOUT,
    emit,
    output_options,
    progress_to_total,
    timeout_option,
)

__all__ = ["command"]


@click.command("leaks")
@click.argument("target")
@click.option("--iterations", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--warmup", type=click.IntRange(min=0), default=50, show_default=True)
@click.option("--rounds", type=click.IntRange(min=4), default=10, show_default=True)
@click.option(
    "--tolerance",
    default=None,
    help="Growth per call treated as noise (bytes or a size like '64B'); "
    "by default derived from the noise measured in the run.",
)
@click.option(
    "--isolate/--in-process",
    default=True,
    show_default=True,
    help="Hunt in a fresh interpreter, or in this one.",
)
@timeout_option(DEFAULT_TIMEOUT, "the hunt (exit 2)")
@click.option(
    "--expect-clean", is_flag=True, help="Exit 1 unless the verdict is 'no leak' (undecided too)."
)
@output_options
def command(
    target: str,
    iterations: int,
    warmup: int,
    rounds: int,
    tolerance: str | None,
    isolate: bool,
    timeout: float | None,
    expect_clean: bool,
    json_path: str | None,
    markdown: bool,
    plot_path: str | None,
    html_path: str | None,
) -> int:
    """Call TARGET ('package.module:function' or 'path/file.py:function', no arguments)
    repeatedly and report whether memory is kept per call, what keeps it, and where it is
    allocated."""
    from membound.judge.leaks import find_leaks

    with progress_to_total(rounds, f"leaks in {target}") as on_round:
        report = find_leaks(
            target,
            iterations=iterations,
            warmup=warmup,
            rounds=rounds,
            tolerance=tolerance,
            isolate=isolate,
            timeout=timeout,
            on_round=on_round,
        )
    emit(report, json_path=json_path, markdown=markdown, plot_path=plot_path, html_path=html_path)
    if expect_clean and report.verdict != "no leak":
        click.echo(f"membound: {report.label}: {report.explanation}", err=True)
        return 1
    return 0
