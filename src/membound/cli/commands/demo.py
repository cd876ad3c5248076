"""``membound demo``: the seed experiments on an embedded SQLite file, side by side."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import click

from membound._errors import Interrupted
from membound._units import format_size
from membound.cli.output import Outputs, heading, progress, show
from membound.measure.cgroup.memory import memory_room
from membound.report.json import dumps
from membound.report.markdown import table_lines

__all__ = ["command"]


def _write_summary(folder: Path, summary: list[str], everything: dict[str, Any]) -> None:
    """``summary.md`` and ``demo.json``, each whole or not at all."""
    files = Outputs()
    files.write(str(folder / "summary.md"), ("\n".join(summary) + "\n").encode("utf-8"))
    files.write(str(folder / "demo.json"), (json.dumps(everything, indent=1) + "\n").encode())
    files.finish(say=False)


def _check_room(rows: int, needs: tuple[int, int], fixed: int) -> None:
    """Refuse a row count this machine has no room for, before writing anything (``fixed``:
    the memory the demo needs whatever the rows). The memory is what the tightest of the
    machine and its memory cgroups leaves (a container's limit, not the host's RAM)."""
    disk, memory = needs
    tmp = tempfile.gettempdir()
    free = shutil.disk_usage(tmp).free
    if disk > free:
        raise click.BadParameter(
            f"{rows:,} rows need about {format_size(disk)} of disk in {tmp}; "
            f"{format_size(free)} is free",
            param_hint="--rows",
        )
    room = memory_room()
    if room is None or memory <= room[0]:
        return
    available, limit = room
    where = (
        "on this machine"
        if limit is None
        else f"under the memory limit of {format_size(limit.bytes)} ({limit.source})"
    )
    if memory == fixed:
        raise click.UsageError(
            f"the demo needs about {format_size(memory)} of memory (its largest experiment "
            f"holds a 10,000,000-item list), whatever the rows; {format_size(available)} is "
            f"available {where}"
        )
    raise click.BadParameter(
        f"{rows:,} rows need about {format_size(memory)} of memory (the load-all scenarios "
        f"hold every row); {format_size(available)} is available {where}",
        param_hint="--rows",
    )


@click.command("demo")
@click.option("--rows", type=click.IntRange(min=1000), default=1_000_000, show_default=True)
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True)
@click.option(
    "--scale/--no-scale",
    default=True,
    show_default=True,
    help="Also judge each scenario's memory complexity over input sizes.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="membound-demo",
    show_default=True,
    help="Folder for the JSON, Markdown and PNG files.",
)
def command(rows: int, repeat: int, scale: bool, out: str) -> int:
    """Run the seed experiments, each run in a fresh process, and print the comparisons:
    load-all vs OFFSET vs find_each on SQLite, a status change on every row three ways, list
    vs range, whole-file read vs chunks, a RAG pipeline as lists vs generators, reference cycles
    with and without the cyclic GC, a session per request vs one shared, deepcopy fan-out vs a
    shared payload, and the size of one record built six ways."""
    from membound.demo.runner import (
        FIXED_MEMORY,
        DemoResult,
        demo_needs,
        describe_complexities,
        record_size_table,
        record_sizes,
        run_demo,
        scenario_count,
    )

    if not out.strip():
        raise click.BadParameter("give a folder name", param_hint="--out")
    _check_room(rows, demo_needs(rows), FIXED_MEMORY)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    summary: list[str] = ["# membound demo", ""]
    everything: dict[str, Any] = {"rows": rows, "repeat": repeat, "groups": {}}

    def show_group(result: DemoResult) -> None:
        key, c = result.group.key, result.comparison
        lines = describe_complexities(result) + result.findings
        section = [f"## {result.group.title}", "", c.to_markdown()]
        section += [f"- {line}" for line in lines] + ["", f"![{key}]({key}.png)", ""]
        # The files first (each whole or not at all), then the screen: a closed stdout cannot
        # lose them, and a full disk is named once the group is shown.
        files = Outputs()
        files.write(str(folder / f"{key}.json"), (dumps(c) + "\n").encode("utf-8"))
        files.write(str(folder / f"{key}.md"), "\n".join(section).encode("utf-8"))
        files.chart(c, str(folder / f"{key}.png"))
        show(c)
        for line in lines:
            click.echo(f"  {line}")
        files.finish(say=False)
        summary.extend(section)
        everything["groups"][key] = {
            "title": result.group.title,
            "comparison": c.to_dict(),
            "complexity": {n: x.to_dict() for n, x in result.complexities.items()},
            "findings": result.findings,
        }

    # Each scenario runs ``repeat`` times, then once more for its complexity.
    runs = scenario_count(rows) * (repeat + (1 if scale else 0))
    try:
        with progress(runs, "demo") as advance:
            results = run_demo(
                rows,
                repeat,
                scale=scale,
                on_group=lambda group: heading(group.title),
                on_run=lambda name, i: advance(f"{name} (run {i + 1})"),
                on_result=show_group,
            )
    except KeyboardInterrupt as stop:
        # What finished is on screen and in its files already; the summary says how far it got.
        done = len(everything["groups"])
        summary.append(f"Interrupted after {done} group(s); the rest did not run.")
        _write_summary(folder, summary, everything)
        raise Interrupted(
            None, f"{done} group(s) finished; their files and a summary are in {folder}/"
        ) from stop
    heading("One record, six ways: bytes per instance")
    sizes = record_sizes()
    size_lines = table_lines(record_size_table(sizes))
    click.echo("\n".join(size_lines))
    summary += ["## One record, six ways: bytes per instance", "", *size_lines, ""]
    everything["record_sizes"] = dict(sizes)

    sql = results[0].comparison
    load_all = sql.rows[0].rss_peak_delta.median
    keyset = sql.rows[2].rss_peak_delta.median
    ratio = load_all / keyset if keyset > 0 else float("inf")
    line = (
        f"load all needed {format_size(load_all)} more at its peak; find_each's keyset batches "
        f"{format_size(keyset)}: {ratio:.0f}× less, for the same rows."
    )
    summary.append(line)
    _write_summary(folder, summary, everything)
    click.echo(line)
    click.echo(f"Wrote JSON, Markdown and PNG files to {folder}/")
    return 0
