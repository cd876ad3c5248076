"""The text of the plugin's failures: what was measured, against what, and where a leak is kept.

Failure text is plain (pytest prints it as it is); the figures come from the report's sections
(``report/sections.py``), rendered by ``report/terminal.py`` like everywhere else.
"""

from __future__ import annotations

import pytest

from membound._units import format_size
from membound.measure.inprocess import BlockPeak
from membound.report.sections import (
    Table,
    holder_added_at,
    leak_sites_table,
    leak_types_table,
)
from membound.report.terminal import labelled_lines
from membound.results import Complexity, LeakReport
from membound.results.sites import PeakSite, short_path, short_path_line

__all__ = ["complexity_text", "fail", "held_lines", "leak_text", "limit_text", "regression_text"]

_MOST = 5


def fail(text: str) -> None:
    """Fail the running test with ``text`` and no Python traceback of membound's own."""
    pytest.fail(text, pytrace=False)


def _first(table: Table) -> Table:
    return Table(table.head, table.rows[:_MOST])


def leak_text(report: LeakReport) -> str:
    """The verdict, the containers that keep the leak, the top allocation sites and types, and
    the chain that keeps it."""
    lines = [f"{report.label} {report.explanation}"]
    for h in report.holders[:_MOST]:
        size = f"{h.size:,}" + (f" of {h.capacity:,}" if h.capacity is not None else "")
        added = f"  added at {holder_added_at(h)}" if h.file is not None else ""
        lines.append(
            f"  kept by  {h.path} ({h.type_name})  +{h.per_call:.2f} entries/call  "
            f"{size} entries{added}"
        )
    lines += labelled_lines("site", _first(leak_sites_table(report)))
    lines += labelled_lines("type", _first(leak_types_table(report)))
    if report.chain:
        lines.append("  kept alive by  " + " → ".join(report.chain))
    return "\n".join(lines)


def limit_text(peak: BlockPeak, limit: int, again: BlockPeak | None = None) -> str:
    """A test's peak over its limit, with the peak's source and the lines that held it: from
    the run itself (``--membound-where``) or from ``again``, one more run with them traced (or
    how to get them)."""
    lines = [
        f"limit_memory: the test's {peak.kind} peak was {format_size(peak.bytes)} "
        f"({peak.source}), over its limit of {format_size(limit)} ({limit:,} bytes)"
    ]
    if peak.sites:
        lines += held_lines(peak, again=False)
    elif again is not None and again.sites:
        lines += held_lines(again, again=True)
    elif peak.where_note or (again is not None and again.where_note):
        lines.append(f"  lines: {peak.where_note or again.where_note if again else ''}")
    else:
        lines.append(
            "  --membound-where names the lines that held it (memray: pip install "
            "'membound[memray]')"
        )
    return "\n".join(lines)


def held_lines(sited: BlockPeak, *, again: bool) -> list[str]:
    """The top lines that held ``sited``'s peak, under a heading that says which run it was:
    the test's own (``again`` false) or one more run with the lines traced."""
    if again:
        head = (
            f"  held at the peak of one more run of the test, with the lines traced (its peak "
            f"then: {format_size(sited.bytes)}):"
        )
    else:
        head = "  held at the peak (traced allocations):"
    return [head] + [
        f"  {site.share * 100:5.1f} %  {format_size(site.bytes):>10}  {_at(site)}"
        for site in sited.sites[:_MOST]
    ]


def regression_text(text: str, again: BlockPeak | None, *, traced: bool) -> str:
    """A baseline failure's ``text`` and the lines that held the test's peak in ``again``, one
    more run with them traced (``traced``: such a run was made; else how to get them)."""
    lines = [text]
    if again is not None and again.sites:
        lines += held_lines(again, again=True)
    elif again is not None and again.where_note:
        lines.append(f"  lines: {again.where_note}")
    elif not traced:
        lines.append(
            "  --membound-where names the lines that held it (memray: pip install "
            "'membound[memray]')"
        )
    return "\n".join(lines)


def _at(site: PeakSite) -> str:
    if site.kind == "other":
        return site.function
    where = f"{short_path(site.file)}:{site.line} in {site.function}"
    if site.native_symbol:
        where += f" ({site.native_symbol}, native)"
    if site.ran_in:
        where += f" in {site.ran_in}"
    if site.caller:
        where += f"  ← {short_path_line(site.caller)}"
    return where


def complexity_text(expected: str, result: Complexity) -> str:
    """A complexity verdict other than the expected one, with the points it rests on."""
    points = ", ".join(f"n={p.n:,}: {format_size(p.value)}" for p in result.points)
    return (
        f"memory_complexity: expected {expected}, measured {result.big_o} — "
        f"{result.explanation}\n  {points}"
    )
