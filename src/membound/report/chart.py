"""PNG charts (matplotlib, extra ``plot``): timelines with their peaks marked, and Δ peaks.

A ``Measurement`` gives one timeline; a ``Comparison`` gives its scenarios' timelines overlaid
(left) and a bar chart of each scenario's median Δ peak RSS (right).
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

from membound.judge.compare import Comparison
from membound.measure.result import Measurement
from membound.measure.timeline import Timeline

__all__ = ["ChartReporter", "chart"]

_MIB = float(2**20)


def _pyplot() -> Any:
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


def _plot_timeline(ax: Any, timeline: Timeline, label: str, index: int = 0) -> str | None:
    """Plot one timeline with its peak marked; returns the colour used (None if empty)."""
    if not len(timeline):
        ax.plot([], [], label=f"{label} (no samples)")
        return None
    xs = list(timeline.times)
    highs = [v / _MIB for v in timeline.highs]
    lows = [v / _MIB for v in timeline.lows]
    (line,) = ax.plot(xs, highs, label=label, linewidth=1.2)
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


def chart(result: Measurement | Comparison, path: str | Path | IO[bytes]) -> None:
    """Write a PNG chart of ``result`` to ``path`` (a file name or a binary stream)."""
    plt = _pyplot()
    if isinstance(result, Measurement):
        fig, ax = plt.subplots(figsize=(8, 4.5))
        _plot_timeline(ax, result.timeline, result.label)
        ax.set_title(f"{result.label}: {result.growth.pattern}")
        axes = [ax]
    else:
        fig, (ax, bars) = plt.subplots(1, 2, figsize=(13, 5), width_ratios=(3, 2))
        colours = [
            _plot_timeline(ax, row.timeline, row.name, i) for i, row in enumerate(result.rows)
        ]
        ax.set_title("RSS over time (median run of each scenario)")
        names = [r.name for r in result.rows]
        deltas = [r.rss_peak_delta.median / _MIB for r in result.rows]
        bars.barh(names, deltas, color=[c or "tab:gray" for c in colours])
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

    def __init__(self, result: Measurement | Comparison) -> None:
        self.result = result

    def render(self, outfile: str | Path | IO[bytes]) -> None:
        """Write the PNG to ``outfile``."""
        chart(self.result, outfile)
