"""Recycling: a worker that holds too much memory is replaced between requests or tasks, never
in the middle of one.

``policy`` decides (the worker's own memory against its share of the limit, and the pressure
on the whole service; with other requests in flight, the memory that lasts across their
temporaries, ``lasting``); the recycling slots (``membound.guard.slots``, a leaf the watchdog's
refusal takes slots from too) let only a few workers recycle at a time; ``ledger`` keeps each
worker's life for ``membound watch`` and health. The servers' hooks: ``gunicorn`` (sync and
threaded workers), ``uvicorn`` (an ASGI middleware, under gunicorn's uvicorn worker or alone),
``celery`` (billiard's own ``max_memory_per_child``, fed the private memory), and
``process_pools`` (``concurrent.futures``). ``Recycler`` is the old name of
``GunicornRecycler``.
"""

from __future__ import annotations

from membound.guard.recycle.celery import recycle_children
from membound.guard.recycle.gunicorn import GunicornRecycler, Recycler
from membound.guard.recycle.policy import Decision, Policy
from membound.guard.recycle.process_pools import RecyclingProcessPool, recycle_above
from membound.guard.recycle.uvicorn import ASGIRecycler

__all__ = [
    "ASGIRecycler",
    "Decision",
    "GunicornRecycler",
    "Policy",
    "Recycler",
    "RecyclingProcessPool",
    "recycle_above",
    "recycle_children",
]
