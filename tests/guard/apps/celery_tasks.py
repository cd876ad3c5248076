"""A Celery app for ``tests/guard/test_celery_recycler.py`` and ``benchmarks/bench_celery.py``.

Environment: ``MB_TEST_REDIS`` (the broker's and result backend's ``redis://`` base URL),
``MB_TEST_CELERY_GUARD`` = ``membound`` (``recycle_children(app, hard=MB_TEST_CELERY_HARD)``),
``celery`` (Celery's own ``worker_max_memory_per_child`` at the same threshold) or ``none``;
``MB_TEST_CELERY_LARGEST``: ``recycle_children``'s ``largest_task``.

Tasks: ``leak(n, mib)`` keeps ``mib`` MiB more in the child; ``spike(n, mib)`` writes ``mib`` MiB,
frees it and returns; ``hold(n, mib, seconds)`` writes ``mib`` MiB and holds it ``seconds``;
each returns ``[n, pid]``; ``refused(n)`` raises ``MemoryError`` every time (an allocation
the guard refuses whenever it runs).
"""

from __future__ import annotations

import os
import time

from celery import Celery

from membound._units import parse_size
from membound.guard.recycle.celery import recycle_children

MIB = 1 << 20
KEPT: list[bytes] = []
REDIS = os.environ.get("MB_TEST_REDIS", "redis://127.0.0.1:6379")

app = Celery("celery_tasks", broker=f"{REDIS}/0", backend=f"{REDIS}/1")
app.conf.update(
    worker_prefetch_multiplier=1,
    task_acks_late=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
GUARD = os.environ.get("MB_TEST_CELERY_GUARD", "membound")
HARD = os.environ.get("MB_TEST_CELERY_HARD", "96 MiB")
if GUARD == "membound":
    recycle_children(app, hard=HARD, largest_task=os.environ.get("MB_TEST_CELERY_LARGEST"))
elif GUARD == "celery":
    app.conf.worker_max_memory_per_child = parse_size(HARD) // 1024


@app.task
def leak(n: int, mib: float = 4) -> list[int]:
    KEPT.append(b"\x01" * int(mib * MIB))
    return [n, os.getpid()]


@app.task
def spike(n: int, mib: float = 64) -> list[int]:
    held = bytearray(int(mib * MIB))
    held[::4096] = b"\x02" * len(held[::4096])  # touch every page
    del held
    return [n, os.getpid()]


@app.task
def hold(n: int, mib: float = 150, seconds: float = 0.3) -> list[int]:
    held = bytearray(b"\x03") * int(mib * MIB)  # every page written
    time.sleep(seconds)
    del held
    return [n, os.getpid()]


@app.task
def refused(n: int) -> list[int]:
    raise MemoryError(f"task {n}: refused")
