"""The one reader of a process's ``/proc`` files: ``statm`` (sizes in pages), ``status``
fields, ``stat`` (the state, the start time), ``cmdline``, ``clear_refs``, and whether a pid
is there at all.

Everything in membound that reads them goes through here: the probes and the sampler
(``measure/children/proc_tree.py``), a memory budget (``bound/_rss.py``), the watchdog's
backstop (``_data_cap.py``), the limits and their usage (``measure/cgroup/memory.py``,
``guard/limit.py``), the recyclers and the servers (``guard/recycle/``, ``guard/serving.py``),
the partitioned runs' holders (``bound/sql/partition/holders.py``), ``membound watch`` and the
run groups (``measure/children/cgroups.py``). Standard library only and importing nothing of
membound: the child code loads this same file by its path in the processes that hold no
membound (``measure/children/siblings.py``: the sampler, the isolated call), and takes the
imported module where there is one, so a process has one copy of it.

A reading is either one open, read and close (:func:`statm`, :func:`status_bytes`) or one
``pread`` on a descriptor kept open (:class:`KeptStatm`): that releases the GIL once, where
open, read and close released it three times, and a thread writing memory in one long C call
holds it for milliseconds each time.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable

__all__ = [
    "HAS_PROC",
    "PAGE",
    "STATM_FIELDS",
    "KeptStatm",
    "check_status",
    "cmdline",
    "pid_exists",
    "process_state",
    "reset_peak",
    "running",
    "shares_parents_memory",
    "started_at",
    "statm",
    "status_bytes",
    "status_fields",
]

#: Bytes in a page (what ``statm`` counts in).
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
#: Whether this system has ``/proc`` (Linux); elsewhere callers ask psutil.
HAS_PROC = os.path.exists("/proc/self/statm")

#: The fields of ``statm``, in pages: total, resident, shared (file-backed and shmem), text,
#: lib (always 0), data (data and stack), dirty (always 0).
STATM_FIELDS = ("size", "resident", "shared", "text", "lib", "data", "dirty")


def _fields(raw: bytes) -> list[int] | None:
    try:
        fields = [int(x) for x in raw.split()]
    except ValueError:
        return None
    return fields if len(fields) >= 6 else None


def statm(pid: int | str = "self") -> list[int] | None:
    """``/proc/PID/statm`` in pages (see ``STATM_FIELDS``); None when it cannot be read (the
    process is gone, or there is no ``/proc``)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return _fields(f.read())
    except OSError:
        return None


def private_dirty(pid: int | str = "self") -> int | None:
    """The pages ``pid`` wrote since it was forked, in bytes: ``Private_Dirty`` of
    ``/proc/PID/smaps_rollup`` (Linux 4.14 and later; a walk of its mappings, ~0.1 ms for a
    Python process); None when it cannot be read."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f.read().splitlines():
                if line.startswith(b"Private_Dirty:"):
                    return int(line.split()[1]) * 1024  # the kernel prints kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def status_bytes(pid: int | str, field: bytes) -> int | None:
    """A ``/proc/PID/status`` field (``b"VmHWM:"``) in bytes; None where it is not there."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024  # the kernel prints kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read(65536)
    except OSError:
        return None


def status_fields(
    pid: int | str = "self", read: Callable[[str], str | None] | None = None
) -> dict[str, int] | None:
    """The fields of ``/proc/PID/status`` counted in kB, in bytes (``{"VmRSS": …, "RssAnon":
    …}``); None when it cannot be read (the process is gone, or there is no ``/proc``).

    ``read`` reads the file by its path, its text or None (a reader that keeps the file open);
    by default one open, read and close.
    """
    text = (read or _read_text)(f"/proc/{pid}/status")
    if text is None:
        return None
    fields: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
            fields[key] = int(parts[0]) * 1024
    return fields


def check_status(pid: int | str) -> None:
    """Open ``/proc/PID/status`` and read a byte of it.

    Raises:
        OSError: the reason it cannot be read: ``PermissionError`` (another user's process
            under ``hidepid``, say), ``FileNotFoundError`` (no such process).
    """
    with open(f"/proc/{pid}/status", "rb") as f:
        f.read(1)


def _stat(pid: int | str) -> list[bytes] | None:
    """The fields of ``/proc/PID/stat`` after the command name (which may hold spaces and
    parentheses): the state first, the parent's pid second, the start time 20th; None when it
    cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    _, paren, rest = raw.rpartition(b")")
    fields = rest.split()
    return fields if paren and fields else None


#: The states of a process that has ended: a zombie (``Z``), only waiting to be reaped, and a
#: dead one (``X``) being removed.
_ENDED = (b"Z", b"X")


def process_state(pid: int | str) -> bytes | None:
    """The state letter of ``pid`` from ``/proc/PID/stat`` (``b"R"``, ``b"S"``, ``b"Z"`` …);
    None when it cannot be read (no such process, or no ``/proc``)."""
    fields = _stat(pid)
    return fields[0] if fields is not None else None


def running(pid: int | str) -> bool:
    """Whether ``pid`` runs: its ``stat`` can be read and it has not ended (a zombie has, it only
    waits to be reaped). False where there is no ``/proc``."""
    state = process_state(pid)
    return state is not None and state not in _ENDED


def started_at(pid: int) -> float | None:
    """When ``pid`` started, in seconds since the epoch (its start time in clock ticks after
    boot, and ``btime`` of ``/proc/stat`` in whole seconds); None when it is gone (a zombie is)
    or cannot be read."""
    fields = _stat(pid)
    if fields is None or fields[0] in _ENDED:
        return None
    try:
        with open("/proc/stat", "rb") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith(b"btime "))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError, StopIteration):
        return None


#: ``PF_FORKNOEXEC`` of the kernel's ``include/linux/sched.h``, in the flags of
#: ``/proc/PID/stat``: set by fork, cleared by exec.
_FORKED_NOT_EXECUTED = 0x40


def forked_not_executed(pid: int | str) -> bool | None:
    """Whether ``pid`` was forked and has not called exec since (its memory still its parent's
    copy, its command line its parent's); None when it cannot be read."""
    fields = _stat(pid)
    try:
        return bool(int(fields[6]) & _FORKED_NOT_EXECUTED) if fields is not None else None
    except (IndexError, ValueError):
        return None


#: ``kcmp``'s number by machine (``uname -m``), from the kernel's syscall tables: Python has no
#: call for it, and no library (psutil included) asks it.
_KCMP_SYSCALL = {
    "x86_64": 312,
    "aarch64": 272,
    "riscv64": 272,
    "i686": 349,
    "i386": 349,
    "armv7l": 378,
    "ppc64le": 354,
    "s390x": 343,
}
#: Machines whose table above is the 64-bit one, and this interpreter's pointer size.
_64_BIT_MACHINES = frozenset({"x86_64", "aarch64", "riscv64", "ppc64le", "s390x"})
_POINTER_BYTES = 8 if sys.maxsize > 2**32 else 4
#: ``KCMP_VM`` of ``include/uapi/linux/kcmp.h``: do two processes share one address space.
_KCMP_VM = 1
_kcmp: list[Callable[..., int]] = []


def shares_parents_memory(pid: int | str) -> bool | None:
    """Whether ``pid`` shares its parent's address space (``vfork``, as ``subprocess`` and
    ``posix_spawn`` start a program, or ``clone`` with ``CLONE_VM``): every page it maps is its
    parent's, and it will exec or exit. Asked of the kernel (``kcmp``); None when that cannot
    be asked (no ``/proc``, another machine, a seccomp filter, no permission) or ``pid`` is
    gone."""
    fields = _stat(pid)
    if fields is None or not hasattr(os, "uname"):
        return None
    number = _KCMP_SYSCALL.get(os.uname().machine)
    if number is None or (_POINTER_BYTES != 8 and os.uname().machine in _64_BIT_MACHINES):
        return None  # a 32-bit interpreter on a 64-bit kernel: another table's numbers
    if not _kcmp:
        import ctypes  # only here: the sampler process starts without it

        _kcmp.append(ctypes.CDLL(None, use_errno=True).syscall)
    try:
        answer = _kcmp[0](number, int(fields[1]), int(pid), _KCMP_VM, 0, 0)
    except (IndexError, ValueError, OSError):
        return None
    return None if answer < 0 else answer == 0


def pid_exists(pid: int | str) -> bool:
    """Whether ``/proc`` has an entry for ``pid``: a process, ended or not (a zombie has one
    until it is reaped). False where there is no ``/proc``."""
    return os.path.exists(f"/proc/{pid}")


def cmdline(pid: int | str) -> bytes:
    """``/proc/PID/cmdline``: the arguments, each ended by a NUL byte (a process that rewrote
    its title may use spaces instead); empty when it cannot be read (and for a zombie)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def reset_peak(pid: int | str = "self") -> bool:
    """Reset the kernel's peak-RSS mark (``VmHWM``) of ``pid`` to its current RSS, by writing
    ``5`` to ``/proc/PID/clear_refs`` (Linux 4.0 and later); False where that is refused."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


class KeptStatm:
    """``/proc/PID/statm`` read through a descriptor kept open: one ``pread`` a reading.

    For ``"self"`` the descriptor is opened again in a forked child (whose ``/proc/self`` is its
    own). A process that is gone reads None; so does every reading where ``/proc`` is missing.
    """

    def __init__(self, pid: int | str = "self") -> None:
        self.pid = pid
        self._fd: int | None = None
        self._opened_by = 0

    def fields(self) -> list[int] | None:
        """The fields now, in pages; None when the process is gone or cannot be read."""
        me = os.getpid()
        if self._fd is None or (self.pid == "self" and self._opened_by != me):
            try:
                self._fd = os.open(f"/proc/{self.pid}/statm", os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return None
            self._opened_by = me
        try:
            return _fields(os.pread(self._fd, 256, 0))
        except OSError:
            return None

    def close(self) -> None:
        """Close the descriptor (the next reading opens it again)."""
        # A forked child's copy of ``/proc/self`` is left to it; another pid's file is this
        # process's own descriptor either way.
        if self._fd is not None and (self.pid != "self" or self._opened_by == os.getpid()):
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = None
