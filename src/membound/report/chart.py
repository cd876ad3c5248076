"""PNG charts (matplotlib, extra ``plot``): timelines with their peaks marked, and Δ peaks.

A ``Measurement`` gives one timeline; a ``Comparison`` gives its scenarios' timelines overlaid
(left) and a bar chart of each scenario's median Δ peak RSS (right). Labels are the user's text,
cut to ``LABEL_CHARS`` in legends, titles and bar names (the tables carry them in full), so one
long name cannot squeeze the plot; bytes that are not UTF-8 show as U+FFFD (a chart cannot draw
lone surrogates: ``report/text.py``). Log axes are labelled in plain numbers: mathtext is off (a
``$`` in a label is text), which would leave matplotlib's ``10^k`` tick labels as raw markup. A
file is written whole or not at all (``membound._files.write_atomic``): a full disk leaves no
empty PNG behind.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import IO, Any

from membound._files import write_atomic
from membound.judge.curves import MODELS
from membound.report.text import displayable
from membound.results import Comparison, Complexity, LeakReport, Measurement, Timeline
from membound.results.timeline import STARTED_AFTER

__all__ = ["ChartReporter", "chart", "plot_timeline", "pyplot"]

_MIB = float(2**20)
#: Characters of a user's label shown in a chart.
LABEL_CHARS = 48


def _short(text: str) -> str:
    """``text`` cut to :data:`LABEL_CHARS` characters (with an ellipsis when cut), drawable."""
    text = displayable(text)
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def _plain_log_ticks(axis: Any, unit: str = "") -> None:
    """Tick labels of a log axis as plain numbers (``1,000``, ``0.01``), not ``10^k`` markup."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    def text(value: float, _: object) -> str:
        if value >= 1:
            return f"{value:,.0f}{unit}"
        return f"{value:.6g}{unit}"

    axis.set_major_locator(LogLocator(base=10))
    axis.set_major_formatter(FuncFormatter(text))
    axis.set_minor_formatter(NullFormatter())


def pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ImportError("charts need matplotlib: pip install 'membound[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def to_hex(colour: Any) -> str:
    """A matplotlib colour as ``#rrggbb``."""
    from matplotlib.colors import to_hex as _to_hex

    return str(_to_hex(colour))


def plot_timeline(ax: Any, timeline: Timeline, label: str, index: int = 0) -> str | None:
    """Plot one timeline with its peak marked; returns the colour used (None if empty)."""
    if not len(timeline):
        ax.plot([], [], label=f"{_short(label)} (no samples)")
        return None
    # Seconds since the measured block started, not since the sampler's first sample: they
    # differ when the sampler took longer to start than the block waits for it.
    offset = float(timeline.extra.get(STARTED_AFTER, 0.0))
    xs = [t + offset for t in timeline.times]
    highs = [v / _MIB for v in timeline.highs]
    lows = [v / _MIB for v in timeline.lows]
    (line,) = ax.plot(xs, highs, label=_short(label), linewidth=1.2)
    if timeline.stride > 1:
        ax.fill_between(xs, lows, highs, color=line.get_color(), alpha=0.2, linewidth=0)
    i = max(range(len(highs)), key=highs.__getitem__)
    ax.plot([xs[i]], [highs[i]], marker="o", color=line.get_color())
    ax.annotate(
        f"{highs[i]:.1f} MiB",
        (xs[i], highs[i]),
        textcoords="offset points",
        xytext=(4, 4 + 11 * index),  # staggered so that nearby peaks stay readable
        fontsize=8,
        color=line.get_color(),
    )
    return str(to_hex(line.get_color()))


#: A y axis is logarithmic only when the measured values span at least this ratio; flatter
#: series (an O(1) result: a few KiB, or 0 B, at every size) read better on a linear axis.
_LOG_SPAN = 10.0


def _complexity(plt: Any, c: Complexity) -> Any:
    fig, ax = plt.subplots(figsize=(8, 5))
    points = sorted((p for p in c.points if p.n >= 1), key=lambda p: p.n)  # log axis: n >= 1
    ns = [p.n for p in points]
    values = [p.value / _MIB for p in points]
    positive = [v for v in values if v > 0]
    # A log axis cannot show 0 B: clamping such points to a byte once stretched the axis down to
    # 10⁻⁶ MiB. Log only when the positive values span decades; points at or below 0 B are then
    # marked at the bottom edge, named in the legend.
    log_y = len(positive) >= 2 and max(positive) / min(positive) >= _LOG_SPAN
    shown = [(n, v) for n, v in zip(ns, values, strict=True) if v > 0 or not log_y]
    ax.plot(
        [n for n, _ in shown],
        [v for _, v in shown],
        "o",
        color="black",
        label="measured (median)",
        zorder=3,
    )
    from membound.judge.curves import fit_models

    # A result read from a file may hold fewer sizes than a fit needs: draw the points alone.
    fits = fit_models(ns, [p.value for p in points], c.noise_floor) if len(set(ns)) >= 3 else {}
    lo, hi = (ns[0], ns[-1]) if ns else (1, 1)
    grid = [lo * (hi / lo) ** (i / 50) for i in range(51)]
    floor = min(positive) / _LOG_SPAN if log_y else None
    for name, fit in fits.items():
        curve = [(fit.intercept + fit.slope * MODELS[name](n)) / _MIB for n in grid]
        if floor is not None:  # the part of a model under the axis is not drawn
            curve = [v if v >= floor else float("nan") for v in curve]
        width = 2.5 if name == c.big_o else 1.0
        ax.plot(grid, curve, linewidth=width, label=f"{name} (residual {fit.residual:.3f})")
    if ns:  # a log axis of no data cannot be drawn
        ax.set_xscale("log")
        _plain_log_ticks(ax.xaxis)
    if log_y and floor is not None:
        ax.set_yscale("log")
        _plain_log_ticks(ax.yaxis)
        ax.set_ylim(bottom=floor)
        below = [n for n, v in zip(ns, values, strict=True) if v <= 0]
        if below:
            ax.plot(
                below,
                [floor] * len(below),
                "v",
                color="black",
                markerfacecolor="none",
                clip_on=False,
                label="0 B or less (below the axis)",
                zorder=3,
            )
    elif values and min(values) >= 0:
        ax.set_ylim(bottom=0)  # a flat series drawn from 0: its noise is not blown up
    ax.set_xlabel("n")
    ax.set_ylabel(("Δ peak RSS" if c.metric == "rss" else "heap peak") + " (MiB)")
    ax.set_title(f"{_short(c.label)}: {displayable(c.big_o)}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def _leaks(plt: Any, r: LeakReport) -> Any:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    calls = [x.calls for x in r.rounds]
    if all(x.held is not None for x in r.rounds):
        values = [(x.held or 0) / 1024 for x in r.rounds]
        ax.plot(calls, values, "o-", label="held by pymalloc and malloc, untraced (KiB)")
        ylabel = "memory held after collection (KiB)"
    else:
        values = [(x.heap or 0) / 1024 for x in r.rounds]
        ax.plot(calls, values, "o-", label="traced heap (KiB)")
        ylabel = "heap held since tracing started (KiB)"
    late = [x.calls for x in r.rounds if x.phase == "late"]
    if late:
        ax.axvspan(
            min(late) - (calls[1] - calls[0] if len(calls) > 1 else 1),
            max(late),
            alpha=0.1,
            label="late half (decides the verdict)",
        )
    ax.set_xlabel("calls")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{_short(r.label)}: {displayable(r.verdict)}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def chart(
    result: Measurement | Comparison | Complexity | LeakReport, path: str | Path | IO[bytes]
) -> None:
    """Write a PNG chart of ``result`` to ``path`` (a file name or a binary stream).

    Labels are the user's own text: ``$…$`` in a label is drawn as it is, never parsed as math.
    A file is drawn in memory first, then written whole or not at all.

    Raises:
        OSError: the file cannot be written (its ``filename`` is ``path``); an old file of
            that name is left as it was.
    """
    plt = pyplot()
    if isinstance(path, str | os.PathLike):
        png = io.BytesIO()
        with plt.rc_context({"text.parse_math": False}):
            _draw(plt, result, png)
        write_atomic(path, png.getvalue())
        return
    with plt.rc_context({"text.parse_math": False}):
        _draw(plt, result, path)


def _draw(
    plt: Any,
    result: Measurement | Comparison | Complexity | LeakReport,
    path: str | Path | IO[bytes],
) -> None:
    if isinstance(result, Complexity | LeakReport):
        fig = _complexity(plt, result) if isinstance(result, Complexity) else _leaks(plt, result)
        fig.tight_layout()
        fig.savefig(path, format="png", dpi=100)
        plt.close(fig)
        return
    if isinstance(result, Measurement):
        fig, ax = plt.subplots(figsize=(8, 4.5))
        plot_timeline(ax, result.timeline, result.label)
        ax.set_xlim(left=0)  # the block's start
        ax.set_title(f"{_short(result.label)}: {result.growth.label}")
        axes = [ax]
    else:
        fig, (ax, bars) = plt.subplots(1, 2, figsize=(13, 5), width_ratios=(3, 2))
        colours = [
            plot_timeline(ax, row.timeline, row.name, i) for i, row in enumerate(result.rows)
        ]
        ax.set_title("RSS over time (median run of each scenario)")
        names = [_short(r.name) for r in result.rows]
        deltas = [r.rss_peak_delta.median / _MIB for r in result.rows]
        # By position: two long names cut to the same text must stay two bars.
        bars.barh(range(len(names)), deltas, color=[c or "tab:gray" for c in colours])
        bars.set_yticks(range(len(names)), names)
        bars.invert_yaxis()
        bars.set_xlabel("Δ peak RSS over baseline (MiB, median)")
        bars.set_title(f"Δ peak RSS, median of {result.repeat}")
        for y, d in enumerate(deltas):
            bars.annotate(
                f"{d:.1f}",
                (d, y),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
        axes = [ax]
    for a in axes:
        a.set_xlabel("seconds since the measured code started")
        a.set_ylabel("RSS (MiB)")
        a.grid(alpha=0.3)
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)


class ChartReporter:
    """Build a PNG chart from a result, then ``render(outfile)``."""

    def __init__(self, result: Measurement | Comparison | Complexity | LeakReport) -> None:
        self.result = result

    def render(self, outfile: str | Path | IO[bytes]) -> None:
        """Write the PNG to ``outfile``."""
        chart(self.result, outfile)
