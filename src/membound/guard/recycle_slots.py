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
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time

__all__ = ["PENDING_S", "release_slot", "replaced", "slot_folder", "take_slot"]

#: Seconds after which a slot whose replacement never started serving is free again.
PENDING_S = 30.0

#: The slot this process holds: (pid, fd). ``fcntl`` locks are not inherited by ``fork``, so
#: a child must not believe it holds its parent's.
_held: list[tuple[int, int]] = []


def slot_folder(slot_dir: str, supervisor_pid: int) -> str:
    """Where the slot files of the workers of ``supervisor_pid`` live."""
    return os.path.join(slot_dir, f"membound-recycle-{supervisor_pid}")


def _remove_stale(slot_dir: str) -> None:
    """Remove the slot folders of supervisors that no longer run (a uvicorn parent has no
    exit hook to remove its own)."""
    with contextlib.suppress(OSError):
        for name in os.listdir(slot_dir):
            pid = name.removeprefix("membound-recycle-")
            if pid != name and pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
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
    for a replacement. True if one was."""
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
