"""Process-pool workers recycled on current memory, not on the peak: the executor's own exit
protocol keeps every task's result and the pool whole."""

from __future__ import annotations

import pickle
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

import pytest

from membound import SizeError
from membound.guard.recycle.process_pools import RecyclingProcessPool, recycle_above
from tests.guard.apps import pool_tasks

T = TypeVar("T")

#: The pool itself needs 3.11's ``max_tasks_per_child``; on 3.10 it refuses in one line (below).
needs_311 = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="max_tasks_per_child needs Python 3.11"
)


def test_the_pool_says_which_python_it_needs() -> None:
    if sys.version_info < (3, 11):
        with pytest.raises(RuntimeError, match=r"needs Python 3\.11 \(max_tasks_per_child\)"):
            RecyclingProcessPool(1, max_memory="1 GB")
    else:
        RecyclingProcessPool(1, max_memory="1 GB").shutdown(wait=True)


def _pool(cap: str, max_tasks: int | None = None) -> ProcessPoolExecutor:
    return RecyclingProcessPool(2, max_memory=cap, max_tasks=max_tasks)


def _map(pool: ProcessPoolExecutor, fn: Callable[[int], T], args: list[int]) -> list[T]:
    """``pool.map`` that fails instead of hanging when no worker is left to run the rest."""
    try:
        return list(pool.map(fn, args, timeout=60))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@needs_311
def test_a_leaking_worker_is_replaced_and_no_result_is_lost() -> None:
    results = _map(_pool("120 MB"), pool_tasks.leak, [10] * 40)
    assert 40 == len(results)
    pids = {pid for pid, _ in results}
    assert len(pids) >= 3  # workers were replaced
    # a worker takes one more task after it crossed: never far past the cap
    assert max(kept for _, kept in results) <= 120


@needs_311
def test_a_spike_that_was_given_back_does_not_recycle() -> None:
    pids = _map(_pool("150 MB"), pool_tasks.spike, [300] * 12)
    # every task peaked at 300 MiB, far above the cap; current memory stayed low
    assert len(set(pids)) <= 2


@needs_311
def test_the_task_count_still_applies() -> None:
    pids = _map(_pool("10 GB", max_tasks=3), pool_tasks.spike, [1] * 12)
    assert len(set(pids)) >= 4


@needs_311
def test_a_parent_over_the_cap_can_still_make_the_pool() -> None:
    pool = RecyclingProcessPool(1, max_memory="1 MB")  # this process is far above 1 MB
    try:
        assert pool.submit(pool_tasks.spike, 1).result(timeout=60) > 0
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def test_the_cap_survives_pickling_and_reads_well() -> None:
    cap = recycle_above("200 MB", max_tasks=5)
    again = pickle.loads(pickle.dumps(cap))
    assert (200_000_000, 5) == (again.cap_bytes, int(again))
    assert "recycle_above('190.7 MiB', max_tasks=5)" == repr(cap)


@pytest.mark.parametrize(
    ("args", "message"),
    [(("0",), "more than 0"), (("lots",), "not a size"), (("1 GB", 0), "max_tasks")],
)
def test_bad_caps(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(SizeError, match=message):
        recycle_above(*args)  # type: ignore[arg-type]
