"""Render README's "Numbers" section from ``benchmarks/results/*.json`` (written by ``make bench``).

``python benchmarks/readme_numbers.py`` prints the section; ``--write`` replaces it in README.md
between its markers. A test checks that README.md holds exactly what this renders from the
committed results, so every figure in that section comes from a benchmark run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BEGIN = "<!-- numbers:begin (benchmarks/readme_numbers.py --write) -->"
END = "<!-- numbers:end -->"


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RESULTS / f"{name}.json").read_text())
    return data


def _mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


def render() -> str:
    """The Markdown of the section, between the markers."""
    over = _load("overhead")
    verdicts = _load("verdicts")
    demo = _load("demo")
    lines = [BEGIN, ""]
    lines += [
        f"**Cost of measuring** (`benchmarks/bench_overhead.py`: {over['workload']}; "
        f"{over['rounds']} interleaved rounds in one process, median of per-round ratios; "
        f"{over['machine']['cpus']} cores, Python {over['machine']['python']}):",
        "",
        "| variant | median time | × plain |",
        "|---|---|---|",
    ]
    for name, row in over["variants"].items():
        lines.append(f"| {name} | {row['median_s']:.3f} s | {row['median_ratio_vs_plain']:.3f}× |")
    met = "met" if over["target"]["met"] else "NOT met"
    lines += [
        "",
        f"Target for `track()`: ≤ {over['target']['track() max ratio']}× plain — {met}. "
        "`track()` samples from a separate process, so the measured interpreter runs at full "
        "speed; heap mode pays for tracemalloc.",
        "",
        f"**Cost of a verdict** (`benchmarks/bench_verdicts.py`, median of "
        f"{len(next(iter(verdicts['rows'].values()))['runs_s'])} runs):",
        "",
        "| verdict | median time | result |",
        "|---|---|---|",
    ]
    for name, row in verdicts["rows"].items():
        lines.append(f"| {name} | {row['median_s']:.2f} s | {row['verdict']} |")
    t = verdicts["target"]
    lines += [
        "",
        f"Targets: complexity with sizes {verdicts['complexity_sizes']} ≤ "
        f"{t['complexity_max_s']:g} s, find_leaks at {verdicts['leak_iterations']} iterations ≤ "
        f"{t['find_leaks_max_s']:g} s — {'met' if t['met'] else 'NOT met'}.",
        "",
        f"**The seed experiments** (`benchmarks/bench_demo.py`: `membound demo`'s comparisons, "
        f"{demo['rows']:,} SQLite rows, medians of {demo['repeat']} runs, each in a fresh "
        "process; Δ peak is over that process's own baseline):",
        "",
        "| experiment | scenario | Δ peak RSS | wall | growth |",
        "|---|---|---|---|---|",
    ]
    for key, group in demo["groups"].items():
        for i, row in enumerate(group["rows"]):
            lines.append(
                f"| {key if i == 0 else ''} | {row['name']} | "
                f"{_mib(row['rss_peak_delta']['median'])} | "
                f"{row['duration_s']['median']:.2f} s | {row['growth']} |"
            )
    lines += [""]
    lines += [f"- **{key}**: {group['title']}" for key, group in demo["groups"].items()]
    ratio = demo["load_all_over_keyset_delta_peak"]
    lines += [
        "",
        f"Loading all rows needs {ratio:,.0f}× the Δ peak of `find_each`'s keyset batches "
        f"(target ≥ {demo['target']['load_all_over_keyset_min']}×).",
        "",
        END,
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="replace the section in README.md")
    args = parser.parse_args()
    section = render()
    if not args.write:
        print(section)
        return
    readme = ROOT / "README.md"
    text = readme.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    readme.write_text(text[:start] + section + text[end:])
    print(f"updated {readme}")


if __name__ == "__main__":
    main()
