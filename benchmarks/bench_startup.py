"""Start-up cost (issue 26): ``import membound``, ``membound --help`` (which imports every
command) and ``membound run --help`` (one command's start) over a bare interpreter start, with
``import click, rich, psutil`` (what the CLI cannot do without) beside them.

Each command runs as a fresh process, round-robin so that the machine's other work falls on all of
them alike, after one warm-up round (warm file cache, compiled bytecode); medians of ``ROUNDS``.
Targets: ``import membound`` ≤ 0.3 s and ``membound --help`` ≤ 0.5 s over the bare start.
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
}
TARGETS = {"import membound": 0.3, "membound --help": 0.5}


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
    for name, row in rows.items():
        print(f"  {name:28} {row['median_s']:.3f} s   over bare {row['over_bare_s']:+.3f} s")
    print(f"targets (over bare, s): {TARGETS}; met: {met}")
    path = write(
        "startup",
        {"rounds": ROUNDS, "rows": rows, "target": {"over_bare_max_s": TARGETS, "met": met}},
    )
    print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


if __name__ == "__main__":
    main()
