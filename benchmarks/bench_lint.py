"""Benchmark ``membound lint`` against ruff and pylint on a large real tree (Django + SQLAlchemy).

Run by ``make bench`` (``.venv/bin/python benchmarks/bench_lint.py``). The first run installs the
sources to lint and pylint into ``benchmarks/.cache/`` with pip ``--target``: they are inputs of
the benchmark, never dependencies of membound. ruff is the one from the dev extra.

What is timed (wall clock, each tool as a subprocess, one after the other, same machine):

* the whole tree (every ``*.py`` under ``django/`` and ``sqlalchemy/``, the same file list for
  every tool): membound with 1 and 2 processes, ruff with its default rules, on 1 thread and on
  its default thread pool;
* a fixed subset, ``django/db/models``, for pylint too: pylint over 400k lines takes many minutes
  here, so the pylint comparison is lines/s on that subset, with membound and ruff timed on the
  same subset in the same run.

Not timed: precision on real application code, from the suite in ``tests/lint/realworld/``
(pinned sdists of four applications, every finding labelled by hand; ``test_precision.py`` holds
the same targets in ``make test``). The table README quotes is printed here.

Writes ``benchmarks/results/lint.json`` and prints a summary.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _common import pip_target

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
TREE = CACHE / "lint-tree"
PYLINT_DIR = CACHE / "pylint"
RESULTS = HERE / "results" / "lint.json"

# Pinned so that numbers from different runs lint the same code.
TREE_PACKAGES = ("django==5.2.19", "sqlalchemy==2.1.9")
PYLINT_PACKAGE = "pylint==4.1.4"
TREE_DIRS = ("django", "sqlalchemy")
SUBSET = "django/db/models"
REPEAT = 5
#: ``ast.parse`` of every file named, nothing else: the floor any AST-based linter stands on.
PARSE_ONLY = (
    "import ast, sys, warnings\n"
    "warnings.simplefilter('ignore')\n"
    "for name in sys.argv[1:]:\n"
    "    with open(name, 'rb') as f:\n"
    "        data = f.read()\n"
    "    try:\n"
    "        ast.parse(data, name)\n"
    "    except SyntaxError:\n"
    "        pass\n"
)


def ensure_inputs() -> None:
    """Install the tree to lint and pylint into the cache, once."""
    if not all((TREE / d).is_dir() for d in TREE_DIRS):
        pip_target(TREE, *TREE_PACKAGES)
    if not (PYLINT_DIR / "pylint").is_dir():
        # pylint's own dependencies are needed to run it, so no --no-deps here.
        print(f"installing {PYLINT_PACKAGE} into {PYLINT_DIR.relative_to(HERE.parent)}")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--target",
                str(PYLINT_DIR),
                PYLINT_PACKAGE,
            ],
            check=True,
        )


def python_files(*roots: str) -> list[str]:
    """The files membound's discovery finds, relative to the tree (the same list for all)."""
    sys.path.insert(0, str(HERE.parent / "src"))
    from membound.lint.engine import discover

    cwd = os.getcwd()
    os.chdir(TREE)
    try:
        return list(discover(list(roots)))
    finally:
        os.chdir(cwd)


def count_lines(files: list[str]) -> int:
    """Physical lines, as ``wc -l`` counts them."""
    return sum((TREE / f).read_bytes().count(b"\n") for f in files)


def timed(
    argv: list[str], env: dict[str, str] | None = None, cwd: Path = TREE
) -> tuple[float, float, str]:
    """Run a command in the tree; return wall seconds, CPU seconds (user + system) and stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        argv,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode not in (0, 1) and "pylint" not in argv:
        raise SystemExit(f"{argv[:4]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall, cpu, proc.stdout


Command = tuple[list[str], dict[str, str] | None]


def measure(commands: dict[str, Command], lines: int, repeat: int) -> dict[str, dict[str, object]]:
    """Time each command ``repeat`` times, round-robin, and report medians.

    Round-robin (A, B, C, A, B, C, ...) rather than A, A, A, B, B, B: the machine is shared, and
    interleaving spreads any outside load over every tool alike. CPU time is reported next to
    wall time because it is much less sensitive to that load.
    """
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, (argv, env) in commands.items():
            wall, cpu, _ = timed(argv, env)
            walls[name].append(round(wall, 3))
            cpus[name].append(round(cpu, 3))
    table: dict[str, dict[str, object]] = {}
    for name in commands:
        wall = statistics.median(walls[name])
        cpu = statistics.median(cpus[name])
        table[name] = {
            "wall_s_median": wall,
            "cpu_s_median": cpu,
            "wall_runs": walls[name],
            "lines_per_s": round(lines / wall),
            "lines_per_cpu_s": round(lines / cpu),
        }
        print(
            f"  {name:<24} {wall:7.2f} s wall {lines / wall:>10,.0f} lines/s   "
            f"{cpu:7.2f} s CPU {lines / cpu:>10,.0f} lines/CPU-s"
        )
    return table


def version(argv: list[str], env: dict[str, str] | None = None) -> str:
    out = subprocess.run(
        argv, capture_output=True, text=True, check=False, env={**os.environ, **(env or {})}
    )
    return (out.stdout or out.stderr).strip().splitlines()[0]


def _precision(suite: Any, report: Any, chosen: list[Any]) -> dict[str, object]:
    """The precision figures of ``report`` over the applications ``chosen``, for the JSON."""
    return {
        "apps": [
            {"name": a.name, "version": a.version, "kind": a.kind, "held_out": a.held_out}
            for a in chosen
        ],
        "lines": {
            a.name: sum(p.read_bytes().count(b"\n") for p in suite.fetch(a).rglob("*.py"))
            for a in chosen
        },
        "per_rule": {
            code: {
                "findings": sc.total,
                "true": sc.true,
                "false": sc.false,
                "unlabelled": sc.unlabelled,
                "precision": round(sc.precision, 3),
            }
            for code, sc in sorted(report.by_rule.items())
        },
        "per_app": {
            name: {"findings": sc.total, "true": sc.true, "precision": round(sc.precision, 3)}
            for name, sc in report.by_app.items()
        },
        "overall": {
            "findings": report.overall.total,
            "true": report.overall.true,
            "precision": round(report.overall.precision, 3),
        },
        "held_out": {
            "findings": report.held_out.total,
            "true": report.held_out.true,
            "precision": round(report.held_out.precision, 3),
        },
        "labelled_true_not_reported": len(report.missed_true),
        "targets_missed": report.failures(),
    }


def main() -> int:
    """Run the benchmark and write ``benchmarks/results/lint.json``."""
    ensure_inputs()
    bin_dir = Path(sys.executable).parent
    ruff = str(bin_dir / "ruff")
    membound = [sys.executable, "-m", "membound", "lint", "--isolated", "--exit-zero"]
    ruff_cmd = [ruff, "check", "--no-cache", "--isolated", "--exit-zero", "--quiet"]
    pylint_env = {"PYTHONPATH": str(PYLINT_DIR)}
    pylint_cmd = [sys.executable, "-m", "pylint", "--jobs=1", "--exit-zero", "--persistent=n"]

    files = python_files(*TREE_DIRS)
    subset = [f for f in files if f.startswith(SUBSET + "/")]
    lines, subset_lines = count_lines(files), count_lines(subset)
    print(f"tree: {len(files)} files, {lines:,} lines; subset {SUBSET}: {subset_lines:,} lines")

    # Findings per rule (one untimed run, JSON output).
    _, _, out = timed([*membound, "--format", "json", *files])
    findings = json.loads(out)
    per_rule = dict(sorted(Counter(f["code"] for f in findings).items()))

    load_before = os.getloadavg()
    print("whole tree:")
    whole = measure(
        {
            # The anchor: CPython's own parser alone, reading the same files, same interpreter.
            "ast_parse_1_process": ([sys.executable, "-c", PARSE_ONLY, *files], None),
            "membound_1_process": ([*membound, *files], None),
            "membound_2_processes": ([*membound, "-j", "2", *files], None),
            "ruff_1_thread": ([*ruff_cmd, *files], {"RAYON_NUM_THREADS": "1"}),
            "ruff_default_threads": ([*ruff_cmd, *files], None),
        },
        lines,
        REPEAT,
    )
    print(f"subset {SUBSET}:")
    part = measure(
        {
            "membound_1_process": ([*membound, *subset], None),
            "ruff_1_thread": ([*ruff_cmd, *subset], {"RAYON_NUM_THREADS": "1"}),
        },
        subset_lines,
        REPEAT,
    )
    part |= measure({"pylint_1_process": ([*pylint_cmd, *subset], pylint_env)}, subset_lines, 1)
    load_after = os.getloadavg()

    # Precision on real application code: the labelled suite of tests/lint/realworld.
    sys.path.insert(0, str(HERE.parent))
    from tests.lint.realworld import suite

    report = suite.evaluate()
    app = _precision(suite, report, suite.apps())
    unseen = suite.apps("unseen")
    unseen_report = suite.evaluate(unseen)
    app_unseen = _precision(suite, unseen_report, unseen)
    print("precision on real applications (tests/lint/realworld):")
    print(suite.table(report))
    print(f"held out: {app['held_out']}; labelled true, not reported: {len(report.missed_true)}")
    print("precision on the applications of tests/lint/realworld/unseen:")
    print(suite.table(unseen_report))
    print(f"held out: {app_unseen['held_out']}; per app: {app_unseen['per_app']}")

    def speed(table: dict[str, dict[str, object]], key: str, field: str = "lines_per_s") -> float:
        value = table[key][field]
        assert isinstance(value, int)
        return value

    ratios = {
        "membound_vs_pylint_subset_1_process": round(
            speed(part, "membound_1_process") / speed(part, "pylint_1_process"), 1
        ),
        "ruff_vs_membound_tree_1_each": round(
            speed(whole, "ruff_1_thread") / speed(whole, "membound_1_process"), 1
        ),
        "ruff_vs_membound_tree_default_vs_2_processes": round(
            speed(whole, "ruff_default_threads") / speed(whole, "membound_2_processes"), 1
        ),
        "membound_vs_pylint_subset_cpu": round(
            speed(part, "membound_1_process", "lines_per_cpu_s")
            / speed(part, "pylint_1_process", "lines_per_cpu_s"),
            1,
        ),
        "ruff_vs_membound_tree_cpu": round(
            speed(whole, "ruff_1_thread", "lines_per_cpu_s")
            / speed(whole, "membound_1_process", "lines_per_cpu_s"),
            1,
        ),
        "membound_vs_ast_parse_tree_1_process": round(
            speed(whole, "membound_1_process") / speed(whole, "ast_parse_1_process"), 2
        ),
    }
    target = {
        "what": "membound lint, 1 process, whole tree: >= 100,000 lines/s (issue 25)",
        "measured_lines_per_s": speed(whole, "membound_1_process"),
        "ast_parse_lines_per_s": speed(whole, "ast_parse_1_process"),
        "met": speed(whole, "membound_1_process") >= 100_000,
    }
    print(f"target: {target}")
    result = {
        "what": "lines/s of membound lint, ruff and pylint on the same files, same run",
        "command": "make bench  (or .venv/bin/python benchmarks/bench_lint.py)",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
            "note": "2 cores shared with other work; see CPU-time figures next to wall time",
        },
        "tree": {
            "packages": list(TREE_PACKAGES),
            "dirs": list(TREE_DIRS),
            "files": len(files),
            "lines": lines,
        },
        "subset": {"dir": SUBSET, "files": len(subset), "lines": subset_lines},
        "versions": {
            "ruff": version([ruff, "--version"]),
            "pylint": version([sys.executable, "-m", "pylint", "--version"], pylint_env),
        },
        "rules_run": {
            "membound": "all MB rules",
            "ruff": "ruff defaults (E4, E7, E9, F)",
            "pylint": "pylint defaults",
        },
        "whole_tree": whole,
        "subset_timings": part,
        "ratios": ratios,
        "speed_target": target,
        "findings_total": len(findings),
        "findings_per_rule": per_rule,
        "realworld_precision": app,
        "unseen_precision": app_unseen,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"findings: {len(findings)} {per_rule}")
    print(f"ratios: {ratios}")
    print(f"wrote {RESULTS.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
