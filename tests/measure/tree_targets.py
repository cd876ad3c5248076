"""Module-level targets that start other processes (a fresh interpreter imports them by name)."""

from __future__ import annotations

import functools
import multiprocessing
import os
import time

MIB = 2**20


def _hold(n_bytes: int, hold_s: float) -> int:
    """A pool worker's task: touch ``n_bytes``, hold them, return their size."""
    block = bytearray(n_bytes)
    time.sleep(hold_s)
    return len(block)


def pool_holds(mib: int = 200, workers: int = 2, hold_s: float = 0.6) -> int:
    """A ``multiprocessing`` pool whose ``workers`` each hold ``mib`` MiB at the same time;
    the caller itself allocates next to nothing."""
    with multiprocessing.Pool(workers) as pool:
        return sum(pool.starmap(_hold, [(mib * MIB, hold_s)] * workers))


def fork_holds(mib: int = 50, hold_s: float = 0.6) -> None:
    """``os.fork()``: the child touches ``mib`` MiB, holds them and exits; the caller waits."""
    pid = os.fork()
    if pid == 0:
        block = bytearray(mib * MIB)
        time.sleep(hold_s)
        del block
        os._exit(0)
    os.waitpid(pid, 0)


def ends_process(n: int = 0) -> None:
    """End the measuring process at once, as ``os._exit(0)`` does: no result, no error."""
    os._exit(0)


def spawn_through_fork(held_mib: int = 100, times: int = 40) -> int:
    """Hold ``held_mib`` MiB (written) and run ``true`` ``times`` times through fork and exec
    (a ``preexec_fn`` makes ``subprocess`` fork instead of vfork): each child is a copy of this
    process until its exec. Returns how many ran."""
    import subprocess

    held = b"\x01" * (held_mib * MIB)
    for _ in range(times):
        subprocess.run(["true"], check=True, preexec_fn=_nothing)
    del held
    return times


def spawn_after_a_slow_fork(held_mib: int = 200, wait_s: float = 0.6) -> int:
    """Hold ``held_mib`` MiB (written) and run ``true`` through a fork that waits ``wait_s``
    before its exec, as a child does on a machine busy enough to keep it from running (the
    child writes next to nothing meanwhile: every page of it is still this process's). The
    cyclic GC is off while it waits: a collection in the child would write to every tracked
    object's header and copy those pages for real (a pytest worker's child read +100 MiB)."""
    import gc
    import subprocess

    held = b"\x01" * (held_mib * MIB)
    was_on = gc.isenabled()
    gc.disable()
    try:
        subprocess.run(["true"], check=True, preexec_fn=functools.partial(time.sleep, wait_s))
    finally:
        if was_on:
            gc.enable()
    del held
    return 1


def _nothing() -> None:
    """A ``preexec_fn`` that does nothing (its presence is what matters)."""
