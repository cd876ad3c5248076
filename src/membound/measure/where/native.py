"""Where native memory that is kept was allocated: one round of calls under memray's native
tracking (the ``memray`` extra; Linux and macOS).

tracemalloc sees only Python's allocators; a C extension's ``malloc`` is invisible to it. memray
intercepts ``malloc`` and its kin in every loaded library and records the Python stack under each
allocation; the allocations of the round still not freed at its end are what was kept. The
capture is written in memray's aggregated format, whose size is bounded by the number of distinct
stacks, not by the number of allocations.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from membound.measure.heap import LIBRARY_DIRS, OWN_DIRS

__all__ = ["NativeSite", "native_sites", "native_tracking_available"]


@dataclass(frozen=True)
class NativeSite:
    """Native memory kept, grouped by the Python line that led into its allocation."""

    file: str
    """The Python file."""
    line: int
    """The line."""
    size: int
    """Bytes kept over the round."""
    count: int
    """Allocations kept over the round."""
    trace: tuple[str, ...]
    """Python frames, innermost first, as ``file:line``."""
    native: str
    """The innermost native function, when memray could name it (else empty)."""


def native_tracking_available() -> bool:
    """True when memray can be imported here."""
    try:
        import memray  # noqa: F401
    except ImportError:
        return False
    return True


def _user_frame(stack: list[tuple[str, str, int]]) -> tuple[str, int] | None:
    frames = [(f, ln) for _, f, ln in stack if not f.startswith(OWN_DIRS) and "memray" not in f]
    for file, line in frames:
        if not file.startswith(LIBRARY_DIRS):
            return file, line
    return frames[0] if frames else None


def native_sites(func: Callable[[], Any], calls: int, limit: int = 5) -> list[NativeSite]:
    """Call ``func`` ``calls`` times under memray's native tracking; the kept allocations made by
    malloc and its kin, grouped by the user's Python line, largest first.

    Raises:
        ImportError: memray is not installed.
        RuntimeError: memray cannot track here (another tracker is active).
    """
    import memray

    heap_allocators = {
        memray.AllocatorType.MALLOC,
        memray.AllocatorType.CALLOC,
        memray.AllocatorType.REALLOC,
        memray.AllocatorType.POSIX_MEMALIGN,
        memray.AllocatorType.ALIGNED_ALLOC,
        memray.AllocatorType.MEMALIGN,
        memray.AllocatorType.VALLOC,
        memray.AllocatorType.PVALLOC,
    }
    grouped: dict[tuple[str, int], list[Any]] = {}
    with tempfile.TemporaryDirectory(prefix="membound-native-") as tmp:
        path = os.path.join(tmp, "capture.bin")
        with memray.Tracker(
            path, native_traces=True, file_format=memray.FileFormat.AGGREGATED_ALLOCATIONS
        ):
            for _ in range(calls):
                func()
        reader = memray.FileReader(path)
        for record in reader.get_leaked_allocation_records(merge_threads=True):
            if record.allocator not in heap_allocators:
                continue
            stack = record.stack_trace()
            where = _user_frame(stack)
            if where is None:
                continue
            entry = grouped.setdefault(where, [0, 0, stack, record])
            entry[0] += record.size
            entry[1] += record.n_allocations
        ranked = sorted(grouped.items(), key=lambda kv: -kv[1][0])[:limit]
        sites = []
        for (file, line), (size, count, stack, record) in ranked:
            native = ""
            try:
                hybrid = record.hybrid_stack_trace()
            except Exception:  # symbols unreadable: the Python line is what matters
                hybrid = []
            if hybrid and hybrid[0][0] not in ("", "<unknown>"):
                native = hybrid[0][0]
            trace = tuple(f"{f}:{ln}" for _, f, ln in stack if not f.startswith(OWN_DIRS))
            sites.append(NativeSite(file, line, size, count, trace[:8], native))
        reader.close()
    return sites
