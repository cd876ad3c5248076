"""Turns at a group's room: the guarded processes of one memory group share what is left.

The backstop (``backstop.py``) caps each process's data size at what it holds plus the room the
kernel has left, read every few milliseconds. Two processes that map big blocks within one
reading of each other were both let through, and the kernel, charging both as they were
written, OOM-killed one (the peers' benchmark under stress: two gunicorn, uvicorn or Celery
workers mapping 150 MiB temporaries in the same 10 ms of a 400 MiB group). ``group_room.py``
sees a mapping only at the next reading; nothing that reads can close that window. So the
guarded processes of a group agree on the room ahead of time:

* **Shares.** With ``n`` guarded processes in the group, each cap grants at most ``left / n``
  (``left``: the room the kernel has left, less what any process has mapped and not written):
  all of them mapping at the same moment still fit. Alone in its group a process gets all of
  it, so a single program is never refused anything that fits.
* **Turns.** An allocation refused under the share (it might fit the whole room) asks for the
  turn instead of being the hard action. At their next reading the others grant themselves a
  small share (``left / 4n``) and say they gave way; the holder of the turn grants itself the
  room less what the others' caps still grant — never more than what is left, whatever the
  others have read so far. Once every other process gave way the turn is *ready*, and the
  work that was refused runs once more (the middleware's and Celery's retry wait for that,
  ``refusal.memory_came_back``). An allocation refused while the turn is ready is the
  kernel's line: the hard action, as before.
* One turn at a time, the oldest ask first, ties by slot (every process reads the same board,
  so all agree whose it is without a lock). A turn ends when the work it was for is done or
  gives up (:meth:`RoomTurns.withdraw`: the middleware and Celery's retry call it), once its
  holder's data size has risen and what it mapped is written (the kernel counts it then, and
  the others' room, read from the group's usage, leaves it out: turns last tens of
  milliseconds, not the whole request), ``_UNUSED_S`` after it was ready if nothing used it,
  after ``TURN_S``, or when its holder leaves the group; an ask not served within ``ASK_S`` lapses.
* Order: a reading plans its grant; a grant that rises is posted before the cap is set, one
  that falls after (a process that gives way is below its small share before it says so); a
  process that holds more than its share ends its turn by posting it, and until then the
  others' grants leave room for it.

The board: one small file in ``/dev/shm`` (else the temporary folder) named from the group
directory's device and inode (containers that share ``/dev/shm`` but see their own group at the
same path get boards of their own) and the user, mapped by every guarded process of the group;
``MOST_SLOTS`` slots of five 64-bit fields (pid, the room its cap grants, when it asked for the
turn, which ask it gave way to, when it last posted). A process writes only its own slot (taking
one holds the file's lock); a slot whose pid is no longer in the group, or that has not been
posted for ``STALE_S`` (a process killed without leaving, its pid since reused, or one stuck
in a long call), is no peer. Processes of the group without a watchdog are not on the board:
what they map is still counted, from outside, by ``group_room.py``.

Written here rather than taken from a library: it is a few shared integers beside a file lock;
``multiprocessing.shared_memory`` would add a resource tracker process per worker.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import mmap
import os
import struct
import tempfile
import time
from collections.abc import Collection

__all__ = ["ASK_S", "MOST_SLOTS", "STALE_S", "TURN_S", "RoomTurns", "board_path"]

#: Guarded processes one board holds (a group of more shares among the first ones; the rest
#: keep the whole room, as before turns).
MOST_SLOTS = 64
#: A turn lasts at most this long once it is its holder's (a retried request or task maps its
#: temporary within it; a turn never given back must not starve the others).
TURN_S = 1.0
#: An ask not served within this long lapses (the retries wait 0.5 s, Celery's 5 s).
ASK_S = 6.0
#: A slot not posted for this long is no peer (its process reads every 10 ms while it has
#: peers: one that has not for this long is gone, or stuck where it maps nothing).
STALE_S = 2.0
#: The others' share while a turn is in force is ``left`` divided by this many per process.
_GIVE_WAY_DIVISOR = 4
#: A holder's data size must rise this much for the turn to count as used.
_USED_BYTES = 4 << 20
#: A turn ready this long and not used ends (the refused work was not run again: a refusal in
#: a server's own code, a request answered already), so the others are not held to their
#: small shares for ``TURN_S``.
_UNUSED_S = 0.25
#: A process that could not get a place on its board tries again after this long.
_RETRY_JOIN_S = 1.0
_SLOT = struct.Struct("=qqqqq")  # pid, grant bytes, asked at, gave way to (an ask), posted at
_FIELD = struct.Struct("=q")
_SIZE = _SLOT.size * MOST_SLOTS
_PID, _GRANT, _ASKED, _GAVE_WAY, _POSTED = range(5)


def board_path(group_path: str) -> str:
    """The board's file for the memory group at ``group_path`` (one per group and user)."""
    try:
        found = os.stat(group_path)
        name = f"{found.st_dev:x}-{found.st_ino:x}"
    except OSError:  # not a folder here: its path names it
        digest = hashlib.sha1(os.path.normpath(group_path).encode(), usedforsecurity=False)
        name = digest.hexdigest()[:16]
    folder = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    return os.path.join(folder, f"membound-turns-{os.getuid()}-{name}")


class RoomTurns:
    """One guarded process's place on its group's board.

    Args:
        group_path: the directory of the memory group whose limit the OOM killer enforces.
    """

    def __init__(self, group_path: str) -> None:
        self.path = board_path(group_path)
        self._pid = 0
        self._fd = -1
        self._map: mmap.mmap | None = None
        self._slot = -1
        self._failed_at = float("-inf")
        #: The last share was less than the room left: a refusal then asks for the turn.
        self.limited = False
        #: This process holds the turn and every other guarded process has given way.
        self.ready = False
        #: Turns asked for, and held, so far.
        self.asks = 0
        self.held = 0
        self._asked_ns = 0
        self._held_since: float | None = None
        self._ready_since: float | None = None
        self._data_at_turn = 0
        self._peak_in_turn = 0
        self._grant = 0
        self._gave_way = 0

    @property
    def asking(self) -> bool:
        """This process asked for the turn and is not ready to use it yet (its last refusal was
        under its share, not at the kernel's line)."""
        return bool(self._asked_ns) and not self.ready

    # --- the board ------------------------------------------------------------------------------

    def _board(self, live: Collection[int]) -> mmap.mmap | None:
        """The mapped board with a slot of this process's (taken now if need be), or None when
        no board can be had (no folder to write, every slot held by live processes): tried
        again ``_RETRY_JOIN_S`` later."""
        if self._map is not None and self._pid == os.getpid():
            return self._map
        self._forget()  # a forked child: the parent's slot is not its own
        now = time.monotonic()
        if now - self._failed_at < _RETRY_JOIN_S:
            return None
        _sweep(os.path.dirname(self.path), self.path)
        board = None
        with contextlib.suppress(OSError, ValueError):
            board = self._join(live)
        if board is None:
            self._forget()
            self._failed_at = now
        return board

    def _join(self, live: Collection[int]) -> mmap.mmap | None:
        me = os.getpid()
        for _attempt in range(3):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                found = os.fstat(fd)
                if found.st_uid != os.getuid():  # someone else's file at our name
                    return None
                if found.st_nlink == 0:  # the last one out removed it meanwhile
                    continue
                if found.st_size < _SIZE:
                    os.ftruncate(fd, _SIZE)
                board = mmap.mmap(fd, _SIZE)
                slot = _free_slot(board, me, live)
                if slot < 0:
                    board.close()
                    return None
                _SLOT.pack_into(board, slot * _SLOT.size, me, 0, 0, 0, time.monotonic_ns())
                fcntl.flock(fd, fcntl.LOCK_UN)
                self._pid, self._fd, self._map, self._slot = me, fd, board, slot
                fd = -1
                return board
            finally:
                if fd >= 0:
                    os.close(fd)  # the lock goes with it
        return None

    def _forget(self) -> None:
        if self._map is not None and self._pid == os.getpid():
            with contextlib.suppress(ValueError):
                self._map.close()
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._map, self._fd, self._slot, self._pid = None, -1, -1, 0
        self.limited = self.ready = False
        self._asked_ns = 0
        self._held_since = self._ready_since = None

    def leave(self) -> None:
        """Give up this process's slot (the watchdog stops); the last one out removes the
        board's file."""
        board, fd = self._map, self._fd
        if board is None or self._pid != os.getpid():
            self._forget()
            return
        with contextlib.suppress(OSError, ValueError):
            fcntl.flock(fd, fcntl.LOCK_EX)
            _SLOT.pack_into(board, self._slot * _SLOT.size, 0, 0, 0, 0, 0)
            pids = [_field(board, slot, _PID) for slot in range(MOST_SLOTS)]
            if not any(pid and _alive_here(pid) for pid in pids):  # killed ones never leave
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
            fcntl.flock(fd, fcntl.LOCK_UN)
        self._forget()

    # --- a reading ------------------------------------------------------------------------------

    def plan(self, left: int, data: int, live: Collection[int], unwritten: int = 0) -> int:
        """The room this process's cap may grant now, of the ``left`` bytes the kernel has left
        for the whole group; :meth:`post` says it on the board once the cap is set. ``data``:
        this process's data size now; ``live``: the pids in the group now; ``unwritten``: what
        it has mapped lately and not yet written (``group_room.Unsettled``)."""
        board = self._board(live)
        self._gave_way = 0
        if board is None:
            self.limited = self.ready = False
            self._grant = left
            return left
        now = time.monotonic_ns()
        me = self._slot
        others = _peers(board, me, live, now)
        if self._asked_ns and now - self._asked_ns > ASK_S * 1e9 and self._held_since is None:
            self._end_turn()  # asked too long ago: whoever retried has given up
        turn = _oldest_ask(board, others, now, (self._asked_ns, me))
        if turn != me and self._held_since is not None:
            self._end_turn()  # no longer its turn (its ask lapsed on another's clock)
        room = max(0, left)
        granted = [max(0, _field(board, slot, _GRANT)) for slot in others]
        share = room // (len(others) + 1)
        if not others:
            grant = left
            self._end_turn()  # alone: the whole room is its own anyway
        elif turn == me:
            grant = self._holding(board, others, left, data, granted, unwritten)
        elif turn >= 0:
            grant = room // (_GIVE_WAY_DIVISOR * (len(others) + 1))
            self._gave_way = _field(board, turn, _ASKED)
        elif any(g > share for g in granted):
            grant = max(0, min(share, room - sum(granted)))  # a turn ending: leave it its room
        else:
            grant = share
        holding = turn == me and self._held_since is not None
        self.limited = bool(others) and grant < left and not holding
        if not holding:
            self.ready = False
        self._grant = grant
        return grant

    def post(self, *, rising_only: bool = False) -> None:
        """Say on the board what :meth:`plan` granted: a grant that falls once the cap holds
        it, one that rises before (``rising_only``: only if it rises), so that what the board
        says is never less than what a cap allows."""
        board = self._map
        if board is None or self._pid != os.getpid():
            return
        if rising_only and self._grant <= _field(board, self._slot, _GRANT):
            return
        with contextlib.suppress(ValueError):
            _SLOT.pack_into(
                board,
                self._slot * _SLOT.size,
                self._pid,
                max(0, self._grant),
                self._asked_ns,
                self._gave_way,
                time.monotonic_ns(),
            )

    def _holding(
        self,
        board: mmap.mmap,
        others: list[int],
        left: int,
        data: int,
        granted: list[int],
        unwritten: int,
    ) -> int:
        """This process's grant while the turn is its own: the room less what the others'
        caps still grant. The turn ends once the block it was for is mapped and written (the
        kernel counts it now: the others' room, read from the group's usage, has it), or given
        back, or after ``TURN_S``."""
        now = time.monotonic()
        if self._held_since is None:
            self._held_since = now
            self._data_at_turn = self._peak_in_turn = data
            self.held += 1
        self._peak_in_turn = max(self._peak_in_turn, data)
        risen = self._peak_in_turn - self._data_at_turn
        used = risen >= _USED_BYTES and unwritten < _USED_BYTES
        unused = (
            self._ready_since is not None
            and risen < _USED_BYTES
            and now - self._ready_since > _UNUSED_S
        )
        if used or unused or now - self._held_since > TURN_S:
            self._end_turn()
            return max(0, min(max(0, left) // (len(others) + 1), left - sum(granted)))
        self.ready = all(_field(board, slot, _GAVE_WAY) == self._asked_ns for slot in others)
        if self.ready and self._ready_since is None:
            self._ready_since = now
        return left - sum(granted)

    def _end_turn(self) -> None:
        """No longer asking or holding (posted at the next reading, after the cap is down)."""
        self._asked_ns = 0
        self._held_since = self._ready_since = None
        self.ready = False

    # --- a refusal ------------------------------------------------------------------------------

    def ask(self) -> bool:
        """An allocation failed at the cap (any thread): True when it was refused under the
        share and this process asks for the turn (the work should run again once the turn is
        :attr:`ready`); False when it was refused with the whole room it could have (the
        kernel's line: the hard action), which ends the turn."""
        board = self._map
        if board is None or self._pid != os.getpid():
            return False
        if self._held_since is not None:
            if self.ready:
                self._end_turn()
                return False
            return True  # its turn, the others not yet given way: its grant is still short
        if not (self.limited or self._asked_ns):
            return False
        if not self._asked_ns:
            self._asked_ns = time.monotonic_ns()
            self.asks += 1
            _set(board, self._slot, _ASKED, self._asked_ns)  # the others give way sooner
        return True

    def withdraw(self) -> None:
        """The work that asked for the turn is done, or gave up: the turn (or the ask) ends."""
        if self._asked_ns or self._held_since is not None:
            self._end_turn()


def _peers(board: mmap.mmap, me: int, live: Collection[int], now: int) -> list[int]:
    """The slots of the group's other guarded processes: in the group now, posted lately."""
    return [
        slot
        for slot in range(MOST_SLOTS)
        if slot != me
        and _field(board, slot, _PID) in live
        and now - _field(board, slot, _POSTED) <= STALE_S * 1e9
    ]


def _field(board: mmap.mmap, slot: int, field: int) -> int:
    value: int = _FIELD.unpack_from(board, slot * _SLOT.size + _FIELD.size * field)[0]
    return value


def _set(board: mmap.mmap, slot: int, field: int, value: int) -> None:
    _FIELD.pack_into(board, slot * _SLOT.size + _FIELD.size * field, value)


def _free_slot(board: mmap.mmap, me: int, live: Collection[int]) -> int:
    """This pid's slot if it has one, else the first slot free (no pid, or a pid no longer in
    the group), else -1."""
    free = -1
    for slot in range(MOST_SLOTS):
        pid = _field(board, slot, _PID)
        if pid == me:
            return slot
        if free < 0 and (pid == 0 or (pid not in live and not _alive_here(pid))):
            free = slot
    return free


def _alive_here(pid: int) -> bool:
    """Whether ``pid`` still runs (a process of the group that the last listing missed)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: Boards of other groups a process looks at when it joins its own (see :func:`_sweep`).
_MOST_SWEPT = 64


def _sweep(folder: str, own: str) -> None:
    """Remove boards of this user's other groups whose every process has ended (killed
    processes never leave: a test suite's groups, a service's old group), at most
    ``_MOST_SWEPT`` looked at; a board being joined meanwhile is left alone."""
    prefix = f"membound-turns-{os.getuid()}-"
    with contextlib.suppress(OSError):
        names = [name for name in os.listdir(folder) if name.startswith(prefix)]
        for name in names[:_MOST_SWEPT]:
            path = os.path.join(folder, name)
            if path != own:
                with contextlib.suppress(OSError):
                    _remove_if_ended(path)


def _remove_if_ended(path: str) -> None:
    fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        data = os.pread(fd, _SIZE, 0)
        last = len(data) - _SLOT.size
        pids = [_SLOT.unpack_from(data, at)[0] for at in range(0, last + 1, _SLOT.size)]
        if not any(pid and _alive_here(pid) for pid in pids):
            os.unlink(path)
    finally:
        os.close(fd)


def _oldest_ask(board: mmap.mmap, others: list[int], now: int, own: tuple[int, int]) -> int:
    """The slot whose ask for the turn is the oldest still in force (ties: the lower slot),
    or -1. ``own``: this process's ask and slot, as it knows them (the board has them only
    from its last post)."""
    asks = [(at, slot) for slot in others if (at := _field(board, slot, _ASKED))]
    if own[0]:
        asks.append(own)
    fresh = [ask for ask in asks if now - ask[0] <= ASK_S * 1e9]
    return min(fresh)[1] if fresh else -1
