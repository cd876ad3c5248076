"""Celery children recycled on their *current* memory (issue 28), with a real redis broker and
a real prefork worker: a leaking child is replaced after the task in hand and no task is lost;
a child that freed a spike is kept, where Celery's own ``worker_max_memory_per_child`` (the
peak) replaces it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from membound._errors import SizeError
from tests.guard.celery_helpers import APPS, celery_worker, redis_server


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[str]:
    with redis_server(tmp_path) as url:
        yield url


@pytest.fixture
def tasks(redis: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The app's module in this process, as a client of ``redis`` (sending only)."""
    monkeypatch.setenv("MB_TEST_REDIS", redis)
    monkeypatch.setenv("MB_TEST_CELERY_GUARD", "none")
    monkeypatch.syspath_prepend(APPS)
    sys.modules.pop("celery_tasks", None)
    import celery_tasks

    yield celery_tasks
    celery_tasks.app.close()
    sys.modules.pop("celery_tasks", None)


def _results(sent: list[Any], timeout: float = 60) -> list[list[int]]:
    return [r.get(timeout=timeout) for r in sent]


def test_leaking_children_are_recycled_after_their_task_and_no_task_is_lost(
    redis: str, tasks: Any
) -> None:
    with celery_worker(redis, "membound", "96 MiB") as worker:
        # 8 MiB kept per task: a child passes 96 MiB after about 12 tasks, so the 60 tasks
        # recycle at least 4 children however the pool shares them out between its two
        sent = [tasks.leak.delay(n, 8) for n in range(60)]
        results = _results(sent)
        log = worker.log
    assert list(range(60)) == [n for n, _ in results]  # every task ran once, in order sent
    pids = {pid for _, pid in results}
    assert len(pids) >= 4, (pids, log)  # 2 children at first, replaced at least twice
    assert "recycles after its task" in log, log
    assert "WorkerLostError" not in log, log
    assert "Traceback" not in log, log


@pytest.mark.parametrize(("guard", "recycled"), [("membound", False), ("celery", True)])
def test_a_freed_spike_recycles_only_when_the_peak_is_judged(
    redis: str, tasks: Any, guard: str, recycled: bool
) -> None:
    """Each task writes 128 MiB and frees it: the peak is over the 96 MiB threshold, memory
    after the task is not."""
    with celery_worker(redis, guard, "96 MiB", concurrency=1) as worker:
        results = [tasks.spike.delay(n, 128).get(timeout=60) for n in range(4)]
        log = worker.log
    assert list(range(4)) == [n for n, _ in results]
    pids = {pid for _, pid in results}
    if recycled:
        assert 4 == len(pids), (pids, log)  # Celery replaced the child after every task
    else:
        assert 1 == len(pids), (pids, log)  # membound kept it
        assert "recycles after its task" not in log


def test_bad_thresholds_are_one_line() -> None:
    from celery import Celery

    from membound.guard.celery_recycler import recycle_children

    app = Celery("t")
    for hard, words in (("lots", "lots"), ("0%", "no percentage"), ("100", "at least 1 KiB")):
        with pytest.raises(SizeError, match=words) as caught:
            recycle_children(app, hard=hard)
        assert "\n" not in str(caught.value)
    with pytest.raises(TypeError, match="not a Celery app"):
        recycle_children(object(), hard="1 GiB")
