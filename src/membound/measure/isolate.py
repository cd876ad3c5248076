"""Measure a function in a fresh interpreter, or any command with its whole process tree.

A fresh interpreter per run is the default (DESIGN §5.1): allocator retention from an earlier run
must not leak into the next. The child takes its baseline after importing the target's module,
so ``rss_peak_delta`` is what the call itself added.

The parent never hangs: the child has its own session (its process group can be killed whole),
the sampler process enforces the memory limit within one interval, and ``timeout`` is enforced
here.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import pickle
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from membound._errors import ChildFailed, CommandNotFound, SizeError, TargetError
from membound._units import format_size, parse_size
from membound.judge.timeline import classify
from membound.measure.result import Measurement, Outcome
from membound.measure.sampler import Sampler, SamplerReport
from membound.measure.track import track

__all__ = ["TargetRef", "measure", "measure_command", "resolve_target", "run_isolated"]

_CHILD = Path(__file__).with_name("_child.py")
_HEAP_RUNNER = Path(__file__).with_name("_heap_runner.py")
_EXIT_TARGET_ERROR = 3

Target = Callable[..., Any] | str


@dataclass(frozen=True)
class TargetRef:
    """A callable the child can import: by module name, or by file path."""

    module: str
    """Importable module name (or a name to load ``path`` under)."""
    qualname: str
    """Attribute path inside the module, e.g. ``func`` or ``Class.method``."""
    path: str | None = None
    """Source file to load by path (scripts and ``__main__``), or None to import ``module``."""
    args: tuple[Any, ...] = ()
    """Arguments bound by ``functools.partial``, passed before the call's own."""
    kwargs: tuple[tuple[str, Any], ...] = ()
    """Keyword arguments bound by ``functools.partial``."""

    @property
    def display(self) -> str:
        """``module:qualname`` or ``path:qualname``."""
        return f"{self.path or self.module}:{self.qualname}"


def resolve_target(target: Target) -> TargetRef:
    """Turn a callable, a ``functools.partial`` or a ``"pkg.mod:func"`` / ``"file.py:func"``
    string into a reference a fresh interpreter can import.

    Raises:
        TargetError: the target is not a module-level callable or the string is malformed.
    """
    if isinstance(target, functools.partial):
        inner = resolve_target(target.func)
        return TargetRef(
            inner.module,
            inner.qualname,
            inner.path,
            inner.args + tuple(target.args),
            inner.kwargs + tuple(target.keywords.items()),
        )
    if isinstance(target, str):
        spec, sep, qualname = target.rpartition(":")
        if not sep or not spec or not qualname or not qualname.replace(".", "").isidentifier():
            raise TargetError(
                f"target {target!r} is not of the form 'package.module:function' "
                "or 'path/to/file.py:function'"
            )
        if spec.endswith(".py") or os.sep in spec:
            path = Path(spec)
            if not path.is_file():
                raise TargetError(f"target file not found: {spec}")
            return TargetRef(f"__membound_{path.stem}__", qualname, str(path.resolve()))
        return TargetRef(spec, qualname)
    if not callable(target):
        raise TargetError(f"target {target!r} is neither callable nor a 'module:function' string")
    module = getattr(target, "__module__", None)
    qual = getattr(target, "__qualname__", None)
    if not module or not qual:
        raise TargetError(f"cannot locate {target!r}: give it as 'package.module:function'")
    if "<locals>" in qual or "<lambda>" in qual:
        raise TargetError(
            f"{qual} is defined inside a function or is a lambda; a fresh interpreter "
            "can only import module-level functions",
            hint="move it to module level, or pass isolate=False to measure in this process",
        )
    if module == "__main__":
        main_file = getattr(sys.modules["__main__"], "__file__", None)
        if not main_file:
            raise TargetError(
                f"{qual} lives in an interactive __main__ that a child cannot import",
                hint="put the function in a module or file, or pass isolate=False",
            )
        return TargetRef("__mp_main__", qual, str(Path(main_file).resolve()))
    return TargetRef(module, qual)


def _child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    paths = [p if p else os.getcwd() for p in sys.path]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    if extra:
        env.update(extra)
    return env


def _kill_group(proc: subprocess.Popen[Any]) -> None:
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _wait(proc: subprocess.Popen[Any], timeout: float | None) -> bool:
    """Wait for ``proc``; on timeout kill its group. Returns True if it timed out."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return True
    except BaseException:  # Ctrl-C or any error here: never leave the child running
        _kill_group(proc)
        raise
    return False


def _outcome(
    returncode: int,
    report: SamplerReport,
    timed_out: bool,
    limit: int | None,
    timeout: float | None,
) -> tuple[Outcome, str]:
    if report.limit_hit_at is not None and limit is not None:
        return "limit", (
            f"memory limit {format_size(limit)} exceeded at {report.limit_hit_at:.2f} s "
            f"(RSS {format_size(report.limit_hit_rss)}); stopped"
        )
    if timed_out:
        return "timeout", f"timeout of {timeout:g} s reached; stopped"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        if returncode == -signal.SIGKILL:
            return "killed", (
                "killed by SIGKILL (when memory runs out, the kernel's OOM killer sends this; "
                "see dmesg)"
            )
        return "killed", f"killed by {name}"
    if returncode > 0:
        return "failed", f"exited with status {returncode}"
    return "ok", ""


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def _limit(limit: int | str | None) -> int | None:
    """The memory limit in bytes; a limit must be positive."""
    if limit is None:
        return None
    value = parse_size(limit)
    if value <= 0:
        raise SizeError(f"a memory limit must be positive, not {limit!r}")
    return value


def _heap_and_gc(report: dict[str, Any] | None) -> dict[str, Any]:
    """The heap and GC fields of a Measurement from a child's report (None where absent)."""
    keys = ("heap_current", "heap_peak", "gc_collections", "gc_pause_s")
    return {key: report.get(key) if report else None for key in keys}


def run_isolated(
    target: Target,
    args: Sequence[Any] = (),
    kwargs: dict[str, Any] | None = None,
    *,
    heap: bool = False,
    limit: int | str | None = None,
    timeout: float | None = None,
    interval: float = 0.01,
    label: str | None = None,
    quiet: bool = False,
) -> Measurement:
    """Call ``target(*args, **kwargs)`` once in a fresh interpreter and measure it.

    See :func:`measure` for the meaning of each option; ``quiet`` discards the child's output.

    Raises:
        TargetError: the target cannot be imported or its arguments cannot be pickled.
        ChildFailed: the call raised, or the child died of a signal membound did not send.
    """
    ref = resolve_target(target)
    limit_bytes = _limit(limit)
    if timeout is not None and timeout <= 0:
        raise TargetError(f"timeout must be positive, not {timeout}")
    call_args = (*ref.args, *args)
    call_kwargs = {**dict(ref.kwargs), **(kwargs or {})}
    try:
        pickled_args = pickle.dumps((call_args, call_kwargs))
    except Exception as exc:
        raise TargetError(f"the arguments of {ref.display} cannot be pickled: {exc}") from None
    target_info = {"module": ref.module, "qualname": ref.qualname, "path": ref.path}
    with tempfile.TemporaryDirectory(prefix="membound-") as tmp:
        request = Path(tmp, "request.pickle")
        result = Path(tmp, "result.json")
        request.write_bytes(pickle.dumps((target_info, pickled_args, heap)))
        sink = subprocess.DEVNULL if quiet else None
        sampler = Sampler(None, interval=interval, limit=limit_bytes).start()
        try:
            proc = subprocess.Popen(
                [sys.executable, str(_CHILD), str(request), str(result)],
                env=_child_env(),
                start_new_session=True,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=sink,
            )
        except BaseException:
            sampler.stop()
            raise
        sampler.attach(proc.pid, proc.pid)
        try:
            timed_out = _wait(proc, timeout)
        finally:
            report = sampler.stop()
        data = _read_json(result)
        started = _read_json(Path(str(result) + ".started"))

    name = label or ref.display
    if data is not None and data.get("status") == "target-error":
        raise TargetError(
            f"cannot import {ref.display}: {data['message']}",
            hint="check the module path and that the function exists at module level",
        )
    outcome, detail = _outcome(proc.returncode, report, timed_out, limit_bytes, timeout)
    if data is None and started is None:
        if outcome in ("limit", "timeout"):
            detail += " before the target was called"
            raise ChildFailed(f"{name}: {detail}", exit_code=proc.returncode)
        raise ChildFailed(
            f"{name}: the child interpreter ended before calling the target "
            f"({detail or 'no report'})",
            exit_code=proc.returncode,
        )
    info = data if data is not None else started
    assert info is not None
    t0 = float(info["t0"]) - report.start
    t1 = float(data["t1"]) - report.start if data else report.timeline.duration_s + t0
    timeline = report.timeline.window(t0, t1)
    baseline = int(info["baseline"])
    if data is not None and data.get("hwm") is not None and data.get("reset_ok"):
        peak, source = int(data["hwm"]), "VmHWM (reset after the baseline)"
    elif report.limit_hit_rss is not None:
        peak, source = report.limit_hit_rss, "sampler (the sample that crossed the limit)"
    else:
        peak = int(max(timeline.highs, default=report.max_rss))
        source = "sampler max (VmHWM not available; short spikes may be missed)"
    rss_end = int(data["rss_end"]) if data else int(timeline.highs[-1] if timeline else peak)
    measurement = Measurement(
        label=name,
        kind="isolated",
        duration_s=float(data["duration_s"]) if data else max(0.0, t1 - t0),
        rss_start=baseline,
        rss_end=rss_end,
        rss_peak=peak,
        rss_peak_delta=peak - baseline,
        rss_peak_source=source,
        **_heap_and_gc(data),
        timeline=timeline,
        growth=classify(timeline),
        outcome=outcome,
        outcome_detail=detail,
        exit_code=proc.returncode,
        limit=limit_bytes,
        interval=interval,
    )
    if data is not None and data.get("status") == "raised":
        last = str(data["traceback"]).strip().splitlines()[-1]
        raise ChildFailed(
            f"{name} raised in the child: {last}",
            traceback=str(data["traceback"]),
            exit_code=proc.returncode,
            measurement=measurement,
        )
    if outcome == "killed" or (outcome == "failed" and data is None):
        raise ChildFailed(
            f"{name}: the child {detail}", exit_code=proc.returncode, measurement=measurement
        )
    return measurement


def measure(
    target: Target,
    *args: Any,
    isolate: bool = True,
    heap: bool = False,
    limit: int | str | None = None,
    timeout: float | None = None,
    **kwargs: Any,
) -> Measurement:
    """Measure one call of ``target(*args, **kwargs)``.

    Args:
        target: a module-level callable, a ``functools.partial`` of one, or a string
            ``"package.module:function"`` / ``"path/to/file.py:function"``.
        isolate: run in a fresh interpreter (default; DESIGN §5.1). ``False`` measures in this
            process with :class:`track`, where ``limit`` and ``timeout`` are not available.
        heap: also measure the Python heap with tracemalloc (slower).
        limit: stop the child when its RSS crosses this size (``"512 MB"``); the result's
            ``outcome`` is then ``"limit"``.
        timeout: stop the child after this many seconds; ``outcome`` is then ``"timeout"``.

    Raises:
        TargetError: the target cannot be imported, or options do not fit.
        ChildFailed: the call raised (with the child's traceback) or the child was killed.
    """
    if not isolate:
        if limit is not None or timeout is not None:
            raise TargetError("limit and timeout need isolate=True (a child process to stop)")
        if not callable(target):
            raise TargetError("with isolate=False the target must be a callable")
        label = getattr(target, "__qualname__", None) or repr(target)
        with track(label, heap=heap) as t:
            target(*args, **kwargs)
        assert t.result is not None
        return t.result
    return run_isolated(target, args, kwargs, heap=heap, limit=limit, timeout=timeout)


def _heap_argv(argv: list[str], out: str) -> list[str]:
    exe = os.path.basename(argv[0])
    if not exe.startswith("python") or len(argv) < 2:
        raise TargetError(
            f"heap measurement needs a Python command ('python script.py …'), not {argv[0]!r}",
            hint="drop --heap for non-Python commands; RSS is measured for any command",
        )
    rest = argv[1:]
    if (rest[0] in ("-m", "-c") and len(rest) >= 2) or not rest[0].startswith("-"):
        return [argv[0], str(_HEAP_RUNNER), *rest]
    raise TargetError(
        "heap measurement understands 'python script.py …', 'python -m module …' and "
        f"'python -c code …', not interpreter option {rest[0]!r}"
    )


def measure_command(
    argv: Sequence[str] | str,
    limit: int | str | None = None,
    timeout: float | None = None,
    interval: float = 0.01,
    *,
    heap: bool = False,
    quiet: bool = False,
    label: str | None = None,
) -> Measurement:
    """Run a command and measure its whole process tree (RSS summed over all descendants).

    Args:
        argv: the command, as a list or a shell-like string (split with ``shlex``; no shell).
        limit: kill the process group when the tree's RSS crosses this size.
        timeout: kill the process group after this many seconds.
        interval: sampling interval, seconds.
        heap: for ``python script.py``/``-m``/``-c`` commands, also report tracemalloc's heap
            peak and GC figures.
        quiet: discard the command's stdout and stderr.
        label: name for the result (default: the command line).

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
    limit_bytes = _limit(limit)
    if timeout is not None and timeout <= 0:
        raise TargetError(f"timeout must be positive, not {timeout}")
    with tempfile.TemporaryDirectory(prefix="membound-") as tmp:
        heap_out = Path(tmp, "heap.json")
        run_argv = _heap_argv(args, str(heap_out)) if heap else args
        env = {**os.environ, "MEMBOUND_HEAP_OUT": str(heap_out)} if heap else None
        stdio = _stdio(quiet)
        try:
            sampler = Sampler(
                None,
                interval=interval,
                tree=True,
                limit=limit_bytes,
                spawn=run_argv,
                stdio=stdio,
                env=env,
            ).start()
        finally:
            for fd in set(stdio):
                os.close(fd)
        if sampler.spawn_error is not None:
            raise CommandNotFound(sampler.spawn_error)
        report, timed_out = sampler.finish(timeout)
        heap_data = _read_json(heap_out) if heap else None

    exit_code = report.exit_code if report.exit_code is not None else -signal.SIGKILL
    timeline = report.timeline
    outcome, detail = _outcome(exit_code, report, timed_out, limit_bytes, timeout)
    sampled = max(report.max_rss, report.max_hwm or 0)
    exact = (
        report.ru_maxrss is not None
        and report.spawner_hwm is not None
        and report.ru_maxrss > report.spawner_hwm
    )
    procs = timeline.extra.get("processes_seen", 0)
    if exact and report.ru_maxrss is not None and report.ru_maxrss >= sampled:
        peak = report.ru_maxrss
        source = (
            "the kernel's peak RSS of the command (wait4 ru_maxrss; spawned from a small "
            f"sampler, so exact), with {procs} process(es) sampled every {interval * 1000:g} ms"
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
    return Measurement(
        label=label or shlex.join(args),
        kind="command",
        duration_s=report.timeline.duration_s if report.end is None else report.end,
        rss_start=0,
        rss_end=int(timeline.highs[-1]) if len(timeline) else 0,
        rss_peak=peak,
        rss_peak_delta=peak,
        rss_peak_source=source,
        **_heap_and_gc(heap_data),
        timeline=timeline,
        growth=classify(timeline),
        outcome=outcome,
        outcome_detail=detail,
        exit_code=exit_code,
        limit=limit_bytes,
        interval=interval,
    )


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
    """Fresh descriptors for the command's stdin, stdout and stderr (the caller closes them)."""
    if quiet:
        return [os.open(os.devnull, os.O_RDWR) for _ in range(3)]
    return [os.dup(0), os.dup(1), os.dup(2)]
