"""The work every peer app does per request or task (``bench_peers.py``), the same in every
server: keep 100 KiB in a module-level list (a leak), and for a few request ids write a
temporary 60–150 MiB buffer of non-zero bytes, hold it 0.2 s and free it.

Which ids write the buffer, and how big it is, comes from ``random.Random(request_id)``, so
every configuration sees the same sequence for ids 0..N-1. ``PEERS_SPIKE_FRACTION`` (0.007 by
default) is the share of requests that write one.
"""

from __future__ import annotations

import os
import random

KIB = 1 << 10
MIB = 1 << 20
LEAK_BYTES = 100 * KIB
SPIKE_MIB = (60, 150)
HOLD_S = 0.2
SPIKE_FRACTION = float(os.environ.get("PEERS_SPIKE_FRACTION", "0.007"))

#: What this worker keeps: one entry per request it served.
KEPT: list[bytes] = []


def spike_bytes(request_id: int, fraction: float | None = None) -> int:
    """The temporary buffer request ``request_id`` writes, in bytes (0: none); ``fraction``:
    ``SPIKE_FRACTION`` unless given."""
    rng = random.Random(request_id)
    if rng.random() >= (SPIKE_FRACTION if fraction is None else fraction):
        return 0
    return int(rng.uniform(*SPIKE_MIB) * MIB)


def keep() -> None:
    """The leak: 100 KiB of non-zero bytes kept for the worker's life."""
    KEPT.append(b"\x01" * LEAK_BYTES)


def spike(size: int) -> bytearray:
    """A buffer of ``size`` non-zero bytes, every page written."""
    return bytearray(b"\x07") * size


def request_id(query: str) -> int:
    """The id in a query string ``id=N`` (0 when absent)."""
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if key == "id" and value.isdigit():
            return int(value)
    return 0


def answer(request_id: int) -> bytes:
    """The response body: which worker served which request."""
    return b'{"pid": %d, "id": %d}' % (os.getpid(), request_id)
