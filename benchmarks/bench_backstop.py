"""The Watchdog with its defaults against fast ramps in real cgroups (DESIGN §6b, issue 36).

Each trial runs ``tests/guard/apps/backstop_ramp.py`` in a fresh memory cgroup (v1, made under
this process's own; needs root): pieces of 4, 16 or 64 MiB whose pages are all written
(``bytes`` of non-zero bytes, ``bytearray``, ``numpy.ones``), as fast as they can be made, with
``Watchdog(hard=H, on_hard=<a user callback that stops the loop>)`` and nothing else — the
backstop as the default has it — and the ``MemoryError`` of a refusal left uncaught (exit 1, as
most programs would). Groups of 150, 300 and 600 MiB, each with its own ``hard`` (70 %, 85 %,
90 %); every piece size and kind in each; on a quiet machine and with two busy loops beside.

* ``default``: target 0 OOM kills in every trial, each ramp stopped by ``on_hard`` or by the
  backstop's ``MemoryError``;
* ``backstop=False``, for comparison: a piece that jumps from below ``hard`` past the limit
  cannot be stopped by a reading;
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
#: (group MiB, hard) pairs, and (piece MiB, kind) pairs: every piece in every group.
GROUPS = ((150, "70%"), (300, "85%"), (600, "90%"))
PIECES = ((4, "bytes"), (16, "bytearray"), (64, "numpy"))
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


def trial(
    groups: Cgroups, limit_mib: int, hard: str, chunk: int, kind: str, mode: str
) -> dict[str, Any]:
    """One ramp in a fresh group: how it ended."""
    with groups.group(limit_mib * MIB) as path:
        argv = [sys.executable, str(RAMP), str(chunk), mode, "--hard", hard, "--kind", kind]
        shell = ["sh", "-c", f'echo $$ > "{path / "cgroup.procs"}" && exec "$@"', "sh", *argv]
        done = subprocess.run(shell, capture_output=True, text=True, timeout=120, check=False)
        peak, kills = group_figures(path)
    found = RESULT.search(done.stdout)
    output = done.stdout + done.stderr
    if found:
        stopped_by = found.group(1)
    elif done.returncode == 1 and "MemoryError" in output:
        stopped_by = "MemoryError"  # the refusal, uncaught
    else:
        stopped_by = None
    return {
        "status": done.returncode,
        "oom_kills": kills,
        "peak_mib": round(peak / MIB, 1),
        "stopped_by": stopped_by,
        "hard_runs": output.count("on_hard: "),
    }


def series(
    groups: Cgroups, limit_mib: int, hard: str, chunk: int, kind: str, mode: str, runs: int
) -> dict[str, Any]:
    trials = [trial(groups, limit_mib, hard, chunk, kind, mode) for _ in range(runs)]
    killed = sum(1 for t in trials if t["oom_kills"] or t["status"] == -9)
    stopped = Counter(str(t["stopped_by"]) for t in trials if t["stopped_by"])
    hard_ran = sum(1 for t in trials if t["hard_runs"] >= 1)
    return {
        "trials": runs,
        "oom_killed": killed,
        "stopped_by": dict(stopped),
        "on_hard_ran": hard_ran,
        "peak_mib_max": max(t["peak_mib"] for t in trials),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="trials per group, piece and load")
    parser.add_argument("--contrast-runs", type=int, default=3)
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
            for limit_mib, hard in GROUPS:
                for chunk, kind in PIECES:
                    for guard, mode, runs in (
                        ("default", "default", args.runs),
                        ("backstop=False", "off", args.contrast_runs),
                        ("no guard", "none", args.contrast_runs),
                    ):
                        key = f"{limit_mib} MiB hard {hard}, {chunk} MiB {kind}, {guard}, {load}"
                        found = series(groups, limit_mib, hard, chunk, kind, mode, runs)
                        results[key] = found
                        print(f"{key}: {found}", flush=True)
    targets = []
    for key, found in results.items():
        n, killed = found["trials"], found["oom_killed"]
        how = ", ".join(f"{count} by {way}" for way, count in sorted(found["stopped_by"].items()))
        measured = f"{killed} of {n} OOM-killed; stopped {how or 'never'}"
        if ", default," in key:
            measured += f"; on_hard ran in {found['on_hard_ran']}"
            target = "0 OOM kills"
            met: bool | None = killed == 0
        elif ", no guard," in key:
            target = "(contrast) OOM-killed every time"
            met = killed == n
        else:
            target = "reported beside the default"
            met = None
        targets.append({"what": key, "target": target, "measured": measured, "met": met})
    default = [r for k, r in results.items() if ", default," in k]
    total = sum(r["trials"] for r in default)
    killed = sum(r["oom_killed"] for r in default)
    print(f"defaults: {killed} OOM kills in {total} trials")
    write(
        "backstop",
        {
            "parameters": {
                "groups": [{"limit_mib": m, "hard": h} for m, h in GROUPS],
                "pieces": [{"mib": c, "kind": k} for c, k in PIECES],
                "runs": args.runs,
                "contrast_runs": args.contrast_runs,
                "elapsed_s": round(time.monotonic() - started, 1),
            },
            "notes": {
                "ramp": "tests/guard/apps/backstop_ramp.py: pieces whose pages are all written, "
                "as fast as they can be made; Watchdog(hard=H, on_hard=<stop the loop>) and "
                "nothing else; a MemoryError is left uncaught",
                "peak": "memory.max_usage_in_bytes (charged: page cache and kernel included)",
            },
            "defaults": {"trials": total, "oom_killed": killed},
            "series": results,
            "targets": targets,
        },
    )


if __name__ == "__main__":
    main()
