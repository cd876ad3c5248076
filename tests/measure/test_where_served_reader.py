"""The captures of one interpreter are read by one reader process (``ServedReader``): started
once, it reads every capture after another, survives a capture it cannot read, is replaced
when it dies, and leaves no process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import membound as mb
from membound.measure import child_code
from tests.processes import kill_tagged, settle, tagged_env

pytest.importorskip("memray")

MIB = 2**20


def _reader() -> int:
    """The pid of this process's served reader (0 when none runs), checked to be one."""
    pid = int(child_code.load("where_capture").SERVED_READER.pid)
    if pid:
        assert b"where_reader.py\0--serve" in Path(f"/proc/{pid}/cmdline").read_bytes()
    return pid


def _block_with_sites() -> mb.Measurement:
    with mb.track("served", where=True) as t:
        block = bytearray(8 * MIB)
        del block
    assert t.result is not None
    return t.result


def test_one_reader_reads_every_capture_and_a_dead_one_is_replaced() -> None:
    first = _block_with_sites()
    assert first.peak_sites, first.where_note
    reader = _reader()
    assert reader
    second = _block_with_sites()
    assert second.peak_sites, second.where_note
    assert reader == _reader()  # the same process read the second capture
    os.kill(reader, signal.SIGKILL)
    third = _block_with_sites()
    assert third.peak_sites, third.where_note
    assert _reader() not in (0, reader)


def test_a_capture_it_cannot_read_is_said_and_the_next_is_read(tmp_path: Path) -> None:
    where_capture = child_code.load("where_capture")
    assert _block_with_sites().peak_sites
    reader = _reader()
    folder = tmp_path / "capture"
    folder.mkdir()
    (folder / "heap.bin").write_bytes(b"not a memray capture")
    ticket = {"folder": str(folder), "sites": 5, "native": False, "python_allocators": False}
    figures = where_capture.read_ticket({"ticket": ticket}, sys.executable)
    assert figures["where_note"].startswith("the capture could not be read: "), figures
    assert not folder.exists()  # removed, as a capture that was read is
    assert _block_with_sites().peak_sites
    assert reader == _reader()  # the reader that could not read it read the next


def test_the_reader_is_no_child_and_ends_with_the_process_that_started_it() -> None:
    script = textwrap.dedent(
        """
        import os, signal, sys
        import membound as mb
        with mb.track("x", where=True) as t:
            b = bytearray(2**22)
        assert t.result.peak_sites, t.result.where_note
        # No child of this process: a program that waits for all its children still ends.
        try:
            os.waitpid(-1, os.WNOHANG)
            print("a child")
        except ChildProcessError:
            print("no child")
        if sys.argv[1] == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    tag = os.urandom(8).hex()
    for how in ("exit", "kill"):
        done = subprocess.run(
            [sys.executable, "-c", script, how],
            env=tagged_env(tag),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == (0 if how == "exit" else -signal.SIGKILL), done.stderr
        assert done.stdout.strip() == "no child", how
        assert [] == settle(tag, timeout=10), how


def test_a_forked_child_that_outlives_the_process_does_not_keep_the_reader() -> None:
    script = textwrap.dedent(
        """
        import os, time
        import membound as mb
        with mb.track("x", where=True) as t:
            b = bytearray(2**22)
        assert t.result.peak_sites, t.result.where_note
        if os.fork() == 0:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)  # the test's run ends when its parent does
            time.sleep(20)
            os._exit(0)
        os.kill(os.getpid(), 9)  # no exit handler: the reader must see its input end
        """
    )
    tag = os.urandom(8).hex()
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=tagged_env(tag),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -9, done.stderr
    try:
        left = settle_except_sleepers(tag)
        assert [] == left
    finally:
        kill_tagged(tag)


def settle_except_sleepers(tag: str, timeout: float = 10.0) -> list[str]:
    """The tagged processes other than the forked sleeper (a copy of ``python -c``) left once
    the reader had ``timeout`` seconds to end."""
    deadline = time.monotonic() + timeout
    while True:
        left = [d for d in settle(tag, timeout=0.2) if "where_reader.py" in d]
        if not left or time.monotonic() > deadline:
            return left


def test_a_reader_left_over_its_memory_bound_ends_after_its_answer(tmp_path: Path) -> None:
    reader = child_code.load("where_reader")
    ticket = json.dumps({"folder": str(tmp_path / "none"), "sites": 5, "native": False})
    for bound, answers in ((0, 3), (1, 1)):  # no bound; a bound every process is over
        written: list[str] = []
        reader.serve([ticket + "\n"] * 3, written.append, bound)
        assert len(written) == answers, written
        assert all(json.loads(w).get("error") for w in written), written


def test_a_run_of_a_program_that_read_captures_finds_nothing_left_running(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(
        "import membound as mb\n"
        "with mb.track('x', where=True) as t:\n"
        "    b = bytearray(2**23)\n"
        "assert t.result.peak_sites, t.result.where_note\n"
    )
    out = tmp_path / "run.json"
    membound = [sys.executable, "-m", "membound"]
    done = subprocess.run(
        [*membound, "run", "--json", str(out), "--", sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "left running" not in out.read_text(), out.read_text()[:2000]


def test_where_no_reader_can_be_served_each_capture_is_read_by_one_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    where_capture = child_code.load("where_capture")
    # A bound the reader refuses as an argument: it ends at once with its usage line.
    monkeypatch.setattr(where_capture, "SERVED_READER_MAX_RSS", -1)
    monkeypatch.setattr(where_capture, "SERVED_READER", where_capture.ServedReader())
    for _ in range(2):
        assert _block_with_sites().peak_sites
        assert where_capture.SERVED_READER.pid == 0
