"""Markdown tables of results (GitHub-flavoured), built from result objects only."""

from __future__ import annotations

from typing import IO, TYPE_CHECKING

from membound._units import SIZE_CONVENTION, format_size

if TYPE_CHECKING:
    from membound.judge.compare import Comparison, Spread
    from membound.judge.complexity import Complexity
    from membound.judge.leaks import LeakReport
    from membound.measure.result import Measurement

__all__ = [
    "MarkdownReporter",
    "render_comparison",
    "render_complexity",
    "render_leaks",
    "render_measurement",
]


def _spread_size(s: Spread | None, *, signed: bool = False) -> str:
    if s is None:
        return "-"
    if s.low == s.high:
        return format_size(s.median, signed=signed)
    return (
        f"{format_size(s.median, signed=signed)} "
        f"({format_size(s.low, signed=signed)} – {format_size(s.high, signed=signed)})"
    )


def _spread_s(s: Spread) -> str:
    if s.low == s.high:
        return f"{s.median:.2f} s"
    return f"{s.median:.2f} s ({s.low:.2f} – {s.high:.2f})"


def render_measurement(m: Measurement) -> str:
    """A two-column Markdown table of one measurement."""
    rows = [
        ("label", m.label),
        ("kind", m.kind),
        ("outcome", m.outcome + (f" ({m.outcome_detail})" if m.outcome_detail else "")),
        ("wall time", f"{m.duration_s:.3f} s"),
        ("RSS at start", format_size(m.rss_start)),
        ("RSS peak", f"{format_size(m.rss_peak)} — {m.rss_peak_source}"),
        ("Δ peak RSS", format_size(m.rss_peak_delta, signed=True)),
        ("RSS at end", format_size(m.rss_end)),
        ("heap peak (tracemalloc)", format_size(m.heap_peak)),
        ("heap held at end", format_size(m.heap_current)),
        ("GC collections", "-" if m.gc_collections is None else str(m.gc_collections)),
        ("GC pause", "-" if m.gc_pause_s is None else f"{m.gc_pause_s * 1000:.1f} ms"),
        ("growth", m.growth.explanation),
        ("samples", f"{m.timeline.samples} every {m.interval * 1000:g} ms"),
    ]
    if m.exit_code is not None:
        rows.insert(3, ("exit code", str(m.exit_code)))
    lines = ["| measure | value |", "|---|---|"]
    lines += [f"| {k} | {v.replace('|', '/')} |" for k, v in rows]
    lines.append("")
    lines.append(f"Sizes: {SIZE_CONVENTION}.")
    return "\n".join(lines) + "\n"


def render_comparison(c: Comparison) -> str:
    """A Markdown table with one row per scenario."""
    head = ["scenario", "peak RSS", "Δ peak RSS", "heap peak", "wall", "growth", "vs first"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in c.rows:
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}×"
        cells = [
            r.name + ("" if r.outcome == "ok" else f" ⚠ {r.outcome}"),
            _spread_size(r.rss_peak),
            _spread_size(r.rss_peak_delta, signed=True),
            _spread_size(r.heap_peak),
            _spread_s(r.duration_s),
            r.growth,
            ratio,
        ]
        lines.append("| " + " | ".join(x.replace("|", "/") for x in cells) + " |")
    lines.append("")
    how = "a fresh process per run" if c.isolated else "in one process"
    lines.append(
        f"Medians of {c.repeat} interleaved run(s), {how}; (min – max) in brackets. "
        f"Sizes: {SIZE_CONVENTION}."
    )
    return "\n".join(lines) + "\n"


def render_complexity(c: Complexity) -> str:
    """The verdict, then one row per size."""
    what = "Δ peak RSS" if c.metric == "rss" else "heap peak"
    lines = [
        f"**{c.label}: {c.big_o}** (confidence {c.confidence:.2f}) — {c.explanation}",
        "",
        f"Wall time: {c.time_big_o} — {c.time_explanation}",
        "",
        f"| n | {what} | wall | runs |",
        "|---|---|---|---|",
    ]
    for p in c.points:
        lines.append(f"| {p.n:,} | {format_size(p.value)} | {p.seconds:.3f} s | {p.runs} |")
    fits = ", ".join(f"{k} {v:.3f}" for k, v in c.fits.items())
    lines += [
        "",
        f"Relative residual of each model: {fits}. Noise floor {format_size(c.noise_floor)}. "
        f"Sizes: {SIZE_CONVENTION}.",
    ]
    return "\n".join(lines) + "\n"


def render_leaks(r: LeakReport) -> str:
    """The verdict, then the allocation sites, types and reference chain."""
    verdict = "LEAK" if r.leaking else "no leak"
    lines = [f"**{r.label}: {verdict}** — {r.explanation}", ""]
    if r.sites:
        lines += ["| site | bytes per call | blocks per call |", "|---|---|---|"]
        lines += [
            f"| {s.file}:{s.line} | {s.bytes_per_call:.1f} | {s.count_per_call:.2f} |"
            for s in r.sites
        ]
        lines.append("")
    if r.types:
        lines += ["| type | new objects per call |", "|---|---|"]
        lines += [f"| {t.type_name} | {t.per_call:.2f} |" for t in r.types]
        lines.append("")
    if r.chain:
        lines += ["Kept alive by: " + " → ".join(r.chain), ""]
    lines.append(
        f"{r.warmup} warm-up calls, {r.iterations} calls in {len(r.rounds)} rounds; "
        f"cycles freed only by the cyclic GC: {r.cycles_per_call:.2f} per call."
    )
    return "\n".join(lines) + "\n"


class MarkdownReporter:
    """Build a Markdown report from a result, then ``render(outfile)``."""

    def __init__(self, result: Measurement | Comparison) -> None:
        self.result = result

    def render(self, outfile: IO[str]) -> None:
        """Write the report to ``outfile``."""
        outfile.write(self.result.to_markdown())
