"""How a refusal of new work ends (``guard/watchdog/refusal.py``): one that began with the
backstop's refusal of one allocation also ends once the memory that filled the room is given
back; one that began with memory past ``hard`` only below ``recover``, and a refusal past
``hard`` that comes while the first kind is in force closes that way out."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from membound.guard.watchdog import refusal

MIB = 1 << 20
LIMIT = 320 * MIB  # a fall of 1/32 of it: 10 MiB


@pytest.fixture(autouse=True)
def _no_refusal_left() -> Iterator[None]:
    refusal.stop_refusing()
    yield
    refusal.stop_refusing()


def test_a_refusal_for_a_refused_allocation_ends_once_the_room_is_given_back() -> None:
    refusal.start_refusing(refused_allocation=True)
    assert not refusal.may_take_work(300 * MIB, LIMIT)
    assert not refusal.may_take_work(360 * MIB, LIMIT)  # another worker's temporary written
    assert not refusal.may_take_work(352 * MIB, LIMIT)  # 8 MiB below its highest: not yet
    assert refusal.may_take_work(349 * MIB, LIMIT)  # given back


def test_a_refusal_for_memory_past_hard_waits_for_recover() -> None:
    refusal.start_refusing()
    assert not refusal.may_take_work(360 * MIB, LIMIT)
    assert not refusal.may_take_work(200 * MIB, LIMIT)


def test_memory_past_hard_while_a_backstop_refusal_is_in_force_closes_the_way_out() -> None:
    refusal.start_refusing(refused_allocation=True)
    refusal.start_refusing()
    assert not refusal.may_take_work(360 * MIB, LIMIT)
    assert not refusal.may_take_work(200 * MIB, LIMIT)
    refusal.stop_refusing()
    refusal.start_refusing(refused_allocation=True)  # a new refusal: its own way out
    assert not refusal.may_take_work(360 * MIB, LIMIT)
    assert refusal.may_take_work(340 * MIB, LIMIT)
