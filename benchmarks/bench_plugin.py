"""What the pytest plugin costs on a real test suite: attrs' own tests, from its pinned sdist.

Variants, interleaved round by round (plain, then each variant), ``-n 0``, each in a fresh
``pytest`` process: plain pytest; the ini default limit (``membound_limit_memory``, kind
``rss``: every test measured by a VmHWM reset); ``--membound`` (every test measured, the top
ones printed). The ratio is the median of the per-round ratios to plain. Target: the rss default
at most 1.05× plain (a heap limit traces allocations with tracemalloc and is measured once for
information).

The sdist is fetched from PyPI by ``pip download`` into ``benchmarks/.cache`` (never committed)
and checked against its SHA-256.

    python benchmarks/bench_plugin.py            # 7 rounds, writes results/plugin.json
    python benchmarks/bench_plugin.py --rounds 3 --out /tmp/plugin.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from _common import median, write

PROJECT = "attrs"
VERSION = "25.4.0"
SHA256 = "16d5969b87f0859ef33a48b35d55ac1be6e42ae49d5e853b597db70c35c57e11"
CACHE = Path(__file__).resolve().parent / ".cache"
TARGET = 1.05

VARIANTS: dict[str, list[str]] = {
    "plain": [],
    "ini default limit (rss)": ["-o", "membound_limit_memory=10GB"],
    "--membound summary": ["--membound"],
}
HEAP_VARIANT = ["-o", "membound_limit_memory=10GB", "-o", "membound_limit_kind=heap"]


def suite() -> Path:
    """The unpacked sdist, fetched and checked once."""
    folder = CACHE / f"{PROJECT}-{VERSION}"
    if folder.is_dir():
        return folder
    CACHE.mkdir(parents=True, exist_ok=True)
    archive = CACHE / f"{PROJECT}-{VERSION}.tar.gz"
    if not archive.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary",
             ":all:", f"{PROJECT}=={VERSION}", "-d", str(CACHE)],
            check=True,
        )  # fmt: skip
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != SHA256:
        raise SystemExit(f"{archive}: SHA-256 {digest}, expected {SHA256}")
    with tarfile.open(archive) as tar:
        tar.extractall(CACHE, filter="data")
    return folder


def run(folder: Path, extra: list[str]) -> tuple[float, str]:
    """Wall time of one pytest run of the suite, and its closing line."""
    env = {**os.environ, "PYTHONPATH": str(folder / "src")}
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0"]
    argv += ["-p", "no:randomly", "tests", *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    lines = proc.stdout.strip().splitlines()
    return seconds, lines[-1] if lines else proc.stderr.strip()[-200:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    folder = suite()
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    closing: dict[str, str] = {}
    run(folder, [])  # warm the file cache and bytecode
    for _ in range(args.rounds):
        for name, extra in VARIANTS.items():
            seconds, closing[name] = run(folder, extra)
            times[name].append(seconds)
    heap_s, closing["heap limit (tracemalloc)"] = run(folder, HEAP_VARIANT)
    rows = {}
    for name, values in times.items():
        ratios = [v / p for v, p in zip(values, times["plain"], strict=True)]
        rows[name] = {
            "runs_s": values,
            "median_s": median(values),
            "median_ratio_vs_plain": median(ratios),
            "ratios": ratios,
            "closing_line": closing[name],
        }
    rss_ratio = rows["ini default limit (rss)"]["median_ratio_vs_plain"]
    data = {
        "suite": f"{PROJECT} {VERSION} sdist, its own tests (sha256 {SHA256[:12]}…)",
        "rounds": args.rounds,
        "variants": rows,
        "heap_limit_once": {
            "seconds": heap_s,
            "ratio_vs_plain_median": heap_s / median(times["plain"]),
            "closing_line": closing["heap limit (tracemalloc)"],
        },
        "target": {"rss default max ratio": TARGET, "met": rss_ratio <= TARGET},
    }
    if args.out is not None:
        args.out.write_text(json.dumps(data, indent=1) + "\n")
        print(f"wrote {args.out}")
    else:
        print(f"wrote {write('plugin', data)}")
    for name, row in rows.items():
        print(f"{name:28} {row['median_s']:7.2f} s  {row['median_ratio_vs_plain']:.3f}×")
    print(f"heap limit once: {heap_s:.2f} s; target rss ≤ {TARGET}×: {data['target']['met']}")


if __name__ == "__main__":
    main()
