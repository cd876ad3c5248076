"""Recycling slots: at most N workers of one server out of service for a recycle at once.

A slot is a file named after the supervisor's pid (``membound-recycle-PID/slot-K``), one per
allowed recycle. A worker that recycles takes a free slot:

* it holds the file's ``fcntl`` lock while it drains (the kernel releases the lock if the
  process dies, so a crashed worker never keeps a slot), and writes its pid into the file;
* when it has stopped serving it lets the lock go, and the pid left in the file says "a
  replacement is on its way";
* the next worker that starts serving under the same supervisor empties one such file: the
  slot is free again only then — except for a worker already past ``hard`` (its point is
  jittered below it), which takes a slot as soon as no one drains in it: memory comes before
  capacity (at 200 requests/s of a 1 MiB leak, a worker that waited 1.1 s for a replacement
  grew to 220 MiB and met the OOM killer).

So a slot covers the whole time a worker is out of service, from its decision until a fresh
worker serves in its place: gunicorn's arbiter forks a replacement in milliseconds, but
uvicorn's ``--workers`` parent notices a dead child only every 0.5 s and spawns a new
interpreter that has to import the app (1-2 s on a busy machine), and recycles that freed
their slot at exit took every worker out at once there. A slot whose replacement never came
(the supervisor stopped, the app failed to boot) is free again after ``PENDING_S``.

``fcntl`` locks on files rather than a semaphore: they need no shared memory set up before the
workers fork or spawn, and the kernel releases them with the process.

Two take slots: the recycler (``membound.guard.recycle``) for a worker past its point, and the
watchdog's refusal for a worker stuck refusing work (``membound.guard.watchdog.refusal``). Both
count the same slots: the folder and the number the recycler was given (:func:`setting`), so a
``slot_dir`` or ``max_recycling`` of one's own keeps one limit, not one per folder. A leaf that
imports nothing of the guard, so that the watchdog and recycling both import it and neither
imports the other back.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field

from membound._proc import pid_exists

__all__ = [
    "PENDING_S",
    "Setting",
    "default_slot_dir",
    "release_slot",
    "replaced",
    "setting",
    "slot_folder",
    "take_slot",
    "use_setting",
]

#: Seconds after which a slot whose replacement never started serving is free again.
PENDING_S = 30.0

#: The slot this process holds: (pid, fd). ``fcntl`` locks are not inherited by ``fork``, so
#: a child must not believe it holds its parent's.
_held: list[tuple[int, int]] = []
#: The pid of this process once it has said it serves (:func:`replaced`); a forked child has
#: another pid, so it says so again.
_served_as: list[int] = []


def default_slot_dir() -> str:
    """Where slots live unless told otherwise: the temporary directory."""
    return tempfile.gettempdir()


@dataclass(frozen=True)
class Setting:
    """Where a server's recycling slots live and how many there are."""

    slot_dir: str = field(default_factory=default_slot_dir)
    """The folder that holds a folder of slots per supervisor."""
    max_recycling: int | None = None
    """Workers allowed out of service at once (None: ⌈workers / 4⌉)."""

    def slots(self, workers: int) -> int:
        """How many workers of ``workers`` may recycle at once."""
        if self.max_recycling is not None:
            return self.max_recycling
        return max(1, math.ceil(workers / 4))


#: The setting of this process's recycler, if it has one (a forked worker inherits its
#: parent's: gunicorn's arbiter reads the config file that makes the recycler).
_setting: list[Setting] = []


def setting() -> Setting:
    """The slots of this process: its recycler's, else the defaults (the temporary directory,
    ⌈workers / 4⌉)."""
    return _setting[0] if _setting else Setting()


def use_setting(chosen: Setting) -> None:
    """This process's recycler uses ``chosen`` (it calls this when it is made, and when it starts
    serving): the refusal and the service's health use those slots too."""
    _setting[:] = [chosen]


def slot_folder(slot_dir: str, supervisor_pid: int) -> str:
    """Where the slot files of the workers of ``supervisor_pid`` live."""
    return os.path.join(slot_dir, f"membound-recycle-{supervisor_pid}")


def _remove_stale(slot_dir: str) -> None:
    """Remove the slot folders of supervisors that no longer run (a uvicorn parent has no
    exit hook to remove its own)."""
    with contextlib.suppress(OSError):
        for name in os.listdir(slot_dir):
            pid = name.removeprefix("membound-recycle-")
            if pid != name and pid.isdigit() and not pid_exists(pid):
                shutil.rmtree(os.path.join(slot_dir, name), ignore_errors=True)


def _lock(path: str, create: bool) -> int | None:
    """The file's descriptor with its lock taken, or None (locked by another, or absent)."""
    try:
        fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o600)
    except OSError:
        return None
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _pending(fd: int) -> bool:
    """Whether the slot waits for a replacement (a pid in it, written less than PENDING_S ago)."""
    info = os.fstat(fd)
    return info.st_size > 0 and time.time() - info.st_mtime < PENDING_S


def take_slot(
    slot_dir: str, supervisor_pid: int, slots: int, wait_for_replacement: bool = True
) -> bool:
    """Take a free recycling slot among ``slots``, for this process until
    :func:`release_slot` or its exit; True if this process holds one now (taken here or
    before), False if every slot is taken (or waits for a replacement, unless
    ``wait_for_replacement`` is False: a worker past ``hard`` must not grow on while a
    replacement boots)."""
    me = os.getpid()
    if any(pid == me for pid, _ in _held):
        return True
    _held.clear()  # a parent's, copied by fork: not ours
    folder = slot_folder(slot_dir, supervisor_pid)
    if not os.path.isdir(folder):
        _remove_stale(slot_dir)
        os.makedirs(folder, exist_ok=True)
    for n in range(slots):
        fd = _lock(os.path.join(folder, f"slot-{n}"), create=True)
        if fd is None:
            continue
        if wait_for_replacement and _pending(fd):
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(me).encode(), 0)
        _held.append((me, fd))
        return True
    return False


def release_slot() -> None:
    """This process has stopped serving: let its slot's lock go (the slot stays taken until a
    replacement serves, see :func:`replaced`)."""
    me = os.getpid()
    for pid, fd in list(_held):
        if pid == me:
            with contextlib.suppress(OSError):
                os.close(fd)  # closing the file releases its lock
    _held.clear()


def replaced(slot_dir: str, supervisor_pid: int, slots: int) -> bool:
    """This process has started serving under ``supervisor_pid``: free one slot that waited
    for a replacement. Once per process, whoever says it first (the recycler as the worker
    boots, or the health middleware at its first request: a service that only refuses work has
    no recycler, and its slot waited ``PENDING_S`` for a replacement that served long before).
    True if a slot was freed."""
    me = os.getpid()
    if me in _served_as:
        return False
    _served_as[:] = [me]
    folder = slot_folder(slot_dir, supervisor_pid)
    if not os.path.isdir(folder):
        return False
    for n in range(slots):
        fd = _lock(os.path.join(folder, f"slot-{n}"), create=False)
        if fd is None:
            continue
        try:
            if os.fstat(fd).st_size > 0:
                os.ftruncate(fd, 0)
                return True
        finally:
            os.close(fd)
    return False
