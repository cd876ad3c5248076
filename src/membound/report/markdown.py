"""Markdown tables of results (GitHub-flavoured), built from result objects only."""

from __future__ import annotations

from typing import IO

from membound._units import SIZE_CONVENTION
from membound.report.sections import (
    Table,
    Where,
    comparison_note,
    comparison_table,
    comparison_wheres,
    complexity_note,
    complexity_table,
    leak_holders_table,
    leak_note,
    leak_sites_table,
    leak_types_table,
    leak_verdict,
    measurement_table,
    where_tables,
)
from membound.results import Comparison, Complexity, LeakReport, Measurement, Result

__all__ = [
    "MarkdownReporter",
    "render_comparison",
    "render_complexity",
    "render_leaks",
    "render_measurement",
    "table_lines",
    "where_lines",
]


def table_lines(t: Table) -> list[str]:
    """The lines of a Markdown table; a ``|`` inside a cell becomes ``/``."""
    lines = ["| " + " | ".join(t.head) + " |", "|" + "---|" * len(t.head)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in t.rows]
    return lines


def where_lines(where: Where | None) -> list[str]:
    """The sites as Markdown: each table under its bold heading, then how they were captured;
    no lines for None."""
    if where is None:
        return []
    lines: list[str] = []
    for title, table in where_tables(where):
        lines += [f"**{title}**", "", *table_lines(table), ""]
    if where.lines:
        lines += [" ".join(where.lines), ""]
    return lines


def render_measurement(m: Measurement) -> str:
    """A two-column Markdown table of one measurement, after its sites when it has any (the
    order of every renderer: where the memory was, then the figures)."""
    lines = where_lines(Where.of(m))
    lines += table_lines(measurement_table(m))
    lines.append("")
    lines.append(f"Sizes: {SIZE_CONVENTION}.")
    return "\n".join(lines) + "\n"


def render_comparison(c: Comparison) -> str:
    """A Markdown table with one row per scenario, then each scenario's sites (with
    ``where``)."""
    lines = table_lines(comparison_table(c))
    lines.append("")
    lines.append(comparison_note(c))
    for where in comparison_wheres(c):
        lines += ["", *where_lines(where)]
    return "\n".join(lines).rstrip("\n") + "\n"


def render_complexity(c: Complexity) -> str:
    """The verdict, then one row per size."""
    lines = [
        f"**{c.label}: {c.big_o}** (confidence {c.confidence:.2f}) — {c.explanation}",
        "",
        f"Wall time: {c.time_big_o} — {c.time_explanation}",
        "",
        *table_lines(complexity_table(c)),
        "",
        complexity_note(c),
    ]
    return "\n".join(lines) + "\n"


def render_leaks(r: LeakReport) -> str:
    """The verdict, then the holders, allocation sites, types and reference chain."""
    verdict, _ = leak_verdict(r)
    lines = [f"**{r.label}: {verdict}** — {r.explanation}", ""]
    for table in (leak_holders_table(r), leak_sites_table(r), leak_types_table(r)):
        if table.rows:
            lines += [*table_lines(table), ""]
    if r.chain:
        lines += ["Kept alive by: " + " → ".join(r.chain), ""]
    lines.append(leak_note(r))
    return "\n".join(lines) + "\n"


class MarkdownReporter:
    """Build a Markdown report from a result, then ``render(outfile)``."""

    def __init__(self, result: Result) -> None:
        self.result = result

    def render(self, outfile: IO[str]) -> None:
        """Write the report to ``outfile``."""
        outfile.write(self.result.to_markdown())
