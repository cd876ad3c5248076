"""One set of rules for targets: what a fresh interpreter imports and what this process imports
are the same callable, named the same way, and fail with the same words."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import pytest

import membound as mb
from membound.measure.target import load_target, resolve_target
from tests.measure import targets

MIB = 2**20


def test_a_module_string_loads_the_same_function_here_and_in_a_child() -> None:
    func, name = load_target("tests.measure.targets:allocate_objects")
    assert targets.allocate_objects is func
    assert "tests.measure.targets:allocate_objects" == name
    ref = resolve_target("tests.measure.targets:allocate_objects")
    assert ("tests.measure.targets", "allocate_objects", None) == (
        ref.module,
        ref.qualname,
        ref.path,
    )


def test_a_partial_keeps_its_bound_arguments_both_ways() -> None:
    partial = functools.partial(targets.allocate, 2 * MIB, hold_s=0.0)
    func, name = load_target(partial)
    assert 2 * MIB == func()
    assert "allocate" == name
    ref = resolve_target(partial)
    assert ((2 * MIB,), (("hold_s", 0.0),)) == (ref.args, ref.kwargs)


def test_a_file_target_is_imported_here_and_in_a_child(tmp_path: Path) -> None:
    script = tmp_path / "job_file.py"
    script.write_text("def build(n=1000):\n    return len([str(i) for i in range(n)])\n")
    func, _ = load_target(f"{script}:build")
    assert 1000 == func()
    measured = mb.measure(f"{script}:build", 50_000)
    assert measured.ok


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_colon_here", "is not of the form 'package.module:function'"),
        ("pkg.mod:not an identifier", "is not of the form 'package.module:function'"),
        ("missing_file.py:f", "target file not found: missing_file.py"),
    ],
)
def test_malformed_strings_fail_with_the_same_words_both_ways(target: str, message: str) -> None:
    with pytest.raises(mb.TargetError, match=message):
        load_target(target)
    with pytest.raises(mb.TargetError, match=message):
        resolve_target(target)


def test_an_import_failure_names_the_target_here_and_in_a_child() -> None:
    target = "tests.measure.no_such_module:f"
    with pytest.raises(mb.TargetError, match=f"cannot import {target}: ModuleNotFoundError"):
        load_target(target)
    with pytest.raises(mb.TargetError, match=f"cannot import {target}: ModuleNotFoundError"):
        mb.measure(target)


def test_every_verdict_takes_every_kind_of_target(tmp_path: Path) -> None:
    """Strings work in this process too: measure, compare and complexity with isolate=False,
    and find_leaks, all load them through the same loader."""
    in_process = mb.measure("tests.measure.targets:allocate_objects", 10_000, isolate=False)
    assert "in-process" == in_process.kind
    c = mb.compare({"objects": "tests.judge.leak_targets:clean"}, repeat=1, isolate=False)
    assert "objects" == c.rows[0].name
    report = mb.find_leaks("tests.judge.leak_targets:clean", iterations=100, warmup=5)
    assert not report.leaking
    curve = mb.complexity(
        "tests.judge.scaling_targets:linear_list", sizes=(10**4, 10**5, 3 * 10**5), isolate=False
    )
    assert "tests.judge.scaling_targets:linear_list" == curve.label


def test_modules_in_the_working_folder_are_importable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cwd_only_module.py").write_text("def f():\n    return 7\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    func, _ = load_target("cwd_only_module:f")
    assert 7 == func()


def test_a_name_a_module_makes_when_asked_is_asked_for_once_here_and_in_a_child(
    tmp_path: Path,
) -> None:
    """A module's ``__getattr__`` (PEP 562) may do work for each name it is asked for: the
    target's walk asks once, in this process and in a fresh interpreter alike."""
    asked = tmp_path / "asked.txt"
    script = tmp_path / "lazy_jobs.py"
    script.write_text(
        "def __getattr__(name):\n"
        f"    with open({str(asked)!r}, 'a') as f:\n"
        "        f.write(name + '\\n')\n"
        "    if name == 'job':\n"
        "        return lambda: None\n"
        "    raise AttributeError(name)\n"
    )
    load_target(f"{script}:job")
    assert ["job"] == [n for n in asked.read_text().split() if n == "job"]
    asked.unlink()
    assert mb.measure(f"{script}:job").ok
    assert ["job"] == [n for n in asked.read_text().split() if n == "job"]
