"""``membound scale pkg.mod:func --sizes …``: the memory complexity of ``func(n)``."""

from __future__ import annotations

import math

import click

from membound.cli.output import (
    DEFAULT_TIMEOUT,
    emit,
    keep_partial,
    output_options,
    progress,
    timeout_option,
)

__all__ = ["command"]


def _sizes(text: str) -> list[float]:
    try:
        sizes = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        sizes = []
    if not sizes or not all(math.isfinite(n) and n >= 1 and n == int(n) for n in sizes):
        raise click.BadParameter(
            f"{text!r} is not a comma-separated list of whole sizes >= 1 like 1e3,1e4,1e5",
            param_hint="--sizes",
        )
    return sizes


@click.command("scale")
@click.argument("target")
@click.option("--sizes", default="1e3,1e4,1e5,1e6", show_default=True, help="Sizes n to call with.")
@click.option("--metric", type=click.Choice(["rss", "heap"]), default="rss", show_default=True)
@click.option("--repeat", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--expect", help='Fail (exit 1) unless the verdict is this, e.g. "O(1)".')
@timeout_option(DEFAULT_TIMEOUT, "each run")
@output_options
def command(
    target: str,
    sizes: str,
    metric: str,
    repeat: int,
    expect: str | None,
    timeout: float | None,
    json_path: str | None,
    markdown: bool,
    plot_path: str | None,
    html_path: str | None,
) -> int:
    """Call TARGET ('package.module:function' or 'file.py:function') with each size n, each in a
    fresh interpreter, and fit O(1), O(log n), O(n), O(n log n), O(n^2) to the peaks."""
    from membound.judge.complexity import complexity
    from membound.judge.curves import normalise_big_o

    want = normalise_big_o(expect) if expect else None
    ns = _sizes(sizes)
    try:
        with progress(len(ns) + 2, "scale") as advance:
            result = complexity(
                target,
                sizes=ns,
                metric="heap" if metric == "heap" else "rss",
                repeat=repeat,
                timeout=timeout,
                on_run=lambda n, i: advance(f"n={n:,} (run {i + 1})"),
            )
    except KeyboardInterrupt as stop:
        keep_partial(
            stop, json_path=json_path, markdown=markdown, plot_path=plot_path, html_path=html_path
        )
        raise
    emit(result, json_path=json_path, markdown=markdown, plot_path=plot_path, html_path=html_path)
    if want is not None and result.big_o != want:
        measured = (
            result.big_o
            if result.decided
            else "undecided (too few sizes or levels cleared the noise floor)"
        )
        click.echo(f"membound: expected {want}, measured {measured}", err=True)
        return 1
    return 0
