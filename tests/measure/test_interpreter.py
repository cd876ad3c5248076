"""The interpreter a traced command really runs (``measure/interpreter.py``): a wrapper or shim
in front of Python is resolved, so its helpers are not measured; membound lends its memray to
an interpreter of the same ABI that lacks it; and an interpreter that can load neither its own
nor membound's is named, with the command that installs it there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import membound as mb
from membound.measure.interpreter import lend_memray, probe
from tests.measure.interpreters import other_version_without_memray, wrapper

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="memray captures: Linux")


def test_a_wrapper_is_resolved_and_memray_lent_to_its_interpreter(tmp_path: Path) -> None:
    base = getattr(sys, "_base_executable", sys.executable)
    seen = probe(base)
    job = tmp_path / "job.py"
    out = tmp_path / "wrapped.txt"
    job.write_text(
        "import os, pathlib\n"
        "data = bytearray(b'x') * 50_000_000\n"
        f"pathlib.Path({str(out)!r}).write_text(os.environ.get('MB_WRAPPED', ''))\n"
    )
    m = mb.measure_command([str(wrapper(tmp_path, base)), str(job)], where=True)
    assert "ok" == m.outcome, m.outcome_detail
    assert "yes" == out.read_text()  # what the wrapper set reached the job
    assert 1 == m.timeline.extra["processes_seen"]  # the wrapper's helper was not measured
    assert m.where_source is not None
    assert m.where_source.startswith("memray"), (m.where_source, m.where_note)
    assert m.peak_sites[0].file.endswith("job.py"), m.peak_sites
    assert 2 == m.peak_sites[0].line
    if not seen.has_memray:  # memray is membound's, lent: nothing else of its environment
        assert lend_memray(seen)


def test_native_lines_need_memray_in_the_commands_interpreter(tmp_path: Path) -> None:
    other = other_version_without_memray()
    done = subprocess.run(
        [sys.executable, "-m", "membound", "run", "--where=native", "--", other, "-c", "pass"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert 2 == done.returncode, done.stderr
    first = done.stderr.splitlines()[0]
    assert "memray is not installed for the command's interpreter" in first, done.stderr
    assert f"{other} -m pip install memray" in first, done.stderr
    assert "" == done.stdout  # nothing half-printed


def test_python_lines_without_memray_say_which_interpreter_lacks_it(tmp_path: Path) -> None:
    other = other_version_without_memray()
    job = tmp_path / "job.py"
    job.write_text("data = bytearray(b'x') * 30_000_000\n")
    m = mb.measure_command([other, str(job)], where=True)
    assert "ok" == m.outcome, m.outcome_detail
    assert m.where_source is not None
    assert m.where_source.startswith("tracemalloc"), m.where_source
    assert other in m.where_note, m.where_note
    assert "-m pip install memray" in m.where_note, m.where_note
    assert m.peak_sites[0].file.endswith("job.py"), m.peak_sites


def test_a_first_word_that_is_not_python_is_one_line(tmp_path: Path) -> None:
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\necho not python\n")
    fake.chmod(0o755)
    done = subprocess.run(
        [sys.executable, "-m", "membound", "run", "--where", "--", str(fake), "job.py"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert 2 == done.returncode, done.stderr
    assert "did not answer as a Python interpreter" in done.stderr.splitlines()[0]
    assert "Traceback" not in done.stderr


def test_a_relative_interpreter_path_is_found(tmp_path: Path) -> None:
    """``membound run --where -- .venv/bin/python job.py``, as the guides write it."""
    venv_python = Path(sys.executable)
    job = tmp_path / "job.py"
    job.write_text("data = bytearray(b'x') * 20_000_000\n")
    relative = os.path.relpath(venv_python, Path.cwd())
    m = mb.measure_command([relative, str(job)], where=True)
    assert "ok" == m.outcome, m.outcome_detail
    assert m.peak_sites[0].file.endswith("job.py"), m.peak_sites
