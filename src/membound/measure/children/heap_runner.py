"""Runs a Python program the way ``python`` would, with the heap traced and GC counting on.

Used by ``measure_command(..., heap=..., where=...)``: ``python heap_runner.py script.py args``
(or ``-m module args`` or ``-c code args``). The heap engine is ``MEMBOUND_HEAP_ENGINE``
(tracemalloc or memray, or none); ``MEMBOUND_WHERE`` (python or native) captures the lines that
held the peak (``where_capture.py``). At exit it writes the figures as JSON to the file named by
``MEMBOUND_HEAP_OUT`` (and at a memory limit, when the sampler asks, what it captured so
far). Standard library only (memray when asked for); run by path.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import runpy
import signal
import sys
import tracemalloc
from typing import Any

# ``siblings.py`` beside this file, run by its path: it loads the other files this one needs.
_SIBLINGS = runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "siblings.py"))
_sibling = _SIBLINGS["load"]
# This script runs without the package (importing membound would count in the measured
# program's memory): ``inside.py`` and ``where_capture.py`` beside it.
_PROC = vars(_sibling("proc_tree"))
#: This runner's RSS before it loads the rest of what it runs the program with (and memray):
#: what they add is resident before the program begins, and in its figures.
_RSS_AT_START = _PROC["read_rss"](os.getpid())
_INSIDE = vars(_sibling("inside"))
_WHERE = vars(_sibling("where_capture"))


_KEPT: list[dict[str, Any]] = []


def _report(path: str, gc_count: Any, heap: Any, capture: Any, heap_engine: str) -> None:
    figures: dict[str, Any] = {}
    if heap is not None:
        current, peak = tracemalloc.get_traced_memory()
        figures = {
            "heap_current": current,
            "heap_peak": peak,
            "heap_overhead": heap.stop(),
            "heap_source": _INSIDE["SOURCES"]["tracemalloc"],
        }
    if capture is not None:
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)  # being read: no flush at a limit now
        figures.update(_WHERE["finish_here"](capture))  # memray's is read by the parent
        if heap is None and heap_engine == "memray":
            figures.update(heap_overhead=None, heap_source=_INSIDE["SOURCES"]["memray"])
    with open(path, "w") as f:
        json.dump(
            {**figures, "gc_collections": gc_count.collections, "gc_pause_s": gc_count.pause_s},
            f,
        )


def _fail(out: str, message: str) -> None:
    """Say why nothing ran (in the report the parent reads) and exit 2."""
    if out:
        with open(out, "w") as f:
            json.dump({"error": message}, f)
    sys.exit(2)


def _prepare(out: str, heap_engine: str, where: str) -> Any:
    """The capture ``where``/``heap=memray`` ask for (not started yet), or None."""
    has_memray = _SIBLINGS["borrow_memray"]() if (where or heap_engine == "memray") else False
    fix = f"{sys.executable} -m pip install memray"
    if not has_memray and heap_engine == "memray":
        _fail(out, f"--heap=memray needs memray in {sys.executable}: {fix}")
    if not has_memray and where == "native":
        _fail(out, f"--where=native needs memray in {sys.executable}: {fix}")
    if not where and heap_engine != "memray":
        return None
    try:
        capture = _WHERE["prepare_capture"](
            where or None,
            "memray" if has_memray else "tracemalloc",
            memray_heap=heap_engine == "memray",
            streamed=True,  # a run of its own: no table of live allocations in its RSS
            within=os.path.dirname(out) or None,  # the parent removes it, whatever happens here
        )
    except RuntimeError as exc:  # another memray tracker (``memray run`` around membound)
        _fail(out, f"--where/--heap=memray cannot start: {exc}")
    if out:
        # At a memory limit the sampler asks for the capture before it kills this process.
        _WHERE["install_flush"](capture, out)
    return capture


def _check_program(args: list[str]) -> None:
    """A script or module that does not exist ends the way ``python`` ends it: its one line
    and its status, before anything is traced."""
    if args[0] == "-m":
        if importlib.util.find_spec(args[1].split(".")[0]) is None:
            sys.stderr.write(f"{sys.executable}: No module named {args[1]}\n")
            sys.exit(1)
    elif args[0] != "-c" and not os.path.exists(args[0]):
        path = os.path.abspath(args[0])
        sys.stderr.write(
            f"{sys.executable}: can't open file {path!r}: [Errno 2] No such file or directory\n"
        )
        sys.exit(2)


def main() -> None:
    """Run the program named in ``sys.argv[1:]``."""
    out = os.environ.pop("MEMBOUND_HEAP_OUT", "")
    heap_engine = os.environ.pop("MEMBOUND_HEAP_ENGINE", "")
    where = os.environ.pop("MEMBOUND_WHERE", "")
    args = sys.argv[1:]
    _check_program(args)
    gc_count = _INSIDE["GcMonitor"]().start()
    capture = _prepare(out, heap_engine, where)
    heap = None
    if heap_engine == "tracemalloc":
        if not tracemalloc.is_tracing():  # else where's fallback traces, with more frames
            tracemalloc.start(1)
        heap = _INSIDE["TracingOverhead"]().start()
    if out:
        atexit.register(_report, out, gc_count, heap, capture, heap_engine)
    if capture is not None:
        capture.enter()  # in this frame: memray's stacks start here (``where_capture.py``)
        if isinstance(capture, _WHERE["MemrayCapture"]) and _RSS_AT_START is not None:
            capture.start_cost = max(0, (_PROC["read_rss"](os.getpid()) or 0) - _RSS_AT_START)
    # The program's globals are kept until exit, as ``python`` keeps its ``__main__`` until after
    # the atexit handlers: "heap held at end" then counts what the program still held.
    if args[0] == "-m":
        sys.argv = [args[1], *args[2:]]
        sys.path[0] = os.getcwd()
        _KEPT.append(runpy.run_module(args[1], run_name="__main__", alter_sys=True))
    elif args[0] == "-c":
        sys.argv = ["-c", *args[2:]]
        sys.path[0] = ""
        namespace: dict[str, Any] = {"__name__": "__main__"}
        _KEPT.append(namespace)
        exec(compile(args[1], "<string>", "exec"), namespace)
    else:
        sys.argv = args
        sys.path[0] = os.path.dirname(os.path.abspath(args[0]))
        _KEPT.append(runpy.run_path(args[0], run_name="__main__"))


if __name__ == "__main__":
    main()
