"""Runs a Python program the way ``python`` would, with tracemalloc and GC counting on.

Used by ``measure_command(..., heap=True)``: ``python _heap_runner.py script.py args`` (or
``-m module args`` or ``-c code args``). At exit it writes the heap peak and GC figures as JSON to
the file named by ``MEMBOUND_HEAP_OUT``. Standard library only; run by path.
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


def _report(path: str, gc_count: Any, overhead: Any) -> None:
    current, peak = tracemalloc.get_traced_memory()
    with open(path, "w") as f:
        json.dump(
            {
                "heap_current": current,
                "heap_peak": peak,
                "heap_overhead": overhead.stop(),
                "gc_collections": gc_count.collections,
                "gc_pause_s": gc_count.pause_s,
            },
            f,
        )


def main() -> None:
    """Run the program named in ``sys.argv[1:]``."""
    out = os.environ.pop("MEMBOUND_HEAP_OUT", "")
    args = sys.argv[1:]
    gc_count = _INSIDE["GcMonitor"]().start()
    tracemalloc.start(1)
    overhead = _INSIDE["TracingOverhead"]().start()
    if out:
        atexit.register(_report, out, gc_count, overhead)
    if args[0] == "-m":
        sys.argv = [args[1], *args[2:]]
        sys.path[0] = os.getcwd()
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
    elif args[0] == "-c":
        sys.argv = ["-c", *args[2:]]
        sys.path[0] = ""
        exec(compile(args[1], "<string>", "exec"), {"__name__": "__main__"})
    else:
        sys.argv = args
        sys.path[0] = os.path.dirname(os.path.abspath(args[0]))
        runpy.run_path(args[0], run_name="__main__")


if __name__ == "__main__":
    main()
