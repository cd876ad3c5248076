"""At a limit stop, the line that was running is named (DESIGN §5 rule 9), read from outside the
frozen process by py-spy: also inside one long C call, where no capture can arrive, and without
``where``."""

from __future__ import annotations

import random
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import membound as mb
from membound.measure.children.stack_dump import MAX_FRAMES
from membound.measure.where.limit_stack import running_words, stack_tool
from membound.report.json import dumps, loads

OWN = str(Path(mb.__file__).parent)

#: One allocation far over the limit: the process is inside ``bytearray``'s C code (zeroing
#: 3 GB) from before the limit until it is stopped; no Python code runs in between.
ONE_C_CALL = """\
def load():
    return bytearray(3_000_000_000)

data = load()
"""


#: ``-- python job.py`` for ``membound run``.
RUN_JOB = ("--", sys.executable, "job.py")


def _stopped(
    tmp_path: Path, code: str, limit: str = "200 MB", argv: list[str] | None = None
) -> mb.Measurement:
    """``code`` written to ``job.py`` in ``tmp_path`` (the working directory) and run as a
    command (``argv``, default ``python job.py``) under ``limit``: it must be stopped there."""
    (tmp_path / "job.py").write_text(code)
    m = mb.measure_command(argv or [sys.executable, "job.py"], limit=limit)
    assert "limit" == m.outcome, m.outcome_detail
    return m


def test_py_spy_is_installed_with_the_all_extra() -> None:
    assert stack_tool() is not None, "py-spy comes with membound[all] (the stack extra)"


def test_a_command_stopped_inside_one_c_call_names_the_running_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    m = _stopped(tmp_path, ONE_C_CALL)
    assert m.limit_stack[:2] == (
        f"{tmp_path}/job.py:2 in load",
        f"{tmp_path}/job.py:4 in <module>",
    ), m.limit_stack_note
    assert (
        "stopped: running job.py:2 in load ← job.py:4 when it crossed (--where, or where=True"
        in (m.outcome_detail)
    )
    again = loads(dumps(m))
    assert isinstance(again, mb.Measurement)
    assert again.limit_stack == m.limit_stack


def test_the_cli_names_a_line_at_the_limit_with_where_too(tmp_path: Path) -> None:
    (tmp_path / "job.py").write_text(ONE_C_CALL)
    done = subprocess.run(
        [*(sys.executable, "-m", "membound", "run", "--limit", "200MB", "--where"), *RUN_JOB],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert 1 == done.returncode, done.stderr
    # Either the capture arrived (the lines that held it) or the running line is named: never
    # a stop without a line.
    last = done.stderr.strip().splitlines()[-1]
    assert "memory limit" in last, done.stderr
    assert "job.py:2 in load ← job.py:4" in last, done.stderr


def _deep(depth: int) -> int:
    if depth:
        return _deep(depth - 1)
    return len(bytearray(3_000_000_000))


def deep_allocation() -> int:
    """Allocates inside 100 nested calls of the user's own code."""
    return _deep(100)


def test_an_isolated_call_names_the_users_frames_only_and_keeps_a_bounded_stack() -> None:
    m = mb.measure(deep_allocation, isolate=True, limit="200 MB")
    assert "limit" == m.outcome, m.outcome_detail
    assert m.limit_stack, m.limit_stack_note
    assert m.limit_stack[0].startswith(f"{__file__}:")
    assert m.limit_stack[0].endswith(" in _deep")
    assert len(m.limit_stack) <= MAX_FRAMES
    assert not [f for f in m.limit_stack if f.startswith(OWN)]  # membound's own frames left out
    assert "stopped: running " in m.outcome_detail
    assert "test_limit_stack.py:" in m.outcome_detail
    assert " in _deep ← " in m.outcome_detail


def test_a_program_that_is_not_python_says_why_it_has_no_stack(tmp_path: Path) -> None:
    # dd reads into one 400 MB buffer: the limit stops it, and py-spy finds no Python in it.
    m = mb.measure_command(
        ["dd", "if=/dev/zero", "of=/dev/null", "bs=400M", "count=1"], limit="100 MB"
    )
    assert "limit" == m.outcome, m.outcome_detail
    assert () == m.limit_stack
    assert m.limit_stack_note.startswith("its stack could not be read: py-spy: "), (
        m.limit_stack_note
    )
    assert "running" not in m.outcome_detail
    # ... and no advice to ask for where, which a command that is not Python cannot have.
    assert m.outcome_detail.endswith("; stopped"), m.outcome_detail


def test_the_stack_is_read_from_the_largest_process_of_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A shell starts Python (and waits for it): the shell is the command, Python holds the memory.
    monkeypatch.chdir(tmp_path)
    m = _stopped(tmp_path, ONE_C_CALL, argv=["sh", "-c", f"{sys.executable} job.py; echo after"])
    assert m.limit_stack[0] == f"{tmp_path}/job.py:2 in load", m.limit_stack_note
    assert "in the largest of its 2 processes" == m.limit_stack_note
    assert (
        "stopped: running job.py:2 in load ← job.py:4 (in the largest of its 2 processes) "
        "when it crossed"
    ) in m.outcome_detail


def test_a_line_inside_a_library_names_the_users_line_and_the_library_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # random.randbytes is Python code of the standard library that fills 250 MB in one C call
    # (getrandbits: at most 2**31 bits).
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.py").write_text(
        "import random\n\ndef noise():\n    return random.randbytes(250_000_000)\n\nnoise()\n"
    )
    m = mb.measure_command([sys.executable, "job.py"], limit="100 MB")
    assert "limit" == m.outcome, m.outcome_detail
    assert m.limit_stack[0].startswith(random.__file__), m.limit_stack
    assert re.search(
        r"stopped: running job\.py:4 in noise ← job\.py:6, "
        r"inside random\.py:\d+ in (Random\.)?randbytes when it crossed",
        m.outcome_detail,
    ), m.outcome_detail


def test_library_frames_are_named_from_their_package_down() -> None:
    packages = sysconfig.get_paths()["purelib"]
    stack = (
        f"{packages}/numpy/_core/numeric.py:233 in ones",
        "/srv/app/job.py:4 in build",
        "/srv/app/job.py:7 in main",
        "/other/venv/lib/python3.12/site-packages/click/core.py:794 in invoke",
    )
    assert (
        "running /srv/app/job.py:4 in build ← /srv/app/job.py:7, "
        "inside numpy/_core/numeric.py:233 in ones (in the largest of its 2 processes)"
    ) == running_words(stack, "in the largest of its 2 processes")
    assert "running click/core.py:794 in invoke" == running_words(stack[3:])
    # Deep in a library, the call the user's line made is named, not the innermost frame.
    waiting = (
        f"{sysconfig.get_paths()['stdlib']}/threading.py:327 in Condition.wait",
        f"{packages}/pandas/io/parsers/readers.py:1104 in _read_csv_chunks",
        f"{packages}/pandas/io/parsers/readers.py:1866 in read_csv",
        "/srv/app/job.py:4 in read",
    )
    assert (
        "running /srv/app/job.py:4 in read, inside pandas/io/parsers/readers.py:1866 in read_csv"
        == running_words(waiting)
    )


#: A worker thread allocates 3 GB in one call (holding the GIL) while the main thread waits.
IN_A_THREAD = """\
from concurrent.futures import ThreadPoolExecutor

def work():
    return len(bytearray(3_000_000_000))

def run():
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(work).result()

run()
"""


def test_a_worker_thread_that_allocates_is_named_with_the_main_threads_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    m = _stopped(tmp_path, IN_A_THREAD)
    assert m.limit_stack[0] == f"{tmp_path}/job.py:4 in work", m.limit_stack
    assert re.fullmatch(r"in thread \S+; the main thread at job\.py:8", m.limit_stack_note), (
        m.limit_stack_note
    )
    assert "stopped: running job.py:4 in work (in thread " in m.outcome_detail
