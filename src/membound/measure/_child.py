"""The isolated-run child: imports a target, takes a baseline, calls it once, reports numbers.

Run by path as ``python _child.py REQUEST RESULT`` with the standard library only, so that nothing
of membound sits in the measured interpreter besides this file. The parent passes its ``sys.path``
in ``PYTHONPATH``. ``REQUEST`` is a pickle of ``(target, pickled_args, heap)``; arguments are
unpickled only after the target's module is imported, so they may be instances of its classes.
Before the call the child writes ``RESULT.started`` (baseline, start time) so that a child killed at
a memory limit still leaves its baseline behind; after the call it writes ``RESULT``. Both are JSON.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import json
import os
import pickle
import sys
import time
import traceback
import tracemalloc
from typing import Any

_PAGE = os.sysconf("SC_PAGE_SIZE")
EXIT_TARGET_ERROR = 3
EXIT_RAISED = 4


def _rss() -> int:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:  # no /proc: the parent's sampler still has the timeline
        return 0


def _hwm() -> int | None:
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def _write(path: str, data: dict[str, Any]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def _load_target(target: dict[str, Any]) -> Any:
    """Import the target ``measure/target.py`` resolved.

    A minimal copy of that module's import step, kept here on purpose: this child must not import
    membound (its memory would count as the target's baseline), and the parent has already
    checked the target's form, so only the import itself remains to do.
    """
    if target.get("path"):
        name = target["module"] or "__membound_target__"
        spec = importlib.util.spec_from_file_location(name, target["path"])
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {target['path']}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target["module"])
    obj: Any = module
    for part in target["qualname"].split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{target['qualname']} is not callable")
    return obj


class _GcCount:
    """Garbage collections during the call and their total pause (a ``gc.callbacks`` entry).

    ``probes.GcMonitor`` does the same in the package; this stdlib-only child cannot import it.
    """

    def __init__(self) -> None:
        self.collections = 0
        self.pause = 0.0
        self._started = 0.0

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.collections += 1
            self.pause += time.perf_counter() - self._started


def main() -> int:
    """Run the request; return the exit status."""
    request_path, result_path = sys.argv[1], sys.argv[2]
    # Running a file by path puts its folder first on sys.path; the target must not see it.
    sys.path[0] = os.getcwd()
    with open(request_path, "rb") as f:
        target, pickled_args, heap = pickle.load(f)
    try:
        func = _load_target(target)
        args, kwargs = pickle.loads(pickled_args)
    except BaseException as exc:  # report any import-time failure, SystemExit included
        _write(
            result_path,
            {
                "status": "target-error",
                "message": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            },
        )
        return EXIT_TARGET_ERROR

    gc_count = _GcCount()
    gc.collect()
    baseline = _rss()
    reset_ok = _reset_hwm()
    hwm_start = _hwm()
    gc.callbacks.append(gc_count.on_gc)
    if heap:
        tracemalloc.start(1)
    heap_start = tracemalloc.get_traced_memory()[0] if heap else 0
    t0 = time.monotonic()
    _write(
        result_path + ".started",
        {"baseline": baseline, "t0": t0, "reset_ok": reset_ok, "hwm_start": hwm_start},
    )
    status, tb = "ok", ""
    p0 = time.perf_counter()
    try:
        func(*args, **kwargs)
    except BaseException:
        status, tb = "raised", traceback.format_exc()
    duration = time.perf_counter() - p0
    t1 = time.monotonic()
    hwm = _hwm()
    rss_end = _rss()
    heap_current = heap_peak = None
    if heap:
        current, peak = tracemalloc.get_traced_memory()
        heap_current, heap_peak = current - heap_start, peak - heap_start
        tracemalloc.stop()
    gc.callbacks.remove(gc_count.on_gc)
    _write(
        result_path,
        {
            "status": status,
            "traceback": tb,
            "baseline": baseline,
            "reset_ok": reset_ok,
            "hwm_start": hwm_start,
            "hwm": hwm,
            "rss_end": rss_end,
            "heap_current": heap_current,
            "heap_peak": heap_peak,
            "gc_collections": gc_count.collections,
            "gc_pause_s": gc_count.pause,
            "t0": t0,
            "t1": t1,
            "duration_s": duration,
        },
    )
    return EXIT_RAISED if status == "raised" else 0


if __name__ == "__main__":
    sys.exit(main())
