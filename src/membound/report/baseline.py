"""A run checked against its memory baseline, as terminal lines and as Markdown (for a CI job
summary such as ``$GITHUB_STEP_SUMMARY``)."""

from __future__ import annotations

from membound._units import format_size
from membound.report.markdown import table_lines
from membound.report.sections import Table
from membound.report.terminal import plain_lines
from membound.results.baseline import BaselineCheck, BaselineReport

__all__ = ["baseline_markdown", "baseline_text_lines", "counts_line"]

_WORDS = {"heap_peak": "heap peak", "rss_peak": "RSS peak"}


def counts_line(r: BaselineReport) -> str:
    """One line: what was compared or recorded, and how many of each outcome."""
    parts: list[str] = []
    if r.compared_with is not None:
        checked = len(r.regressed) + r.improved_count + r.same
        not_run = f", {r.not_run} in the baseline not run (ignored)" if r.not_run else ""
        parts.append(
            f"{checked} checked against {r.compared_with}: {len(r.regressed)} regressed, "
            f"{r.improved_count} improved, {r.same} within noise; {r.new} new{not_run}"
        )
    if r.recorded_to is not None:
        parts.append(f"{r.recorded} recorded to {r.recorded_to}")
    elif r.compared_with is None:
        parts.append(f"{r.recorded} measured, no baseline written")
    if r.not_recorded_count:
        parts.append(f"{r.not_recorded_count} could not run again (not guarded, named below)")
    return "; ".join(parts)


def _changes_table(checks: tuple[BaselineCheck, ...]) -> Table:
    rows: list[tuple[str, ...]] = []
    for c in checks:
        moved = [p for p in c.peaks if p.direction != "same"]
        for p in moved:
            rows.append(
                (
                    c.name,
                    _WORDS[p.metric],
                    format_size(p.before.median),
                    format_size(p.now.median),
                    format_size(p.change, signed=True),
                    format_size(p.allowed),
                )
            )
        for v in c.verdicts:
            if v.worse:
                rows.append((c.name, f"{v.kind} verdict", v.before, v.now, "worse", "-"))
    return Table(("test", "figure", "baseline", "now", "change", "allowed"), tuple(rows))


def baseline_text_lines(r: BaselineReport) -> list[str]:
    """The terminal section: the counts, each regression, the largest improvements, notes."""
    lines = [counts_line(r)]
    if r.regressed:
        lines.append("regressed:")
        lines += plain_lines(_changes_table(r.regressed), indent="  ")
    if r.improved:
        lines.append("improved (largest):")
        lines += plain_lines(_changes_table(r.improved), indent="  ")
    if r.not_recorded:
        lines.append("could not run again (no figures, so not guarded):")
        lines += [f"  {n}" for n in r.not_recorded]
    lines += r.notes
    if r.gate_failed:
        lines.append(r.gate_failed)
    return lines


def baseline_markdown(r: BaselineReport) -> str:
    """The same as Markdown: a heading, the counts, tables of regressions and improvements."""
    verdict = "regressed" if r.regressed else "gate failed" if r.gate_failed else "no regression"
    out = [f"## membound memory baseline: {verdict}", "", counts_line(r), ""]
    if r.regressed:
        out += ["### Regressed", "", *table_lines(_changes_table(r.regressed)), ""]
        out += [f"- `{c.name}`: {c.explanation}" for c in r.regressed] + [""]
    if r.improved:
        out += ["### Improved (largest)", "", *table_lines(_changes_table(r.improved)), ""]
    if r.not_recorded:
        out += ["### Could not run again", ""] + [f"- `{n}`" for n in r.not_recorded] + [""]
    out += [f"> {note}" for note in r.notes]
    if r.gate_failed:
        out.append(f"> **{r.gate_failed}**")
    return "\n".join(out).rstrip() + "\n"
