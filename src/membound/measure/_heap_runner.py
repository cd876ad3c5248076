"""Runs a Python program the way ``python`` would, with tracemalloc and GC counting on.

Used by ``measure_command(..., heap=True)``: ``python _heap_runner.py script.py args`` (or
``-m module args`` or ``-c code args``). At exit it writes the heap peak and GC figures as JSON to
the file named by ``MEMBOUND_HEAP_OUT``. Standard library only; run by path.
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import runpy
import sys
import time
import tracemalloc
from typing import Any

_STATS = {"collections": 0, "pause": 0.0, "started": 0.0}


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _STATS["started"] = time.perf_counter()
    else:
        _STATS["collections"] += 1
        _STATS["pause"] += time.perf_counter() - _STATS["started"]


def _report(path: str) -> None:
    current, peak = tracemalloc.get_traced_memory()
    with open(path, "w") as f:
        json.dump(
            {
                "heap_current": current,
                "heap_peak": peak,
                "gc_collections": int(_STATS["collections"]),
                "gc_pause_s": _STATS["pause"],
            },
            f,
        )


def main() -> None:
    """Run the program named in ``sys.argv[1:]``."""
    out = os.environ.pop("MEMBOUND_HEAP_OUT", "")
    args = sys.argv[1:]
    if out:
        atexit.register(_report, out)
    gc.callbacks.append(_on_gc)
    tracemalloc.start(1)
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
