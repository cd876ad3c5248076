"""``import membound`` defers SQLAlchemy (``membound/_lazy.py``), and a measured call that
reaches a deferred name first does not count its import: real subprocesses, fresh interpreters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

MIB = 1 << 20


def _run(code: str, cwd: Path) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )
    assert 0 == proc.returncode, proc.stderr
    loaded: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return loaded


def test_import_membound_leaves_sqlalchemy_for_first_use(tmp_path: Path) -> None:
    found = _run(
        "import json, sys, membound\n"
        "before = 'sqlalchemy' in sys.modules\n"
        "listed = 'find_each' in dir(membound)\n"
        "name = membound.find_each.__name__\n"
        "try:\n"
        "    membound.no_such_name\n"
        "    missing = ''\n"
        "except AttributeError as exc:\n"
        "    missing = str(exc)\n"
        "print(json.dumps({'before': before, 'after': 'sqlalchemy' in sys.modules,\n"
        "                  'listed': listed, 'name': name, 'missing': missing}))\n",
        tmp_path,
    )
    assert found == {
        "before": False,
        "after": True,
        "listed": True,
        "name": "find_each",
        "missing": "module 'membound' has no attribute 'no_such_name'",
    }


def test_a_measured_call_does_not_pay_for_a_deferred_import(tmp_path: Path) -> None:
    # The process has SQLAlchemy (it would, to use find_each) but has not touched a deferred
    # name: the measured call is the first to reach membound.find_each.
    (tmp_path / "job.py").write_text(
        "import sqlalchemy\nimport membound as mb\n\n\ndef first_use():\n    return mb.find_each\n"
    )
    found = _run(
        "import json, job, membound as mb\n"
        "inside = mb.measure(job.first_use, isolate=False, heap=True)\n"
        "isolated = mb.measure('job:first_use', heap=True)\n"
        "print(json.dumps({'inside': inside.heap_peak, 'isolated': isolated.heap_peak}))\n",
        tmp_path,
    )
    # Importing membound.bound.sql allocates several MiB of heap; the name lookup, nothing.
    assert 0 <= found["inside"] < MIB  # type: ignore[operator]
    assert 0 <= found["isolated"] < MIB  # type: ignore[operator]


def test_the_deferred_names_are_the_batching_packages_own() -> None:
    # membound/_lazy.py lists them without importing the package: the two lists must agree.
    import membound.bound.sql
    from membound._lazy import DEFERRED

    assert set(DEFERRED) == set(membound.bound.sql.__all__)
