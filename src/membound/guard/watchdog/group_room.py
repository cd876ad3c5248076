"""What the other guarded processes of one memory group are about to take.

The backstop (``backstop.py``) gives its process's cap the room the kernel has left, less what
this process mapped lately and has not written yet (that memory is about to be charged). The
kernel's reading shows another process's memory only once it is written: a gunicorn worker that
maps a 150 MiB temporary and writes it over 50 ms holds, for those 50 ms, memory the group's
usage does not show, and a second worker's cap, set from that usage, let its own 150 MiB through
too — both were charged, and the OOM killer ended one (1 OOM kill in 2 rounds of a stressed
``uvicorn --workers 3`` in a 400 MiB group). Here each backstop publishes, at every reading, what
it has mapped and not yet written, and reads what the others published: its room is the group's
room less all of it.

A file of fixed slots (:data:`SLOTS` of them: the ledger never grows with the service) beside
the temporary files, named after the limit (its kind and the file it was read from, the same for
every process the limit bounds); one slot per process, claimed under an ``fcntl`` lock of the
whole file and then written alone (its pid, the bytes, the time on the system-wide monotonic
clock). A slot not written for :data:`FRESH_S` seconds is a process that stopped reading (it
exited, or its watchdog stopped): it counts no more, and the next process that claims a slot may
take it. A file that cannot be opened or written leaves a process on its own reading, as before.

What is still open: the moments between one process's mapping and its next reading (10 ms while
memory rises near the thresholds, ``pace.FAST_S``), in which the others cannot know of it.

Written here rather than with ``multiprocessing.shared_memory``: workers are forked or spawned
by a server, not by one parent that could hand a segment to each; a file found by name needs
no parent, and ``fcntl`` locks end with the process.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import struct
import tempfile
import time

__all__ = ["FRESH_S", "SLOTS", "GroupRoom"]

#: Processes one ledger can count (more are on their own reading).
SLOTS = 256
#: A slot not written for this long counts no more (its process stopped reading).
FRESH_S = 1.0
#: pid, bytes mapped and not yet written, monotonic time of the writing.
_SLOT = struct.Struct("<qqd")


class GroupRoom:
    """The ledger of one memory limit, as one process sees it.

    Args:
        key: what names the limit for every process it bounds (its kind and source).
        folder: where the ledger file lives (the temporary directory by default).
    """

    def __init__(self, key: str, folder: str | None = None) -> None:
        name = hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()[:16]
        self.path = os.path.join(folder or tempfile.gettempdir(), f"membound-room-{name}")
        self._fd: int | None = None
        self._fd_pid = 0
        self._slot: int | None = None

    def _file(self) -> int | None:
        """The ledger's descriptor in this process (a forked child opens its own)."""
        me = os.getpid()
        if self._fd is not None and self._fd_pid == me:
            return self._fd
        self._slot = None
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            self._fd = None
            return None
        self._fd, self._fd_pid = fd, me
        return fd

    def _slots(self, fd: int) -> list[tuple[int, int, float]]:
        data = os.pread(fd, SLOTS * _SLOT.size, 0)
        whole = len(data) - len(data) % _SLOT.size
        return [(int(p), int(b), float(t)) for p, b, t in _SLOT.iter_unpack(data[:whole])]

    def _claim(self, fd: int) -> int | None:
        """A slot for this process: its own, a free one, or one whose process stopped."""
        me, now = os.getpid(), time.monotonic()
        fcntl.lockf(fd, fcntl.LOCK_EX)
        try:
            slots = self._slots(fd)
            mine = [n for n, (pid, _, _) in enumerate(slots) if pid == me]
            free = [n for n, (pid, _, at) in enumerate(slots) if pid == 0 or now - at >= FRESH_S]
            found = (mine or free or [len(slots)])[0]
            if found >= SLOTS:
                return None
            os.pwrite(fd, _SLOT.pack(me, 0, now), found * _SLOT.size)
            return found
        finally:
            fcntl.lockf(fd, fcntl.LOCK_UN)

    def publish(self, unwritten: int) -> None:
        """Say that this process has ``unwritten`` bytes mapped that it may write any moment."""
        fd = self._file()
        if fd is None:
            return
        with contextlib.suppress(OSError):
            if self._slot is None:
                self._slot = self._claim(fd)
            if self._slot is not None:
                record = _SLOT.pack(os.getpid(), max(0, unwritten), time.monotonic())
                os.pwrite(fd, record, self._slot * _SLOT.size)

    def others(self) -> int:
        """What the other processes of the limit published and may still write, in bytes."""
        fd = self._file()
        if fd is None:
            return 0
        me, now = os.getpid(), time.monotonic()
        try:
            slots = self._slots(fd)
        except OSError:
            return 0
        return sum(
            max(0, unwritten)
            for pid, unwritten, at in slots
            if pid not in (0, me) and 0 <= now - at < FRESH_S
        )

    def close(self) -> None:
        """Give this process's slot back and close the file."""
        if self._fd is None or self._fd_pid != os.getpid():
            self._fd, self._slot = None, None
            return
        with contextlib.suppress(OSError):
            if self._slot is not None:
                os.pwrite(self._fd, _SLOT.pack(0, 0, 0.0), self._slot * _SLOT.size)
            os.close(self._fd)
        self._fd, self._slot = None, None
