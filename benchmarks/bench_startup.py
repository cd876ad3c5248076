"""Start-up cost (issue 26): ``import membound``, ``membound --help`` (which imports every
command) and ``membound run --help`` (one command's start) over a bare interpreter start, with
``import click, rich, psutil`` (what the CLI cannot do without) beside them; and the fixed cost
of measuring a command (issue 37): ``membound run -- python -c pass``, its sampler's start, the
command's run and its judgement, whole.

Each command runs as a fresh process, round-robin so that the machine's other work falls on all of
them alike, after one warm-up round (warm file cache, compiled bytecode); medians of ``ROUNDS``.
Targets: ``import membound`` ≤ 0.3 s and ``membound --help`` ≤ 0.5 s over the bare start;
``membound run -- python -c pass`` ≤ 0.8 s whole (``RUN_TARGET_S``).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from _common import median, write

ROUNDS = 15
MEMBOUND = str(Path(sys.executable).with_name("membound"))
COMMANDS = {
    "bare interpreter": [sys.executable, "-c", "pass"],
    "import click, rich, psutil": [sys.executable, "-c", "import click, rich, psutil"],
    "import membound": [sys.executable, "-c", "import membound"],
    "membound --help": [MEMBOUND, "--help"],
    "membound run --help": [MEMBOUND, "run", "--help"],
    "membound run -- python -c pass": [MEMBOUND, "run", "--", sys.executable, "-c", "pass"],
}
TARGETS = {"import membound": 0.3, "membound --help": 0.5}
#: ``membound run -- python -c pass``, whole (not over the bare start), seconds.
RUN = "membound run -- python -c pass"
RUN_TARGET_S = 0.8


def _seconds(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    for argv in COMMANDS.values():
        _seconds(argv)  # warm-up
    runs: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(ROUNDS):
        for name, argv in COMMANDS.items():
            runs[name].append(_seconds(argv))
    bare = median(runs["bare interpreter"])
    rows = {
        name: {
            "median_s": median(times),
            "over_bare_s": median(times) - bare,
            "runs_s": [round(t, 4) for t in times],
        }
        for name, times in runs.items()
    }
    met = {name: rows[name]["over_bare_s"] <= limit for name, limit in TARGETS.items()}
    met[RUN] = rows[RUN]["median_s"] <= RUN_TARGET_S
    for name, row in rows.items():
        print(f"  {name:28} {row['median_s']:.3f} s   over bare {row['over_bare_s']:+.3f} s")
    print(f"targets (over bare, s): {TARGETS}; {RUN} whole: {RUN_TARGET_S} s; met: {met}")
    target = {"over_bare_max_s": TARGETS, "whole_max_s": {RUN: RUN_TARGET_S}, "met": met}
    path = write("startup", {"rounds": ROUNDS, "rows": rows, "target": target})
    print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


if __name__ == "__main__":
    main()
