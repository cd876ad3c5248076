"""Runs a Python program the way ``python`` would, with the heap traced and GC counting on.

Used by ``measure_command(..., heap=...)``: ``python _heap_runner.py script.py args`` (or
``-m module args`` or ``-c code args``). The engine is tracemalloc, or memray when
``MEMBOUND_HEAP_ENGINE=memray``. At exit it writes the heap peak and GC figures as JSON to the
file named by ``MEMBOUND_HEAP_OUT``. Standard library only (memray when asked for); run by path.
"""

from __future__ import annotations

import atexit
import json
import os
import runpy
import sys
import tracemalloc
from typing import Any

# ``_inside.py`` beside this file, run by its path: this script runs without the package
# (importing membound would count in the measured program's memory).
_INSIDE = runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "_inside.py"))


_KEPT: list[dict[str, Any]] = []


def _report(path: str, gc_count: Any, engine: Any) -> None:
    if isinstance(engine, _INSIDE["MemrayHeap"]):
        figures = engine.stop()
    else:
        current, peak = tracemalloc.get_traced_memory()
        figures = {
            "heap_current": current,
            "heap_peak": peak,
            "heap_overhead": engine.stop(),
            "heap_source": _INSIDE["SOURCES"]["tracemalloc"],
        }
    with open(path, "w") as f:
        json.dump(
            {**figures, "gc_collections": gc_count.collections, "gc_pause_s": gc_count.pause_s},
            f,
        )


def main() -> None:
    """Run the program named in ``sys.argv[1:]``."""
    out = os.environ.pop("MEMBOUND_HEAP_OUT", "")
    args = sys.argv[1:]
    gc_count = _INSIDE["GcMonitor"]().start()
    if os.environ.pop("MEMBOUND_HEAP_ENGINE", "") == "memray":
        try:
            engine = _INSIDE["MemrayHeap"]().start()
        except ImportError:
            # The program's own interpreter lacks memray: say so, run nothing.
            message = f"--heap=memray needs memray in {sys.executable}: pip install memray there"
            if out:
                with open(out, "w") as f:
                    json.dump({"error": message}, f)
            sys.exit(2)
    else:
        tracemalloc.start(1)
        engine = _INSIDE["TracingOverhead"]().start()
    if out:
        atexit.register(_report, out, gc_count, engine)
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
