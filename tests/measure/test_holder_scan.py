"""The holder scan finds every growing container whatever its kind, and only those: random
containers of every kind the scan sizes are planted, random ones of them grow, and
``growing_holders`` must name exactly those (compared with what the test made grow)."""

from __future__ import annotations

import collections
import functools
import gc
import random
from typing import Any

import pytest

from membound.measure.holders import growing_holders


class Bounded:
    """An object that declares its own bound, as a cache library would."""

    def __init__(self) -> None:
        self.entries: list[int] = []

    def __membound_bound__(self) -> tuple[int, int]:
        return len(self.entries), 10_000

    def add(self, value: int) -> None:
        self.entries.append(value)


class Entries(list[int]):
    """A list subclass (the scan sizes it through ``size_of``, not its fast path)."""


class Holder:
    """Refers to an untracked dict (atomic values only), so that only a referent walk sees it."""

    def __init__(self, table: dict[int, int]) -> None:
        self.table = table


def _plant(kind: str, size: int, keep: list[Any]) -> tuple[Any, Any]:
    """A container of ``kind`` with ``size`` entries, and what grows it by one entry."""
    if kind == "dict":
        d: dict[int, Any] = {i: [i] for i in range(size)}  # tracked: its values are lists
        return d, lambda: d.setdefault(len(d) + 10**9, [0])
    if kind == "untracked dict":
        u = {i: i for i in range(size)}
        assert not gc.is_tracked(u)
        keep.append(Holder(u))
        keep.append(Holder(u))  # two objects refer to it: it is still one container
        return u, lambda: u.setdefault(len(u) + 10**9, 0)
    if kind == "list":
        items = list(range(size))
        return items, lambda: items.append(0)
    if kind == "set":
        members = set(range(size))
        return members, lambda: members.add(len(members) + 10**9)
    if kind == "deque":
        queue: collections.deque[int] = collections.deque(range(size), maxlen=10**6)
        return queue, lambda: queue.append(0)
    if kind == "list subclass":
        sub = Entries(range(size))
        return sub, lambda: sub.append(0)
    if kind == "bounded":
        bounded = Bounded()
        bounded.entries.extend(range(size))
        return bounded, lambda: bounded.add(0)
    assert kind == "lru_cache"
    cache = functools.lru_cache(maxsize=10**6)(lambda n: n)
    for i in range(size):
        cache(i)
    return cache, lambda: cache(cache.cache_info().currsize + 10**9)


KINDS = ("dict", "untracked dict", "list", "set", "deque", "list subclass", "bounded", "lru_cache")


@pytest.mark.parametrize("seed", range(6))
def test_exactly_the_planted_containers_that_grow_are_found(seed: int) -> None:
    rng = random.Random(seed)
    keep: list[Any] = []
    planted = []
    for _ in range(rng.randint(8, 16)):
        kind = rng.choice(KINDS)
        container, grow = _plant(kind, rng.randint(300, 600), keep)
        planted.append((kind, container, grow, rng.random() < 0.5))
    growers = [grow for _, _, grow, grows in planted if grows]

    def call() -> None:
        for grow in growers:
            grow()

    grown, calls = growing_holders(call, 100, min_size=300, limit=len(planted))
    found = {id(g.holder) for g in grown}
    expected = {id(c) for _, c, _, grows in planted if grows}
    kinds = {id(c): kind for kind, c, _, _ in planted}
    assert expected == found & {id(c) for _, c, _, _ in planted}, (
        sorted(kinds[i] for i in expected - found),
        sorted(kinds[i] for i in found - expected if i in kinds),
    )
    assert 100 == calls
    for g in grown:
        if id(g.holder) in expected:
            assert 100 == g.after - g.before


class _EqualByName(type):
    """A metaclass that defines ``__eq__`` and so leaves its classes unhashable."""

    def __eq__(cls, other: object) -> bool:
        return cls is other

    __hash__ = None  # type: ignore[assignment]


class Unhashable(metaclass=_EqualByName):
    """Instances of a class whose type cannot be hashed."""


def test_a_class_that_cannot_be_hashed_does_not_stop_the_scan() -> None:
    kept = [Unhashable() for _ in range(3)]
    items: list[int] = list(range(400))
    grown, _ = growing_holders(lambda: items.append(0), 100, min_size=300)
    assert [id(items)] == [id(g.holder) for g in grown if g.holder is items]
    assert kept


def test_the_scan_holds_a_few_referents_at_a_time_whatever_the_heap() -> None:
    """The referents of many wide containers are not listed at once: with 300 lists of 8,000
    entries more on the heap (2.4 million references, 18 MiB of them) the scan allocates about
    what it did without them (its list of the heap's objects is the process's, whatever it is)."""
    import tracemalloc

    def scan_peak() -> int:
        tracemalloc.start()
        try:
            growing_holders(lambda: None, 10, min_size=10**9)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    without = scan_peak()
    wide = [[0] * 8_000 for _ in range(300)]
    with_them = scan_peak()
    assert with_them - without < 1 << 20, (without, with_them)
    assert wide
