"""The isolated-run child: imports a target, takes a baseline, calls it once, reports numbers.

Run by path as ``python isolated_call.py REQUEST RESULT`` with the standard library only, so that
nothing of membound sits in the measured interpreter besides this file. The parent passes its
``sys.path`` in ``PYTHONPATH``. ``REQUEST`` is a pickle of ``(target, pickled_args, heap)``;
arguments are unpickled only after the target's module is imported, so they may be instances of
its classes. Before the call the child writes ``RESULT.started`` (baseline, start time) so that a
child killed at
a memory limit still leaves its baseline behind; after the call it writes ``RESULT``. Both are JSON.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import importlib.util
import json
import os
import pickle
import runpy
import signal
import sys
import time
import traceback
import tracemalloc
import types
from collections.abc import Callable
from typing import Any

EXIT_TARGET_ERROR = 3
EXIT_RAISED = 4
#: What a name looked up and not found gives back (``getattr``'s default).
_MISSING = object()

# ``siblings.py`` beside this file, run by its path: it loads the other files this one needs.
_sibling = runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "siblings.py"))[
    "load"
]
# This script runs without the package (importing membound would count in the measured
# baseline): ``inside.py`` and ``proc_tree.py`` beside it, and ``where_capture.py`` when the
# lines are asked for (its imports cost 20 ms otherwise).
_INSIDE = vars(_sibling("inside"))
_PROC = vars(_sibling("proc_tree"))


def _where() -> dict[str, Any]:
    """``where_capture.py``'s names, loaded at the first use."""
    names: dict[str, Any] = vars(_sibling("where_capture"))
    return names


def _rss() -> int:
    """This process's RSS; 0 without /proc (the parent's sampler still has the timeline)."""
    return int(_PROC["read_rss"](os.getpid()) or 0)


def _hwm() -> int | None:
    value: int | None = _PROC["read_hwm"](os.getpid())
    return value


def _reset_hwm() -> bool:
    return bool(_PROC["reset_hwm"]())


def _user_traceback() -> str:
    """The traceback of the exception being handled, without this file's frames nor those of
    membound's wrappers (functions named ``_membound_…``, as a notebook variant's): the user's
    error starts at the user's code."""
    exc = sys.exc_info()[1]
    if exc is None:
        return ""
    kept = []
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename != __file__ and not code.co_name.startswith("_membound_"):
            kept.append(tb)
        tb = tb.tb_next
    rebuilt = None
    for entry in reversed(kept):
        rebuilt = types.TracebackType(rebuilt, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return "".join(traceback.format_exception(type(exc), exc, rebuilt))


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
    if target.get("pickled") is not None:
        # By value (cloudpickle's output, loaded by pickle with cloudpickle importable): a
        # notebook's function, which no interpreter can import by name.
        shipped = pickle.loads(target["pickled"])
        if not callable(shipped):
            raise TypeError(f"{target['qualname']} is not callable")
        return shipped
    if target.get("path"):
        name = target["module"] or "__membound_target__"
        spec = importlib.util.spec_from_file_location(name, target["path"])
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {target['path']}")
        module = importlib.util.module_from_spec(spec)
        if name == "__mp_main__":
            # A script imported to find a function: its top level runs now, and a membound
            # call there (no ``__main__`` guard) is refused in words (``target.py``).
            module.__membound_reimport__ = True  # type: ignore[attr-defined]
        sys.modules[name] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target["module"])
    obj: Any = module
    where = os.path.basename(target["path"]) if target.get("path") else f"module {module.__name__}"
    parts = target["qualname"].split(".")
    for depth, part in enumerate(parts):
        # One lookup per name: a module's ``__getattr__`` or a property may do work each time.
        found = getattr(obj, part, _MISSING)
        if found is _MISSING:
            # Named as the user named it, not by the module name a file is imported under.
            missing = ".".join(parts[: depth + 1])
            raise AttributeError(f"{where} has no attribute {missing!r}")
        obj = found
    if not callable(obj):
        raise TypeError(f"{target['qualname']} is not callable")
    return obj


#: Bytes of objects made per step while soaking one size class.
_SOAK_STEP = 32 * 1024
#: Soaking stops here whatever happens (a cap, not an expected amount).
_SOAK_MAX = 256 * 1024 * 1024


def _trim() -> None:
    """Hand free heap pages back to the kernel (glibc ``malloc_trim``; nothing elsewhere)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)  # libc is loaded: no find_library subprocess


def _objects_of_size(size: int) -> Callable[[int], object]:
    """A maker of distinct objects that take ``size`` bytes from Python's small-object
    allocator (its size classes are multiples of 16 up to 512)."""
    if size <= 16:
        return lambda i: object()
    if size <= 32:
        return float  # 24 bytes
    return lambda i: bytes(size - 33)  # a bytes object is 33 bytes plus its contents


def _soak_free_memory() -> list[object]:
    """Use up the free memory the interpreter already holds before the baseline is taken.

    Importing the target leaves freed objects behind: free blocks in Python's pools, resident
    and reused before any new page is touched. Whatever the call allocates there never shows in
    RSS, so a small call reads as 0 B and a large one too small (measured: a list of a million
    ints read as a third of its size after an import that freed two million tuples). Each size
    class is filled, a step of objects at a time, until a step makes RSS grow by at least half
    of what it allocated (the class then takes fresh pages, not free blocks), and the filling
    stays alive for the run; freed malloc chunks are handed back with ``malloc_trim`` first, so
    that reusing them shows again. The baseline is taken after it.
    """
    gc.collect()
    _trim()
    hold: list[object] = []
    soaked = 0
    for size in range(16, 513, 16):
        make = _objects_of_size(size)
        count = _SOAK_STEP // size
        # A step's list of pointers may itself need fresh pages; the objects decide.
        fresh = count * 8 + count * size // 2
        while soaked < _SOAK_MAX:
            before = _rss()
            hold.append([make(i) for i in range(count)])
            soaked += count * size
            if _rss() - before >= fresh:
                break
    return hold


def _released_rss() -> int:
    """RSS after ``gc.collect()`` and ``malloc_trim(0)``, as ``release_memory()`` would do: how
    much of the end's RSS was free memory the allocator kept (the call is over; nothing else
    runs in this process after it)."""
    gc.collect()
    _trim()
    return _rss()


class _HeapTrace:
    """tracemalloc around the call, with its own memory polled apart (``inside.py``)."""

    def __init__(self) -> None:
        # Already tracing: where's fallback started it with the frames it needs; it stops it.
        self.started = not tracemalloc.is_tracing()
        if self.started:
            tracemalloc.start(1)
        else:
            tracemalloc.reset_peak()
        self.start = tracemalloc.get_traced_memory()[0]
        self.overhead = _INSIDE["TracingOverhead"]().start()

    def stop(self) -> dict[str, int]:
        """Heap held at the end and at the peak over the start, and tracemalloc's own peak."""
        current, peak = tracemalloc.get_traced_memory()
        overhead = self.overhead.stop()
        if self.started:
            tracemalloc.stop()
        return {
            "heap_current": current - self.start,
            "heap_peak": peak - self.start,
            "heap_overhead": overhead,
            "heap_source": _INSIDE["SOURCES"]["tracemalloc"],
        }


def _load(request_path: str, result_path: str) -> tuple[Any, tuple[Any, ...], Any, Any, Any] | None:
    """The target, its arguments, the heap engine (None, "tracemalloc" or "memray") and where's
    ``(mode, engine)`` (or None); None after reporting a failure to import."""
    with open(request_path, "rb") as f:
        target, pickled_args, heap, where = pickle.load(f)
    try:
        func = _load_target(target)
        args, kwargs = pickle.loads(pickled_args)
    except BaseException as exc:  # report any import-time failure, SystemExit included
        _write(
            result_path,
            {
                "status": "target-error",
                "message": traceback.format_exception_only(type(exc), exc)[-1].strip(),
                "traceback": traceback.format_exc(),
            },
        )
        return None
    return func, args, kwargs, heap, where


def main() -> int:
    """Run the request; return the exit status."""
    request_path, result_path = sys.argv[1], sys.argv[2]
    # Running a file by path puts its folder first on sys.path; the target must not see it.
    # The current folder takes its place now that this file's imports are done (the parent
    # keeps it out of PYTHONPATH: a ``types.py`` there must not replace the standard module
    # while they run), so the target imports as under ``python -m``.
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or ".") == here:
        sys.path[0] = os.getcwd()
    else:  # not put there (-P, PYTHONSAFEPATH)
        sys.path.insert(0, os.getcwd())
    loaded = _load(request_path, result_path)
    if loaded is None:
        return EXIT_TARGET_ERROR
    func, args, kwargs, heap, where = loaded
    # The target imported membound; its preload runs where a module of the target holds a
    # package that defers names (``_lazy.held_outside``): only through one can the call reach them.
    lazy = sys.modules.get("membound._lazy")
    if lazy is not None and lazy.held_outside():
        # A part that fails to import fails again where the call uses it, which says so.
        with contextlib.suppress(Exception):
            lazy.preload()
    if where is not None or heap == "memray":
        _where()  # loaded before the baseline: its imports are not the call's memory
    gc_count = _INSIDE["GcMonitor"]()
    soaked = _soak_free_memory()
    gc.collect()
    started: dict[str, Any] = {"baseline": _rss(), "reset_ok": _reset_hwm(), "hwm_start": _hwm()}
    blocks_start = sys.getallocatedblocks()
    gc_count.start()
    trace: Any = None
    capture: Any = None
    if where is not None or heap == "memray":
        capture = _where()["prepare_capture"](
            where[0] if where else None,
            where[1] if where else None,
            memray_heap=heap == "memray",
            streamed=True,  # a run of its own: no table of live allocations in its RSS
            within=os.path.dirname(result_path) or None,  # the parent removes it in any case
        )
        # At a memory limit the sampler asks for the capture before it kills this process.
        _where()["install_flush"](capture, result_path + ".where")
    if heap == "tracemalloc":
        trace = _HeapTrace()
    started["t0"] = time.monotonic()
    _write(result_path + ".started", started)
    status, tb = "ok", ""
    if capture is not None:
        capture.enter()  # in this frame: memray's stacks start here (``where_capture.py``)
    p0 = time.perf_counter()
    try:
        func(*args, **kwargs)
    except BaseException:
        status, tb = "raised", _user_traceback()
    duration = time.perf_counter() - p0
    t1 = time.monotonic()
    hwm = _hwm()
    rss_end = _rss()
    # What the processes the call started (and left running) hold now: they count at the end.
    descendants_rss = max(0, _PROC["tree_rss"](os.getpid())[0] - rss_end)
    heap_figures = trace.stop() if trace is not None else {}
    if capture is not None:
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)  # the capture is being read: no flush
        heap_figures.update(_where()["finish_here"](capture))  # memray's is read by the parent
        if heap == "memray":
            heap_figures.update(heap_overhead=None, heap_source=_INSIDE["SOURCES"]["memray"])
    gc_count.stop()
    blocks_delta = sys.getallocatedblocks() - blocks_start
    del soaked
    _write(
        result_path,
        {
            **started,
            **heap_figures,
            "status": status,
            "traceback": tb,
            "hwm": hwm,
            "rss_end": rss_end,
            "descendants_rss": descendants_rss,
            "gc_collections": gc_count.collections,
            "gc_pause_s": gc_count.pause_s,
            "t1": t1,
            "duration_s": duration,
            "blocks_delta": blocks_delta,
            "rss_after_release": _released_rss(),
        },
    )
    return EXIT_RAISED if status == "raised" else 0


if __name__ == "__main__":
    sys.exit(main())
