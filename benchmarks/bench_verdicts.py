"""How long does a verdict take, and is it the same every run? Wall time of complexity() with
the default sizes and of find_leaks() at 1,000 iterations, median of several runs, on small
functions of known shape; then complexity() 20 times on each real library structure of
``tests/realworld/structures.py`` (the suite runs each 8 times), counting the words it gave.

Writes ``benchmarks/results/verdicts.json``. Targets: complexity ≤ 15 s, find_leaks ≤ 5 s, and
every structure O(n) in every run.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import write

import membound as mb

COMPLEXITY_TARGET_S = 15.0
LEAKS_TARGET_S = 5.0


def stream(n: int) -> int:
    """O(1) memory."""
    return sum(range(n))


def materialise(n: int) -> int:
    """O(n) memory."""
    return len(list(range(n)))  # noqa: MB202 - O(n) on purpose


REGISTRY: dict[int, dict[str, Any]] = {}
_ids = itertools.count()


def leaky() -> None:
    """Keeps a small record per call."""
    REGISTRY[next(_ids)] = {"payload": [0] * 8}


def clean() -> int:
    """Allocates and frees."""
    return len({i: str(i) for i in range(50)})


def timed(fn: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    seconds, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - t0)
    return seconds, result


def stability(runs: int) -> dict[str, dict[str, int]]:
    """The words complexity() gave in ``runs`` runs on each real structure."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.realworld import structures  # the suite's own targets: one list of them

    words: dict[str, dict[str, int]] = {}
    for target in structures.LINEAR:
        seen: collections.Counter[str] = collections.Counter()
        for _ in range(runs):
            seen[mb.complexity(target).big_o] += 1
        words[target.__name__] = dict(seen)
        print(f"stability {target.__name__:20} {dict(seen)}", flush=True)
    return words


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stability-runs", type=int, default=20)
    args = parser.parse_args()
    rows: dict[str, dict[str, Any]] = {}
    for name, target in (
        ("complexity: O(1) function", stream),
        ("complexity: O(n) function", materialise),
    ):
        secs, result = timed(lambda t=target: mb.complexity(t), args.runs)
        rows[name] = {"median_s": statistics.median(secs), "runs_s": secs, "verdict": result.big_o}
    for name, target in (
        ("find_leaks: leaking function", leaky),
        ("find_leaks: clean function", clean),
    ):
        secs, result = timed(lambda t=target: mb.find_leaks(t, iterations=1000), args.runs)
        rows[name] = {
            "median_s": statistics.median(secs),
            "runs_s": secs,
            "verdict": "leak" if result.leaking else "no leak",
        }
    words = stability(args.stability_runs)
    stable = all(seen == {"O(n)": args.stability_runs} for seen in words.values())
    worst_complexity = max(v["median_s"] for k, v in rows.items() if k.startswith("complexity"))
    worst_leaks = max(v["median_s"] for k, v in rows.items() if k.startswith("find_leaks"))
    path = write(
        "verdicts",
        {
            "complexity_sizes": [10**3, 10**4, 10**5, 10**6],
            "leak_iterations": 1000,
            "rows": rows,
            "stability": {"runs": args.stability_runs, "words": words},
            "target": {
                "complexity_max_s": COMPLEXITY_TARGET_S,
                "find_leaks_max_s": LEAKS_TARGET_S,
                "stability": "O(n) in every run",
                "met": worst_complexity <= COMPLEXITY_TARGET_S
                and worst_leaks <= LEAKS_TARGET_S
                and stable,
            },
        },
    )
    for name, row in rows.items():
        print(f"{name:32} {row['median_s']:7.2f} s  {row['verdict']}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
