"""Deterministic jobs of several shapes for the three-run stability of growth words.

Module-level functions (``mb.measure`` imports them in a fresh interpreter); the same module run
as a script (``python stability_jobs.py NAME``) runs one job as a command (``membound run``).
Sizes stay near 100-200 MB and runs near a second: the suite shares its machine.
"""

from __future__ import annotations

import sys
import time

MB = 10**6
#: What a job keeps to its end (a function measured in a fresh interpreter returns, and its
#: locals go with it).
KEPT: list[object] = []


def build_and_keep() -> int:
    """Build a result in many pieces and keep it to the end (a load into memory). It holds
    what it built for 0.8 s: a command's level and the move after it are judged only when
    one of them lasts 0.5 s (``lifespan.NO_LEVEL_SAMPLES``); with 0.4 s the move measured
    0.45-0.48 s and its word depended on the machine's load."""
    time.sleep(0.3)
    KEPT.extend(bytearray(MB) for _ in range(150))
    time.sleep(0.8)
    return len(KEPT)


def load_then_free() -> int:
    """Load a buffer, use it, free it, then go on."""
    time.sleep(0.3)
    buffer = bytearray(150 * MB)
    total = sum(buffer[::4096])
    time.sleep(0.3)
    del buffer
    time.sleep(0.4)
    return total


def transient_peak() -> int:
    """One large temporary made and freed at once, between quiet stretches."""
    time.sleep(0.4)
    temporary = bytearray(200 * MB)
    size = len(temporary)
    del temporary
    time.sleep(0.5)
    return size


def append_loop() -> int:
    """A loop that appends to a kept list on every iteration, up to the end."""
    for _ in range(120):
        KEPT.append(bytearray(MB))
        time.sleep(0.008)
    return len(KEPT)


def big_temporaries() -> int:
    """A numpy-like helper: each step makes big temporaries, keeps a smaller result."""
    time.sleep(0.2)
    for _ in range(4):
        a = bytearray(60 * MB)
        b = bytes(a)  # a copy as large again, freed with ``a``
        KEPT.append(bytearray(b[: 15 * MB]))
        del a, b
        time.sleep(0.1)
    time.sleep(0.3)
    return len(KEPT)


def slow_free() -> int:
    """200 MB built in 1 KB pieces, held about as long as it took to build, freed (given back
    to the kernel piece by piece, slower than it was built), then as long again before the end:
    no sleep before the build, none far from the time the build takes."""
    pieces = [bytes(1024) for _ in range(200_000)]
    time.sleep(0.3)
    count = len(pieces)
    del pieces
    time.sleep(0.3)
    return count


def kept_then_churn() -> int:
    """50 MB built in 1 KB pieces and kept, then a 20 MB temporary made and freed every 20 ms
    or so, forty times: cycles over a level the job built (their steps once read as noise, the
    word flat in one run and spike in the next)."""
    kept = [bytes(1024) for _ in range(50_000)]
    for _ in range(40):
        temporary = [bytes(1024) for _ in range(20_000)]
        del temporary
        time.sleep(0.02)
    return len(kept)


JOBS = {
    "build_and_keep": build_and_keep,
    "kept_then_churn": kept_then_churn,
    "load_then_free": load_then_free,
    "transient_peak": transient_peak,
    "append_loop": append_loop,
    "big_temporaries": big_temporaries,
    "slow_free": slow_free,
}

if __name__ == "__main__":
    JOBS[sys.argv[1]]()
