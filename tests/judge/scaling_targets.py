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
    """O(n log n): 8 bytes per unit of n·ln n."""
    return len(bytearray(int(8 * n * math.log(n))))


def quadratic(n: int) -> int:
    """O(n^2): an n×n table of pointers."""
    return len([0] * (n * n))


def sqrt_native(n: int) -> int:
    """O(√n): none of the five models; must not be called O(1)."""
    return len(bytearray(int(100_000 * math.sqrt(n))))
