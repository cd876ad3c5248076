"""``membound run -- CMD…``: measure any command and its whole process tree."""

from __future__ import annotations

import shlex
from typing import Literal

import click

from membound._errors import TargetError
from membound.cli.baseline import baseline_options, check_and_record, measurement_entry
from membound.cli.output import (
    MESSAGE_CHARS,
    cut_long,
    emit,
    live_memory,
    output_options,
    timeout_option,
    where_option,
)
from membound.measure.isolate.command import measure_command
from membound.measure.isolate.outcome import check_interval, parse_limit
from membound.results.baseline import Baseline

__all__ = ["command"]


def _interval(ctx: click.Context, param: click.Parameter, value: float) -> float:
    try:
        check_interval(value)
    except TargetError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    return value


@click.command(
    "run",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.option("--limit", help="Kill the command when its tree's RSS crosses this, e.g. 512MB.")
@timeout_option(None, "the command (no limit unless given)")
@click.option(
    "--heap",
    type=click.Choice(["tracemalloc", "memray"]),
    is_flag=False,
    flag_value="tracemalloc",
    default=None,
    help="For Python commands: also measure the heap; --heap is tracemalloc, --heap=memray "
    "counts native allocations too (the memray extra).",
)
@where_option("the command's")
@click.option(
    "--interval",
    type=float,
    default=0.01,
    show_default=True,
    callback=_interval,
    help="Seconds per sample (0.001 to 60).",
)
@output_options
@baseline_options
@click.argument("cmd", nargs=-1, required=True, type=click.UNPROCESSED)
def command(
    cmd: tuple[str, ...],
    limit: str | None,
    timeout: float | None,
    heap: Literal["tracemalloc", "memray"] | None,
    where: Literal["python", "native"] | None,
    interval: float,
    json_path: str | None,
    markdown: bool,
    plot_path: str | None,
    html_path: str | None,
    write_baseline: str | None,
    baseline: tuple[str, Baseline] | None,
) -> int:
    """Run CMD (after '--') and report its memory: peak RSS, growth, exit code.

    Exit code 0 when the command succeeds within its limits, 1 when it fails, is killed,
    crosses --limit/--timeout or its peak rose beyond the --baseline's noise, 2 for usage
    errors.
    """
    with live_memory(shlex.join(cmd), parse_limit(limit)) as on_progress:
        result = measure_command(
            list(cmd),
            limit=limit,
            timeout=timeout,
            interval=interval,
            heap=heap or False,
            on_progress=on_progress,
            where=where or False,
        )
    emit(result, json_path=json_path, markdown=markdown, plot_path=plot_path, html_path=html_path)
    if not result.ok:
        detail = cut_long(f"{result.label}: {result.outcome_detail}", MESSAGE_CHARS)
        click.echo(f"membound: {detail}", err=True)
        return 1
    entry = {shlex.join(cmd): measurement_entry(result)}
    regressed = check_and_record(entry, against=baseline, write=write_baseline)
    return 1 if regressed else 0
