"""Turns at a group's room (``guard/watchdog/turns.py``) in real memory cgroups: guarded
processes that map big blocks at the same moment are not both let through to the OOM killer;
the one refused under its share runs again once the others gave way, without a hard action; a
process alone in its group keeps the whole room; the board is bounded and its slots freed."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from membound._errors import SizeError
from membound.guard.watchdog import backstop as backstop_module
from membound.guard.watchdog.core import Watchdog
from membound.guard.watchdog.turns import MOST_SLOTS, STALE_S, RoomTurns, board_path
from tests.guard.cgroup_helpers import memory_cgroup

APPS = Path(__file__).parent / "apps"
MIB = 1 << 20
#: A slot of the board, as ``turns.py`` documents it.
SLOT = struct.Struct("=qqqqq")
pytestmark = [
    pytest.mark.skipif(not backstop_module.AVAILABLE, reason="Linux ≥ 4.7 only"),
    pytest.mark.xdist_group("memory-pressure"),
]


def test_two_processes_mapping_at_once_take_turns_instead_of_an_oom_kill() -> None:
    """Two guarded processes of one 400 MiB group each ask, at the same moment, for 60 % of
    the room the kernel has left: each fits alone, not together. Before turns both caps granted
    the whole room and the kernel killed one; now each is refused under its half, they take
    turns, both runs succeed, and neither refusal is a hard action."""
    with memory_cgroup(400 * MIB) as group:
        argv = group.enter_argv([sys.executable, str(APPS / "turn_pair.py")])
        pair = [
            subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        try:
            rooms = []
            for proc in pair:
                assert proc.stdout is not None
                word, room = proc.stdout.readline().split()
                assert "ready" == word
                rooms.append(int(room))
            size = int(min(rooms) * 0.6)
            for proc in pair:
                assert proc.stdin is not None
                proc.stdin.write(f"{size}\n")
            for proc in pair:  # as close together as two writes can be
                assert proc.stdin is not None
                proc.stdin.flush()
            outputs = [proc.communicate(timeout=60)[0] for proc in pair]
        finally:
            for proc in pair:
                proc.kill()
                proc.wait()
        kills = group.oom_kills()
    assert 0 == kills, outputs
    for output in outputs:
        assert re.search(r"result: (refused )*ok causes=", output), outputs
    # Each asked 60 % of the room: both were refused under their half and took turns. The
    # second turn may come while the first block is still held: that run is refused at the
    # kernel's line (the hard action) and runs again once memory came back. A turn asked for is
    # held unless the other process had ended before this one ran again (under load): alone in
    # the group, its cap grants the whole room without a turn. The first to run again, with the
    # other still there, did so in its turn.
    held_turns = 0
    for output in outputs:
        found = re.search(r"turns asked (\d+) held (\d+)", output)
        assert found, outputs
        asked, held = int(found[1]), int(found[2])
        assert 1 <= asked, outputs
        assert held <= asked, outputs
        held_turns += held
        # every refusal was a turn asked for, or the kernel's line (a hard action: at most
        # one a second)
        refused, hard = output.count("refused"), output.count("backstop")
        assert refused >= asked + hard, outputs
        assert (refused > asked) == (hard > 0), outputs
    assert held_turns >= 1, outputs


def test_a_process_alone_in_its_group_keeps_the_whole_room(tmp_path: Path) -> None:
    turns = RoomTurns(str(tmp_path / "alone"))
    try:
        assert 300 * MIB == _share(turns, 300 * MIB, 50 * MIB, {os.getpid()})
        assert not turns.limited
        assert not turns.ask()  # refused with the whole room: the kernel's line
    finally:
        turns.leave()
    assert not os.path.exists(board_path(str(tmp_path / "alone")))


def _slots(group: str) -> list[tuple[int, int, int, int, int]]:
    """The board's slots as the file holds them: pid, grant, asked at, gave way to, posted
    at."""
    with open(board_path(group), "rb") as f:
        data = f.read()
    return [SLOT.unpack_from(data, at) for at in range(0, len(data), SLOT.size)]


def _post(group: str, slot: int, fields: tuple[int, int, int, int]) -> None:
    """Write one slot as another guarded process of the group would, posted now."""
    with open(board_path(group), "r+b") as f:
        f.seek(slot * SLOT.size)
        f.write(SLOT.pack(*fields, time.monotonic_ns()))


def _share(turns: RoomTurns, left: int, data: int, live: set[int], unwritten: int = 0) -> int:
    """One reading's part: plan the grant, then post it (the cap set between)."""
    grant = turns.plan(left, data, live, unwritten)
    turns.post()
    return grant


@dataclass
class Pair:
    """This process's place on a board, and a sleeping child's pid whose slot a test writes as
    the child would."""

    group: str
    mine: RoomTurns
    live: set[int]
    me: int
    other_pid: int


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    group = str(tmp_path / "pair")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    mine = RoomTurns(group)
    try:
        live = {os.getpid(), other.pid}
        _share(mine, 200 * MIB, 50 * MIB, live)
        me = next(i for i, slot in enumerate(_slots(group)) if slot[0] == os.getpid())
        yield Pair(group, mine, live, me, other.pid)
    finally:
        other.kill()
        other.wait()
        mine.leave()
    assert not os.path.exists(board_path(group))  # the last one out removes the board


def test_shares_then_a_turn_that_ends_once_its_block_is_written(pair: Pair) -> None:
    """Two places on one board: this process, and a sleeping child's slot written here as the
    child would write it."""
    group, mine, live, me, other_pid = pair.group, pair.mine, pair.live, pair.me, pair.other_pid
    _share(mine, 200 * MIB, 50 * MIB, live)
    theirs = 1 - me
    _post(group, theirs, (other_pid, 100 * MIB, 0, 0))
    assert 100 * MIB == _share(mine, 200 * MIB, 50 * MIB, live)  # half each
    assert mine.limited
    assert mine.ask()  # refused under its share: asks for the turn
    assert mine.asking
    # Before the other gave way, the holder gets the room less what the other still grants.
    assert 100 * MIB == _share(mine, 200 * MIB, 50 * MIB, live)
    assert not mine.ready
    asked = _slots(group)[me][2]
    assert asked > 0
    _post(group, theirs, (other_pid, 25 * MIB, 0, asked))  # it gave way
    assert 175 * MIB == _share(mine, 200 * MIB, 50 * MIB, live)
    assert mine.ready
    # 150 MiB mapped, not yet written: the room is 200 less those 150, still its turn
    assert 25 * MIB == _share(mine, 50 * MIB, 200 * MIB, live, unwritten=150 * MIB)
    assert mine.ready
    # written: the kernel counts it, the others' room has it; the turn ends, shares again
    assert 25 * MIB == _share(mine, 50 * MIB, 200 * MIB, live)
    assert not mine.ready
    assert mine.limited
    assert 0 == _slots(group)[me][2]  # no longer asking


def test_another_process_s_turn_leaves_a_small_share_and_says_it_gave_way(pair: Pair) -> None:
    group, mine, live, me, other_pid = pair.group, pair.mine, pair.live, pair.me, pair.other_pid
    _share(mine, 200 * MIB, 50 * MIB, live)
    asked = time.monotonic_ns()  # the clock every process of the machine shares
    _post(group, 1 - me, (other_pid, 100 * MIB, asked, 0))  # it asks for the turn
    assert 25 * MIB == _share(mine, 200 * MIB, 50 * MIB, live)  # 200 / (4 × 2)
    assert asked == _slots(group)[me][3]
    assert mine.ask()  # refused under the small share: asks, after the other
    assert 25 * MIB == _share(mine, 200 * MIB, 50 * MIB, live)
    assert not mine.ready


def test_the_board_is_bounded_and_slots_of_gone_processes_are_taken_again(tmp_path: Path) -> None:
    group = str(tmp_path / "many")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with open(board_path(group), "wb") as f:  # every slot held by a process that has ended
        f.write(SLOT.pack(gone.pid, MIB, 0, 0, 0) * MOST_SLOTS)
    ended = str(tmp_path / "ended")  # another group's board, every process of it ended
    with open(board_path(ended), "wb") as f:
        f.write(SLOT.pack(gone.pid, MIB, 0, 0, 0) * 2)
    turns = RoomTurns(group)
    try:
        assert 64 * MIB == _share(turns, 64 * MIB, 0, {os.getpid()})
        assert os.path.getsize(board_path(group)) == SLOT.size * MOST_SLOTS
        assert os.getpid() in [slot[0] for slot in _slots(group)]
        assert not os.path.exists(board_path(ended))  # swept when this process joined
    finally:
        turns.leave()


def test_a_peer_that_has_not_posted_lately_is_no_peer_and_a_turn_ending_keeps_its_room(
    pair: Pair,
) -> None:
    group, mine, live, me, other_pid = pair.group, pair.mine, pair.live, pair.me, pair.other_pid
    _share(mine, 200 * MIB, 50 * MIB, live)
    long_ago = time.monotonic_ns() - int((STALE_S + 1) * 1e9)
    with open(board_path(group), "r+b") as f:  # killed without leaving, or stuck
        f.seek((1 - me) * SLOT.size)
        f.write(SLOT.pack(other_pid, 100 * MIB, 0, 0, long_ago))
    assert 200 * MIB == _share(mine, 200 * MIB, 50 * MIB, live)  # alone
    # The other held the turn and still grants itself 175 MiB until its next reading.
    _post(group, 1 - me, (other_pid, 175 * MIB, 0, 0))
    assert 25 * MIB == _share(mine, 200 * MIB, 50 * MIB, live)
    _post(group, 1 - me, (other_pid, 100 * MIB, 0, 0))
    assert 100 * MIB == _share(mine, 200 * MIB, 50 * MIB, live)


def test_a_refusal_before_the_others_gave_way_still_waits_and_withdraw_ends_the_turn(
    pair: Pair,
) -> None:
    group, mine, live, me, other_pid = pair.group, pair.mine, pair.live, pair.me, pair.other_pid
    _share(mine, 200 * MIB, 50 * MIB, live)
    _post(group, 1 - me, (other_pid, 100 * MIB, 0, 0))
    _share(mine, 200 * MIB, 50 * MIB, live)
    assert mine.ask()
    _share(mine, 200 * MIB, 50 * MIB, live)  # its turn, the other not given way yet
    assert not mine.ready
    assert mine.ask()  # another thread refused meanwhile: still a turn, not the hard action
    assert mine.asking
    _post(group, 1 - me, (other_pid, 25 * MIB, 0, _slots(group)[me][2]))
    _share(mine, 200 * MIB, 50 * MIB, live)
    assert mine.ready
    mine.withdraw()  # the retried work is done
    assert not mine.ready
    assert not mine.asking
    assert 100 * MIB == _share(mine, 200 * MIB, 50 * MIB, live)
    assert 0 == _slots(group)[me][2]


def test_a_turn_ready_and_not_used_ends_soon(pair: Pair) -> None:
    """A refusal whose work is not run again (a server's own buffer, a request answered
    already) must not hold the others to their small shares for the turn's whole second."""
    group, mine, live, me, other_pid = pair.group, pair.mine, pair.live, pair.me, pair.other_pid
    _share(mine, 200 * MIB, 50 * MIB, live)
    _post(group, 1 - me, (other_pid, 100 * MIB, 0, 0))
    _share(mine, 200 * MIB, 50 * MIB, live)
    assert mine.ask()
    _share(mine, 200 * MIB, 50 * MIB, live)
    _post(group, 1 - me, (other_pid, 25 * MIB, 0, _slots(group)[me][2]))
    assert 175 * MIB == _share(mine, 200 * MIB, 50 * MIB, live)
    assert mine.ready
    time.sleep(0.1)
    assert 175 * MIB == _share(mine, 200 * MIB, 50 * MIB, live)  # still its turn
    time.sleep(0.3)
    assert 100 * MIB == _share(mine, 200 * MIB, 50 * MIB, live)  # ended unused: a share
    assert not mine.ready
    assert not mine.asking


def test_a_rising_grant_is_said_before_the_cap_holds_it_a_falling_one_after(
    tmp_path: Path,
) -> None:
    """The board never says less than a cap allows: a reading posts a grant that rises before
    it sets the cap, and one that falls only after."""
    group = str(tmp_path / "order")
    mine = RoomTurns(group)
    try:
        live = {os.getpid()}
        _share(mine, 100 * MIB, 50 * MIB, live)
        me = next(i for i, slot in enumerate(_slots(group)) if slot[0] == os.getpid())
        mine.plan(200 * MIB, 50 * MIB, live)
        mine.post(rising_only=True)
        assert 200 * MIB == _slots(group)[me][1]  # rising: said before the cap is set
        mine.post()
        mine.plan(40 * MIB, 50 * MIB, live)
        mine.post(rising_only=True)
        assert 200 * MIB == _slots(group)[me][1]  # falling: not yet, the old cap still holds
        mine.post()
        assert 40 * MIB == _slots(group)[me][1]
    finally:
        mine.leave()


def test_share_room_that_is_not_a_bool_is_one_line() -> None:
    with pytest.raises(SizeError) as info:
        Watchdog(limit="1 GB", share_room="yes")  # type: ignore[arg-type]
    assert "\n" not in str(info.value)
    assert "share_room" in str(info.value)
