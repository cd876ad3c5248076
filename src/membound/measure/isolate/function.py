"""Measure a function in a fresh interpreter (``measure``), or in this process on request.

A fresh interpreter per run is the default (DESIGN §5.1): allocator retention from an earlier run
must not leak into the next. The child (``isolated_call.py``) takes its baseline after importing the
target's module, so ``rss_peak_delta`` is what the call itself added.

The parent never hangs and nothing outlives a run: the child is spawned by the sampler process,
which keeps every process the child starts (a cgroup per run, or a subreaper), enforces the memory
limit within one interval and kills the whole run when it ends, when ``timeout`` is reached here,
and on Ctrl-C.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from membound._errors import ChildFailed, TargetError
from membound._units import format_size
from membound.measure import child_code
from membound.measure.cgroup.memory import ram_available
from membound.measure.heap import HeapMode, heap_engine
from membound.measure.inprocess import measure_call
from membound.measure.isolate.outcome import (
    check_interval,
    check_timeout,
    describe_outcome,
    exit_words,
    heap_and_gc,
    parse_limit,
    read_report,
)
from membound.measure.sampler.process import Sampler, SamplerReport, tree_source
from membound.measure.target import Target, TargetRef, import_error, resolve_target
from membound.measure.where.engine import (
    WhereMode,
    fit_to_resident,
    kept_by,
    sites_fields,
    stopped_detail,
    where_engine,
    where_mode,
)
from membound.measure.where.limit_stack import running_words, stack_fields, stack_tool
from membound.results.growth import Anchors, classify
from membound.results.measurement import Measurement, Outcome

if TYPE_CHECKING:
    from membound.measure.children.where_capture import read_ticket
else:
    read_ticket = child_code.load("where_capture").read_ticket

__all__ = [
    "RERUN_SLACK_S",
    "RERUN_TIMES",
    "measure",
    "module_args",
    "rerun_deadline",
    "run_isolated",
    "run_python",
]

_CHILD = child_code.path("isolated_call")
#: At a memory limit, how long a child with ``where`` gets to write its capture before the kill.
FLUSH_GRACE_S = 1.0


def _child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment, with its import path in ``PYTHONPATH`` less the current
    folder: entries of ``PYTHONPATH`` come before the standard library, so a ``types.py`` or
    ``json.py`` there would replace the standard module in membound's own child before its
    imports are done. Each child puts the current folder first itself, after them, for the
    target's import (as ``python -m`` would)."""
    env = dict(os.environ)
    here = os.path.realpath(os.getcwd())
    paths = [p for p in sys.path if p and os.path.realpath(p) != here]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    if extra:
        env.update(extra)
    return env


#: ``python -c`` code that runs a module as ``python -m`` would, without the current folder
#: first on ``sys.path`` while it imports (``-c`` puts it there; ``-P`` is Python 3.11+ only).
_RUN_MODULE = (
    "import sys\n"
    "if sys.path and not sys.path[0]:\n"  # not there under -P / PYTHONSAFEPATH
    "    del sys.path[0]\n"
    "m = sys.argv.pop(1)\n"
    "import runpy\n"
    "runpy.run_module(m, run_name='__main__', alter_sys=True)\n"
)


def module_args(module: str, *args: str) -> list[str]:
    """Interpreter arguments that run ``module`` as ``python -m module ARGS`` would, but with
    the current folder kept off ``sys.path`` (for :func:`run_python`): a ``types.py`` there
    must not replace the standard module in membound's child."""
    return ["-c", _RUN_MODULE, module, *args]


def _spawn(
    argv: Sequence[str],
    *,
    timeout: float | None,
    interval: float,
    limit: int | None = None,
    quiet: bool = False,
    flush: bool = False,
) -> tuple[SamplerReport, bool]:
    """Run ``argv`` from the sampler with this process's import path; wait for it, and have the
    whole run killed at ``timeout`` or on any error here (Ctrl-C included). With ``flush``, at
    the limit the child is first asked to write its capture (``FLUSH_GRACE_S`` at most).

    Returns:
        The sampler's report (``exit_code`` set) and whether the timeout was reached.
    """
    stdio = [os.open(os.devnull, os.O_RDWR)]
    stdio += [os.open(os.devnull, os.O_RDWR) for _ in range(2)] if quiet else [os.dup(1), os.dup(2)]
    with Sampler(
        None,
        interval=interval,
        limit=limit,
        tree=True,  # what the call starts (pool workers, forks) counts, and its limit too
        spawn=argv,
        stdio=stdio,
        env=_child_env(),
        flush_grace=FLUSH_GRACE_S if flush and limit is not None else None,
        stack_tool=stack_tool() if limit is not None else None,
    ) as sampler:  # Ctrl-C, SIGTERM anywhere up to the end of the wait: the run is killed
        sampler.start()  # it closes the stdio descriptors here
        if sampler.spawn_error is not None:
            raise ChildFailed(f"cannot start a fresh interpreter: {sampler.spawn_error}")
        return sampler.finish(timeout)


def _returncode(report: SamplerReport) -> int:
    return report.exit_code if report.exit_code is not None else -signal.SIGKILL


def run_python(args: Sequence[str], timeout: float | None) -> tuple[int, bool]:
    """Run ``python ARGS`` with this process's import path; kill every process of it at
    ``timeout``, when it ends, or on any error here (Ctrl-C included).

    Returns:
        The exit status and whether it timed out.
    """
    report, timed_out = _spawn([sys.executable, *args], timeout=timeout, interval=0.5)
    return _returncode(report), timed_out


@dataclass(frozen=True)
class _ChildRun:
    """What one run of the child left behind."""

    returncode: int
    """The child's exit status (negative: killed by that signal)."""
    timed_out: bool
    """True when membound stopped it at the timeout."""
    sampler: SamplerReport
    """The sampler's report on the child."""
    result: dict[str, Any] | None
    """The child's report after the call (None when it did not get that far)."""
    started: dict[str, Any] | None
    """The child's report just before the call (baseline, start time)."""
    flushed: dict[str, Any] | None = None
    """What the child's capture held when the sampler stopped it at the limit (``where``)."""


def _request(
    ref: TargetRef,
    args: Sequence[Any],
    kwargs: dict[str, Any] | None,
    heap: str | None,
    where: str | None = None,
) -> bytes:
    """The pickled request the child reads: where the target is, its arguments, heap or not,
    and where's ``(mode, engine)`` or None."""
    call_args = (*ref.args, *args)
    call_kwargs = {**dict(ref.kwargs), **(kwargs or {})}
    try:
        pickled_args = pickle.dumps((call_args, call_kwargs))
    except Exception as exc:
        raise TargetError(f"the arguments of {ref.display} cannot be pickled: {exc}") from None
    target = {
        "module": ref.module,
        "qualname": ref.qualname,
        "path": ref.path,
        "pickled": ref.pickled,
    }
    sites = (where, where_engine(where)) if where else None
    return pickle.dumps((target, pickled_args, heap, sites))


def _run_child(
    request: bytes,
    limit: int | None,
    timeout: float | None,
    interval: float,
    quiet: bool,
    flush: bool = False,
) -> _ChildRun:
    """Start the child under the sampler, wait for it, and collect what it reported."""
    with tempfile.TemporaryDirectory(prefix="membound-") as tmp:
        request_path = Path(tmp, "request.pickle")
        result = Path(tmp, "result.json")
        request_path.write_bytes(request)
        argv = [sys.executable, str(_CHILD), str(request_path), str(result)]
        report, timed_out = _spawn(
            argv, timeout=timeout, interval=interval, limit=limit, quiet=quiet, flush=flush
        )
        return _ChildRun(
            _returncode(report),
            timed_out,
            report,
            _read_capture(read_report(result)),
            read_report(Path(str(result) + ".started")),
            _read_capture(read_report(Path(str(result) + ".where")) if flush else None),
        )


def _read_capture(data: dict[str, Any] | None) -> dict[str, Any] | None:
    """A child's report with its memray capture read (by this interpreter, the child's, in a
    process of its own: ``_where.read_ticket``)."""
    return read_ticket(data, sys.executable) if data else data


def _peak(run: _ChildRun, timeline_highs: Sequence[float], interval: float) -> tuple[int, str]:
    """The call's peak RSS and its source: VmHWM reset after the baseline where the child could
    reset it, else the sample that crossed the limit, else the largest sample; when the call
    started other processes, the largest sampled sum of the tree's RSS where that is higher."""
    data = run.result
    own, source = _own_peak(run, timeline_highs)
    processes = int(run.sampler.timeline.extra.get("processes_seen", 0))
    if processes <= 1:
        return own, source
    sampled = int(max(timeline_highs, default=0))
    if run.sampler.limit_hit_rss is not None:
        sampled = max(sampled, run.sampler.limit_hit_rss)
    exact = data is not None and bool(data.get("reset_ok"))
    return max(own, sampled), tree_source(processes, interval, sampled, own, source, exact)


def _own_peak(run: _ChildRun, timeline_highs: Sequence[float]) -> tuple[int, str]:
    """The child's own peak RSS and its source (see :func:`_peak`)."""
    data = run.result
    if data is not None and data.get("hwm") is not None and data.get("reset_ok"):
        return int(data["hwm"]), "VmHWM (reset after the baseline)"
    if run.sampler.limit_hit_rss is not None:
        return run.sampler.limit_hit_rss, "sampler (the sample that crossed the limit)"
    peak = int(max(timeline_highs, default=run.sampler.max_rss))
    return peak, "sampler max (VmHWM not available; short spikes may be missed)"


def _measurement(
    run: _ChildRun,
    name: str,
    outcome: Outcome,
    detail: str,
    limit: int | None,
    interval: float,
    where: str | None = None,
    objects_traced: dict[str, Any] | None = None,
) -> Measurement:
    """The Measurement of a child that got as far as its baseline; its lines from
    ``objects_traced`` (the report of a second run that traced each Python object) when
    given."""
    data, info = run.result, run.result if run.result is not None else run.started
    assert info is not None
    report = run.sampler
    t0 = float(info["t0"]) - report.start
    t1 = float(data["t1"]) - report.start if data else report.timeline.duration_s + t0
    timeline = report.timeline.window(t0, t1)
    baseline = int(info["baseline"])
    peak, source = _peak(run, timeline.highs, interval)
    captured = data if data and "where_source" in data else run.flushed
    sites = fit_to_resident(
        sites_fields(
            _lines_of(objects_traced, captured, where) if objects_traced and captured else captured,
            where,
            outcome,
        ),
        outcome,
        peak,
    )
    stack = stack_fields(report.limit_stack)
    running = running_words(stack.get("limit_stack", ()), stack.get("limit_stack_note", ""))
    detail = stopped_detail(detail, outcome, where, sites.get("peak_sites", ()), running=running)
    # What the call's descendants still held when it returned counts at the end (and was not
    # handed back by the child's malloc_trim).
    others = int(data.get("descendants_rss", 0)) if data else 0
    rss_end = (
        int(data["rss_end"]) + others if data else int(timeline.highs[-1] if timeline else peak)
    )
    released = data.get("rss_after_release") if data else None
    released = int(released) + others if released is not None else None
    return Measurement(
        label=name,
        kind="isolated",
        duration_s=float(data["duration_s"]) if data else max(0.0, t1 - t0),
        rss_start=baseline,
        rss_end=rss_end,
        rss_peak=peak,
        rss_peak_delta=peak - baseline,
        rss_peak_source=source,
        **heap_and_gc(data),
        timeline=timeline,
        growth=kept_by(
            classify(
                timeline,
                anchors=Anchors.of(
                    baseline,
                    peak,
                    source,
                    rss_end,
                    blocks_delta=data.get("blocks_delta") if data else None,
                    released=released,
                ),
            ),
            sites.get("end_sites", ()),
            rss_end - baseline,
        ),
        outcome=outcome,
        outcome_detail=detail,
        exit_code=run.returncode,
        limit=limit,
        interval=interval,
        blocks_delta=data.get("blocks_delta") if data else None,
        rss_after_release=released,
        **sites,
        **stack,
    )


def _arenas_named_the_lines(data: dict[str, Any] | None, outcome: str) -> bool:
    """Whether a call that returned had its lines named mostly by Python's object arenas (each
    under the line that opened it, ``where_reader.arena_words``): then a second run traces
    each object."""
    return (
        outcome == "ok"
        and data is not None
        and data.get("status") == "ok"
        and bool(data.get("arena_bytes"))
    )


#: What a run that traces each Python object takes besides the first run's traced peak, per
#: byte of arenas in that peak: memray's table keeps about 96 B per live allocation and small
#: objects average 30-60 B (measured: 169 MiB of table for the 62 MiB of arenas of 1.2 M
#: small objects), so three bytes per byte.
_TABLE_PER_ARENA_BYTE = 3


def _room_to_trace_again(data: dict[str, Any]) -> str:
    """Empty when the machine has room for a run that traces each object (half of what it
    has available at most), else the words that say why the lines were not traced again."""
    needed = int(data.get("heap_peak") or 0) + _TABLE_PER_ARENA_BYTE * int(data["arena_bytes"])
    available = ram_available()
    if available is None or needed <= available // 2:
        return ""
    return (
        f"(not traced again: tracing each object would take about {format_size(needed)}, "
        f"more than half of the {format_size(available)} the machine has available)"
    )


#: A second run that traces each object may take this many times the first run's time (it
#: took 2-5x on object-heavy jobs: memray records every object), plus :data:`RERUN_SLACK_S`
#: for an interpreter's start and memray's reading; past that it is stopped and the first
#: run's lines stand, said so.
RERUN_TIMES = 10
RERUN_SLACK_S = 10.0


def rerun_deadline(first_seconds: float, timeout: float | None) -> tuple[float, str]:
    """Seconds the second run (each object traced) may take after a first run of
    ``first_seconds``, and the words that say why: :data:`RERUN_TIMES` times it plus
    :data:`RERUN_SLACK_S`, never past the user's ``timeout``."""
    own = RERUN_TIMES * first_seconds + RERUN_SLACK_S
    if timeout is not None and timeout <= own:
        return timeout, "the run's timeout"
    return own, (f"{RERUN_TIMES}x the first run's {first_seconds:.3g} s plus {RERUN_SLACK_S:g} s")


def _objects_traced(
    request: bytes, limit: int | None, deadline: float, interval: float, why: str
) -> tuple[dict[str, Any] | None, str]:
    """The report of a run of ``request`` (heap ``memray``: every Python object traced) whose
    lines are kept, or None and the words that say why not (empty when it did not return as
    the first run did). Its output is discarded: the first run showed it; it is stopped after
    ``deadline`` seconds (``why``: the words for that deadline)."""
    run = _run_child(request, limit, deadline, interval, quiet=True)
    if run.timed_out:
        return None, (
            "(not traced again: a second run that traced each object was stopped after "
            f"{deadline:.3g} s, {why})"
        )
    data = run.result
    if run.returncode != 0 or data is None or data.get("status") != "ok":
        return None, ""
    return (data if data.get("where_source") else None), ""


def _lines_of(
    objects_traced: dict[str, Any], first: dict[str, Any], where: str | None
) -> dict[str, Any]:
    """The sites of the run that traced each object, said so beside the first run's figures
    (the second run's own memory, memray's table of every object, is in none of them); the
    first run's note on its arenas gives way to it."""
    arenas, peak = int(first.get("arena_bytes") or 0), int(first.get("heap_peak") or 0)
    stacks = "native stacks" if where == "native" else "Python stacks"
    again_peak = int(objects_traced.get("heap_peak") or 0)
    again_end = int(objects_traced.get("heap_current") or 0)
    return {
        **objects_traced,
        "where_source": f"memray at the high-water mark ({stacks}, each Python object traced) "
        f"in a second run: {format_size(again_peak)} traced at the peak, "
        f"{format_size(again_end)} at the end (bytes allocated); the figures are the first "
        f"run's, whose capture had {format_size(arenas)} of the {format_size(peak)} it traced "
        "at the peak in Python's object arenas, each under the line that opened it, which is "
        "not always the line whose objects fill it",
    }


def run_isolated(
    target: Target,
    args: Sequence[Any] = (),
    kwargs: dict[str, Any] | None = None,
    *,
    heap: HeapMode = False,
    limit: int | str | None = None,
    timeout: float | None = None,
    interval: float = 0.01,
    label: str | None = None,
    quiet: bool = False,
    where: WhereMode = False,
) -> Measurement:
    """Call ``target(*args, **kwargs)`` once in a fresh interpreter and measure it.

    See :func:`measure` for the meaning of each option; ``quiet`` discards the child's output.

    Raises:
        TargetError: the target cannot be imported or its arguments cannot be pickled.
        ChildFailed: the call raised, the child died of a signal membound did not send, or
            it ended without a report (the target ended its process: ``os._exit``, a crash).
    """
    engine = heap_engine(heap)
    mode = where_mode(where)
    ref = resolve_target(target)
    limit_bytes = parse_limit(limit)
    check_timeout(timeout)
    check_interval(interval)
    began = time.monotonic()
    run = _run_child(
        _request(ref, args, kwargs, engine, mode),
        limit_bytes,
        timeout,
        interval,
        quiet,
        flush=mode is not None,
    )
    first_seconds = time.monotonic() - began
    name = label or ref.display
    data = run.result
    if data is not None and data.get("status") == "target-error":
        raise import_error(ref, str(data["message"]))
    outcome, detail = describe_outcome(
        run.returncode, run.sampler, run.timed_out, limit_bytes, timeout
    )
    if data is None and run.started is None:
        if outcome in ("limit", "timeout"):
            detail += " before the target was called"
            raise ChildFailed(f"{name}: {detail}", exit_code=run.returncode)
        raise ChildFailed(
            f"{name}: the child interpreter ended before calling the target "
            f"({detail or 'no report'})",
            exit_code=run.returncode,
        )
    objects = None
    if mode is not None and engine != "memray" and _arenas_named_the_lines(data, outcome):
        assert data is not None
        why_not = _room_to_trace_again(data)
        if not why_not:
            again = _request(ref, args, kwargs, heap_engine("memray"), mode)
            deadline, why = rerun_deadline(first_seconds, timeout)
            objects, why_not = _objects_traced(again, limit_bytes, deadline, interval, why)
        if why_not:
            data["where_note"] = f"{data.get('where_note') or ''} {why_not}".strip()
    measurement = _measurement(run, name, outcome, detail, limit_bytes, interval, mode, objects)
    if data is not None and data.get("status") == "raised":
        last = str(data["traceback"]).strip().splitlines()[-1]
        raise ChildFailed(
            f"{name} raised in the child: {last}",
            traceback=str(data["traceback"]),
            exit_code=run.returncode,
            measurement=measurement,
        )
    if data is None and outcome not in ("limit", "timeout"):
        # Ended before it could report (``os._exit``, a crash, a signal): whatever its exit
        # status, the call never returned, so no figure here is the call's.
        raise ChildFailed(
            f"{name}: the child ended without a report ({detail or exit_words(run.returncode)})",
            exit_code=run.returncode,
            measurement=measurement,
            hint="the measured code ended its process (os._exit, a crash or a signal) before "
            "it returned; run it once directly to see how",
        )
    if outcome == "killed":
        raise ChildFailed(
            f"{name}: the child {detail}", exit_code=run.returncode, measurement=measurement
        )
    return measurement


def measure(
    target: Target,
    *args: Any,
    isolate: bool = True,
    heap: HeapMode = False,
    where: WhereMode = False,
    limit: int | str | None = None,
    timeout: float | None = None,
    **kwargs: Any,
) -> Measurement:
    """Measure one call of ``target(*args, **kwargs)``.

    ``isolate``, ``heap``, ``where``, ``limit`` and ``timeout`` are membound's own keywords: a
    target's arguments of the same names cannot be passed through (wrap the target in a
    ``functools.partial`` instead).

    The processes the call starts count, as ``membound run`` counts them (a ``multiprocessing``
    pool's workers, ``os.fork()``): at each sample the sampler sums the RSS of the measuring
    process and all its descendants, and ``rss_peak`` is the largest of that sum and the
    process's own ``VmHWM`` (``rss_peak_source`` says which); ``limit`` applies to the sum, and
    ``rss_end`` counts what the descendants still hold when the call returns. A forked child's
    pages still shared with its parent (copy-on-write) count in both (not in its first 0.1 s
    between fork and exec), and a descendant's peak between two samples is missed.

    Args:
        target: a module-level callable, a ``functools.partial`` of one, or a string
            ``"package.module:function"`` / ``"path/to/file.py:function"``.
        isolate: run in a fresh interpreter (default; DESIGN §5.1). ``False`` measures in this
            process with :class:`track`, where ``limit`` and ``timeout`` are not available.
        heap: also measure the heap: ``True``/``"tracemalloc"`` (Python allocations) or
            ``"memray"`` (Python allocators and native allocations; the ``memray`` extra).
        limit: stop the child when its RSS (with the processes it started) crosses this size
            (``"512 MB"``); the result's ``outcome`` is then ``"limit"``.
        timeout: stop the child after this many seconds; ``outcome`` is then ``"timeout"``.
        where: also say which lines held the memory at the peak and at the end
            (``peak_sites``/``end_sites``): ``True`` for Python lines, ``"native"`` for Python
            and native lines (memray). At a limit stop, the child gets 1 s to hand over its
            last capture before it is killed.

    Raises:
        TargetError: the target cannot be imported, or options do not fit.
        ChildFailed: the call raised (with the child's traceback), the child was killed, or
            it ended without a report (the target ended its process: ``os._exit``).
    """
    if not isolate:
        if limit is not None or timeout is not None:
            raise TargetError("limit and timeout need isolate=True (a child process to stop)")
        return measure_call(target, args, kwargs, heap=heap, where=where)
    return run_isolated(target, args, kwargs, heap=heap, limit=limit, timeout=timeout, where=where)
