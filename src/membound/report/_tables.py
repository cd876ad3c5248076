"""The figures of each result as plain tables of text, shared by the Markdown and HTML reports.

Both renderers show the same cells; only the markup differs, so the cells are built once here.
Result types are imported for type checking only: they import the renderers lazily, and this
module must not import them back at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from membound._units import SIZE_CONVENTION, format_size

if TYPE_CHECKING:
    from membound.judge.compare import Comparison, Spread
    from membound.judge.complexity import Complexity
    from membound.judge.leaks import LeakReport
    from membound.measure.result import Measurement

__all__ = [
    "Table",
    "comparison_note",
    "comparison_table",
    "complexity_note",
    "complexity_table",
    "leak_note",
    "leak_sites_table",
    "leak_types_table",
    "measurement_table",
]


@dataclass(frozen=True)
class Table:
    """A table of text cells."""

    head: tuple[str, ...]
    """Column headings."""
    rows: tuple[tuple[str, ...], ...]
    """One tuple of cells per row, as many as headings."""


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


def measurement_table(m: Measurement) -> Table:
    """Two columns, measure and value, one row per figure of ``m``."""
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
    return Table(("measure", "value"), tuple(rows))


def comparison_table(c: Comparison) -> Table:
    """One row per scenario: peaks, wall time, growth and the ratio to the first scenario."""
    head = ("scenario", "peak RSS", "Δ peak RSS", "heap peak", "wall", "growth", "vs first")
    rows = []
    for r in c.rows:
        rows.append(
            (
                r.name + ("" if r.outcome == "ok" else f" ⚠ {r.outcome}"),
                _spread_size(r.rss_peak),
                _spread_size(r.rss_peak_delta, signed=True),
                _spread_size(r.heap_peak),
                _spread_s(r.duration_s),
                r.growth,
                "-" if r.ratio is None else f"{r.ratio:.2f}×",
            )
        )
    return Table(head, tuple(rows))


def comparison_note(c: Comparison) -> str:
    """How the figures of ``c`` were obtained."""
    how = "a fresh process per run" if c.isolated else "in one process"
    return (
        f"Medians of {c.repeat} interleaved run(s), {how}; (min – max) in brackets. "
        f"Sizes: {SIZE_CONVENTION}."
    )


def complexity_table(c: Complexity) -> Table:
    """One row per size: n, the peak, the wall time and the number of runs."""
    what = "Δ peak RSS" if c.metric == "rss" else "heap peak"
    rows = tuple(
        (f"{p.n:,}", format_size(p.value), f"{p.seconds:.3f} s", str(p.runs)) for p in c.points
    )
    return Table(("n", what, "wall", "runs"), rows)


def complexity_note(c: Complexity) -> str:
    """Every model's residual and the noise floor."""
    fits = ", ".join(f"{k} {v:.3f}" for k, v in c.fits.items())
    return (
        f"Relative residual of each model: {fits}. Noise floor {format_size(c.noise_floor)}. "
        f"Sizes: {SIZE_CONVENTION}."
    )


def leak_sites_table(r: LeakReport) -> Table:
    """Where the kept memory was allocated (no rows when nothing leaks)."""
    rows = tuple(
        (f"{s.file}:{s.line}", f"{s.bytes_per_call:.1f}", f"{s.count_per_call:.2f}")
        for s in r.sites
    )
    return Table(("site", "bytes per call", "blocks per call"), rows)


def leak_types_table(r: LeakReport) -> Table:
    """Which object types grew in number (no rows when nothing leaks)."""
    rows = tuple((t.type_name, f"{t.per_call:.2f}") for t in r.types)
    return Table(("type", "new objects per call"), rows)


def leak_note(r: LeakReport) -> str:
    """How many calls the verdict rests on, and the cycles only the cyclic GC frees."""
    return (
        f"{r.warmup} warm-up calls, {r.iterations} calls in {len(r.rounds)} rounds; "
        f"cycles freed only by the cyclic GC: {r.cycles_per_call:.2f} per call."
    )
