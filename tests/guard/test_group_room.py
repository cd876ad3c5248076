"""What a process has mapped lately and not yet written (``guard/watchdog/group_room.py``):
followed from reading to reading, so that memory given back with ``MADV_DONTNEED`` is not
taken for memory about to be written, and what stays untouched settles."""

from __future__ import annotations

from membound.guard.watchdog.group_room import SETTLE_S, Unsettled

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
