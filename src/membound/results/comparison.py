"""``Comparison``: scenarios measured side by side, each a row of medians and ranges."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from membound.results.sites import PeakSite, sites_from_dicts, sites_to_dicts
from membound.results.timeline import Timeline

__all__ = ["RATIO_FLOOR", "Comparison", "ScenarioStats", "Spread"]

#: A first scenario whose Δ peak RSS is under this (16 pages) is "≈ 0": a ratio to it would
#: be a ratio to the noise of a few pages (4 KiB against 76 MiB read as 19,534×).
RATIO_FLOOR = 64 * 1024


@dataclass(frozen=True)
class Spread:
    """Median and range of one figure over repeated runs."""

    median: float
    """Median over the runs."""
    low: float
    """Smallest value."""
    high: float
    """Largest value."""

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        """The spread of ``values`` (which must not be empty)."""
        vals = list(values)
        return cls(statistics.median(vals), min(vals), max(vals))


@dataclass(frozen=True)
class ScenarioStats:
    """One row of a comparison: a scenario's figures over ``runs`` runs."""

    name: str
    """Scenario name."""
    runs: int
    """How many runs the figures summarise."""
    rss_peak: Spread
    """Peak RSS, bytes."""
    rss_peak_delta: Spread
    """Peak RSS over the run's own baseline, bytes."""
    heap_peak: Spread | None
    """Python heap peak over the start (tracemalloc), bytes; None unless asked for."""
    duration_s: Spread
    """Wall time, seconds."""
    growth: str
    """The most frequent growth pattern over the runs."""
    ratio: float | None
    """Median Δ peak divided by the first scenario's (None when that is under
    :data:`RATIO_FLOOR`: the first is then "≈ 0")."""
    outcome: str
    """``ok`` when every run ended normally, else the first other outcome with its detail."""
    timeline: Timeline = field(compare=False)
    """Timeline of the run whose peak was the median, for charts."""
    rss_peak_source: str = ""
    """Where the peaks came from."""
    heap_overhead: Spread | None = None
    """tracemalloc's own memory (inside the RSS figures), bytes; None unless the heap was
    traced."""
    peak_sites: tuple[PeakSite, ...] = field(default=(), compare=False)
    """Where the memory was at the peak, from one more run with ``where`` on after the measured
    ones (empty unless ``where`` was asked for)."""
    where_note: str = ""
    """What those sites do not cover (see ``Measurement.where_note``)."""


@dataclass(frozen=True)
class Comparison:
    """Scenarios measured side by side."""

    rows: tuple[ScenarioStats, ...]
    """One row per scenario, in the order given."""
    repeat: int
    """Runs per scenario."""
    isolated: bool
    """True when every run had a fresh process."""
    heap: bool
    """True when the heap was traced."""

    def row(self, name: str) -> ScenarioStats:
        """The row named ``name``."""
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (schema in ``report/json.py``)."""
        rows = []
        for r in self.rows:
            d: dict[str, Any] = {}
            for f in fields(r):
                v = getattr(r, f.name)
                if isinstance(v, Spread):
                    v = {"median": v.median, "low": v.low, "high": v.high}
                elif isinstance(v, Timeline):
                    v = v.to_dict()
                elif f.name == "peak_sites":
                    v = sites_to_dicts(v)
                d[f.name] = v
            rows.append(d)
        return {"rows": rows, "repeat": self.repeat, "isolated": self.isolated, "heap": self.heap}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Comparison:
        """Inverse of :meth:`to_dict`."""
        rows = []
        for d in data["rows"]:
            kw = dict(d)
            for key in ("rss_peak", "rss_peak_delta", "heap_peak", "duration_s", "heap_overhead"):
                if kw.get(key) is not None:
                    kw[key] = Spread(**kw[key])
            kw["timeline"] = Timeline.from_dict(kw["timeline"])
            kw["peak_sites"] = sites_from_dicts(kw.get("peak_sites"))
            rows.append(ScenarioStats(**kw))
        return cls(tuple(rows), int(data["repeat"]), bool(data["isolated"]), bool(data["heap"]))

    def to_markdown(self) -> str:
        """A Markdown table of the comparison."""
        from membound.report.markdown import render_comparison

        return render_comparison(self)

    def _repr_html_(self) -> str:
        """Jupyter's display: the HTML report's section for this result, with its chart where
        matplotlib is installed."""
        from membound.report.html import fragment

        return fragment(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's text display: the Markdown report, not every field of the dataclass."""
        printer.text(self.to_markdown())
