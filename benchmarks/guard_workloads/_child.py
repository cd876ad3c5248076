"""Shared by the guard benchmark's child programs (``benchmarks/bench_guard.py`` starts them).

Every child joins the memory cgroup it is given before it imports anything big, so that every
page it touches is charged to that group, and reports one JSON object on its last stdout line.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from pathlib import Path
from typing import Any

MIB = 1 << 20
#: glibc's ``mallopt`` parameter number for the mmap threshold.
_M_MMAP_THRESHOLD = -3


def join_cgroup(path: str) -> None:
    """Move this process into the v1 memory cgroup ``path`` (root only); what it allocates from
    now on is charged there."""
    Path(path, "cgroup.procs").write_text(str(os.getpid()))


def pin_mmap_threshold(size: int = 128 * 1024) -> None:
    """Serve every allocation of ``size`` bytes or more with its own mmap, and keep it so.

    glibc raises its mmap threshold to the size of a freed mapping (up to 32 MiB), after which
    1 MiB pieces come from the heap and freeing them may not lower the usage: a fixed threshold
    makes the ramps' usage follow their own bookkeeping exactly.
    """
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(_M_MMAP_THRESHOLD, size)


def report(data: dict[str, Any]) -> None:
    """Print ``data`` as the child's result (one JSON line)."""
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()
