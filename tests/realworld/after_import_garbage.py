"""A structure measured after an import that leaves free memory behind, as big libraries do:
the import builds objects and frees most of them, leaving free blocks in Python's pools that a
small structure would otherwise fit into unseen (its peak read as 0 B)."""

from __future__ import annotations

from sortedcontainers import SortedList

_garbage = [(i, str(i)) for i in range(200_000)]
_survivors = _garbage[::50]  # one object in fifty stays: its pools stay, mostly free
del _garbage


def sorted_list(n: int) -> int:
    """sortedcontainers.SortedList of n ints, built after the import's garbage."""
    return len(SortedList(range(n, 0, -1)))
