"""Render the documentation's benchmark sections from ``benchmarks/results/*.json`` (``make
bench``).

Four sections: "Numbers" (overhead, verdicts, demo), the batching table under "Bound"
(``batching.json`` from ``make bench``, ``batching-10m.json`` from ``bench_batching.py --slow``),
partitioned runs (``partition.json``) and the production guard's table (``guard.json``).
``python benchmarks/readme_numbers.py`` prints them; ``--write`` replaces them between their
markers in the pages of ``docs/`` that hold them (:data:`PAGES`). A test checks that those pages
hold exactly what this renders from the committed results, so every figure in those sections
comes from a benchmark run.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BEGIN = "<!-- numbers:begin (benchmarks/readme_numbers.py --write) -->"
END = "<!-- numbers:end -->"
BATCHING_BEGIN = "<!-- batching:begin (benchmarks/readme_numbers.py --write) -->"
BATCHING_END = "<!-- batching:end -->"
GUARD_BEGIN = "<!-- guard:begin (benchmarks/readme_numbers.py --write) -->"
GUARD_END = "<!-- guard:end -->"
BACKSTOP_BEGIN = "<!-- backstop:begin (benchmarks/readme_numbers.py --write) -->"
BACKSTOP_END = "<!-- backstop:end -->"
PEERS_BEGIN = "<!-- peers:begin (benchmarks/readme_numbers.py --write) -->"
PEERS_END = "<!-- peers:end -->"
HEADLINE_BEGIN = "<!-- guard-headline:begin (benchmarks/readme_numbers.py --write) -->"
HEADLINE_END = "<!-- guard-headline:end -->"
PARTITION_BEGIN = "<!-- partition:begin (benchmarks/readme_numbers.py --write) -->"
PARTITION_END = "<!-- partition:end -->"
BATCHING_LABELS = {
    "raw_stream": "read: raw sqlite3, one cursor",
    "fetchall": "read: `fetchall()`",
    "offset": "read: LIMIT/OFFSET pages",
    "core_stream": "read: SQLAlchemy Core, one cursor",
    "find_each_core": "read: `find_each` Core (`Row` objects)",
    "find_each_core_tuples": "read: `find_each` Core, `tuples=True`",
    "yield_per_orm": "read: SQLAlchemy ORM `yield_per`",
    "find_each_orm": "read: `find_each` ORM",
    "naive_one_transaction": "update: load all, one transaction",
    "keyset_executemany": "update: hand-written keyset + executemany",
    "in_batches_set_update": "update: `in_batches` + set-based UPDATE",
    "find_each_writer": "update: `find_each` + `BatchWriter`",
}
#: Scenarios whose memory grows with the table: the contrast, not O(1) strategies.
O_N_SCENARIOS = frozenset({"fetchall", "naive_one_transaction"})


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RESULTS / f"{name}.json").read_text())
    return data


def _mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


def _leak_lines(leaks: dict[str, Any]) -> list[str]:
    """The cost of a leak verdict and the comparison with pytest-memray's ``limit_leaks``."""
    t, s = leaks["target"], leaks["summary"]
    heavy, found = leaks["clean_heavy"], leaks["leak_64_found"]
    return [
        "**Leak verdicts** (`benchmarks/bench_leaks.py`, medians of "
        f"{len(found['runs_s'])} runs): a clean function making 20,000 strings per call, "
        f"1,000 iterations: {heavy['median_s']:.2f} s, {heavy['ratio_median']:.2f}× the same "
        f"calls untraced (target ≤ {t['clean_ratio_max']:g}×, ≤ {t['clean_heavy_max_s']:g} s); "
        f"a 64 B/call leak found in {found['median_s']:.2f} s (target ≤ "
        f"{t['leak_found_max_s']:g} s) — {'met' if t['met'] else 'NOT met'}. "
        f"On {len(leaks['cases'])} cases ({sum(c['leak'] for c in leaks['cases'].values())} "
        f"leaks; sawtooth, bounded caches, finalizer cycles): membound "
        f"{s['membound']['false_alarms']} false alarms, {s['membound']['misses']} misses "
        f'({s["membound"]["seconds"]:.0f} s in all); pytest-memray `limit_leaks("1 KB")` '
        f"over 1,050 calls {s['pytest_memray']['false_alarms']} false alarms, "
        f"{s['pytest_memray']['misses']} misses ({s['pytest_memray']['seconds']:.0f} s).",
        "",
    ]


def _startup_lines(startup: dict[str, Any]) -> list[str]:
    """Start-up over a bare interpreter, beside the libraries the CLI needs."""
    rows, target = startup["rows"], startup["target"]
    limits, met = target["over_bare_max_s"], target["met"]

    def over(name: str) -> str:
        return f"{rows[name]['over_bare_s']:.2f} s"

    return [
        f"**Start-up** (`benchmarks/bench_startup.py`, fresh processes, warm cache, medians of "
        f"{startup['rounds']}; over a bare interpreter's "
        f"{rows['bare interpreter']['median_s']:.3f} s): "
        f"`import membound` {over('import membound')} "
        f"(target ≤ {limits['import membound']:g} s — {_met(met['import membound'])}), "
        f"`membound --help` {over('membound --help')} (target ≤ {limits['membound --help']:g} s "
        f"— {_met(met['membound --help'])}; it imports every command), one command's start "
        f"(`membound run --help`) {over('membound run --help')}; `import click, rich, psutil` "
        f"alone {over('import click, rich, psutil')}. {_run_line(rows, target)}"
        "Each part of membound, and SQLAlchemy, is "
        "imported on first use, before a measurement's baseline when the measured code holds "
        "the package (`import membound`).",
        "",
    ]


def _run_line(rows: dict[str, Any], target: dict[str, Any]) -> str:
    """The fixed cost of measuring a command, when the results have it (older ones do not)."""
    name = "membound run -- python -c pass"
    if name not in rows or name not in target.get("whole_max_s", {}):
        return ""
    return (
        f"Measuring a command costs `{name}` {rows[name]['median_s']:.2f} s whole (target ≤ "
        f"{target['whole_max_s'][name]:g} s — {_met(target['met'][name])}). "
    )


def _writes_lines(writes: dict[str, Any]) -> list[str]:
    """Per-row writes on PostgreSQL against a hand-written psycopg loop."""
    ms, rps, target = writes["median_s"], writes["rows_per_s"], writes["target"]
    return [
        f"**Per-row writes on PostgreSQL** (`benchmarks/bench_writes.py`, {writes['rows']:,} "
        f"rows updated one parameter set each, batches of {writes['batch']:,}, medians of "
        f"{writes['rounds']} interleaved rounds): a hand-written psycopg 3 keyset loop "
        f"(`executemany`, a commit a batch, no checkpoint) {ms['hand']:.2f} s "
        f"({rps['hand']:,.0f} rows/s); `find_each` + `BatchWriter` with a checkpoint "
        f"{ms['membound']:.2f} s ({rps['membound']:,.0f} rows/s; each batch's keyed UPDATE "
        "sent as one statement over arrays, where that is proven the same work as row by row): "
        f"{writes['ratio_median']:.2f}× the hand loop (target ≥ {target['min_ratio']:g}× — "
        f"{_met(target['met'])}); without a checkpoint {ms['membound_no_checkpoint']:.2f} s = "
        f"{writes['ratio_no_checkpoint']:.2f}×. What a flush that cannot be proven costs: the "
        f"same UPDATE as `text()`, sent row by row (each statement planned for its own values), "
        f"{ms['membound_row_by_row']:.2f} s = {writes['ratio_row_by_row']:.2f}× the hand loop.",
        "",
        *_partitioned_writes_lines(writes["partitioned"]),
    ]


def _partitioned_writes_lines(part: dict[str, Any]) -> list[str]:
    """The same writes by ``run_partitioned`` on one and two Dask workers."""
    target = part["target"]
    return [
        "The same updates by `run_partitioned` on a local Dask cluster (8 key ranges, the job's "
        f"own wall time): one worker {part['median_s']['1']:.2f} s = "
        f"{part['one_worker_over_hand']:.2f}× the hand loop (target ≥ "
        f"{target['one_worker_min']:g}×), two workers {part['median_s']['2']:.2f} s = "
        f"{part['two_over_one']:.2f}× one (target ≥ {target['two_over_one_min']:g}×; PostgreSQL "
        f"shares the two cores) — {_met(target['met'])}. A range's RSS peak on a worker is the "
        "kernel's peak mark, reset when the range starts (`/proc/self/clear_refs`), less the "
        "RSS at its start: what Dask held before the task is not counted; what Dask's own "
        "threads allocate during it is.",
        "",
    ]


MEMRAY_TARGET_KEY = "track(heap='memray') max ratio"


def _memory_check_lines(demo: dict[str, Any]) -> list[str]:
    """Whether the demo's memory check before it starts covered the highest peak it reached."""
    if "memory_check" not in demo:
        return []
    check = demo["memory_check"]
    covered = "covered" if check["highest_rss_peak"] <= check["demo_needs"] else "NOT covered"
    return [
        f"Before it starts, the demo asks for {_mib(check['demo_needs'])} of available memory at "
        f"{demo['rows']:,} rows; the highest peak of any of its runs was "
        f"{_mib(check['highest_rss_peak'])} ({covered})."
    ]


def _stability_lines(verdicts: dict[str, Any]) -> list[str]:
    """The words complexity() gave in repeated runs on real structures, if measured."""
    if "stability" not in verdicts:
        return []
    runs = verdicts["stability"]["runs"]
    seen = "; ".join(
        f"`{name}` "
        + ", ".join(f"{word} {count} of {runs}" for word, count in sorted(words.items()))
        for name, words in verdicts["stability"]["words"].items()
    )
    return [
        f"**The same word every run** (`benchmarks/bench_verdicts.py`: complexity() {runs} times "
        f"at the default sizes on each real structure of `tests/realworld/structures.py`, each "
        f"run a fresh set of interpreters): {seen}.",
        "",
    ]


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
    ]
    if "memray met" in over["target"]:
        variants = over["variants"]
        memray = variants["track(heap='memray')"]["median_ratio_vs_plain"]
        traced = variants["track(heap=True)"]["median_ratio_vs_plain"]
        stream = variants.get("memray (Python allocators)", {}).get("median_ratio_vs_plain")
        lines += [
            f"Target for `track(heap='memray')`: ≤ "
            f"{over['target'][MEMRAY_TARGET_KEY]}× "
            f"plain — {'met' if over['target']['memray met'] else 'NOT met'} "
            f"({memray:.2f}× against tracemalloc's {traced:.2f}×). memray's aggregated capture "
            "(what membound uses: its file does not grow with the run) costs more per allocation "
            "than its default capture"
            + (f" ({stream:.2f}×), whose file grows with every allocation" if stream else "")
            + ".",
            "",
        ]
    lines += [
        *_plugin_lines(_load("plugin")),
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
        f"{t['find_leaks_max_s']:g} s"
        + (f", and {t['stability']}" if "stability" in t else "")
        + f" — {'met' if t['met'] else 'NOT met'}.",
        "",
        *_stability_lines(verdicts),
        *_leak_lines(_load("leaks")),
        *_startup_lines(_load("startup")),
        *_writes_lines(_load("writes")),
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
        *_memory_check_lines(demo),
        "",
        END,
    ]
    return "\n".join(lines)


def _plugin_lines(plugin: dict[str, Any]) -> list[str]:
    """The pytest plugin's cost on a real suite."""
    lines = [
        f"**Cost of the pytest plugin** (`benchmarks/bench_plugin.py`: {plugin['suite']}, "
        f"`-n 0`, {plugin['rounds']} interleaved rounds, median of per-round ratios to plain):",
        "",
        "| variant | median time | × plain |",
        "|---|---|---|",
    ]
    for name, row in plugin["variants"].items():
        lines.append(f"| {name} | {row['median_s']:.2f} s | {row['median_ratio_vs_plain']:.3f}× |")
    heap = plugin["heap_limit_once"]
    target = plugin["target"]
    lines += [
        "",
        f"A heap limit (tracemalloc) on every test: {heap['seconds']:.1f} s, "
        f"{heap['ratio_vs_plain_median']:.1f}× plain (one run). Target for the rss default: "
        f"≤ {target['rss default max ratio']}× plain — {'met' if target['met'] else 'NOT met'}.",
        "",
    ]
    return lines


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def _met(ok: bool) -> str:
    return "met" if ok else "**NOT met**"


def _single_runs(results: dict[str, Any]) -> str:
    """The method of a run, said plainly when every scenario ran once."""
    if all(r.get("repeat", 1) == 1 for r in results["read"] + results["sweep"]):
        return "one fresh-interpreter run per scenario, updates on a fresh copy"
    return str(results["method"])


def render_batching() -> str:
    """The batching table and its targets (README "Bound"), between the batching markers."""
    one = _load("batching")
    ten = _load("batching-10m")
    rows_1m = {r["scenario"]: r for r in one["read"] + one["update"]}
    rows_10m = {r["scenario"]: r for r in ten["read"] + ten["update"]}
    lines = [
        BATCHING_BEGIN,
        "",
        f"SQLite {one['sqlite']}, Python {one['python']}, {one['machine']}; a users table of "
        "INTEGER and VARCHAR columns (values the driver returns unconverted). 1M rows "
        f"(`benchmarks/results/batching.json`): {one['method']}. 10M rows "
        f"(`benchmarks/results/batching-10m.json`, `--slow`): {_single_runs(ten)}; skipped there: "
        f"{', '.join(ten['skipped']) or 'none'} (O(n) memory or quadratic time). A shared "
        "machine: read the ratios, not the absolutes.",
        "",
        f"| scenario | {one['rows'] // 10**6}M rows/s | Δ peak | {ten['rows'] // 10**6}M rows/s "
        "| Δ peak |",
        "|---|---:|---:|---:|---:|",
    ]
    for scenario, label in BATCHING_LABELS.items():
        if scenario not in rows_1m:
            continue
        a = rows_1m[scenario]
        b = rows_10m.get(scenario)
        big = f"{b['rows_per_s']:,} | {_mb(b['peak_delta'])}" if b else "skipped | —"
        lines.append(f"| {label} | {a['rows_per_s']:,} | {_mb(a['peak_delta'])} | {big} |")
    bounded_1m = max(r["peak_delta"] for k, r in rows_1m.items() if k not in O_N_SCENARIOS)
    bounded_10m = max(r["peak_delta"] for k, r in rows_10m.items() if k not in O_N_SCENARIOS)
    sweep = one["sweep"]
    r1, r10 = one["ratios"], ten["ratios"]

    def ratio(name: str, *, rounds: bool = True) -> str:
        each = r1.get(name + " (per round)") if rounds else None
        spread = f" (rounds: {', '.join(f'{v:.2f}' for v in each)})" if each else ""
        return f"{r1[name]:.2f}×{spread}; 10M: {r10[name]:.2f}×"

    tuples = "find_each_core_tuples / raw_stream"
    orm = "find_each_orm / yield_per_orm"
    update = "in_batches_set_update / naive"
    offset_slower = rows_1m["find_each_core"]["rows_per_s"] / rows_1m["offset"]["rows_per_s"]
    lines += [
        "",
        "Against the targets of the issue:",
        "",
        f"- Δ peak of every O(1) strategy: ≤ {_mb(bounded_1m)} at 1M rows, ≤ {_mb(bounded_10m)} "
        f"at 10M (target ≤ 10 MB and unchanged at 10M: "
        f"{_met(bounded_1m <= 10e6 and bounded_10m <= max(10e6, 1.5 * bounded_1m))}). The "
        f"batch-size sweep of `find_each` Core (`batching_sweep.png`) goes from "
        f"{_mb(sweep[0]['peak_delta'])} at batch {sweep[0]['batch_size']:,} to "
        f"{_mb(sweep[-1]['peak_delta'])} at batch {sweep[-1]['batch_size']:,}.",
        f"- `find_each(..., tuples=True)` vs the raw sqlite3 single-cursor stream: "
        f"{ratio(tuples)} (target ≥ 0.95×: {_met(r1[tuples] >= 0.95)}).",
        "- `find_each` Core with SQLAlchemy `Row` objects: "
        f"{ratio('find_each_core / raw_stream', rounds=False)} of the raw stream, "
        f"{ratio('find_each_core / core_stream', rounds=False)} of SQLAlchemy Core's own "
        "one-cursor stream: building a `Row` per row costs more than sqlite3 spends producing "
        "the row, which is why `tuples=True` exists.",
        f"- ORM `find_each` vs `yield_per`: {ratio(orm)} (target ≥ 1.0×: {_met(r1[orm] >= 1.0)}).",
        f"- O(1) read+update vs the naive one-transaction update: `in_batches` + set-based UPDATE "
        f"{r1[update]:.2f}× (target ≥ 1.0×: {_met(r1[update] >= 1.0)}); `find_each` + "
        f"`BatchWriter` {r1['find_each_writer / naive']:.2f}× (a commit per 1,000 rows on a "
        "rollback journal, against one commit holding "
        f"{_mb(rows_1m['naive_one_transaction']['peak_delta'])}).",
        f"- OFFSET paging is {offset_slower:.0f}× slower than `find_each` at 1M rows (and "
        "quadratic); over a condition the loop itself changes it skips half the rows "
        "(`test_offset_paging_misses_half_keyset_does_not`).",
        "",
        BATCHING_END,
    ]
    return "\n".join(lines)


def _target_rows(rows: list[dict[str, Any]]) -> list[str]:
    """Table rows of ``{what, target, measured, met}`` (met None: only reported)."""
    out = []
    for row in rows:
        met = row["met"]
        result = "reported" if met is None else ("met" if met else "NOT met")
        out.append(f"| {row['what']} | {row['target']} | {row['measured']} | {result} |")
    return out


def render_guard() -> str:
    """The production guard's targets and figures (``benchmarks/bench_guard.py``)."""
    guard = _load("guard")
    p, machine = guard["parameters"], guard["machine"]
    lines = [
        GUARD_BEGIN,
        "",
        f"Measured by `benchmarks/bench_guard.py` (Python {machine['python']}, {machine['cpus']} "
        f"CPUs, cgroup v1, one run of {p['elapsed_s'] / 60:.1f} min). Reaction: a child in a "
        "512 MiB cgroup crosses `soft` again and again, time from the crossing to the callback; "
        f"{p['crossings']} crossings per row. Overshoot: a 1 GiB/s ramp into a 1 GiB cgroup, "
        '`hard="90%"` with `actions.raise_in()`, peak = `memory.max_usage_in_bytes`; '
        f"{p['overshoot_runs']} runs with events, {p['polling_runs']} polling, "
        f"{p['none_runs']} without a watchdog. Leak trend: real child processes with time "
        f"scaled {p['scale']:g}× (2 MB/min on a 300 MB base becomes {2 * p['scale']:g} MB/min, "
        "a 2 min window 6 s).",
        "",
        "| what | target | measured | result |",
        "|---|---|---|---|",
    ]
    lines += [*_target_rows(guard["targets"]), "", GUARD_END]
    return "\n".join(lines)


def render_backstop() -> str:
    """The watchdog's defaults against fast ramps (``benchmarks/bench_backstop.py``)."""
    found = _load("backstop")
    p, machine, series = found["parameters"], found["machine"], found["series"]
    lines = [
        BACKSTOP_BEGIN,
        "",
        f"Measured by `benchmarks/bench_backstop.py` (Python {machine['python']}, "
        f"{machine['cpus']} CPUs, cgroup v1, one run of {p['elapsed_s'] / 60:.1f} min): ramps "
        "of pieces whose pages are all written, as fast as they can be made, with "
        "`Watchdog(hard=H, on_hard=<a callback that stops the loop>)` and nothing else (the "
        "backstop as its default has it; a refusal's `MemoryError` left uncaught), "
        f"{p['runs']} trials per cell, {p['contrast_runs']} for the contrasts. OOM kills:",
        "",
        "| group, hard | piece | defaults, quiet | defaults, 2 busy loops "
        "| backstop=False, quiet / busy | no guard, quiet / busy |",
        "|---|---|---|---|---|---|",
    ]
    for group in p["groups"]:
        for piece in p["pieces"]:
            where = (
                f"{group['limit_mib']} MiB hard {group['hard']}, {piece['mib']} MiB {piece['kind']}"
            )

            def cell(guard: str, load: str, where: str = where) -> str:
                row = series[f"{where}, {guard}, {load}"]
                return f"{row['oom_killed']}/{row['trials']}"

            lines.append(
                f"| {group['limit_mib']} MiB, {group['hard']} | {piece['mib']} MiB "
                f"`{piece['kind']}` | {cell('default', 'quiet')} "
                f"| {cell('default', 'two busy loops')} "
                f"| {cell('backstop=False', 'quiet')} / {cell('backstop=False', 'two busy loops')} "
                f"| {cell('no guard', 'quiet')} / {cell('no guard', 'two busy loops')} |"
            )
    totals = found["defaults"]
    met = all(t["met"] is not False for t in found["targets"])
    lines += [
        "",
        f"With the defaults: {totals['oom_killed']} OOM kills in {totals['trials']} trials "
        f"(target 0: {_met(met)}).",
        "",
        BACKSTOP_END,
    ]
    return "\n".join(lines)


def render_peers() -> str:
    """membound's server recipes against the servers' own recycling (``bench_peers.py``)."""
    found = _load("peers")
    p, machine, summary = found["parameters"], found["machine"], found["summary"]
    lines = [
        PEERS_BEGIN,
        "",
        f"Measured by `benchmarks/bench_peers.py` (Python {machine['python']}, "
        f"{machine['cpus']} CPUs, cgroup v1, {p['rounds']} round(s) of every configuration, "
        f"interleaved, {p['elapsed_s'] / 60:.0f} min): {p['workers']} workers in a "
        f"{p['limit_mib']} MiB cgroup, every request or task keeping {p['leak_kib']} KiB, "
        f"{p['spike_fraction'] * 100:g} % of them writing a {p['spike_mib'][0]}–"
        f"{p['spike_mib'][1]} MiB temporary for {p['hold_s']:g} s; paced "
        f"{p['rate_per_s']:g}/s ({p['requests']:,} requests, {p['tasks']:,} Celery tasks) and "
        f"stress (8 threads, {p['stress_requests']:,} requests). `server`: gunicorn "
        "`--max-requests 500 --max-requests-jitter 50`, uvicorn `--limit-max-requests 500`, "
        "Celery `--max-memory-per-child` at membound's threshold (`server-tasks`: "
        "`--max-tasks-per-child 500`); `membound`: this guide's recipe for that server with "
        "its defaults (hard "
        + ", ".join(f"{server} {hard}" for server, hard in p["membound"].items())
        + ").",
        "",
        "p99 of the requests writing no buffer: the buffer's 0.2 s makes those that write one "
        "the slowest when served, and a worker killed with them takes them out of the served "
        "set; this p99 compares the same work. p99 of all requests sent: a request that "
        "failed counts as slower than any answer (what its client got), so the option's "
        "OOM-killed requests are in its tail (– where more than 1 % failed).",
        "",
        "| server / load | config | OOM kills | failed or lost (503) | p99 ms | p99 ms, no buffer "
        "| p99 ms, all sent | restarts |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, by_config in summary.items():
        for config, m in by_config.items():
            p99 = "–" if m["p99_ms"] is None else f"{m['p99_ms']:g}"
            plain, sent = m.get("p99_plain_ms"), m.get("p99_sent_ms")
            lines.append(
                f"| {key} | {config} | {m['oom_kills']:g} | {m['failed']:g} "
                f"({m['refused_503']:g}) | {p99} | {'–' if plain is None else f'{plain:g}'} "
                f"| {'–' if sent is None else f'{sent:g}'} | {m['restarts']:g} |"
            )
    lines += [
        "",
        "| what | target | measured | result |",
        "|---|---|---|---|",
        *_target_rows(found["targets"]),
        "",
        PEERS_END,
    ]
    return "\n".join(lines)


def render_headline() -> str:
    """The guard's two headline figures for the README (backstop ramps and the servers)."""
    backstop, peers = _load("backstop"), _load("peers")
    ramps = backstop["defaults"]
    ours = [m for by in peers["summary"].values() for c, m in by.items() if c == "membound"]
    options = [
        m for by in peers["summary"].values() for c, m in by.items() if c.startswith("server")
    ]
    met = sum(1 for t in peers["targets"] if t["met"])
    our_kills = sum(sum(m["oom_kills_per_round"]) for m in ours)
    their_kills = sum(sum(m["oom_kills_per_round"]) for m in options)
    failed = sum(m["failed"] for m in ours)
    return "\n".join(
        [
            HEADLINE_BEGIN,
            "",
            f"Measured (`benchmarks/results/backstop.json`, `peers.json`): "
            f"`Watchdog(hard=…, on_hard=…)` with nothing else had "
            f"{ramps['oom_killed']} OOM kills in {ramps['trials']} fast ramps (4–64 MiB "
            "pieces, groups of 150–600 MiB, quiet and with two busy loops; "
            "`benchmarks/bench_backstop.py`). On gunicorn, uvicorn and Celery with a leak and "
            "large temporaries in a 400 MiB cgroup, the guide's recipes had "
            f"{our_kills} OOM kill{'' if our_kills == 1 else 's'} in "
            f"{sum(m['rounds'] for m in ours)} runs and "
            f"{failed:g} failed request{'' if failed == 1 else 's'} or lost "
            f"task{'' if failed == 1 else 's'} (medians), the "
            f"servers' own recycling options {their_kills} in "
            f"{sum(m['rounds'] for m in options)} runs and {sum(m['failed'] for m in options):g}; "
            f"{met} of {len(peers['targets'])} targets met (`benchmarks/bench_peers.py`, "
            "[the figures](docs/guides/service-leaks.md)).",
            "",
            HEADLINE_END,
        ]
    )


def _many_parts_lines(part: dict[str, Any]) -> list[str]:
    """Balance at many parts (the default sample grows with them), when measured."""
    many = part.get("balance_many_parts")
    if not many:
        return []
    rows = part["balance_sqlite_zipf"]["rows"]
    worst = max(m["worst"] for m in many.values())
    each = "; ".join(
        f"{n} parts: {', '.join(f'{r:.3f}' for r in m['largest_over_median'])}"
        for n, m in many.items()
    )
    return [
        f"- Many parts, the Zipf-skewed table ({rows:,} rows), the default sample (400 keys a "
        f"part), {len(next(iter(many.values()))['largest_over_median'])} cuttings each, "
        f"largest ÷ median: {each} (target ≤ 1.25 at each: {_met(worst <= 1.25)}).",
    ]


def render_partition() -> str:
    """Balance, auto batch sizes, per-worker memory and throughput (``bench_partition.py``)."""
    part = _load("partition")
    machine = part["machine"]
    parts = part["parts"]
    lines = [
        PARTITION_BEGIN,
        "",
        f"Measured by `benchmarks/bench_partition.py` (Python {machine['python']}, "
        f"{machine['cpus']} CPUs, one run; `benchmarks/results/partition.json`). Balance: "
        f"`key_ranges(parts={parts})`, then every range's rows counted exactly, against the "
        "uniform split of `[min, max]` (Spark JDBC, Dask `read_sql_table`).",
        "",
        "| table | rows | cut by | largest ÷ median | empty ranges | uniform split: largest ÷ "
        "median | uniform: empty ranges |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    labels = {
        "balance_sqlite_gapped": "SQLite, gapped keys",
        "balance_sqlite_zipf": "SQLite, Zipf-skewed keys",
        "balance_postgres": "PostgreSQL, gapped keys (analysed)",
    }
    worst = 0.0
    for key, label in labels.items():
        b = part[key]
        k, u = b["key_ranges"], b["uniform"]
        worst = max(worst, k["largest_over_median"])
        uniform = (
            "∞ (median 0)"
            if u["largest_over_median"] is None
            else (f"{u['largest_over_median']:.2f}")
        )
        lines.append(
            f"| {label} | {b['rows']:,} | {b['basis']} | {k['largest_over_median']:.3f} | "
            f"{k['empty']} | {uniform} | {u['empty']} of {u['ranges']} |"
        )
    auto = part["auto"]
    before, after = auto["after_5_pages"], auto["after_change_3_pages"]
    target = auto["target_s"]

    def within(x: dict[str, Any]) -> bool:
        return abs(x["p95_s"] - target) <= 0.2 * target and abs(x["min_s"] - target) <= (
            0.2 * target
        )

    small, large = part["peak_small"], part["peak_large"]
    # A worker's peak is its worst range: the first one in a fresh process (imports, engine).
    small_peak, large_peak = max(small["peak_rss_delta"]), max(large["peak_rss_delta"])
    peak_ok = abs(large_peak - small_peak) <= max(0.05 * small_peak, 2 * 2**20)
    tp = part["throughput"]
    one, two = tp["1"], tp["2"]
    ratio = tp["ratio_2_over_1"]
    range_s = statistics.median(s for r in one["runs"] for s in r["range_seconds"])
    rows_per_range = one["runs"][0]["rows"] / len(one["runs"][0]["range_seconds"])
    per_worker = rows_per_range / range_s
    lines += [
        "",
        f"- Balance: largest range ÷ median ≤ {worst:.3f} with 0 empty ranges in every table "
        f"(target ≤ 1.25 and 0 empty: {_met(worst <= 1.25)}).",
        *_many_parts_lines(part),
        f'- `batch_size="auto"` (target {target} s, default 64 MB cap; a loop hashing each '
        "row's document, whose rows become ten times as wide after 2M rows): after 5 pages, p95 "
        f"page time {before['p95_s']:.3f} s (range {before['min_s']:.3f}–{before['max_s']:.3f} "
        f"s over {before['pages']} pages); from the 3rd page after the change, p95 "
        f"{after['p95_s']:.3f} s (range {after['min_s']:.3f}–{after['max_s']:.3f} s over "
        f"{after['pages']} pages); back within ±20 % on page "
        f"{auto['pages_to_settle_after_change']} after the change (target: within ±20 % after 5 "
        f"pages and within 3 pages of a change: {_met(within(before) and within(after))}).",
        f"- Per-worker peak Δ RSS (kernel high-water mark per range, reset at its start; a "
        f"process pool of 2, {small['ranges']} ranges; a worker's worst range): "
        f"{_mib(small_peak)} over {small['rows']:,} rows, {_mib(large_peak)} over "
        f"{large['rows']:,} rows (target: equal within ±5 % or 2 MiB: {_met(peak_ok)}); per "
        f"range, in key order: {', '.join(_mib(p) for p in small['peak_rss_delta'])} and "
        f"{', '.join(_mib(p) for p in large['peak_rss_delta'])} (a worker's first range "
        "includes its imports and engine).",
        f"- Throughput on PostgreSQL ({one['runs'][0]['rows']:,} rows, `fn` hashing each row, "
        f"Dask `LocalCluster` of single-threaded worker processes, {len(one['runs'])} interleaved "
        f"runs): 1 worker {one['median_rows_per_s']:,.0f} rows/s, 2 workers "
        f"{two['median_rows_per_s']:,.0f} rows/s, {ratio:.2f}× (runs: "
        f"{', '.join(f'{r:.2f}' for r in tp['ratios'])}; target ≥ 1.4×: {_met(ratio >= 1.4)}). "
        "The 2 cores also run PostgreSQL, the scheduler and the coordinator.",
        f"- 16 workers, on paper: a range of {rows_per_range:,.0f} rows took {range_s:.2f} s "
        f"(median of the 1-worker runs), {per_worker:,.0f} rows/s per worker, database time "
        f"included. 16 workers with a core each would reach about {16 * per_worker:,.0f} "
        "rows/s if the database serves 16 such keyset reads at once at the same speed; it "
        "then reads that many rows per second by primary-key range, so size it for that (here "
        "one PostgreSQL on the same 2 cores kept up with 2 workers). Give at least a few "
        "ranges per worker so idle workers find whole ranges before stragglers are split.",
        "",
        PARTITION_END,
    ]
    return "\n".join(lines)


def _replace(text: str, begin: str, end: str, section: str) -> str:
    start, stop = text.index(begin), text.index(end) + len(end)
    return text[:start] + section + text[stop:]


#: The page of ``docs/`` that holds each section.
PAGES = {
    "numbers": "numbers.md",
    "batching": "guides/big-table.md",
    "guard": "guides/service-leaks.md",
    "backstop": "guides/service-leaks.md",
    "peers": "guides/service-leaks.md",
    "headline": "../README.md",
    "partition": "guides/more-machines.md",
}


def sections() -> list[tuple[str, str, str, Any]]:
    """Each section: (page under docs/, begin marker, end marker, its renderer)."""
    return [
        (PAGES["numbers"], BEGIN, END, render),
        (PAGES["batching"], BATCHING_BEGIN, BATCHING_END, render_batching),
        (PAGES["guard"], GUARD_BEGIN, GUARD_END, render_guard),
        (PAGES["backstop"], BACKSTOP_BEGIN, BACKSTOP_END, render_backstop),
        (PAGES["peers"], PEERS_BEGIN, PEERS_END, render_peers),
        (PAGES["headline"], HEADLINE_BEGIN, HEADLINE_END, render_headline),
        (PAGES["partition"], PARTITION_BEGIN, PARTITION_END, render_partition),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="replace the sections in docs/")
    args = parser.parse_args()
    if not args.write:
        print("\n\n".join(render_section() for _, _, _, render_section in sections()))
        return
    for page, begin, end, render_section in sections():
        path = ROOT / "docs" / page
        path.write_text(_replace(path.read_text(), begin, end, render_section()))
        print(f"updated {path}")


if __name__ == "__main__":
    main()
