"""``where=``: right lines and cost (issue: where the memory is).

Accuracy: on cases with known allocation lines (``tests/measure/where_targets.py``: one helper
called from two lines, a thread, memory freed before the peak, SQLite pages with
``where="native"``, the same as a command), the top site, the second site and no freed-early
line. Cost: the overhead benchmark's workload (1M small dicts kept, then freed) in fresh
interpreters (``bench_overhead.py``'s workload: 1M small dicts built, then freed), plain vs
``where=True`` vs ``where="native"`` vs a raw memray tracker with the same settings as each;
medians of per-round ratios over interleaved rounds; the time to stop the tracker and read the
capture is reported apart. Targets: ``where=True`` ≤ 1.25× plain, ``where="native"`` ≤ 1.1× memray
with the same settings. Writes ``benchmarks/results/where.json``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.measure import where_targets as wt  # noqa: E402

import membound as mb  # noqa: E402

ROUNDS = 9

WORKLOAD = textwrap.dedent(
    """
    import time, sys
    import membound as mb  # in every variant: its imports make the GC's full passes longer
    {setup}
    def work():  # bench_overhead.py's workload: small objects built, then freed
        items = [{{"id": i, "pair": (i, -i)}} for i in range(1_000_000)]
        count = len(items)
        del items
        return count
    t0 = time.perf_counter()
    {enter}
    work()
    {leave}
    t1 = time.perf_counter()
    {read}
    t2 = time.perf_counter()
    print(t1 - t0, t2 - t1)
    """
)

VARIANTS = {
    "plain": {"setup": "", "enter": "", "leave": "", "read": ""},
    "where=True": {
        "setup": "",
        "enter": "t = mb.track('w', where=True, interval=None); t.__enter__()",
        "leave": "",
        "read": "t.__exit__(None, None, None)",
    },
    "where='native'": {
        "setup": "",
        "enter": "t = mb.track('w', where='native', interval=None); t.__enter__()",
        "leave": "",
        "read": "t.__exit__(None, None, None)",
    },
    "memray, same settings as where=True": {
        "setup": "import memray, os, tempfile; d = tempfile.mkdtemp()",
        "enter": (
            "tr = memray.Tracker(os.path.join(d, 'c.bin'), "
            "file_format=memray.FileFormat.AGGREGATED_ALLOCATIONS); tr.__enter__()"
        ),
        "leave": "tr.__exit__(None, None, None)",
        "read": "",
    },
    "memray, same settings as where='native'": {
        "setup": "import memray, os, tempfile; d = tempfile.mkdtemp()",
        "enter": (
            "tr = memray.Tracker(os.path.join(d, 'c.bin'), native_traces=True, "
            "file_format=memray.FileFormat.AGGREGATED_ALLOCATIONS); tr.__enter__()"
        ),
        "leave": "tr.__exit__(None, None, None)",
        "read": "",
    },
}


def _time(variant: dict[str, str]) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp, "w.py")
        script.write_text(WORKLOAD.format(**variant))
        out = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, check=True
        ).stdout.split()
    return float(out[0]), float(out[1])


def cost() -> dict[str, object]:
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    reads: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(ROUNDS):
        for name, variant in VARIANTS.items():
            run, read = _time(variant)
            times[name].append(run)
            reads[name].append(read)
    ratios = {
        name: statistics.median(t / p for t, p in zip(times[name], times["plain"], strict=True))
        for name in VARIANTS
    }
    return {
        "rounds": ROUNDS,
        "median_s": {name: statistics.median(ts) for name, ts in times.items()},
        "ratio_to_plain": ratios,
        "where_vs_memray": statistics.median(
            a / b
            for a, b in zip(
                times["where=True"], times["memray, same settings as where=True"], strict=True
            )
        ),
        "native_vs_memray": statistics.median(
            a / b
            for a, b in zip(
                times["where='native'"],
                times["memray, same settings as where='native'"],
                strict=True,
            )
        ),
        "read_capture_s": {name: statistics.median(r) for name, r in reads.items()},
    }


def _loc(name: str) -> str:
    return f"{Path(wt.__file__).resolve()}:{wt.line_of(name)}"


def accuracy() -> dict[str, object]:
    cases: dict[str, bool] = {}
    coverage: list[float] = []
    m = mb.measure(wt.two_callers, where=True)
    named = [s for s in m.peak_sites if s.kind != "other"]
    coverage.append(sum(s.share for s in named))
    cases["two callers: top line and its caller"] = (named[0].location, named[0].caller) == (
        _loc("helper"),
        _loc("first_call"),
    )
    cases["two callers: second caller is a site"] = any(
        s.location == _loc("helper") and s.caller == _loc("second_call") for s in named
    )
    cases["thread's line is a site"] = any(s.location == _loc("thread") for s in named)
    cases["freed-early line is not"] = all(s.location != _loc("freed") for s in named)
    n = mb.measure(wt.sqlite_pages, where="native")
    nat = [s for s in n.peak_sites if s.kind == "native"]
    coverage.append(sum(s.share for s in n.peak_sites if s.kind != "other"))
    cases["sqlite: native site at the user's line"] = bool(nat) and nat[0].location == _loc(
        "sqlite"
    )
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp, "job.py")
        script.write_text(
            f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
            "from tests.measure import where_targets as wt\nwt.two_callers()\n"
        )
        c = mb.measure_command([sys.executable, str(script)], where=True, quiet=True)
    cn = [s for s in c.peak_sites if s.kind != "other"]
    coverage.append(sum(s.share for s in cn))
    cases["command: top line and its caller"] = (cn[0].location, cn[0].caller) == (
        _loc("helper"),
        _loc("first_call"),
    )
    return {"cases": cases, "right": sum(cases.values()), "of": len(cases), "coverage": coverage}


def main() -> None:
    started = time.time()
    result = {"accuracy": accuracy(), "cost": cost(), "seconds": round(time.time() - started)}
    out = ROOT / "benchmarks" / "results" / "where.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
