"""Tasks for process-pool workers (importable by spawned workers)."""

from __future__ import annotations

import os

KEPT: list[bytes] = []


def leak(mib: int) -> tuple[int, int]:
    """Keep ``mib`` MiB more in this worker; (pid, MiB kept so far)."""
    KEPT.append(b"\x01" * (mib << 20))
    return os.getpid(), sum(len(b) for b in KEPT) >> 20


def spike(mib: int) -> int:
    """Use ``mib`` MiB for a moment and give it back: the peak rises, current memory does not."""
    block = b"\x01" * (mib << 20)
    del block
    return os.getpid()
