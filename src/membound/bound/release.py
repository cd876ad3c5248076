"""Give freed memory back to the operating system where the allocator allows it.

What it can and cannot do (measured on glibc): after freeing many mid-sized objects (~600 B each)
RSS stayed at hundreds of MB until ``malloc_trim(0)`` returned it (636 MB → 11 MB); small
objects in pymalloc arenas come back on their own when whole arenas empty; but if a few objects
survive spread over the heap (1 in 64 kept), every page they sit on stays resident whatever you
do — fragmentation, not a leak. ``release_memory`` therefore reports each step, so a caller can
see which one helped.
"""

from __future__ import annotations

import ctypes
import gc
from dataclasses import dataclass

from membound._libc import libc_function
from membound.bound._rss import current_rss

__all__ = ["Released", "release_memory"]


@dataclass(frozen=True)
class Released:
    """What :func:`release_memory` did and what it gave back."""

    rss_before: int
    """RSS in bytes before anything ran."""
    rss_after_gc: int
    """RSS in bytes after the full garbage collection."""
    rss_after: int
    """RSS in bytes at the end (after ``malloc_trim`` when it ran)."""
    gc_collected: int
    """Unreachable objects found by ``gc.collect()``."""
    trimmed: bool | None
    """``malloc_trim``'s result: True if memory was released, False if none could be;
    None when the C library has no ``malloc_trim`` (not glibc)."""

    @property
    def released(self) -> int:
        """Bytes of RSS given back in total (negative if RSS grew meanwhile)."""
        return self.rss_before - self.rss_after


def _malloc_trim() -> bool | None:
    trim = libc_function("malloc_trim")
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return bool(trim(0))


def release_memory() -> Released:
    """Run a full ``gc.collect()``, then glibc's ``malloc_trim(0)`` where available.

    Returns:
        RSS before, after the collection and at the end, and what each step returned.
    """
    before = current_rss()
    collected = gc.collect()
    after_gc = current_rss()
    trimmed = _malloc_trim()
    return Released(
        rss_before=before,
        rss_after_gc=after_gc,
        rss_after=current_rss(),
        gc_collected=collected,
        trimmed=trimmed,
    )
