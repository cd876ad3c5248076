"""``membound compare FILE | --cmd A --cmd B``: scenarios side by side in fresh processes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import click

from membound.cli.baseline import baseline_options, check_and_record, comparison_entries
from membound.cli.output import (
    DEFAULT_TIMEOUT,
    MESSAGE_CHARS,
    cut_long,
    emit,
    keep_partial,
    output_options,
    progress,
    timeout_option,
    where_option,
)
from membound.judge.compare import compare
from membound.measure.scenarios import load_scenarios
from membound.results.baseline import Baseline

__all__ = ["command"]


@click.command("compare")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--cmd", "cmds", multiple=True, help="A command to compare (repeatable).")
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--heap", is_flag=True, help="Also trace the Python heap (slower).")
@where_option(
    "each scenario's (one more run each with the tracer on, and a second where Python's "
    "object arenas held most of it)",
    end=False,
)
@timeout_option(DEFAULT_TIMEOUT, "each run")
@output_options
@baseline_options
def command(
    file: str | None,
    cmds: tuple[str, ...],
    repeat: int,
    heap: bool,
    where: Literal["python", "native"] | None,
    timeout: float | None,
    json_path: str | None,
    markdown: bool,
    plot_path: str | None,
    html_path: str | None,
    write_baseline: str | None,
    baseline: tuple[str, Baseline] | None,
) -> int:
    """Compare the @membound.scenario functions of FILE, or commands given with --cmd.

    Each run gets a fresh process; runs are interleaved (A B A B …) and reported as medians.
    On Ctrl-C the runs that finished are printed and written (exit 130). With --baseline,
    exit 1 when a scenario's peak rose beyond its noise since the file was recorded.
    """
    if bool(file) == bool(cmds):
        raise click.UsageError("give either a scenarios FILE or one or more --cmd, not both")
    scenarios: Mapping[str, str] | Sequence[str] = load_scenarios(file) if file else list(cmds)
    try:
        runs = (repeat + (1 if where else 0)) * len(scenarios)
        with progress(runs, "compare") as advance:
            result = compare(
                scenarios,
                repeat=repeat,
                heap=heap,
                timeout=timeout,
                on_run=lambda n, i: advance(f"{n} (run {i + 1})"),
                where=where or False,
            )
    except KeyboardInterrupt as stop:
        keep_partial(
            stop, json_path=json_path, markdown=markdown, plot_path=plot_path, html_path=html_path
        )
        raise
    emit(result, json_path=json_path, markdown=markdown, plot_path=plot_path, html_path=html_path)
    failed = [r for r in result.rows if r.outcome != "ok"]
    for r in failed:
        click.echo(f"membound: {cut_long(f'{r.name}: {r.outcome}', MESSAGE_CHARS)}", err=True)
    entries = comparison_entries(result)
    regressed = check_and_record(entries, against=baseline, write=write_baseline)
    return 1 if failed or regressed else 0
