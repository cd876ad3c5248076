"""BoundedPool: reuse, bound on idle objects, reset, thread safety."""

from __future__ import annotations

import threading

import pytest

from membound import BoundedPool, PoolStats


def test_reuse_and_reset() -> None:
    pool = BoundedPool(list, max_size=2, reset=list.clear)
    with pool.acquire() as a:
        a.append(1)
    with pool.acquire() as b:
        assert [] == b
        assert a is b
    assert PoolStats(created=1, reused=1, idle=1, in_use=0, discarded=0) == pool.stats()


def test_idle_objects_are_bounded() -> None:
    pool = BoundedPool(object, max_size=3)
    with pool.acquire(), pool.acquire(), pool.acquire(), pool.acquire(), pool.acquire():
        assert 5 == pool.stats().in_use
    assert PoolStats(created=5, reused=0, idle=3, in_use=0, discarded=2) == pool.stats()
    assert 3 == pool.clear()
    assert 0 == pool.stats().idle


def test_failed_reset_discards() -> None:
    def reset(obj: dict[str, int]) -> None:
        raise ValueError("cannot reset")

    pool = BoundedPool(dict, reset=reset)
    with pool.acquire():
        pass
    assert (0, 1) == (pool.stats().idle, pool.stats().discarded)


def test_factory_error_leaves_counts_consistent() -> None:
    def factory() -> object:
        raise OSError("no")

    pool = BoundedPool(factory)
    with pytest.raises(OSError, match="no"), pool.acquire():
        pass
    assert PoolStats(created=0, reused=0, idle=0, in_use=0, discarded=0) == pool.stats()


def test_threads_share_a_bounded_pool() -> None:
    pool = BoundedPool(bytearray, max_size=4)

    def work() -> None:
        for _ in range(500):
            with pool.acquire() as buf:
                buf.append(1)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = pool.stats()
    assert 4000 == stats.created + stats.reused
    assert stats.idle <= 4
    assert 0 == stats.in_use
    assert stats.created - stats.discarded == stats.idle
