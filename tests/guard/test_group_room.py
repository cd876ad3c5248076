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
