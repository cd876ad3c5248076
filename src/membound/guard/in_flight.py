"""Requests in flight in this process, and whether the one in hand was served: what the
health middlewares, the recyclers and the service ledger share about a request.

A leaf (standard library only): the middlewares say a request begins and ends and when it is
answered without being served (a health probe, a 503); the recyclers judge a worker's memory
with the others still in flight in mind; the ledger counts only requests served and reads a
worker's lasting memory with none in flight. Kept apart from ``guard.recycle`` so that the
middlewares (imported by ``import membound``) load no recycler.
"""

from __future__ import annotations

import os
import threading
from contextvars import ContextVar

__all__ = ["begin_request", "end_request", "in_flight", "not_served", "take_not_served"]

#: Set while a request is answered without being served (see :func:`not_served`).
_NOT_SERVED: ContextVar[bool] = ContextVar("membound_not_served", default=False)
#: Set while this request is counted in flight (by the outermost layer that said it began).
_COUNTED: ContextVar[bool] = ContextVar("membound_request_counted", default=False)
#: Requests in flight in this process, as :func:`begin_request` and :func:`end_request` count
#: them (kept with the pid that counts: a forked child starts from nothing).
_flight = {"pid": 0, "count": 0}
_flight_lock = threading.Lock()


def not_served() -> None:
    """Say that the request in hand is answered without being served (a health probe, a 503):
    the ledger does not count it. Called by the health middlewares and the gunicorn hook, in
    the request's own thread or task, before the recycler looks after the response."""
    _NOT_SERVED.set(True)


def take_not_served() -> bool:
    """Whether :func:`not_served` was said of the request in hand, clearing it."""
    if _NOT_SERVED.get():
        _NOT_SERVED.set(False)
        return True
    return False


def begin_request() -> bool:
    """A request begins (the recyclers and the health middlewares say it, and
    :func:`end_request` when their part of it is over): it counts as served unless
    :func:`not_served` is said of it, and while it is in flight this process's memory holds
    what it holds — no reading taken meanwhile is the worker's lasting memory.

    Returns whether this call counted it: False when an outer layer (the ASGI recycler around
    the health middleware) already did, in the request's own context."""
    if _COUNTED.get():
        return False
    _COUNTED.set(True)
    _NOT_SERVED.set(False)
    with _flight_lock:
        if _flight["pid"] != os.getpid():
            _flight.update(pid=os.getpid(), count=0)
        _flight["count"] += 1
    return True


def end_request(counted: bool = True) -> int:
    """A request that :func:`begin_request` began is over (its response is in the server's
    hands); ``counted``: what that call returned (a layer that did not count it takes nothing
    off). Returns the other requests still in flight in this process."""
    with _flight_lock:
        if _flight["pid"] != os.getpid():
            return 0
        if counted:
            _COUNTED.set(False)
            _flight["count"] = max(0, _flight["count"] - 1)
        return _flight["count"]


def in_flight() -> int:
    """Requests in flight in this process now (0 where nothing counts them: a sync worker
    serves one at a time)."""
    with _flight_lock:
        return _flight["count"] if _flight["pid"] == os.getpid() else 0
