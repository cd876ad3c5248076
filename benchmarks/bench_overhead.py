"""What does measuring cost? The same allocation-heavy workload, plain and under each tracker.

All variants run in this one process, interleaved round by round (the order rotates every round),
and each variant's cost is the median over rounds of (its time / plain time in the same round):
ratios within one run are robust to a noisy, shared machine (DESIGN §5.5, §5.6).

Writes ``benchmarks/results/overhead.json``. Targets: ``track()`` ≤ 1.02× plain;
``track(heap="memray")`` ≤ 1.8× plain.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from _common import median, write

import membound as mb

TARGET_RATIO = 1.02
MEMRAY_TARGET_RATIO = 1.8


def workload(n: int) -> int:
    """≈2n small objects (n dicts each holding a tuple) in a list of n, built then freed."""
    items = [{"id": i, "pair": (i, -i)} for i in range(n)]
    count = len(items)
    del items
    return count


def variants(n: int, tmp: Path) -> dict[str, Callable[[], object]]:
    def plain() -> object:
        return workload(n)

    def tracked() -> object:
        with mb.track("bench"):
            return workload(n)

    def tracked_heap() -> object:
        with mb.track("bench", heap=True):
            return workload(n)

    def raw_tracemalloc() -> object:
        tracemalloc.start(1)
        try:
            return workload(n)
        finally:
            tracemalloc.stop()

    out: dict[str, Callable[[], object]] = {
        "plain": plain,
        "track()": tracked,
        "track(heap=True)": tracked_heap,
        "tracemalloc (1 frame)": raw_tracemalloc,
    }
    try:
        import memray
    except ImportError:
        return out
    counter = iter(range(10**6))

    def with_memray() -> object:
        with memray.Tracker(tmp / f"m{next(counter)}.bin"):
            return workload(n)

    def with_memray_python() -> object:
        with memray.Tracker(tmp / f"m{next(counter)}.bin", trace_python_allocators=True):
            return workload(n)

    def with_memray_aggregated() -> object:
        with memray.Tracker(
            tmp / f"m{next(counter)}.bin",
            trace_python_allocators=True,
            file_format=memray.FileFormat.AGGREGATED_ALLOCATIONS,
        ):
            return workload(n)

    def tracked_memray() -> object:
        with mb.track("bench", heap="memray"):
            return workload(n)

    out["track(heap='memray')"] = tracked_memray
    out["memray"] = with_memray
    out["memray (Python allocators)"] = with_memray_python
    out["memray (Python allocators, aggregated)"] = with_memray_aggregated
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000, help="dicts per workload")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = variants(args.n, Path(tmp))
        names = list(runs)
        times: dict[str, list[float]] = {name: [] for name in names}
        for name in names:  # warm-up: first touches of the allocator are not the steady state
            runs[name]()
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                gc.collect()
                t0 = time.perf_counter()
                runs[name]()
                times[name].append(time.perf_counter() - t0)
                for leftover in Path(tmp).glob("*.bin"):
                    leftover.unlink()
    results = {}
    for name in names:
        ratios = [t / p for t, p in zip(times[name], times["plain"], strict=True)]
        results[name] = {
            "median_s": median(times[name]),
            "median_ratio_vs_plain": median(ratios),
            "min_ratio": min(ratios),
            "max_ratio": max(ratios),
        }
    ratio = results["track()"]["median_ratio_vs_plain"]
    memray_ratio = results.get("track(heap='memray')", {}).get("median_ratio_vs_plain")
    target: dict[str, object] = {"track() max ratio": TARGET_RATIO, "met": ratio <= TARGET_RATIO}
    if memray_ratio is not None:
        target["track(heap='memray') max ratio"] = MEMRAY_TARGET_RATIO
        target["memray met"] = memray_ratio <= MEMRAY_TARGET_RATIO
    path = write(
        "overhead",
        {
            "workload": f"{args.n:,} dicts each holding a tuple, in one list, built then freed",
            "rounds": args.rounds,
            "variants": results,
            "target": target,
        },
    )
    print(f"{'variant':40} {'median s':>9} {'× plain':>8}")
    for name, row in results.items():
        print(f"{name:40} {row['median_s']:9.3f} {row['median_ratio_vs_plain']:8.3f}")
    print(f"track() target ≤ {TARGET_RATIO}×: {'met' if ratio <= TARGET_RATIO else 'NOT met'}")
    if memray_ratio is not None:
        met = "met" if memray_ratio <= MEMRAY_TARGET_RATIO else "NOT met"
        print(f"track(heap='memray') target ≤ {MEMRAY_TARGET_RATIO}×: {met}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
