"""membound's recipe for Celery (``bench_peers.MEMBOUND["celery"]``), as
docs/guides/service-leaks.md gives it: ``recycle_children(app, hard=…, largest_task=…)`` where
the app is made (the largest task: the 150 MiB temporary of ``work.py``),
``hard`` from ``PEERS_MEMBOUND_HARD``. Started as ``celery -A celery_membound worker``."""

from __future__ import annotations

import os

from celery_app import app

from membound.guard import recycle_children

recycle_children(app, hard=os.environ["PEERS_MEMBOUND_HARD"], largest_task="150 MiB")

__all__ = ["app"]
