"""``--write-baseline FILE`` and ``--baseline FILE`` for ``membound run`` and ``membound compare``:
record each command's or scenario's figures, or check them against a recorded file (the same
file format and rule as the pytest plugin's ``--membound-baseline``/``--membound-compare``).

A command is named by its argv as a shell would show it, a scenario by its name. Recording
merges: the entries measured now replace those of the same name, the file's others stay (one
``membound run`` measures one command; a baseline usually holds several). Every figure present
in both the file and this run is compared: the RSS peak always, the heap peak where ``--heap``
was given both times. A run that failed is neither recorded nor compared.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import click

from membound._errors import MemboundError
from membound.cli.output import writable_path
from membound.judge.baseline import check_against
from membound.report.baseline import counts_line
from membound.results import Comparison, Measurement
from membound.results.baseline import (
    Baseline,
    BaselineCheck,
    BaselineEntry,
    BaselineReport,
    Figure,
    python_version,
)

__all__ = ["baseline_options", "check_and_record", "comparison_entries", "measurement_entry"]


def _readable(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[str, Baseline] | None:
    """Read the baseline before anything runs: a bad file ends the command at once (exit 2)."""
    return None if value is None else (value, Baseline.read(value))


def _recordable(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A file to record into: writable, and a baseline already if it exists (checked before
    anything runs, so that a long measurement is not lost at the end)."""
    path = writable_path(ctx, param, value)
    if path is not None and os.path.isfile(path):
        Baseline.read(path)
    return path


def baseline_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The ``--write-baseline FILE`` and ``--baseline FILE`` options."""
    func = click.option(
        "--baseline",
        "baseline",
        metavar="FILE",
        callback=_readable,
        help="Exit 1 when a peak rose beyond its noise since FILE was recorded (more than the "
        "largest of 10%, 3x the spread over repeats and 1 MiB), or when nothing in this run is "
        "in FILE (nothing was checked).",
    )(func)
    return click.option(
        "--write-baseline",
        "write_baseline",
        metavar="FILE",
        callback=_recordable,
        help="Record the peaks (median and spread) into FILE, merged with the entries it holds.",
    )(func)


def measurement_entry(m: Measurement) -> BaselineEntry:
    """One run's entry: its peak RSS, and its heap peak where it was traced."""
    return BaselineEntry(
        heap_peak=None if m.heap_peak is None else Figure(m.heap_peak, 0),
        rss_peak=Figure(m.rss_peak, 0),
        runs=1,
    )


def comparison_entries(c: Comparison) -> dict[str, BaselineEntry]:
    """Each scenario that ran cleanly: its Δ peak RSS and heap peak, medians and spreads."""
    entries: dict[str, BaselineEntry] = {}
    for row in c.rows:
        if row.outcome != "ok":
            continue
        heap = row.heap_peak
        entries[row.name] = BaselineEntry(
            heap_peak=None if heap is None else Figure(int(heap.median), int(heap.high - heap.low)),
            rss_peak=Figure(
                int(row.rss_peak_delta.median),
                int(row.rss_peak_delta.high - row.rss_peak_delta.low),
            ),
            runs=row.runs,
        )
    return entries


def check_and_record(
    entries: Mapping[str, BaselineEntry],
    *,
    against: tuple[str, Baseline] | None,
    write: str | None,
) -> bool:
    """Print the check of ``entries`` against the baseline (its path and contents) and write
    the merged file; True when any regressed."""
    if against is None and write is None:
        return False
    against_path, before = against if against is not None else (None, None)
    checks: list[BaselineCheck] = []
    if before is not None:
        checks = [check_against(n, before.entries.get(n), e) for n, e in entries.items()]
    notes: list[str] = []
    heap_compared = any(p.metric == "heap_peak" for c in checks for p in c.peaks)
    if before is not None and before.python != python_version() and heap_compared:
        notes.append(
            f"the baseline was recorded on Python {before.python}, this run is "
            f"{python_version()}: heap sizes differ between versions"
        )
    written = None
    if write is not None:
        old = Baseline.read(write).entries if os.path.isfile(write) else {}
        try:
            Baseline({**old, **entries}).write(write)
            written = write
        except MemboundError as exc:
            notes.append(str(exc))
    report = BaselineReport(
        compared_with=against_path,
        recorded_to=written,
        recorded=len(entries),
        regressed=tuple(c for c in checks if c.regressed),
        improved=tuple(c for c in checks if c.status == "improved"),
        improved_count=sum(1 for c in checks if c.status == "improved"),
        same=sum(1 for c in checks if c.status == "same"),
        new=sum(1 for c in checks if c.status == "new"),
        not_run=0,
        not_recorded=(),
        not_recorded_count=0,
        notes=tuple(notes),
    )
    click.echo(f"baseline: {counts_line(report)}", err=True)
    for check in checks:
        if check.status in ("regressed", "improved"):
            click.echo(f"baseline: {check.name}: {check.status}: {check.explanation}", err=True)
    for note in notes:
        click.echo(f"baseline: {note}", err=True)
    if before is not None and checks and all(c.status == "new" for c in checks):
        # Compared with nothing, a gate passes whatever the run did: a name that changed (a
        # label, a command written differently) must not read as "no regression".
        recorded = ", ".join(sorted(before.entries)[:3])
        more = "…" if len(before.entries) > 3 else ""
        click.echo(
            f"baseline: nothing in this run is in {against_path} ({recorded or 'it is empty'}"
            f"{more}): nothing was checked; record this run with --write-baseline",
            err=True,
        )
        return True
    return bool(report.regressed)
