"""Compare scenarios side by side: each run in a fresh process, interleaved, medians of repeats.

Runs are interleaved (A B A B …) so that a drift of the machine hits every scenario alike, and
every run gets a fresh interpreter so that allocator retention from one scenario cannot leak into
the next (DESIGN §5.1, §5.5). Ratios compare medians within the same call.
"""

from __future__ import annotations

import shlex
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from membound._errors import Interrupted, TargetError
from membound.measure.deadline import deadline
from membound.measure.inprocess import measure_call
from membound.measure.isolate.command import measure_command
from membound.measure.isolate.function import run_isolated
from membound.measure.isolate.outcome import check_timeout
from membound.measure.scenarios import load_scenarios
from membound.measure.target import Target
from membound.measure.where.engine import WhereMode, where_mode
from membound.results.comparison import RATIO_FLOOR, Comparison, ScenarioStats, Spread
from membound.results.measurement import Measurement

__all__ = ["compare"]

Scenarios = Mapping[str, Target] | Sequence[Sequence[str] | str] | str | Path


def _runners(
    scenarios: Scenarios,
    isolate: bool,
    heap: bool,
    quiet: bool,
    timeout: float | None,
    where: WhereMode = False,
) -> list[tuple[str, Callable[[], Measurement]]]:
    if isinstance(scenarios, str | Path):
        scenarios = load_scenarios(scenarios)
    if isinstance(scenarios, Mapping):
        out: list[tuple[str, Callable[[], Measurement]]] = []
        for name, target in scenarios.items():
            if isolate:

                def run(t: Target = target, n: str = name) -> Measurement:
                    return run_isolated(
                        t, heap=heap, label=n, quiet=quiet, timeout=timeout, where=where
                    )
            else:

                def run(t: Target = target, n: str = name) -> Measurement:
                    with deadline(timeout, f"scenario {n}"):
                        return measure_call(t, heap=heap, label=n, where=where)

            out.append((name, run))
        return out
    runners: list[tuple[str, Callable[[], Measurement]]] = []
    for argv in scenarios:
        args = _split(argv) if isinstance(argv, str) else list(argv)
        name = shlex.join(args)

        def run_cmd(a: list[str] = args, n: str = name) -> Measurement:
            return measure_command(a, heap=heap, quiet=quiet, label=n, timeout=timeout, where=where)

        runners.append((name, run_cmd))
    return runners


def _split(command: str) -> list[str]:
    """A command line split as a POSIX shell would split it (no shell runs it)."""
    try:
        args = shlex.split(command)
    except ValueError as exc:  # an unclosed quote
        raise TargetError(
            f"cannot split the command {command!r}: {exc}",
            hint="close every quote, or give the command as a list of arguments",
        ) from None
    if not args:
        raise TargetError(
            "an empty command", hint="give a program to run, e.g. --cmd 'python job.py'"
        )
    return args


def compare(
    scenarios: Scenarios,
    repeat: int = 3,
    isolate: bool = True,
    *,
    heap: bool = False,
    quiet: bool = True,
    timeout: float | None = None,
    on_run: Callable[[str, int], None] | None = None,
    where: WhereMode = False,
) -> Comparison:
    """Measure scenarios side by side.

    Args:
        scenarios: ``{name: target}`` (targets as for :func:`membound.measure`), a list of
            commands (argv lists or strings), or the path of a file with ``@scenario`` functions.
        repeat: runs per scenario, interleaved A B A B …; figures are medians with min–max.
        isolate: a fresh interpreter per run (commands always get their own process).
        heap: also trace the Python heap.
        quiet: discard the scenarios' own output.
        timeout: seconds per run; a run stopped at it shows ``timeout`` as its outcome (in this
            process, ``isolate=False``, it raises :class:`LimitExceeded` instead).
        on_run: called as ``on_run(name, run_index)`` before each run (progress display).
        where: also say which lines held the peak (``True`` or ``"native"``): after the
            runs, each scenario runs once more with ``where`` on and its row keeps that run's
            sites (the figures stay free of the tracer's own memory).

    Raises:
        TargetError: no scenarios, or a scenario cannot be loaded.
        ChildFailed: a scenario raised, or ended its process without a result (``os._exit``).
        Interrupted: Ctrl-C; its ``partial`` holds the runs that finished.
    """
    if repeat < 1:
        raise TargetError("repeat must be at least 1")
    check_timeout(timeout)
    where_mode(where)  # a bad value is refused before any run
    # The figures come from runs without ``where`` (memray's own memory would count in them:
    # +9 MiB on a scenario of +16 KiB); the sites from one more run of each, with it.
    runners = _runners(scenarios, isolate, heap, quiet, timeout)
    if not runners:
        raise TargetError("no scenarios to compare")
    by_command = not isinstance(scenarios, Mapping)
    results: dict[str, list[Measurement]] = {name: [] for name, _ in runners}
    sited: dict[str, Measurement] = {}
    try:
        for i in range(repeat):
            for name, run in runners:
                if on_run is not None:
                    on_run(name, i)
                results[name].append(run())
        if where:
            for name, run in _runners(scenarios, isolate, heap, quiet, timeout, where):
                if on_run is not None:
                    on_run(f"{name} (where)", repeat)
                sited[name] = run()
    except KeyboardInterrupt as exc:
        done = sum(len(ms) for ms in results.values())
        most = max(len(ms) for ms in results.values())  # the runs each median is of, at most
        partial = _comparison(results, most, isolate or by_command, heap) if done else None
        raise Interrupted(
            partial,
            f"{done} of {repeat * len(runners)} runs finished"
            + (
                f"; {sum(1 for ms in results.values() if not ms)} scenario(s) never ran"
                if any(not ms for ms in results.values())
                else ""
            ),
        ) from exc
    return _comparison(results, repeat, isolate or by_command, heap, sited)


def _comparison(
    results: Mapping[str, Sequence[Measurement]],
    repeat: int,
    isolated: bool,
    heap: bool,
    sited: Mapping[str, Measurement] | None = None,
) -> Comparison:
    """The comparison of the runs in ``results`` (scenarios without a run are left out)."""
    rows: list[ScenarioStats] = []
    first_delta: float | None = None
    for name, ms in results.items():
        if not ms:
            continue
        delta = Spread.of(m.rss_peak_delta for m in ms)
        if first_delta is None:
            first_delta = delta.median
        by_peak = sorted(ms, key=lambda m: m.rss_peak_delta)
        median_run = by_peak[len(by_peak) // 2]
        bad = next((m for m in ms if not m.ok), None)
        heaps = [m.heap_peak for m in ms if m.heap_peak is not None]
        overheads = [m.heap_overhead for m in ms if m.heap_overhead is not None]
        rows.append(
            ScenarioStats(
                name=name,
                runs=len(ms),
                rss_peak=Spread.of(m.rss_peak for m in ms),
                rss_peak_delta=delta,
                heap_peak=Spread.of(heaps) if heaps else None,
                duration_s=Spread.of(m.duration_s for m in ms),
                growth=Counter(m.growth.label for m in ms).most_common(1)[0][0],
                ratio=(
                    delta.median / first_delta
                    if first_delta is not None and first_delta >= RATIO_FLOOR
                    else None
                ),
                outcome="ok" if bad is None else f"{bad.outcome}: {bad.outcome_detail}",
                timeline=median_run.timeline,
                rss_peak_source=median_run.rss_peak_source,
                heap_overhead=Spread.of(overheads) if overheads else None,
                peak_sites=sited[name].peak_sites if sited and name in sited else (),
                where_note=sited[name].where_note if sited and name in sited else "",
            )
        )
    return Comparison(tuple(rows), repeat, isolated, heap)
