"""``import membound`` defers its parts and SQLAlchemy (``membound/_lazy.py``), a command imports
its own module only, and a measured call that reaches a deferred name first does not count its
import: real subprocesses, fresh interpreters."""

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


def test_an_isolated_call_imports_the_rest_of_membound_only_where_a_deferred_name_is_reachable(
    tmp_path: Path,
) -> None:
    # The target records which of membound's parts its fresh interpreter had loaded when it ran:
    # holding the package (``import membound``) needs them all loaded before the baseline; one
    # part imported by its module (``from membound.results import …``) does not, and leaves the
    # 0.2 s of CPU the rest costs.
    for name, imports in (("held", "import membound"), ("part", "from membound import results")):
        (tmp_path / f"{name}.py").write_text(
            f"import json, sys\n{imports}\n\n\ndef loaded(out):\n"
            "    with open(out, 'w') as f:\n"
            "        json.dump('membound.report.html' in sys.modules, f)\n"
        )
    found = _run(
        "import json, membound\n"
        "for name in ('held', 'part'):\n"
        "    membound.measure(f'{name}:loaded', f'{name}.json')\n"
        "print(json.dumps({n: json.load(open(f'{n}.json')) for n in ('held', 'part')}))\n",
        tmp_path,
    )
    assert {"held": True, "part": False} == found


def test_what_holds_a_package_is_read_whatever_sys_modules_holds(tmp_path: Path) -> None:
    # sys.modules may hold objects that are no modules and refuse attribute access: the check
    # before an isolated call's baseline must not fail on them (the call would never run).
    found = _run(
        "import json, sys, types\n"
        "class Refusing:\n"
        "    def __getattribute__(self, name):\n"
        "        raise RuntimeError('no attributes here')\n"
        "sys.modules['refusing'] = Refusing()\n"
        "from membound._lazy import held_outside\n"
        "alone = held_outside()\n"
        "import membound\n"
        "user = types.ModuleType('user'); user.mb = membound; sys.modules['user'] = user\n"
        "print(json.dumps([alone, held_outside()]))\n",
        tmp_path,
    )
    assert [False, True] == found


def test_every_package_whose_names_import_on_first_use_is_checked_before_a_measurement() -> None:
    # A package that defers names but is missing from LAZY_PACKAGES would let a call pay for an
    # import the preload exists to keep out of its figures.
    from membound._lazy import LAZY_PACKAGES

    src = Path(__file__).resolve().parents[2] / "src"
    deferring = sorted(
        ".".join(init.relative_to(src).parent.parts)
        for init in src.rglob("__init__.py")
        if "on_first_use(" in init.read_text()
    )
    assert sorted(LAZY_PACKAGES) == deferring


def test_the_names_deferred_behind_sqlalchemy_are_the_batching_packages_own() -> None:
    # membound/_lazy.py lists them without importing the package: the two lists must agree.
    import membound.bound.sql
    from membound._lazy import DEFERRED

    behind = {name for name, (_, dependency) in DEFERRED.items() if dependency == "sqlalchemy"}
    assert behind == set(membound.bound.sql.__all__)


def test_every_deferred_name_is_where_the_map_says() -> None:
    import importlib

    import membound
    from membound._lazy import DEFERRED

    for name, (home, _) in DEFERRED.items():
        module, _, attribute = home.partition(":")
        where = importlib.import_module(module)
        assert getattr(membound, name) is (getattr(where, attribute) if attribute else where)


def test_import_membound_imports_none_of_its_parts(tmp_path: Path) -> None:
    """Only the exceptions, size helpers and version: a process that imports one part of
    membound (a recycler, the pytest plugin, a command) pays for that part alone."""
    found = _run(
        "import json, sys, membound\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('membound.'))))\n",
        tmp_path,
    )
    assert [
        "membound._errors",
        "membound._lazy",
        "membound._startup",
        "membound._units",
        "membound._version",
        "membound.measure",
    ] == found


def test_membound_measure_is_the_function_whichever_import_comes_first(tmp_path: Path) -> None:
    # The subpackage of the same name is bound to ``membound.measure`` by the import system
    # the first time it is imported: that must not replace the function.
    found = _run(
        "import json, sys, membound, membound.measure.sizeof\n"
        "from membound.measure.track import track\n"
        "print(json.dumps([callable(membound.measure), membound.measure.__module__,\n"
        "                  'membound.measure.sizeof' in sys.modules]))\n",
        tmp_path,
    )
    assert [True, "membound.measure.isolate.function", True] == found


def test_a_command_imports_its_own_module_only(tmp_path: Path) -> None:
    found = _run(
        "import atexit, json, sys\n"
        "sys.argv = ['membound', 'run', '--help']\n"
        "from membound.cli.main import run\n"
        "atexit.register(lambda: print(json.dumps(sorted(m for m in sys.modules\n"
        "    if m.startswith(('membound.cli.commands.', 'membound.lint', 'membound.guard'))))))\n"
        "run()\n",
        tmp_path,
    )
    assert ["membound.cli.commands.run"] == found


def test_a_reload_keeps_the_function_and_a_part_is_reached_by_attribute(tmp_path: Path) -> None:
    found = _run(
        "import importlib, json, membound\n"
        "margin = membound.results.growth.MARGIN\n"  # a part no name imported yet
        "importlib.reload(membound)\n"
        "print(json.dumps([margin > 0, membound.measure.__module__,\n"
        "                  hasattr(membound, 'no_such_part')]))\n",
        tmp_path,
    )
    assert [True, "membound.measure.isolate.function", False] == found
