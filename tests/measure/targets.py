"""Module-level functions for isolated-run tests (a fresh interpreter imports them by name)."""

from __future__ import annotations

import os
import signal
import time

MIB = 2**20


def allocate(n_bytes: int, hold_s: float = 0.05) -> int:
    """Allocate and touch ``n_bytes`` of native memory, hold it, free it."""
    block = bytearray(n_bytes)
    time.sleep(hold_s)
    size = len(block)
    del block
    return size


def allocate_objects(n: int) -> int:
    """Allocate ``n`` small Python objects (visible to tracemalloc)."""
    items = [{"i": i} for i in range(n)]
    return len(items)


def runaway() -> None:
    """Grow without bound, 8 MiB at a time."""
    hoard = []
    while True:
        hoard.append(bytearray(8 * MIB))


def sleeper(seconds: float) -> None:
    """Sleep."""
    time.sleep(seconds)


def raises() -> None:
    """Raise a recognisable error."""
    raise ValueError("deliberate failure in the child")


def kills_itself() -> None:
    """Die of SIGKILL, as an OOM-killed process would."""
    os.kill(os.getpid(), signal.SIGKILL)


def exits_hard() -> None:
    """Leave the interpreter without returning."""
    os._exit(7)


#: What ``grows`` and ``grows_then_holds`` keep after they return (each runs in a fresh
#: interpreter): a function's locals are freed when it returns, and so would the memory be.
KEPT: list[bytearray] = []


def grows(steps: int = 60, step_bytes: int = 2 * MIB, pause: float = 0.01) -> int:
    """Keep growing until the end, and keep it all: a leak."""
    for _ in range(steps):
        KEPT.append(bytearray(step_bytes))
        time.sleep(pause)
    return len(KEPT)


def grows_then_holds(steps: int = 30, step_bytes: int = 3 * MIB, hold_s: float = 0.6) -> int:
    """Grow, then hold what was built, and keep it: retained (a ramp that levelled off)."""
    KEPT.extend(bytearray(step_bytes) for _ in range(steps) if time.sleep(0.01) is None)
    time.sleep(hold_s)
    return len(KEPT)


def builds_then_returns(steps: int = 40, step_bytes: int = 3 * MIB) -> int:
    """Build a list of buffers, then return (as ``fetchall()`` and a loop over it would): the
    memory grows while the call runs and is freed when it returns."""
    rows = [bytearray(step_bytes) for _ in range(steps) if time.sleep(0.01) is None]
    return len(rows)


def builds_and_frees_small_objects(n: int = 1_000_000) -> int:
    """Build a million small dicts and free them: Python's allocator may keep their pages."""
    rows = [{"i": i, "name": str(i)} for i in range(n)]
    count = len(rows)
    del rows
    time.sleep(0.2)
    return count


def sawtooth(cycles: int = 6, block_bytes: int = 64 * MIB, pause: float = 0.08) -> None:
    """Build and free a large block again and again: a sawtooth."""
    for _ in range(cycles):
        block = bytearray(block_bytes)
        time.sleep(pause)
        del block
        time.sleep(pause)


def spike(block_bytes: int = 100 * MIB) -> None:
    """One short burst, freed, then quiet: a spike."""
    time.sleep(0.2)
    block = bytearray(block_bytes)
    time.sleep(0.15)
    del block
    time.sleep(0.4)


class Unpicklable:
    """Carries a lambda, which pickle refuses."""

    def __init__(self) -> None:
        self.fn = lambda: None


def takes(value: object) -> None:
    """Accept anything."""
