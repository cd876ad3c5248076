"""Memory complexity over input size: is the peak O(1), O(log n), O(n), O(n log n) or O(n²)?

``complexity(target, sizes)`` calls ``target(n)`` once per size (each in a fresh interpreter by
default) and fits ``y = a + b·f(n)`` for each model ``f`` by weighted least squares with
``b ≥ 0``. Weights are ``1 / max(y, floor)²``, so every size counts by its *relative* error and
the largest size does not drown the rest.

Choosing a model (the criterion the explanation states):

1. If the peaks of all sizes lie within the noise floor of each other, the verdict is O(1).
   The floor is estimated from repeated runs at the smallest size (their spread times 3), and
   is never below ``MIN_FLOOR`` for the metric (allocator and page granularity).
2. Fewer than three sizes above the floor decide nothing: ``undecided``, with the sizes that
   would decide.
3. Otherwise start from the simplest model and move to a more complex one only when it is
   clearly better: its relative residual is at most half of the current choice's and at least
   ``MIN_GAIN`` (0.05) lower. Residuals count only the part of each error beyond the noise
   floor, so page and arena granularity at small sizes is no evidence for a curve.
4. A growing model chosen from points that sit on two levels only (one step past the floor
   between them: a log, a line and a step up to a plateau all pass through two levels) is no
   verdict either: ``undecided``, with sizes further apart.

The fitting itself (the models, least squares, the choice) is ``judge/curves.py``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from membound._errors import Interrupted, LimitExceeded, TargetError
from membound._units import format_size
from membound.judge.curves import (
    MIN_FLOOR,
    MODELS,
    POOR_FIT,
    UNIT,
    Fit,
    choose_model,
    confidence,
    fit_models,
)
from membound.measure.cgroup.memory import memory_room
from membound.measure.deadline import deadline
from membound.measure.inprocess import measure_call
from membound.measure.isolate.function import run_isolated
from membound.measure.isolate.outcome import check_timeout
from membound.measure.target import Target, load_target, resolve_target
from membound.results.complexity import Complexity, ComplexityPoint
from membound.results.measurement import Measurement

__all__ = ["Complexity", "ComplexityPoint", "complexity"]

Metric = Literal["rss", "heap"]


def _bytes(value: float) -> str:
    """Bytes with enough precision for per-unit slopes (``36.0 B``, ``0.5 B``, ``3.2 MiB``)."""
    return f"{value:.3g} B" if abs(value) < 1024 else format_size(value)


@dataclass(frozen=True)
class Verdict:
    """A model chosen for a set of points, or the models still tied when too few points clear
    the noise floor."""

    big_o: str
    """The chosen model, or ``"undecided"``."""
    slope: float
    """Bytes (or seconds) per unit of the chosen model's f(n), by ordinary least squares."""
    fits: dict[str, Fit]
    """Every model fitted to the points that carry evidence."""
    confidence: float
    """0 to 1."""
    text: str
    """The explanation."""
    decided: bool = True
    """False when fewer than three points rose above the noise floor."""
    candidates: tuple[str, ...] = ()
    """The models still tied when undecided."""


def _spaced(lo: int, hi: int) -> list[int]:
    """Sizes from ``lo`` to three times ``hi`` (never past it), about half a decade apart."""
    sizes = [lo]
    while sizes[-1] < 3 * hi:
        step = 3 if str(sizes[-1])[0] == "1" else 10 / 3
        sizes.append(min(round(sizes[-1] * step), 3 * hi))
    return sizes


def _suggestion(ns: Sequence[float], ys: Sequence[float], first: int, memory: bool) -> str:
    """``--sizes …`` that would decide, from ``first`` on. For memory, none whose peak, drawn
    on a line through the largest point, would pass half of the memory this machine (or its
    cgroup) has free now: the suggestion must not be what gets the user OOM-killed."""
    sizes = _spaced(first, int(ns[-1]))
    note = ""
    room = memory_room() if memory else None
    if room is not None and max(ys) > 0:
        budget = room[0] / 2
        per_unit = max(ys) / ns[-1]
        fitting = [n for n in sizes if n <= ns[-1] or n * per_unit <= budget]
        if len(fitting) < 3:  # nothing larger fits: sizes between the ones measured, then
            lower = _spaced(max(int(ns[0]), first // 10), int(ns[-1]))
            fitting = [n for n in lower if n <= ns[-1] or n * per_unit <= budget]
        if fitting[-1] < sizes[-1]:
            note = (
                f" (no larger: at {_bytes(per_unit)} per unit of n they would need more than "
                f"half of the {format_size(room[0])} free here)"
            )
            sizes = fitting
    return f"e.g. --sizes {','.join(str(n) for n in sizes)}{note}"


def _undecided(
    ns: Sequence[float],
    ys: Sequence[float],
    clear: Sequence[int],
    floor: float,
    what: str,
    fmt: Callable[[float], str],
    memory: bool,
) -> Verdict:
    """Fewer than three points rose above the noise floor: which models stay possible, and
    which sizes would tell them apart."""
    fits = fit_models(ns, ys, max(floor, 1e-12))
    # Through one or two points every growing model passes; the smaller points, which may be
    # absorbed, only rank them (best fit first). None is excluded on their word.
    tied = tuple(sorted((m for m in MODELS if m != "O(1)"), key=lambda m: fits[m].residual))
    above = ", ".join(f"{int(ns[i]):,}" for i in clear) or "none"
    first = int(ns[clear[0]]) if clear else int(ns[-1])
    smaller = (
        "fit in memory the interpreter already held"
        if memory
        else "took no longer than the timing noise"
    )
    text = (
        f"{what} rose above the noise floor of {fmt(floor)} at {len(clear)} of "
        f"{len(ns)} sizes (n = {above}); the smaller ones {smaller} and say nothing about the "
        f"shape, and {len(clear)} point(s) cannot tell {', '.join(tied[:-1])} or {tied[-1]} "
        f"apart; three or more sizes that clear the floor would decide, "
        f"{_suggestion(ns, ys, first, memory)}; undecided"
    )
    return Verdict("undecided", 0.0, fits, 0.0, text, decided=False, candidates=tied)


def _levels(ys: Sequence[float], floor: float) -> list[int]:
    """The indexes (in size order) where the values reach a new level: each more than the
    noise floor away from the level before. Small steps that add up past the floor count; a
    wobble within it does not."""
    levels = [0]
    for i, y in enumerate(ys):
        if abs(y - ys[levels[-1]]) > floor:
            levels.append(i)
    return levels


def _two_levels(
    ns: Sequence[float],
    ys: Sequence[float],
    step: int,
    floor: float,
    what: str,
    fmt: Callable[[float], str],
    memory: bool,
) -> Verdict:
    """Every point cleared the noise floor, but they sit on two levels, the second reached at
    ``step``: a log, a line and a step up to a plateau all pass through two levels, so no
    shape is decided (a fit would still name one, its residual nothing beyond the floor)."""
    fits = fit_models(ns, ys, max(floor, 1e-12))
    tied = tuple(sorted((m for m in MODELS if m != "O(1)"), key=lambda m: fits[m].residual))
    spread = max(ys) - min(ys)
    text = (
        f"{what} rose by {fmt(spread)} over n = {int(ns[0]):,}…{int(ns[-1]):,}, "
        f"by more than the noise floor of {fmt(floor)} only between n = {int(ns[step - 1]):,} "
        f"and {int(ns[step]):,}: 2 levels, which {', '.join(tied[:-1])}, {tied[-1]} and a step "
        f"up to a plateau all pass through; sizes further apart would decide, "
        f"{_suggestion(ns, ys, int(ns[0]), memory)}; undecided"
    )
    return Verdict("undecided", 0.0, fits, 0.0, text, decided=False, candidates=tied)


def _verdict(
    ns: Sequence[float],
    ys: Sequence[float],
    floor: float,
    what: str,
    fmt: Callable[[float], str],
    *,
    evidence_only: bool = True,
    memory: bool = True,
) -> Verdict:
    """The model for ``ys`` over ``ns`` (module docstring). With ``evidence_only`` (memory),
    only points above the noise floor count: a smaller one fit in memory the interpreter
    already held and says nothing about the shape."""
    spread = max(ys) - min(ys)
    if spread <= floor:
        fits = fit_models(ns, ys, max(floor, 1e-12))
        conf = max(0.5, 1.0 - spread / (2 * floor)) if floor > 0 else 1.0
        text = (
            f"{what} stays within {fmt(spread)} across n = {int(ns[0]):,}…{int(ns[-1]):,}, "
            f"under the noise floor of {fmt(floor)}; O(1)"
        )
        return Verdict("O(1)", 0.0, fits, conf, text)
    if evidence_only:
        clear = [i for i, y in enumerate(ys) if y > floor]
        if len(clear) < 3:
            return _undecided(ns, ys, clear, floor, what, fmt, memory)
        ns = [ns[i] for i in clear]
        ys = [ys[i] for i in clear]
    fits = fit_models(ns, ys, max(floor, 1e-12))
    chosen = choose_model(fits)
    conf = confidence(fits, chosen)
    poor = chosen == "O(1)" and fits["O(1)"].residual > POOR_FIT
    levels = _levels(ys, floor)
    if evidence_only and (chosen != "O(1)" or poor) and len(levels) == 2:
        # A growing shape named from two levels: any growing model passes through them.
        return _two_levels(ns, ys, levels[1], floor, what, fmt, memory)
    if poor:
        # It grows beyond the noise and a constant fits badly: not O(1), whatever else it is.
        chosen = min((m for m in MODELS if m != "O(1)"), key=lambda m: fits[m].residual)
        conf = confidence(fits, chosen) / 2
    fit = fits[chosen]
    slope = fit_models(ns, ys, max(floor, 1e-12), weighted=False)[chosen].slope
    span = f" over n = {int(ns[0]):,}…{int(ns[-1]):,}"
    if chosen == "O(1)":
        text = (
            f"{what} varies by {fmt(spread)} but no growing model fits clearly better "
            f"(residual {fit.residual:.2f}); O(1)"
        )
    elif poor:
        text = (
            f"{what} grows by {fmt(spread)}, more than the noise floor, and no model fits well; "
            f"the closest is {chosen} (relative residual {fit.residual:.3f}, a constant "
            f"{fits['O(1)'].residual:.3f}){span}; {chosen}"
        )
    else:
        text = (
            f"{what} grows {fmt(slope)} {UNIT[chosen]}{span} (R²={fit.r2:.3f}, relative "
            f"residual {fit.residual:.3f}); {chosen}"
        )
    return Verdict(chosen, slope, fits, max(0.0, min(1.0, conf)), text)


def _check_sizes(sizes: Sequence[float], metric: str, repeat: int) -> list[int]:
    """The distinct sizes in increasing order; rejects what cannot give a verdict."""
    if any(isinstance(s, bool) or not isinstance(s, int | float) for s in sizes):
        raise TargetError(f"sizes must be numbers, not {list(sizes)}", hint="e.g. --sizes 1e3,1e4")
    if any(not math.isfinite(s) for s in sizes):
        raise TargetError(
            f"sizes must be finite numbers, not {list(sizes)}", hint="e.g. --sizes 1e3,1e4,1e5"
        )
    if any(float(s) != int(s) for s in sizes):
        raise TargetError(
            f"sizes must be whole numbers, not {list(sizes)}", hint="e.g. --sizes 1e3,1e4,1e5"
        )
    ns = sorted({int(s) for s in sizes})
    if len(ns) < 3 or ns[0] < 1:
        raise TargetError(
            "complexity needs at least three distinct sizes, all >= 1",
            hint="e.g. --sizes 1e3,1e4,1e5,1e6",
        )
    if metric not in ("rss", "heap"):
        raise TargetError(f"metric must be 'rss' or 'heap', not {metric!r}")
    if repeat < 1:
        raise TargetError("repeat must be at least 1")
    return ns


def _runs_by_size(
    run: Callable[[int], tuple[float, float]],
    ns: Sequence[int],
    first_runs: int,
    repeat: int,
    on_run: Callable[[int, int], None] | None,
) -> dict[int, list[tuple[float, float]]]:
    """(peak, seconds) of each run at each size: ``first_runs`` at the smallest (they estimate
    the noise floor), ``repeat`` at the others.

    Raises:
        _Stopped: Ctrl-C, with the runs that finished.
    """
    runs: dict[int, list[tuple[float, float]]] = {n: [] for n in ns}
    try:
        for n in ns:
            for i in range(first_runs if n == ns[0] else repeat):
                if on_run is not None:
                    on_run(n, i)
                runs[n].append(run(n))
    except KeyboardInterrupt as exc:
        raise _Stopped(runs) from exc
    return runs


class _Stopped(KeyboardInterrupt):
    """Ctrl-C between or during runs; ``runs`` holds those that finished."""

    def __init__(self, runs: dict[int, list[tuple[float, float]]]) -> None:
        super().__init__()
        self.runs = runs


def _runner(
    target: Target, isolate: bool, heap: bool, label: str | None, timeout: float | None
) -> tuple[Callable[[int], tuple[float, float]], str]:
    """A function measuring one run of ``target(n)`` as (peak bytes, seconds), and the name."""
    measure_at: Callable[[int], Measurement]
    if isolate:
        name = label or resolve_target(target).display

        def measure_at(n: int) -> Measurement:
            return run_isolated(target, (n,), heap=heap, label=name, quiet=True, timeout=timeout)
    else:
        func, loaded_name = load_target(target)
        name = label or loaded_name

        def measure_at(n: int) -> Measurement:
            with deadline(timeout, f"{name}({n:,})"):
                return measure_call(func, (n,), heap=heap, label=name, interval=None)

    def run(n: int) -> tuple[float, float]:
        m = measure_at(n)
        if not m.ok:  # stopped at the timeout: its peak is no figure of target(n)
            raise LimitExceeded(f"{name}({n:,}): {m.outcome_detail}", measurement=m)
        return float((m.heap_peak if heap else m.rss_peak_delta) or 0), m.duration_s

    return run, name


def complexity(
    target: Target,
    sizes: Sequence[float] = (10**3, 10**4, 10**5, 10**6),
    metric: Metric = "rss",
    isolate: bool = True,
    repeat: int = 1,
    *,
    noise_runs: int = 3,
    label: str | None = None,
    timeout: float | None = None,
    on_run: Callable[[int, int], None] | None = None,
) -> Complexity:
    """Measure how the peak memory of ``target(n)`` grows with ``n``.

    Args:
        target: a callable taking the size ``n`` (module-level for ``isolate=True``), or
            ``"package.module:function"``.
        sizes: at least three distinct sizes (floats such as ``1e6`` are accepted).
        metric: ``"rss"`` (Δ peak RSS over each run's own baseline, from VmHWM; native memory
            counts) or ``"heap"`` (tracemalloc peak).
        isolate: each run in a fresh interpreter (default); ``False`` measures in this process
            (tracemalloc ``reset_peak`` for heap, a VmHWM reset for RSS).
        repeat: runs per size; medians are fitted.
        noise_runs: runs at the smallest size used to estimate the noise floor.
        label: name for the result.
        timeout: seconds per run; a run that reaches it stops the whole measurement.
        on_run: progress call-back, ``on_run(n, run_index)``.

    Raises:
        TargetError: fewer than three distinct sizes, a bad metric or a bad target.
        ChildFailed: a run raised, or ended its process without a result (``os._exit``).
        LimitExceeded: a run reached ``timeout``.
        Interrupted: Ctrl-C; its ``partial`` is the verdict over the sizes that finished, when
            three or more did.
    """
    ns = _check_sizes(sizes, metric, repeat)
    check_timeout(timeout)
    run, name = _runner(target, isolate, metric == "heap", label, timeout)
    try:
        runs = _runs_by_size(run, ns, max(repeat, noise_runs), repeat, on_run)
    except _Stopped as stop:
        done = [n for n in ns if stop.runs[n]]
        finished = f"{len(done)} of {len(ns)} sizes finished" + (
            f" (n = {', '.join(f'{n:,}' for n in done)})" if done else ""
        )
        partial = (
            _complexity(done, {n: stop.runs[n] for n in done}, metric, name)
            if len(done) >= 3
            else None
        )
        raise Interrupted(partial, finished) from stop.__cause__
    return _complexity(ns, runs, metric, name)


def _complexity(
    ns: Sequence[int], runs: Mapping[int, Sequence[tuple[float, float]]], metric: Metric, name: str
) -> Complexity:
    """The verdict over ``runs`` (peak, seconds) at each size of ``ns``."""
    smallest = [v for v, _ in runs[ns[0]]]
    floor = max(MIN_FLOOR[metric], 3 * (max(smallest) - min(smallest)))
    points = tuple(
        ComplexityPoint(
            n,
            statistics.median(v for v, _ in runs[n]),
            statistics.median(s for _, s in runs[n]),
            len(runs[n]),
        )
        for n in ns
    )
    ys = [p.value for p in points]
    what = "peak RSS" if metric == "rss" else "heap peak"
    memory = _verdict(ns, ys, floor, what, _bytes)
    secs = [p.seconds for p in points]
    first_secs = [s for _, s in runs[ns[0]]]
    # Wall time is noisier than memory here: a shared machine adds milliseconds at random.
    # As for memory, only times above that floor count, and three of them are needed: two
    # (0.02 s and 2 s at n = 10⁵ and 10⁶) pass through every growing model.
    time_floor = max(0.005, 3 * (max(first_secs) - min(first_secs)), 0.05 * max(secs))
    timing = _verdict(ns, secs, time_floor, "wall time", lambda s: f"{s:.3g} s", memory=False)
    return Complexity(
        big_o=memory.big_o,
        bytes_per_unit=memory.slope,
        fits={k: f.residual for k, f in memory.fits.items()},
        confidence=memory.confidence,
        points=points,
        noise_floor=floor,
        explanation=memory.text,
        metric=metric,
        label=name,
        time_big_o=timing.big_o,
        time_explanation=timing.text,
        decided=memory.decided,
        candidates=memory.candidates,
    )
