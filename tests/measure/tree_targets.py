"""Module-level targets that start other processes (a fresh interpreter imports them by name)."""

from __future__ import annotations

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
