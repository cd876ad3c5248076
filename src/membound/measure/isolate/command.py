"""Measure any command with its whole process tree (RSS summed over all descendants).

The command is spawned by the small sampler process, so the kernel's ``ru_maxrss`` of the
command is exact (it does not inherit a large parent's RSS, DESIGN §5.3); the sampler also
enforces the memory limit within one interval, and ``timeout`` is enforced here.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from membound._errors import CommandNotFound, TargetError
from membound._units import format_size
from membound.measure import child_code
from membound.measure.heap import HeapMode, heap_engine
from membound.measure.interpreter import lend_memray, needs_probe, probe
from membound.measure.isolate.function import FLUSH_GRACE_S
from membound.measure.isolate.outcome import (
    check_interval,
    check_timeout,
    describe_outcome,
    heap_and_gc,
    parse_limit,
    read_report,
)
from membound.measure.loaded_level import loaded_level
from membound.measure.sampler.polling import polling
from membound.measure.sampler.process import Sampler, SamplerReport
from membound.measure.where.engine import (
    WhereMode,
    fit_to_resident,
    kept_by,
    sites_fields,
    stopped_detail,
    where_mode,
)
from membound.measure.where.limit_stack import running_words, stack_fields, stack_tool
from membound.results.growth import Anchors, Growth
from membound.results.lifespan import classify_lifespan, needs_loaded
from membound.results.measurement import Measurement
from membound.results.sites import PeakSite

if TYPE_CHECKING:
    from membound.measure.children.where_capture import read_ticket
else:
    read_ticket = child_code.load("where_capture").read_ticket

__all__ = ["measure_command"]

_HEAP_RUNNER = child_code.path("heap_runner")
_PROGRESS_EVERY_S = 0.25


def _python_command(argv: list[str]) -> bool:
    """Whether ``--where``/``--heap`` can run ``argv`` (what :func:`_heap_argv` accepts)."""
    try:
        _heap_argv(argv, "")
    except TargetError:
        return False
    return True


def _heap_argv(argv: list[str], what: str) -> list[str]:
    """``argv`` run through the heap runner; ``what`` names the option that needs it."""
    exe = os.path.basename(argv[0])
    if not exe.startswith("python") or len(argv) < 2:
        raise TargetError(
            f"{what} needs a Python command ('python script.py …'), not {argv[0]!r}",
            hint=f"drop {what} for non-Python commands; RSS is measured for any command",
        )
    rest = argv[1:]
    if (rest[0] in ("-m", "-c") and len(rest) >= 2) or not rest[0].startswith("-"):
        return [argv[0], str(_HEAP_RUNNER), *rest]
    raise TargetError(
        f"{what} understands 'python script.py …', 'python -m module …' and "
        f"'python -c code …', not interpreter option {rest[0]!r}"
    )


def measure_command(
    argv: Sequence[str] | str,
    limit: int | str | None = None,
    timeout: float | None = None,
    interval: float = 0.01,
    *,
    heap: HeapMode = False,
    quiet: bool = False,
    label: str | None = None,
    on_progress: Callable[[float, int, int], None] | None = None,
    where: WhereMode = False,
) -> Measurement:
    """Run a command and measure its whole process tree (RSS summed over all descendants).

    Args:
        argv: the command, as a list or a shell-like string (split with ``shlex``; no shell).
        limit: kill the process group when the tree's RSS crosses this size.
        timeout: kill the process group after this many seconds.
        interval: sampling interval, seconds.
        heap: for ``python script.py``/``-m``/``-c`` commands, also report the heap peak and GC
            figures: ``True``/``"tracemalloc"``, or ``"memray"``.
        quiet: discard the command's stdout and stderr.
        label: name for the result (default: the command line).
        on_progress: called about 4 times a second while the command runs, from a thread of
            this process, as ``on_progress(seconds, rss, peak_rss)`` with the sampler's
            latest figures (a live display; the measured process is not touched).
        where: for Python commands, also say which lines held the memory at the peak and at
            the end: ``True`` (Python lines) or ``"native"`` (and native ones; memray in the
            command's interpreter, or membound's own lent to an interpreter of the same ABI:
            ``measure/interpreter.py``, which also starts the interpreter behind a wrapper or
            shim directly). The top Python process is traced, not its children. At a limit
            stop, the command gets 1 s to hand over its last capture.

    Returns:
        A Measurement with ``exit_code`` and ``outcome`` (``failed`` for a non-zero exit,
        ``killed`` for a signal membound did not send, ``limit``/``timeout`` when stopped).

    Raises:
        CommandNotFound: the program does not exist or is not executable.
    """
    args = shlex.split(argv) if isinstance(argv, str) else list(argv)
    if not args:
        raise CommandNotFound("no command given")
    _check_program(args[0])
    limit_bytes = parse_limit(limit)
    check_timeout(timeout)
    check_interval(interval)
    engine = heap_engine(heap)
    mode = where_mode(where)
    report, timed_out, heap_data = _run(
        args, engine, quiet, interval, limit_bytes, timeout, on_progress, mode
    )
    if heap_data and "error" in heap_data:
        raise TargetError(
            str(heap_data["error"]),
            hint="run the program with an interpreter that has memray, or drop that option",
        )
    exit_code = report.exit_code if report.exit_code is not None else -signal.SIGKILL
    timeline = report.timeline
    outcome, detail = describe_outcome(exit_code, report, timed_out, limit_bytes, timeout)
    procs = timeline.extra.get("processes_seen", 0)
    peak, source = _command_peak(report, procs, interval)
    sites = fit_to_resident(
        _tree_note(sites_fields(heap_data, mode, outcome), procs), outcome, peak
    )
    stack = stack_fields(report.limit_stack)
    detail = stopped_detail(
        detail,
        outcome,
        mode,
        sites.get("peak_sites", ()),
        procs,
        running_words(stack.get("limit_stack", ()), stack.get("limit_stack_note", "")),
        ask_where=_python_command(args),
    )
    rss_end = int(timeline.highs[-1]) if len(timeline) else 0
    # Only a start-up that ended at a level, or work too brief to be told from a start-up,
    # read otherwise for what the command's imports hold; the baseline runs after the
    # command, so it never slows it.
    loaded = loaded_level(args) if needs_loaded(timeline) else None
    return Measurement(
        label=label or shlex.join(args),
        kind="command",
        duration_s=report.timeline.duration_s if report.end is None else report.end,
        rss_start=0,
        rss_end=rss_end,
        rss_peak=peak,
        rss_peak_delta=peak,
        rss_peak_source=source,
        **heap_and_gc(heap_data if engine else None),
        timeline=timeline,
        growth=_kept_by(
            classify_lifespan(
                timeline,
                anchors=Anchors.of(0, peak, source, rss_end),
                loaded=None if loaded is None else loaded.rss,
            ),
            sites.get("end_sites", ()),
            rss_end,
        ),
        outcome=outcome,
        outcome_detail=detail,
        exit_code=exit_code,
        limit=limit_bytes,
        interval=interval,
        **sites,
        **stack,
    )


def _tree_note(fields: dict[str, Any], processes: int) -> dict[str, Any]:
    """Say that only the top process's lines are shown when the command ran several."""
    if fields and processes > 1:
        also = (
            f"lines of the top Python process only ({processes} processes ran; its children "
            "are not traced)"
        )
        if "forked process(es) traced" in str(fields.get("where_source") or ""):
            also = (
                f"lines of the top Python process and of the processes it forked ({processes} "
                "processes ran; those started as programs of their own are not traced)"
            )
        note = fields.get("where_note") or ""
        fields["where_note"] = f"{note}; {also}" if note else also
    return fields


@contextlib.contextmanager
def _reporting(
    sampler: Sampler, on_progress: Callable[[float, int, int], None] | None
) -> Iterator[None]:
    """Hand the sampler's live figures to ``on_progress`` from a thread while the block runs."""
    if on_progress is None:
        yield
        return

    def report() -> None:
        figures = sampler.live()
        if figures is not None:
            on_progress(*figures)

    with polling(report, _PROGRESS_EVERY_S, "membound-progress"):
        yield


def _run(
    args: list[str],
    heap: str | None,
    quiet: bool,
    interval: float,
    limit: int | None,
    timeout: float | None,
    on_progress: Callable[[float, int, int], None] | None = None,
    where: str | None = None,
) -> tuple[SamplerReport, bool, dict[str, Any] | None]:
    """Spawn the command from the sampler and wait for it: the sampler's report, whether it
    timed out, and the heap runner's report (with ``heap`` or ``where``)."""
    runner = bool(heap or where)
    traced = _Traced(args, heap, where) if runner else None
    with tempfile.TemporaryDirectory(prefix="membound-") as tmp:
        heap_out = Path(tmp, "heap.json")
        run_argv = traced.argv if traced is not None else args
        env = (
            {
                **traced.env,
                "MEMBOUND_HEAP_OUT": str(heap_out),
                "MEMBOUND_HEAP_ENGINE": heap or "",
                "MEMBOUND_WHERE": where or "",
            }
            if traced is not None
            else None
        )
        stdio = _stdio(quiet)
        with Sampler(
            None,
            interval=interval,
            tree=True,
            limit=limit,
            spawn=run_argv,
            stdio=stdio,
            env=env,
            status=str(Path(tmp, "status")) if on_progress else None,
            flush_grace=FLUSH_GRACE_S if where and limit is not None else None,
            stack_tool=stack_tool() if limit is not None else None,
        ) as sampler:  # Ctrl-C, SIGTERM anywhere up to the end of the wait: the run is killed
            sampler.start()  # it closes the stdio descriptors here
            if sampler.spawn_error is not None:
                if "E2BIG" in sampler.spawn_error:
                    raise TargetError(
                        sampler.spawn_error,
                        hint="pass large data through a file or stdin, not as arguments",
                    )
                raise CommandNotFound(sampler.spawn_error)
            with _reporting(sampler, on_progress):
                report, timed_out = sampler.finish(timeout)
        heap_data = read_report(heap_out) if traced is not None else None
        if heap_data and traced is not None:  # memray's capture, read by the same interpreter
            heap_data = read_ticket(heap_data, traced.argv[0], traced.env)
            if traced.note:
                said = str(heap_data.get("where_note") or "")
                heap_data["where_note"] = f"{traced.note}; {said}" if said else traced.note
    return report, timed_out, heap_data


class _Traced:
    """How a Python command runs traced (``--where``, ``--heap``): the interpreter its first
    word really runs (``measure/interpreter.py``: a shim's helpers never enter the measured
    tree), started through the heap runner, with memray lent where it can be and the words for
    where it cannot.

    Raises:
        TargetError: not a Python command; memray needed and neither installed nor lendable.
    """

    def __init__(self, args: list[str], heap: str | None, where: str | None) -> None:
        what = "--heap" if heap else "--where"
        argv = _heap_argv(args, what)
        found = probe(args[0])
        self.env = dict(os.environ)
        self.note = ""
        first = args[0]
        if needs_probe(args[0]):  # a shim or a wrapper: its interpreter, as it would start it
            first = found.executable
            self.env.update(found.environ)
        if not found.has_memray:
            lent = lend_memray(found)
            if lent:
                self.env.update(lent)
            elif heap == "memray" or where == "native":
                raise TargetError(
                    found.lacks_memray(),
                    hint=f"or drop {'--heap=memray' if heap == 'memray' else '--where=native'}",
                )
            else:
                self.note = f"{found.lacks_memray()} (Python lines through tracemalloc instead)"
        self.argv = [first, *found.options, *argv[1:]]


def _command_peak(report: SamplerReport, procs: int, interval: float) -> tuple[int, str]:
    """The command's peak RSS and where it came from: the kernel's exact figure where the
    command was spawned from the small sampler, else the largest sampled value (a lower bound)."""
    sampled = max(report.max_rss, report.max_hwm or 0)
    exact = (
        report.ru_maxrss is not None
        and report.spawner_hwm is not None
        and report.ru_maxrss > report.spawner_hwm
    )
    tree_sum_higher = report.max_rss > (report.max_hwm or 0) and procs > 1
    if exact and report.ru_maxrss is not None and tree_sum_higher and sampled > report.ru_maxrss:
        # wait4's ru_maxrss is the largest peak of any one process; processes that ran at the
        # same time together held more, and only the sampled sum sees that.
        peak = sampled
        source = (
            f"the summed RSS of the command's {procs} processes, sampled every "
            f"{interval * 1000:g} ms: more than any one process's peak (wait4 ru_maxrss "
            f"{format_size(report.ru_maxrss)}); a lower bound: the tree may have peaked "
            "between samples"
        )
    elif exact and report.ru_maxrss is not None:
        # The kernel keeps RSS in per-CPU counters and reads them approximately, so a VmHWM
        # sample can exceed the exit figure by a few pages; the higher reading stands.
        peak = max(report.ru_maxrss, sampled)
        source = (
            "the kernel's peak RSS of the command (wait4 ru_maxrss; spawned from a small "
            f"sampler, so exact), with {procs} process(es) sampled every {interval * 1000:g} ms"
        )
        if sampled > report.ru_maxrss:
            # The figure shown is the sample's: say so first, the kernel's beside it.
            source = (
                f"a sample's reading, {(sampled - report.ru_maxrss) / 1024:,.0f} KiB above the "
                f"kernel's peak RSS of the command ({format_size(report.ru_maxrss)}, wait4 "
                "ru_maxrss; spawned from a small sampler): the kernel's RSS counters are "
                f"approximate, and the higher figure stands; {procs} process(es) sampled every "
                f"{interval * 1000:g} ms"
            )
    elif sampled:
        peak = sampled
        source = (
            f"max of each process's VmHWM and the tree's summed RSS ({procs} process(es), "
            f"sampled every {interval * 1000:g} ms)"
        )
        if not exact:
            source += "; a lower bound: the command may have peaked between samples"
    else:
        peak = 0
        source = "unknown: the command ended before its first sample"
    return peak, source


def _check_program(program: str) -> None:
    """Clear errors for a program that cannot run, before anything starts."""
    if os.sep in program:
        path = Path(program)
        if path.is_dir():
            raise CommandNotFound(f"{program} is a directory, not a program")
        if not path.exists():
            raise CommandNotFound(f"command not found: {program}")
        if not os.access(path, os.X_OK):
            raise CommandNotFound(
                f"permission denied: {program} is not executable",
                hint=f"chmod +x {program}, or run it through its interpreter",
            )
    elif shutil.which(program) is None:
        raise CommandNotFound(f"command not found: {program}")


def _stdio(quiet: bool) -> list[int]:
    """Fresh descriptors for the command's stdin, stdout and stderr (the sampler closes them)."""
    if quiet:
        return [os.open(os.devnull, os.O_RDWR) for _ in range(3)]
    return [os.dup(0), os.dup(1), os.dup(2)]


def _kept_by(growth: Growth, end_sites: tuple[PeakSite, ...], rss_end: float) -> Growth:
    """:func:`kept_by` with what the words say was held: from the level after the start-up
    to the level before the exit when the verdict was judged between them."""
    start = growth.level_start or 0.0
    end = rss_end if growth.level_end is None else growth.level_end
    return kept_by(growth, end_sites, end - start)
