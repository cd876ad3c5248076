"""Shared output for subcommands: terminal tables, ``--json``, ``--markdown`` and ``--plot``."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from membound._units import SIZE_CONVENTION, format_size
from membound.judge.compare import Comparison, Spread
from membound.judge.complexity import Complexity
from membound.judge.leaks import LeakReport
from membound.measure.result import Measurement

__all__ = ["emit", "output_options", "progress", "table"]

Result = Measurement | Comparison | Complexity | LeakReport


def _writable(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Check an output path before the run, so that a long measurement is not lost at the end."""
    if value is None:
        return None
    folder = Path(value).resolve().parent
    if not folder.is_dir():
        raise click.BadParameter(f"folder {folder} does not exist", ctx=ctx, param=param)
    if not os.access(folder, os.W_OK):
        raise click.BadParameter(f"folder {folder} is not writable", ctx=ctx, param=param)
    return value


def output_options(func: Any) -> Any:
    """The ``--json PATH``, ``--markdown`` and ``--plot PATH`` options."""
    func = click.option(
        "--plot",
        "plot_path",
        type=click.Path(dir_okay=False),
        callback=_writable,
        help="Write a PNG chart here.",
    )(func)
    func = click.option(
        "--markdown", is_flag=True, help="Print a Markdown table instead of a terminal table."
    )(func)
    func = click.option(
        "--json",
        "json_path",
        type=click.Path(dir_okay=False),
        callback=_writable,
        help="Write the JSON result here.",
    )(func)
    return func


def _spread(s: Spread | None, signed: bool = False) -> str:
    if s is None:
        return "-"
    text = format_size(s.median, signed=signed)
    dev = max(s.high - s.median, s.median - s.low)
    if dev > 0:
        text += f"\n[dim]±{format_size(dev)}[/]"
    return text


def _complexity_table(c: Complexity) -> Table:
    what = "Δ peak RSS" if c.metric == "rss" else "heap peak"
    t = Table(
        title=f"{c.label}: [bold]{c.big_o}[/] (confidence {c.confidence:.2f})",
        caption=f"{c.explanation}\nwall time: {c.time_explanation}",
    )
    for col in ("n", what, "wall", "runs"):
        t.add_column(col, justify="right")
    for p in c.points:
        t.add_row(f"{p.n:,}", format_size(p.value), f"{p.seconds:.3f} s", str(p.runs))
    return t


def _leak_table(r: LeakReport) -> Table:
    verdict = "[red bold]LEAK[/]" if r.leaking else "[green]no leak[/]"
    t = Table(title=f"{r.label}: {verdict}", caption=r.explanation)
    t.add_column("where / what")
    t.add_column("per call", justify="right")
    for s in r.sites[:8]:
        t.add_row(f"{s.file}:{s.line}", f"{s.bytes_per_call:.0f} B")
    for g in r.types[:8]:
        t.add_row(g.type_name, f"+{g.per_call:.2f} objects")
    if r.chain:
        t.add_row("kept alive by " + " → ".join(r.chain), "")
    t.add_row("heap growth in the late rounds", f"{r.bytes_per_call:.1f} B")
    t.add_row("objects freed only by the cyclic GC", f"{r.cycles_per_call:.2f}")
    return t


def table(result: Result) -> Table:
    """A rich table of ``result``."""
    if isinstance(result, Complexity):
        return _complexity_table(result)
    if isinstance(result, LeakReport):
        return _leak_table(result)
    if isinstance(result, Measurement):
        t = Table(title=result.label, show_header=False, caption=f"Sizes: {SIZE_CONVENTION}")
        t.add_column(style="bold")
        t.add_column()
        rows = [
            (
                "outcome",
                result.outcome + (f" — {result.outcome_detail}" if result.outcome_detail else ""),
            ),
            ("wall time", f"{result.duration_s:.3f} s"),
            ("RSS at start", format_size(result.rss_start)),
            ("RSS peak", f"{format_size(result.rss_peak)}  [dim]({result.rss_peak_source})[/]"),
            ("Δ peak RSS", format_size(result.rss_peak_delta, signed=True)),
            ("RSS at end", format_size(result.rss_end)),
            ("heap peak", format_size(result.heap_peak)),
            ("growth", result.growth.explanation),
        ]
        if result.exit_code is not None and result.kind == "command":
            rows.insert(1, ("exit code", str(result.exit_code)))
        if result.gc_collections is not None:
            pause_ms = (result.gc_pause_s or 0) * 1000
            rows.append(
                (
                    "GC",
                    f"{result.gc_collections} collections, {pause_ms:.1f} ms",
                )
            )
        for k, v in rows:
            t.add_row(k, v)
        return t
    t = Table(
        caption=(
            f"Medians of {result.repeat} interleaved runs (± the farthest run from the median), "
            f"{'a fresh process per run' if result.isolated else 'one process'}. "
            f"Sizes: {SIZE_CONVENTION}."
        )
    )
    for col in ("scenario", "peak RSS", "Δ peak", "heap peak", "wall", "growth", "vs first"):
        t.add_column(
            col,
            justify="left" if col in ("scenario", "growth") else "right",
            overflow="fold",  # long command lines wrap instead of being cut to "…"
        )
    for r in result.rows:
        wall = f"{r.duration_s.median:.2f} s"
        t.add_row(
            r.name + ("" if r.outcome == "ok" else f"\n[red]{r.outcome}[/]"),
            _spread(r.rss_peak),
            _spread(r.rss_peak_delta, signed=True),
            _spread(r.heap_peak),
            wall,
            r.growth,
            "-" if r.ratio is None else f"{r.ratio:.2f}×",
        )
    return t


def emit(result: Result, *, json_path: str | None, markdown: bool, plot_path: str | None) -> None:
    """Print ``result`` and write the files asked for."""
    if markdown:
        click.echo(result.to_markdown(), nl=False)
    else:
        Console().print(table(result))
    if json_path:
        from membound.report.json import dumps

        Path(json_path).write_text(dumps(result) + "\n", encoding="utf-8")
        click.echo(f"wrote {json_path}", err=True)
    if plot_path:
        from membound.report.chart import chart

        chart(result, plot_path)
        click.echo(f"wrote {plot_path}", err=True)


@contextlib.contextmanager
def progress(total: int, what: str) -> Iterator[Any]:
    """A progress bar on stderr (only on a terminal); yields ``advance(description)``."""
    console = Console(stderr=True)
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal or not sys.stderr.isatty(),
    )
    with bar:
        task = bar.add_task(what, total=total)
        started = False

        def advance(description: str) -> None:
            nonlocal started
            if started:
                bar.advance(task)
            started = True
            bar.update(task, description=description)

        yield advance
        bar.update(task, completed=total)
