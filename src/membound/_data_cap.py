"""The process-wide data cap: a soft ``RLIMIT_DATA`` shared by every holder that asks for one.

``memory_budget`` (a block's budget) and the Watchdog's backstop (``hard``) both bound memory by
lowering the soft ``RLIMIT_DATA``: Linux (4.7 and later) then refuses any private writable
mapping (``brk``, anonymous ``mmap``) that would take the process's data size past it, so the
allocation that would overshoot fails at once inside ``malloc`` and Python raises
``MemoryError`` in the thread that asked, before the memory exists. There is one such limit per
process, so every holder registers its cap here under a key and the lowest cap holds; when the
last holder leaves, the limit from before the first comes back. A forked child starts with the
old limit (its memory is other work).

Why ``RLIMIT_DATA`` rather than ``RLIMIT_AS``: address space counts reservations that never take
memory (glibc reserves 64 MiB ``PROT_NONE`` per malloc arena), ``RLIMIT_DATA`` counts memory
mapped writable, which is what resident memory grows into. It still counts mapped memory that is
never touched (thread stacks, ``calloc`` of fresh pages): the holders give it headroom.
"""

from __future__ import annotations

import os
import re
import sys
import threading

from membound._proc import PAGE, KeptStatm

if sys.platform == "linux":
    import resource

__all__ = ["CAP_WORKS", "data_and_anon", "drop_cap", "set_cap", "soft_limit_of_its_own"]


def _cap_works() -> bool:
    """Whether RLIMIT_DATA bounds mmap'd memory too: Linux 4.7 and later."""
    if sys.platform != "linux":
        return False
    match = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return match is not None and (int(match[1]), int(match[2])) >= (4, 7)


#: Whether this system holds anonymous mappings to ``RLIMIT_DATA`` (Linux ≥ 4.7).
CAP_WORKS = _cap_works()

_lock = threading.Lock()
_caps: dict[int, int] = {}  # holder key -> its cap in bytes
_soft_before: int | None = None  # the soft limit before the first cap; None while no cap holds
_in_force: int | None = None  # the soft limit this module set last
_fork_hook = False


def data_and_anon() -> tuple[int, int] | None:
    """This process's data size (plus its main stack) and its anonymous resident memory, in
    bytes, from ``/proc/self/statm`` (one ``pread``, cheap enough for every reading of a
    watchdog); None off Linux.

    The data field counts the main stack too, a few hundred KiB that ``RLIMIT_DATA`` does not
    hold: a cap computed from it is that much higher than intended, never lower. Anonymous
    resident memory is resident less shared (file-backed and shmem) pages.
    """
    fields = _statm.fields()
    if fields is None:
        return None
    return fields[5] * PAGE, (fields[1] - fields[2]) * PAGE


#: Kept open: a reading releases the GIL once (``membound/_proc.py``), and a thread writing
#: memory in one long C call meanwhile is not room.
_statm = KeptStatm()


def soft_limit_of_its_own() -> int | None:
    """The process's soft ``RLIMIT_DATA`` as it would be without membound's caps (the one set
    before the first of them, or the one in force when none is): the process's own limit,
    which ``memory_limit()`` reports. A cap is membound's instrument, never a limit to judge
    against (a recycler that took one for the worker's limit moved its recycle point with every
    reading). None off Linux or when there is none."""
    if sys.platform != "linux":
        return None
    with _lock:
        soft = resource.getrlimit(resource.RLIMIT_DATA)[0] if _soft_before is None else _soft_before
    return None if _unlimited(soft) else soft


def set_cap(key: int, cap: int) -> int | None:
    """Put holder ``key``'s cap at ``cap`` bytes (replacing its earlier one); the lowest of all
    caps holds. Returns the cap, or None when it is moot (a lower limit holds without it, or no
    cap works here); then the holder has none."""
    global _soft_before, _fork_hook
    if not CAP_WORKS:
        return None
    with _lock:
        soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
        before = soft if _soft_before is None else _soft_before
        if cap >= 2**63 or (not _unlimited(before) and cap >= before):
            _drop(key, hard)
            return None
        if not _fork_hook:
            os.register_at_fork(after_in_child=_drop_caps_in_child)
            _fork_hook = True
        if _soft_before is None:
            _soft_before = soft
        _caps[key] = cap
        _apply(min(_caps.values()), hard)
        return cap


def drop_cap(key: int) -> None:
    """Take holder ``key``'s cap away: the next lowest holds, or the limit from before the
    first cap."""
    if not CAP_WORKS:
        return
    with _lock:
        _drop(key, resource.getrlimit(resource.RLIMIT_DATA)[1])


def _drop(key: int, hard: int) -> None:
    global _soft_before, _in_force
    if _caps.pop(key, None) is None:
        return
    if _caps:
        _apply(min(_caps.values()), hard)
    elif _soft_before is not None:
        _apply(_soft_before, hard)
        _soft_before = None
        _in_force = None


def _drop_caps_in_child() -> None:
    """After ``os.fork``: the child is other work with its own memory; give it the old limit."""
    global _lock, _soft_before, _in_force
    _lock = threading.Lock()  # another thread may have held it at the fork
    if _soft_before is not None:
        _apply(_soft_before, resource.getrlimit(resource.RLIMIT_DATA)[1])
    _caps.clear()
    _soft_before = None
    _in_force = None


def _unlimited(value: int) -> bool:
    return value == resource.RLIM_INFINITY or value < 0


def _apply(soft: int, hard: int) -> None:
    global _in_force
    if not _unlimited(hard) and (_unlimited(soft) or soft > hard):
        soft = hard  # the hard limit was lowered meanwhile: the soft one cannot pass it
    if soft == _in_force:
        return  # a watchdog re-sets its cap at every reading: skip the system call
    resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))
    _in_force = soft
