"""What a process has mapped lately and not yet written (``guard/watchdog/group_room.py``):
followed from reading to reading, so that memory given back with ``MADV_DONTNEED`` is not
taken for memory about to be written, and what stays untouched settles; the group's other
processes read from outside, a process new in the group included."""

from __future__ import annotations

import os
import subprocess
import sys

from membound.guard.watchdog.group_room import SETTLE_S, GroupRoom, Unsettled
from membound.guard.watchdog.pace import FAST_S, Pace
from membound.measure.cgroup.memory import MemoryGroup
from tests.guard.cgroup_helpers import MemoryCgroup, memory_cgroup

MIB = 1 << 20


def test_a_block_mapped_counts_until_it_is_written() -> None:
    seen = Unsettled()
    assert 0 == seen.add(100 * MIB, 40 * MIB, now=10.0)  # the first reading: a baseline
    assert 150 * MIB == seen.add(250 * MIB, 40 * MIB, now=10.01)  # 150 MiB mapped
    assert 100 * MIB == seen.add(250 * MIB, 90 * MIB, now=10.02)  # 50 MiB of it written
    assert 0 == seen.add(250 * MIB, 190 * MIB, now=10.03)  # all of it written


def test_memory_given_back_and_still_mapped_is_not_about_to_be_written() -> None:
    seen = Unsettled()
    seen.add(100 * MIB, 40 * MIB, now=10.0)
    seen.add(250 * MIB, 40 * MIB, now=10.01)
    seen.add(250 * MIB, 190 * MIB, now=10.05)  # written
    # freed with MADV_DONTNEED: still mapped, untouched again, given back to the kernel
    assert 0 == seen.add(250 * MIB, 40 * MIB, now=10.1)


def test_unmapped_memory_and_memory_untouched_for_long_settle() -> None:
    seen = Unsettled()
    seen.add(100 * MIB, 40 * MIB, now=10.0)
    assert 64 * MIB == seen.add(164 * MIB, 40 * MIB, now=10.01)
    assert 0 == seen.add(100 * MIB, 40 * MIB, now=10.02)  # unmapped unwritten
    assert 64 * MIB == seen.add(164 * MIB, 40 * MIB, now=10.03)
    assert 0 == seen.add(164 * MIB, 40 * MIB, now=10.03 + SETTLE_S + 0.1)  # settled


def test_a_threads_stack_is_settled_at_once() -> None:
    seen = Unsettled()
    seen.add(100 * MIB, 40 * MIB, now=10.0)
    seen.settled(8 * MIB)  # a thread started: 8 MiB of stack mapped, to stay untouched
    assert 0 == seen.add(108 * MIB, 40 * MIB, now=10.01)


def test_a_process_new_in_the_group_counts_what_it_mapped_before_its_first_reading() -> None:
    """A fresh worker maps its first temporary before anyone has read it: at its first reading
    that block is about to be written, not a baseline (a process found at the very first
    reading is taken as it is)."""
    with memory_cgroup(1 << 30) as group:
        room = GroupRoom(MemoryGroup(group.version, group.path, os.path.dirname(group.path)))
        old = _started(group, 0)
        try:
            assert 0 == room.others()  # the first reading: a baseline
            assert 1 == room.members
            fresh = _started(group, 96)
            try:
                assert 96 * MIB <= room.others() < 140 * MIB
                assert 2 == room.members
            finally:
                fresh.kill()
                fresh.wait()
        finally:
            old.kill()
            old.wait()


_OPENED: list[str] = []
_COUNTING: list[bool] = []


def _count_opens(event: str, args: tuple[object, ...]) -> None:
    if _COUNTING and event == "open":
        _OPENED.append(str(args[0]))


def test_readings_open_no_file_once_the_group_is_known() -> None:
    """A watchdog in a shared group reads every 10 ms: after the first reading, each one reads
    every other process's sizes through a descriptor kept open (it opened, read and closed one
    file per process each time: most of its cost in a busy worker)."""
    sys.addaudithook(_count_opens)  # stays for this process; counts only while asked
    with memory_cgroup(1 << 30) as group:
        room = GroupRoom(MemoryGroup(group.version, group.path, os.path.dirname(group.path)))
        members = [_started(group, 0) for _ in range(3)]
        try:
            room.others()
            _COUNTING.append(True)
            try:
                for _ in range(20):
                    room.others()
            finally:
                _COUNTING.clear()
            assert 3 == room.members
            assert [] == [p for p in _OPENED if "statm" in p]
        finally:
            for process in members:
                process.kill()
                process.wait()
            room.close()
            _OPENED.clear()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_process_that_leaves_is_forgotten_and_one_that_comes_is_read() -> None:
    """Nothing grows with the processes that came and went: a process gone is forgotten and
    its descriptor closed, and a process that comes later (which may be given a pid that was
    used before) is read as the new process it is."""
    with memory_cgroup(1 << 30) as group:
        room = GroupRoom(MemoryGroup(group.version, group.path, os.path.dirname(group.path)))
        stays = _started(group, 0)
        try:
            room.others()
            before = _open_fds()
            for _ in range(4):
                passing = _started(group, 0)
                room.others()
                assert 2 == room.members
                passing.kill()
                passing.wait()
                assert passing.stdout is not None
                passing.stdout.close()  # the test's own descriptor
                room.others()
                assert 1 == room.members
            assert _open_fds() <= before
            fresh = _started(group, 96)
            try:
                assert 96 * MIB <= room.others() < 140 * MIB  # new: about to be written
            finally:
                fresh.kill()
                fresh.wait()
        finally:
            stays.kill()
            stays.wait()
            room.close()


def _started(group: MemoryCgroup, mib: int) -> subprocess.Popen[str]:
    """A process in ``group`` that maps ``mib`` MiB, writes none of it, and waits."""
    code = (
        "import mmap, sys, time\n"
        f"block = mmap.mmap(-1, {mib} << 20 or 4096, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)\n"
        "print('mapped', flush=True)\n"
        "time.sleep(60)\n"
    )
    process = subprocess.Popen(
        group.enter_argv([sys.executable, "-c", code]), stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert "mapped" == process.stdout.readline().strip()
    return process


def test_a_watchdog_reads_often_while_others_share_the_limit() -> None:
    pace = Pace(near_bytes=100 * MIB, interval=0.1, switch_interval=None)
    assert 0.1 == pace.pause(150 * MIB)  # steady, alone
    assert FAST_S == pace.pause(150 * MIB, crowded=True)
    assert FAST_S == pace.pause(50 * MIB, crowded=True)  # far from the thresholds too


def test_a_room_closed_and_read_again_takes_the_processes_as_they_are() -> None:
    """A backstop disarmed and armed again starts afresh: what the others mapped before is
    not taken for memory about to be written (only processes that come later are)."""
    with memory_cgroup(1 << 30) as group:
        room = GroupRoom(MemoryGroup(group.version, group.path, os.path.dirname(group.path)))
        mapped = _started(group, 96)
        try:
            assert 0 == room.others()  # the first reading: a baseline
            room.close()
            assert 0 == room.others()  # afresh, not "new since the last reading"
        finally:
            mapped.kill()
            mapped.wait()
            room.close()
