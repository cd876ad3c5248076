"""What a leak verdict costs, and how membound's verdicts compare with pytest-memray's
``limit_leaks`` on the same cases.

Cost rows (interpreter start excluded; "untraced" = the same warm-up and iterations called plainly
in the same process, timed just before):

- a clean allocation-heavy function (20,000 short strings per call, 1,000 iterations): membound's
  verdict ≤ 1.3× the untraced calls, and ≤ 10 s;
- a 64 B/call leak found in ≤ 2 s.

Comparison: every case of ``tests/judge/leak_cases.py`` that needs no C compiler, judged by
``find_leaks`` (default settings) and by pytest-memray (a test calling the function 1,050 times
under ``@pytest.mark.limit_leaks("1 KB")``, run with ``--memray``): false alarms, misses, time.

Writes ``benchmarks/results/leaks.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import pip_target, write

import membound as mb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.judge import leak_cases as lc  # noqa: E402

RATIO_TARGET = 1.3  # issue 26 (was 1.5)
HEAVY_TARGET_S = 10.0
LEAK_FOUND_TARGET_S = 2.0

#: case name → is it a leak?
CASES = {
    "flush_every_250": False,
    "flush_every_350": False,
    "lru_bound_above_calls": False,
    "lru_bound_below_calls": False,
    "deque_filling": False,
    "cycles_with_finalizers": False,
    "cache_on_method": True,
    "listener_never_removed": True,
    "exceptions_kept": True,
    "ids_kept_in_a_set": True,
    "floats_kept_in_a_dict": True,
}


def heavy() -> int:
    """20,000 short strings per call, all freed."""
    return len([str(i) for i in range(20_000)])


_KEPT: list[bytes] = []


def leak_64() -> None:
    """Keeps a 31-byte bytes object (64 bytes with its header and the list slot)."""
    _KEPT.append(bytes(31))


def _untraced(fn: Any, calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return time.perf_counter() - t0


def _timed_hunt(fn: Any) -> tuple[float, mb.LeakReport]:
    t0 = time.perf_counter()
    report = mb.find_leaks(fn)
    return time.perf_counter() - t0, report


def _pytest_memray() -> Path:
    """pytest-memray in a folder of its own (``benchmarks/.cache``), not in the project's
    environment: its ``limit_memory`` marker has the same name as membound's."""
    target = Path(__file__).with_name(".cache") / "pytest-memray"
    if not (target / "pytest_memray").is_dir():
        pip_target(target, "pytest-memray==1.11.0")
    return target


def _memray_verdicts() -> dict[str, dict[str, Any]]:
    """Each case as a test under pytest-memray's limit_leaks, in one pytest run."""
    plugin = _pytest_memray()
    lines = ["import pytest", "from tests.judge import leak_cases as lc", ""]
    for name in CASES:
        lines += [
            '@pytest.mark.limit_leaks("1 KB")',
            f"def test_{name}():",
            "    for _ in range(1050):",
            f"        lc.{name}()",
            "",
        ]
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        test_file = Path(tmp, "test_memray_cases.py")
        test_file.write_text("\n".join(lines))
        t0 = time.perf_counter()
        proc = subprocess.run(
            [
                *(sys.executable, "-m", "pytest", "-q", "--memray", "-rA"),
                *("-p", "no:membound", "-p", "no:cacheprovider", "-p", "no:xdist"),
                str(test_file),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin), str(ROOT)])},
            check=False,
        )
        total = time.perf_counter() - t0
    outcomes: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        for word in ("PASSED", "FAILED", "MEMORY PROBLEMS"):
            if line.startswith(word + " ") and "::test_" in line:
                test = line.split("::test_", 1)[1].split(" ", 1)[0]
                outcomes[test] = word
    for name in CASES:
        outcome = outcomes.get(name, "")
        out[name] = {"alarm": outcome in ("FAILED", "MEMORY PROBLEMS"), "ran": bool(outcome)}
    out["_total_s"] = {"seconds": total}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    ratios, heavy_s, leak_s = [], [], []
    for _ in range(args.runs):
        plain = _untraced(heavy, 1050)
        seconds, report = _timed_hunt(heavy)
        assert report.verdict == "no leak", report.explanation
        heavy_s.append(seconds)
        ratios.append(seconds / plain)
        seconds, report = _timed_hunt(leak_64)
        assert report.verdict == "leak", report.explanation
        leak_s.append(seconds)

    cases: dict[str, dict[str, Any]] = {}
    for name, leaking in CASES.items():
        seconds, report = _timed_hunt(getattr(lc, name))
        cases[name] = {
            "leak": leaking,
            "membound": report.verdict,
            "membound_s": round(seconds, 2),
            "membound_right": (report.verdict == "leak") == leaking,
        }
    memray = _memray_verdicts()
    for name, row in cases.items():
        row["pytest_memray_alarm"] = memray[name]["alarm"]
        row["pytest_memray_right"] = memray[name]["ran"] and memray[name]["alarm"] == row["leak"]

    def tally(key: str) -> dict[str, int]:
        wrong = [n for n, r in cases.items() if not r[key]]
        return {
            "false_alarms": sum(not cases[n]["leak"] for n in wrong),
            "misses": sum(cases[n]["leak"] for n in wrong),
        }

    summary = {
        "membound": {
            **tally("membound_right"),
            "seconds": sum(r["membound_s"] for r in cases.values()),
        },
        "pytest_memray": {**tally("pytest_memray_right"), "seconds": memray["_total_s"]["seconds"]},
    }
    result = {
        "clean_heavy": {
            "ratio_median": statistics.median(ratios),
            "ratios": ratios,
            "median_s": statistics.median(heavy_s),
        },
        "leak_64_found": {"median_s": statistics.median(leak_s), "runs_s": leak_s},
        "cases": cases,
        "summary": summary,
        "target": {
            "clean_ratio_max": RATIO_TARGET,
            "clean_heavy_max_s": HEAVY_TARGET_S,
            "leak_found_max_s": LEAK_FOUND_TARGET_S,
            "met": statistics.median(ratios) <= RATIO_TARGET
            and statistics.median(heavy_s) <= HEAVY_TARGET_S
            and statistics.median(leak_s) <= LEAK_FOUND_TARGET_S,
        },
    }
    path = write("leaks", result)
    print(
        f"clean heavy: {statistics.median(heavy_s):.2f} s, "
        f"{statistics.median(ratios):.2f}x untraced"
    )
    print(f"64 B/call leak found: {statistics.median(leak_s):.2f} s")
    for name, row in cases.items():
        print(
            f"{name:26} leak={row['leak']!s:5} membound={row['membound']:9} "
            f"memray_alarm={row['pytest_memray_alarm']}"
        )
    print(summary)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
