"""Compare scenarios side by side: each run in a fresh process, interleaved, medians of repeats.

Runs are interleaved (A B A B …) so that a drift of the machine hits every scenario alike, and
every run gets a fresh interpreter so that allocator retention from one scenario cannot leak into
the next (DESIGN §5.1, §5.5). Ratios compare medians within the same call.
"""

from __future__ import annotations

import importlib.util
import shlex
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from membound._errors import TargetError
from membound.measure.isolate import Target, measure_command, run_isolated
from membound.measure.result import Measurement
from membound.measure.timeline import Timeline
from membound.measure.track import track

__all__ = ["Comparison", "ScenarioStats", "Spread", "compare", "load_scenarios", "scenario"]

F = TypeVar("F", bound=Callable[..., Any])
_MARK = "__membound_scenario__"


def scenario(name: str | F | None = None) -> Any:
    """Mark a module-level function in a scenarios file for ``membound compare FILE``.

    Usable as ``@scenario``, ``@scenario()`` or ``@scenario("load all")``.
    """

    def mark(func: F, label: str | None) -> F:
        setattr(func, _MARK, label or func.__name__)
        return func

    if callable(name):
        return mark(name, None)
    return lambda func: mark(func, name)


def load_scenarios(path: str | Path) -> dict[str, str]:
    """Import a scenarios file and return ``{name: "path.py:function"}`` in file order.

    Raises:
        TargetError: the file is missing, does not import, or declares no scenario.
    """
    file = Path(path)
    if not file.is_file():
        raise TargetError(
            f"scenarios file not found: {path}",
            hint="give a Python file whose functions carry @membound.scenario('name')",
        )
    spec = importlib.util.spec_from_file_location(f"__membound_scenarios_{file.stem}__", file)
    if spec is None or spec.loader is None:
        raise TargetError(f"cannot load {path} as Python")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise TargetError(
            f"{path} failed to import: {type(exc).__name__}: {exc}",
            hint=f"run 'python {path}' to see the error in full",
        ) from None
    found: dict[str, str] = {}
    for obj in vars(module).values():
        if not (callable(obj) and hasattr(obj, _MARK)):
            continue
        if getattr(obj, "__module__", "") != spec.name:
            continue
        name = getattr(obj, _MARK)
        if name in found:
            raise TargetError(
                f"{path} declares two scenarios named {name!r}",
                hint="give each @membound.scenario its own name",
            )
        found[name] = f"{file.resolve()}:{obj.__name__}"
    if not found:
        raise TargetError(
            f"{path} declares no scenario",
            hint="decorate module-level functions with @membound.scenario('name')",
        )
    return found


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
    """Median Δ peak divided by the first scenario's (None when that is not positive)."""
    outcome: str
    """``ok`` when every run ended normally, else the first other outcome with its detail."""
    timeline: Timeline = field(compare=False)
    """Timeline of the run whose peak was the median, for charts."""
    rss_peak_source: str = ""
    """Where the peaks came from."""


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
                d[f.name] = v
            rows.append(d)
        return {"rows": rows, "repeat": self.repeat, "isolated": self.isolated, "heap": self.heap}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Comparison:
        """Inverse of :meth:`to_dict`."""
        rows = []
        for d in data["rows"]:
            kw = dict(d)
            for key in ("rss_peak", "rss_peak_delta", "heap_peak", "duration_s"):
                if kw.get(key) is not None:
                    kw[key] = Spread(**kw[key])
            kw["timeline"] = Timeline.from_dict(kw["timeline"])
            rows.append(ScenarioStats(**kw))
        return cls(tuple(rows), int(data["repeat"]), bool(data["isolated"]), bool(data["heap"]))

    def to_markdown(self) -> str:
        """A Markdown table of the comparison."""
        from membound.report.markdown import render_comparison

        return render_comparison(self)


Scenarios = Mapping[str, Target] | Sequence[Sequence[str] | str] | str | Path


def _runners(
    scenarios: Scenarios, isolate: bool, heap: bool, quiet: bool
) -> list[tuple[str, Callable[[], Measurement]]]:
    if isinstance(scenarios, str | Path):
        scenarios = load_scenarios(scenarios)
    if isinstance(scenarios, Mapping):
        out: list[tuple[str, Callable[[], Measurement]]] = []
        for name, target in scenarios.items():
            if isolate:

                def run(t: Target = target, n: str = name) -> Measurement:
                    return run_isolated(t, heap=heap, label=n, quiet=quiet)
            else:

                def run(t: Target = target, n: str = name) -> Measurement:
                    if not callable(t):
                        raise TargetError(f"{n}: with isolate=False the target must be a callable")
                    with track(n, heap=heap) as tracker:
                        t()
                    assert tracker.result is not None
                    return tracker.result

            out.append((name, run))
        return out
    runners: list[tuple[str, Callable[[], Measurement]]] = []
    for argv in scenarios:
        args = shlex.split(argv) if isinstance(argv, str) else list(argv)
        name = shlex.join(args)

        def run_cmd(a: list[str] = args, n: str = name) -> Measurement:
            return measure_command(a, heap=heap, quiet=quiet, label=n)

        runners.append((name, run_cmd))
    return runners


def compare(
    scenarios: Scenarios,
    repeat: int = 3,
    isolate: bool = True,
    *,
    heap: bool = False,
    quiet: bool = True,
    on_run: Callable[[str, int], None] | None = None,
) -> Comparison:
    """Measure scenarios side by side.

    Args:
        scenarios: ``{name: target}`` (targets as for :func:`membound.measure`), a list of
            commands (argv lists or strings), or the path of a file with ``@scenario`` functions.
        repeat: runs per scenario, interleaved A B A B …; figures are medians with min–max.
        isolate: a fresh interpreter per run (commands always get their own process).
        heap: also trace the Python heap.
        quiet: discard the scenarios' own output.
        on_run: called as ``on_run(name, run_index)`` before each run (progress display).

    Raises:
        TargetError: no scenarios, or a scenario cannot be loaded.
        ChildFailed: a scenario raised.
    """
    if repeat < 1:
        raise TargetError("repeat must be at least 1")
    runners = _runners(scenarios, isolate, heap, quiet)
    if not runners:
        raise TargetError("no scenarios to compare")
    results: dict[str, list[Measurement]] = {name: [] for name, _ in runners}
    for i in range(repeat):
        for name, run in runners:
            if on_run is not None:
                on_run(name, i)
            results[name].append(run())
    rows: list[ScenarioStats] = []
    first_delta: float | None = None
    for name, _ in runners:
        ms = results[name]
        delta = Spread.of(m.rss_peak_delta for m in ms)
        if first_delta is None:
            first_delta = delta.median
        by_peak = sorted(ms, key=lambda m: m.rss_peak_delta)
        median_run = by_peak[len(by_peak) // 2]
        bad = next((m for m in ms if not m.ok), None)
        heaps = [m.heap_peak for m in ms if m.heap_peak is not None]
        rows.append(
            ScenarioStats(
                name=name,
                runs=len(ms),
                rss_peak=Spread.of(m.rss_peak for m in ms),
                rss_peak_delta=delta,
                heap_peak=Spread.of(heaps) if heaps else None,
                duration_s=Spread.of(m.duration_s for m in ms),
                growth=Counter(m.growth.label for m in ms).most_common(1)[0][0],
                ratio=delta.median / first_delta if first_delta and first_delta > 0 else None,
                outcome="ok" if bad is None else f"{bad.outcome}: {bad.outcome_detail}",
                timeline=median_run.timeline,
                rss_peak_source=median_run.rss_peak_source,
            )
        )
    return Comparison(tuple(rows), repeat, isolate or not isinstance(scenarios, Mapping), heap)
