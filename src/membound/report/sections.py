"""What each result shows, as plain text: tables of cells and sections (title, verdict, lines,
tables, notes), shared by the Markdown, HTML and terminal renderers.

Every renderer shows the same cells; only the markup differs, so the cells are built once here.
"""

from __future__ import annotations

from dataclasses import dataclass

from membound._units import SIZE_CONVENTION, format_size
from membound.report.sites import (
    END_ROWS,
    END_TITLE,
    PEAK_TITLE,
    SITE_HEAD,
    Where,
    site_cells,
    top_sites,
)
from membound.results import (
    Comparison,
    Complexity,
    Holder,
    LeakReport,
    Measurement,
    Result,
    Spread,
)
from membound.results.comparison import RATIO_FLOOR

__all__ = [
    "HEAP_TRACING_SLOWDOWN",
    "MEMRAY_TRACING_SLOWDOWN",
    "Result",
    "Section",
    "Table",
    "Where",
    "comparison_note",
    "comparison_table",
    "comparison_wheres",
    "complexity_note",
    "complexity_table",
    "describe",
    "heap_engine_name",
    "holder_added_at",
    "leak_holders_table",
    "leak_note",
    "leak_sites_table",
    "leak_types_table",
    "leak_verdict",
    "measurement_table",
    "where_tables",
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


def where_tables(where: Where) -> tuple[tuple[str, Table], ...]:
    """The sites tables with their headings: at the peak, then (when the capture has them) the
    largest still held at the end. Empty when no site was captured."""
    out = []
    whose = f" — {where.label}" if where.label else ""
    if where.peak:
        table = Table(SITE_HEAD, tuple(site_cells(s) for s in where.peak))
        out.append((PEAK_TITLE + whose, table))
    if where.end:
        end = top_sites(where.end, END_ROWS)
        out.append((END_TITLE + whose, Table(SITE_HEAD, tuple(site_cells(s) for s in end))))
    return tuple(out)


def _rss_at_start(m: Measurement) -> str:
    """A command has no RSS before it starts: say so rather than print 0 B as a reading."""
    if m.kind == "command" and m.rss_start == 0:
        return "none: the command starts from nothing (Δ peak RSS is its peak)"
    return format_size(m.rss_start)


def _rss_at_end(m: Measurement) -> str:
    """A command whose exit fall was left out of its growth ends on a sample taken while it
    tore down (11.9 to 28.9 MiB over six runs of one job): say so beside the figure."""
    if m.kind == "command" and m.growth.level_end is not None:
        return f"{format_size(m.rss_end)} (its last sample, taken as it exited)"
    return format_size(m.rss_end)


def _levels(m: Measurement) -> list[tuple[str, str]]:
    """The levels the growth words measure from and to, when they are not the RSS at start and
    at end (a command's level after its start-up and before its exit fall): every figure the
    words quote is in the table."""
    rows = []
    if m.growth.level_start is not None:
        rows.append(("RSS after start-up", format_size(m.growth.level_start)))
    if m.growth.level_end is not None:
        rows.append(("RSS before exit", format_size(m.growth.level_end)))
    return rows


def measurement_table(m: Measurement) -> Table:
    """Two columns, measure and value, one row per figure of ``m``."""
    rows = [
        ("label", m.label),
        ("kind", m.kind),
        ("outcome", m.outcome + (f" ({m.outcome_detail})" if m.outcome_detail else "")),
        ("wall time", f"{m.duration_s:.3f} s"),
        ("RSS at start", _rss_at_start(m)),
        ("RSS peak", f"{format_size(m.rss_peak)} — {m.rss_peak_source}"),
        ("Δ peak RSS", format_size(m.rss_peak_delta, signed=True)),
        *_levels(m),
        ("RSS at end", _rss_at_end(m)),
        (f"heap peak ({heap_engine_name(m.heap_source)})", format_size(m.heap_peak)),
        ("heap held at end", format_size(m.heap_current)),
        *_heap_cost(m.heap_overhead, m.heap_source),
        ("GC collections", "-" if m.gc_collections is None else str(m.gc_collections)),
        ("GC pause", "-" if m.gc_pause_s is None else f"{m.gc_pause_s * 1000:.1f} ms"),
        ("growth", m.growth.explanation),
        ("samples", f"{m.timeline.samples} every {m.interval * 1000:g} ms"),
    ]
    if m.exit_code is not None:
        rows.insert(3, ("exit code", str(m.exit_code)))
    return Table(("measure", "value"), tuple(rows))


#: What heap tracing costs in time: ``track(heap=True)`` against plain calls on the overhead
#: benchmark (``benchmarks/results/overhead.json``; a test keeps the two in step).
HEAP_TRACING_SLOWDOWN = 2.3
#: The same for ``track(heap="memray")`` (kept in step with overhead.json by the same test).
MEMRAY_TRACING_SLOWDOWN = 3.7


def heap_engine_name(source: str | None) -> str:
    """``memray`` or ``tracemalloc`` (results saved before ``heap_source`` existed)."""
    return "memray" if source and source.startswith("memray") else "tracemalloc"


def _heap_cost(overhead: float | None, source: str | None = None) -> list[tuple[str, str]]:
    """The row that says what heap tracing cost, when the heap was traced."""
    if heap_engine_name(source) == "memray":
        own = (
            f"memray's own memory (its table of live allocations), about {format_size(overhead)} "
            "at the peak, is inside the RSS figures (not the workload's)"
            if overhead is not None
            else "memray's own memory (its table of live allocations) is inside the RSS figures "
            "and not measured apart"
        )
        return [
            (
                "heap tracing cost",
                f"{own}; memray counts native allocations too (C extensions); it slowed "
                f"allocation-heavy code {MEMRAY_TRACING_SLOWDOWN:.1f}× on the overhead benchmark",
            )
        ]
    if overhead is None:
        return []
    return [
        (
            "heap tracing cost",
            f"tracemalloc's own memory, up to {format_size(overhead)}, is inside the RSS "
            f"figures (not the workload's); tracing slowed allocation-heavy code "
            f"{HEAP_TRACING_SLOWDOWN:.1f}× on the overhead benchmark",
        )
    ]


def comparison_table(c: Comparison) -> Table:
    """One row per scenario: peaks, wall time, growth and the ratio to the first scenario."""
    head = ("scenario", "peak RSS", "Δ peak RSS", "heap peak", "wall", "growth", "vs first")
    rows = []
    first_is_zero = bool(c.rows) and c.rows[0].rss_peak_delta.median < RATIO_FLOOR
    for i, r in enumerate(c.rows):
        if r.ratio is not None:
            ratio = f"{r.ratio:.2f}×"
        elif first_is_zero:  # no ratio to a few pages of noise
            ratio = "≈ 0" if i == 0 else "first ≈ 0"
        else:
            ratio = "-"
        rows.append(
            (
                r.name + ("" if r.outcome == "ok" else f" ⚠ {r.outcome}"),
                _spread_size(r.rss_peak),
                _spread_size(r.rss_peak_delta, signed=True),
                _spread_size(r.heap_peak),
                _spread_s(r.duration_s),
                r.growth,
                ratio,
            )
        )
    return Table(head, tuple(rows))


def comparison_note(c: Comparison) -> str:
    """How the figures of ``c`` were obtained."""
    how = "a fresh process per run" if c.isolated else "in one process"
    note = f"Medians of {c.repeat} interleaved run(s), {how}; (min – max) in brackets."
    overheads = [r.heap_overhead.high for r in c.rows if r.heap_overhead is not None]
    if overheads:
        cost = _heap_cost(max(overheads))[0][1]
        note += " " + cost[:1].upper() + cost[1:] + "."  # not capitalize(): it lowers "MiB"
    return f"{note} Sizes: {SIZE_CONVENTION}."


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


def holder_added_at(h: Holder) -> str:
    """Where a holder is added to: ``file:line``, and when that statement is not the measured
    function's own, the function it is in and the user's line that called it
    (``lib.py:12 in on ← called from app.py:40``); ``-`` when it was not seen adding."""
    if h.file is None:
        return "-"
    text = f"{h.file}:{h.line}"
    if h.caller is not None and h.caller != text:
        text += (f" in {h.function}" if h.function else "") + f" ← called from {h.caller}"
    return text


def leak_holders_table(r: LeakReport) -> Table:
    """The containers that grew: what keeps the leak (or a bounded cache filling), the line that
    adds to it, entries per call and size against capacity, with the calls made when it was
    counted (the hunt's own attribution calls the target too); headings name units."""
    rows = tuple(
        (
            h.path,
            h.type_name,
            holder_added_at(h),
            f"+{h.per_call:.2f}",
            f"{h.size:,}"
            + (f" of {h.capacity:,}" if h.capacity is not None else "")
            + (f" after {h.calls:,} calls" if h.calls is not None else ""),
        )
        for h in r.holders
    )
    return Table(("kept by", "type", "added at", "entries/call", "entries"), rows)


def leak_sites_table(r: LeakReport) -> Table:
    """Where the kept memory was allocated (no rows when nothing leaks); headings name units.
    Sites are tracemalloc's, or, marked ``(native)``, the Python line leading to a kept
    ``malloc`` (memray's, or read from malloc's total line by line: ``native_sites_by``)."""
    rows = tuple(
        (
            f"{s.file}:{s.line}" + (" (native)" if s.kind == "native" else ""),
            f"{s.bytes_per_call:.1f}",
            f"{s.count_per_call:.2f}",
        )
        for s in r.sites
    )
    return Table(("allocated at", "B/call", "blocks/call"), rows)


def leak_types_table(r: LeakReport) -> Table:
    """Which object types grew in number (no rows when nothing leaks); headings name units."""
    rows = tuple((t.type_name, f"+{t.per_call:.2f}") for t in r.types)
    return Table(("type", "per call"), rows)


def leak_note(r: LeakReport) -> str:
    """How many calls the verdict rests on, its tolerance, and the cycles only the cyclic GC
    frees."""
    judged = r.warmup + r.iterations
    # The attribution ran exactly when its Python growth was recorded.
    rest = (
        "found where and counted cycles"
        if r.python_bytes_per_call is not None
        else "counted cycles"
    )
    more = (
        f", {r.calls:,} calls in all (the rest {rest})"
        if r.calls is not None and r.calls > judged
        else ""
    )
    return (
        f"{r.warmup} warm-up calls, {r.iterations} calls in {len(r.rounds)} rounds (the late "
        f"half decides){more}; tolerance {r.tolerance:.1f} B per call; noise "
        f"{r.noise_bytes:.0f} B per round; cycles freed only by the cyclic GC: "
        f"{r.cycles_per_call:.2f} per call."
    )


def leak_verdict(r: LeakReport) -> tuple[str, str]:
    """The verdict word and its mood: ``LEAK``/bad, ``undecided``/bad, ``no leak``/good."""
    return {
        "leak": ("LEAK", "bad"),
        "undecided": ("undecided", "bad"),
    }.get(r.verdict, ("no leak", "good"))


@dataclass(frozen=True)
class Section:
    """What one result shows, as text; the HTML and terminal renderers add the markup."""

    kind: str
    """``measurement``, ``comparison``, ``complexity`` or ``leaks``."""
    title: str
    """What was measured."""
    verdict: str
    """The verdict in a few words."""
    mood: str
    """``good``, ``bad`` or ``""`` (neutral): colours the verdict."""
    lines: tuple[str, ...]
    """Sentences under the verdict."""
    tables: tuple[Table, ...]
    """The figures."""
    notes: tuple[str, ...]
    """How the figures were obtained."""
    where: Where | None = None
    """Where the memory was (a measurement's sites), shown under the verdict; None when the
    result has no sites to speak of."""
    more_where: tuple[Where, ...] = ()
    """Further sites, each labelled: a comparison's scenarios (each one's median run)."""

    @property
    def wheres(self) -> tuple[Where, ...]:
        """Every set of sites the section shows, in order."""
        return ((self.where,) if self.where is not None else ()) + self.more_where


def _measurement(m: Measurement) -> Section:
    pattern = m.growth.label  # "too short to judge" rather than a pattern it was not judged by
    failed = m.outcome != "ok"
    verdict = f"{m.outcome}, {pattern}" if failed else pattern
    mood = "bad" if failed or pattern == "leak" else "good" if pattern == "flat" else ""
    lines = ((m.outcome_detail,) if m.outcome_detail else ()) + (m.growth.explanation,)
    return Section(
        "measurement",
        m.label,
        verdict,
        mood,
        lines,
        (measurement_table(m),),
        (f"Sizes: {SIZE_CONVENTION}.",),
        Where.of(m),
    )


def _comparison(c: Comparison) -> Section:
    names = [r.name for r in c.rows]
    ok = [r for r in c.rows if r.outcome == "ok"]
    lines = []
    if ok:
        low = min(ok, key=lambda r: r.rss_peak_delta.median)
        high = max(ok, key=lambda r: r.rss_peak_delta.median)
        verdict = f"lowest Δ peak RSS: {low.name}"
        low_size = format_size(low.rss_peak_delta.median, signed=True)
        line = f"{low.name} peaked {low_size} over its baseline"
        if high is not low:
            high_size = format_size(high.rss_peak_delta.median, signed=True)
            line += f", {high.name} {high_size}"
            if low.rss_peak_delta.median > 0:
                times = high.rss_peak_delta.median / low.rss_peak_delta.median
                line += f" ({times:.1f}× as much)"
        lines.append(line + " (medians).")
    else:
        verdict = "every scenario failed"
    lines += [f"⚠ {r.name}: {r.outcome}" for r in c.rows if r.outcome != "ok"]
    return Section(
        "comparison",
        " vs ".join(names) if names else "comparison",
        verdict,
        "bad" if len(ok) < len(c.rows) else "",
        tuple(lines),
        (comparison_table(c),),
        (comparison_note(c),),
        more_where=comparison_wheres(c),
    )


def comparison_wheres(c: Comparison) -> tuple[Where, ...]:
    """Each scenario's sites (from one more run with ``where`` on), labelled with its name;
    none when ``where`` was off."""
    return tuple(
        Where(r.peak_sites, (), None, r.where_note, label=f"{r.name} (a run with --where)")
        for r in c.rows
        if r.peak_sites or r.where_note
    )


def _complexity(c: Complexity) -> Section:
    return Section(
        "complexity",
        c.label,
        c.big_o,
        "",
        (
            f"Confidence {c.confidence:.2f} — {c.explanation}",
            f"Wall time: {c.time_big_o} — {c.time_explanation}",
        ),
        (complexity_table(c),),
        (complexity_note(c),),
    )


def _leaks(r: LeakReport) -> Section:
    tables = tuple(
        t for t in (leak_holders_table(r), leak_sites_table(r), leak_types_table(r)) if t.rows
    )
    chain = ("Kept alive by: " + " → ".join(r.chain),) if r.chain else ()
    word, mood = leak_verdict(r)
    return Section(
        "leaks",
        r.label,
        word,
        mood,
        (r.explanation,),
        tables,
        (*chain, leak_note(r)),
    )


def describe(result: Result) -> Section:
    """What ``result`` shows, as text: title, verdict, lines, tables and notes."""
    if isinstance(result, Measurement):
        return _measurement(result)
    if isinstance(result, Comparison):
        return _comparison(result)
    if isinstance(result, Complexity):
        return _complexity(result)
    return _leaks(result)
