"""The plain Celery app of ``bench_peers.py``: one task, ``peers.work(n)``, does ``work.py``'s
request n and returns ``[n, pid]``. Broker and result backend: the Redis at ``PEERS_REDIS``
(``redis://127.0.0.1:PORT``), databases 0 and 1. Celery's defaults otherwise."""

from __future__ import annotations

import os
import time

import work
from celery import Celery

REDIS = os.environ.get("PEERS_REDIS", "redis://127.0.0.1:6379")

app = Celery("peers", broker=f"{REDIS}/0", backend=f"{REDIS}/1")
app.conf.broker_connection_retry_on_startup = True


@app.task(name="peers.work")
def run(n: int) -> list[int]:
    work.keep()
    size = work.spike_bytes(n)
    if size:
        held = work.spike(size)
        time.sleep(work.HOLD_S)
        del held
    return [n, os.getpid()]
