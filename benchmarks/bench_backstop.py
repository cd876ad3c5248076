"""The Watchdog's backstop against real cgroups: fast ramps into a 300 MiB limit (DESIGN §6b).

Each trial runs ``tests/guard/apps/backstop_ramp.py`` in a fresh 300 MiB memory cgroup (v1,
made under this process's own; needs root): pieces of 4, 16 or 64 MiB of non-zero bytes as fast
as they can be made, with ``Watchdog(hard="85%", on_hard=<a user callback that stops the
loop>)``. The loop catches ``MemoryError`` and waits for the ``on_hard`` run for it. Three
guards per piece size, each on a quiet machine and with two busy loops beside:

* ``backstop``: ``backstop=True``. Target: 0 OOM kills in every trial, each ramp stopped by
  ``on_hard`` or by the backstop's ``MemoryError`` with ``on_hard`` run for it;
* ``watchdog only``: ``backstop=False`` (the default), for comparison: a piece that jumps from
  below ``hard`` past the limit cannot be stopped by a reading;
* ``no guard``: the contrast, OOM-killed every time (target).

Writes ``benchmarks/results/backstop.json`` and prints target vs measured.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _common import write
from bench_guard import Cgroups, group_figures, own_memory_cgroup

RAMP = Path(__file__).resolve().parents[1] / "tests" / "guard" / "apps" / "backstop_ramp.py"
MIB = 1 << 20
LIMIT = 300 * MIB
RESULT = re.compile(r"result: (\w+) held=(\d+) hard_runs=(\d+) causes=(\S*)")


@contextlib.contextmanager
def busy_loops(count: int) -> Iterator[None]:
    """``count`` processes spinning in Python beside the trials."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def trial(groups: Cgroups, chunk: int, mode: str) -> dict[str, Any]:
    """One ramp in a fresh group: how it ended."""
    with groups.group(LIMIT) as path:
        argv = [sys.executable, str(RAMP), str(chunk), mode, "catch"]
        shell = ["sh", "-c", f'echo $$ > "{path / "cgroup.procs"}" && exec "$@"', "sh", *argv]
        done = subprocess.run(shell, capture_output=True, text=True, timeout=120, check=False)
        peak, kills = group_figures(path)
    found = RESULT.search(done.stdout)
    return {
        "status": done.returncode,
        "oom_kills": kills,
        "peak_mib": round(peak / MIB, 1),
        "stopped_by": found.group(1) if found else None,
        "hard_runs": int(found.group(3)) if found else 0,
        "backstop_reported": bool(found and "backstop" in found.group(4).split(",")),
    }


def series(groups: Cgroups, chunk: int, mode: str, runs: int) -> dict[str, Any]:
    trials = [trial(groups, chunk, mode) for _ in range(runs)]
    killed = sum(1 for t in trials if t["oom_kills"] or t["status"] == -9)
    stopped = Counter(str(t["stopped_by"]) for t in trials if t["stopped_by"])
    hard_ran = sum(1 for t in trials if t["hard_runs"] >= 1)
    refused_unreported = sum(
        1 for t in trials if t["stopped_by"] == "MemoryError" and not t["backstop_reported"]
    )
    return {
        "trials": runs,
        "oom_killed": killed,
        "stopped_by": dict(stopped),
        "on_hard_ran": hard_ran,
        "memory_errors_without_on_hard": refused_unreported,
        "peak_mib_max": max(t["peak_mib"] for t in trials),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="trials per guard and piece size")
    parser.add_argument("--contrast-runs", type=int, default=5)
    args = parser.parse_args()
    parent = own_memory_cgroup()
    if parent is None:
        print("bench_backstop: no cgroup v1 memory controller here; nothing measured")
        return
    groups = Cgroups(parent)
    started = time.monotonic()
    results: dict[str, Any] = {}
    for load, loops in (("quiet", 0), ("two busy loops", 2)):
        with busy_loops(loops):
            for chunk in (4, 16, 64):
                for guard, mode, runs in (
                    ("backstop", "on", args.runs),
                    ("watchdog only", "off", args.runs),
                    ("no guard", "none", args.contrast_runs),
                ):
                    key = f"{chunk} MiB, {guard}, {load}"
                    results[key] = found = series(groups, chunk, mode, runs)
                    print(f"{key}: {found}", flush=True)
    targets = []
    for key, found in results.items():
        n, killed = found["trials"], found["oom_killed"]
        how = ", ".join(f"{count} by {way}" for way, count in sorted(found["stopped_by"].items()))
        measured = f"{killed} of {n} OOM-killed; stopped {how or 'never'}"
        if ", backstop," in key:
            measured += f"; on_hard ran in {found['on_hard_ran']}"
            target = "0 OOM kills, on_hard ran in every trial"
            met: bool | None = killed == 0 and found["on_hard_ran"] == n
        elif ", no guard," in key:
            target = "(contrast) OOM-killed every time"
            met = killed == n
        else:
            target = "reported beside the backstop"
            met = None
        targets.append({"what": key, "target": target, "measured": measured, "met": met})
        print(f"{key}: {measured} (target: {target})")
    write(
        "backstop",
        {
            "parameters": {
                "limit_mib": LIMIT // MIB,
                "hard": "85%",
                "runs": args.runs,
                "contrast_runs": args.contrast_runs,
                "elapsed_s": round(time.monotonic() - started, 1),
            },
            "notes": {
                "ramp": "tests/guard/apps/backstop_ramp.py: pieces of non-zero bytes as fast as "
                "they can be made; on_hard is a user callback (callback thread) that stops the "
                "loop; the loop catches MemoryError and waits up to 5 s for on_hard",
                "peak": "memory.max_usage_in_bytes (charged: page cache and kernel included)",
            },
            "series": results,
            "targets": targets,
        },
    )


if __name__ == "__main__":
    main()
