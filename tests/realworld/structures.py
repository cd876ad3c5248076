"""Real library structures, as targets of ``complexity`` (each run imports this module in a fresh
interpreter, so these are module-level functions of n)."""

from __future__ import annotations

import collections
import dataclasses
import json

from sortedcontainers import SortedList


@dataclasses.dataclass
class Point:
    """A small dataclass record."""

    x: int
    y: int


def sorted_list(n: int) -> int:
    """sortedcontainers.SortedList of n ints."""
    return len(SortedList(range(n, 0, -1)))


def sorted_builtin(n: int) -> int:
    """sorted() of n ints given in reverse."""
    return len(sorted(range(n, 0, -1)))


def ordered_dict(n: int) -> int:
    """collections.OrderedDict of n int keys."""
    return len(collections.OrderedDict.fromkeys(range(n)))


def json_list(n: int) -> int:
    """json.loads of a list of n numbers (the text is built first, and counts too)."""
    return len(json.loads(json.dumps(list(range(n)))))


def dataclass_instances(n: int) -> int:
    """A list of n dataclass instances."""
    return len([Point(i, i) for i in range(n)])


#: The structures whose peak grows linearly with n: the suite's stability test and
#: ``benchmarks/bench_verdicts.py`` judge each of them.
LINEAR = (sorted_list, sorted_builtin, ordered_dict, json_list, dataclass_instances)
