"""The demo's comparisons as a benchmark: the figures README quotes for the seed experiments.

Runs ``membound demo``'s groups (1,000,000 SQLite rows by default, 3 interleaved runs per
scenario, each in a fresh process) and writes ``benchmarks/results/demo.json`` without timelines.
"""

from __future__ import annotations

import argparse

from _common import write

from membound._units import format_size
from membound.demo.runner import demo_needs, run_demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    groups = {}
    for result in run_demo(args.rows, args.repeat):
        rows = result.comparison.to_dict()["rows"]
        for row, data in zip(result.comparison.rows, rows, strict=True):
            data.pop("timeline")
            delta = format_size(row.rss_peak_delta.median)
            print(
                f"{result.group.key:6} {row.name:28} Δ peak {delta:>10}"
                f"  wall {row.duration_s.median:6.2f} s  {row.growth}"
            )
        groups[result.group.key] = {"title": result.group.title, "rows": rows}
    sql = groups["sql"]["rows"]
    ratio = sql[0]["rss_peak_delta"]["median"] / max(sql[2]["rss_peak_delta"]["median"], 1)
    # The demo's memory check before it starts must cover the highest peak it then reaches.
    highest = max(row["rss_peak"]["high"] for group in groups.values() for row in group["rows"])
    _, needs = demo_needs(args.rows)
    path = write(
        "demo",
        {
            "rows": args.rows,
            "repeat": args.repeat,
            "groups": groups,
            "load_all_over_keyset_delta_peak": ratio,
            "memory_check": {"highest_rss_peak": highest, "demo_needs": needs},
            "target": {
                "load_all_over_keyset_min": 50,
                "memory_check_covers_the_highest_peak": True,
                "met": ratio >= 50 and highest <= needs,
            },
        },
    )
    print(f"load all / keyset Δ peak: {ratio:.0f}× (target ≥ 50×)")
    print(f"highest peak {format_size(highest)}; the memory check asks for {format_size(needs)}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
