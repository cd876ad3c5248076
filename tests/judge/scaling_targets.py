"""Functions of n with known memory complexity, for complexity() tests (imported by children)."""

from __future__ import annotations

import math
import mmap

MIB = 2**20


def const_sum(n: int) -> int:
    """O(1): a lazy sum."""
    return sum(range(n))


def const_block(n: int) -> int:
    """O(1): the same 4 MiB whatever n."""
    return len(bytearray(4 * MIB)) + n


def linear_list(n: int) -> int:
    """O(n): a list of n distinct ints."""
    return len(list(range(n)))


def linear_dicts(n: int) -> int:
    """O(n): n small dicts."""
    return len([{"i": i} for i in range(n)])


def linear_native(n: int) -> int:
    """O(n): 100 bytes of native buffer per unit."""
    return len(bytearray(100 * n))


def linear_mmap(n: int) -> int:
    """O(n) in RSS, invisible to tracemalloc: an anonymous mapping, every page touched."""
    size = max(4096, 100 * n)
    with mmap.mmap(-1, size) as m:
        for offset in range(0, size, 4096):
            m[offset] = 1
        return size


def log_native(n: int) -> int:
    """O(log n): 2 MiB per unit of ln n."""
    return len(bytearray(int(2 * MIB * math.log(n))))


def nlogn_native(n: int) -> int:
    """O(n log n): 64 bytes per unit of n·ln n.

    Over n = 10³…10⁶ the n·ln n curve bends only as ln n grows (6.9 → 13.8), and a straight
    line is rejected only when it misses by at least ``MIN_GAIN`` (0.05). With 8 bytes the 10³
    point (55 kB) fell under a loaded machine's RSS noise floor, and a line through the three
    left missed by 0.04–0.05 (a CI run read O(n)). At 64 bytes the 10³ point is 0.44 MB, and a
    line through all four misses by 0.09–0.12 for floors of 64 kB…1.5 MB."""
    return len(bytearray(int(64 * n * math.log(n))))


def quadratic(n: int) -> int:
    """O(n^2): an n×n table of pointers."""
    return len([0] * (n * n))


def sqrt_native(n: int) -> int:
    """O(√n): none of the five models; must not be called O(1)."""
    return len(bytearray(int(100_000 * math.sqrt(n))))
