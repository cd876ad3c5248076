"""``membound/_proc.py``: the one reader of a process's ``/proc`` files, on live, ended and
vanished processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from membound import _proc


def _gone_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture
def zombie() -> Iterator[int]:
    """A child that has exited and is not reaped yet."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 20
    while _proc.process_state(child.pid) != b"Z":
        assert time.monotonic() < deadline, "the child never became a zombie"
        time.sleep(0.01)
    yield child.pid
    child.wait()


def test_status_fields_are_bytes() -> None:
    fields = _proc.status_fields()
    assert fields is not None
    assert psutil.Process().memory_info().rss // 2 < fields["VmRSS"]
    assert 0 == fields["VmRSS"] % 1024


def test_status_fields_through_a_reader() -> None:
    read: list[str] = []

    def reader(path: str) -> str | None:
        read.append(path)
        return "Name:\tx\nVmRSS:\t    12 kB\nThreads:\t3\nVmHWM:\t 20 kB\n"

    assert {"VmRSS": 12 * 1024, "VmHWM": 20 * 1024} == _proc.status_fields(7, reader)
    assert ["/proc/7/status"] == read


def test_a_vanished_process_reads_nothing() -> None:
    pid = _gone_pid()
    assert _proc.status_fields(pid) is None
    assert _proc.process_state(pid) is None
    assert not _proc.running(pid)
    assert _proc.started_at(pid) is None
    assert not _proc.pid_exists(pid)
    assert b"" == _proc.cmdline(pid)
    with pytest.raises(FileNotFoundError):
        _proc.check_status(pid)


def test_a_zombie_is_there_but_does_not_run(zombie: int) -> None:
    assert _proc.pid_exists(zombie)
    assert not _proc.running(zombie)
    assert _proc.started_at(zombie) is None
    assert b"" == _proc.cmdline(zombie)


def test_a_running_process() -> None:
    me = os.getpid()
    assert _proc.running(me)
    assert _proc.pid_exists(me)
    _proc.check_status(me)
    started = _proc.started_at(me)
    assert started is not None
    assert abs(psutil.Process().create_time() - started) < 1.5
    assert os.fsencode(sys.executable) == _proc.cmdline("self").split(b"\0")[0]


def test_a_command_name_with_parentheses_and_spaces() -> None:
    """The state follows the last ``)``: a name may hold ``) Z (`` itself."""
    code = (
        "import ctypes, sys, time\n"
        "ctypes.CDLL(None).prctl(15, b'x) Z (y', 0, 0, 0)\n"  # PR_SET_NAME
        "print(flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None
        child.stdout.readline()
        with open(f"/proc/{child.pid}/comm", "rb") as f:
            assert b"x) Z (y\n" == f.read()
        assert _proc.process_state(child.pid) in (b"R", b"S")
        assert _proc.running(child.pid)
    finally:
        child.kill()
        child.wait()


def test_forked_not_executed_tells_a_copy_from_a_program() -> None:
    copy = os.fork()
    if copy == 0:
        time.sleep(30)
        os._exit(0)
    program = subprocess.Popen(["sleep", "30"])
    try:
        deadline = time.monotonic() + 30
        # the program's child runs until it execs: wait for the exec
        while _proc.forked_not_executed(program.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _proc.forked_not_executed(copy) is True
        assert _proc.forked_not_executed(program.pid) is False
        assert _proc.forked_not_executed(os.getpid()) is False
    finally:
        os.kill(copy, 9)
        os.waitpid(copy, 0)
        program.kill()
        program.wait()
    assert _proc.forked_not_executed(copy) is None  # gone
