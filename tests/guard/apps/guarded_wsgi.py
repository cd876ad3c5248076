"""A WSGI app for the gunicorn tests and ``benchmarks/bench_servers.py``, guarded as the
environment says; ``GunicornRecycler``'s hooks come from a config file (``guarded_conf.py``).

Endpoints as ``guarded_asgi.py``: ``/leak`` keeps 1 MiB more (``MB_TEST_LEAK_MIB``; with
``?hold=M`` a temporary M MiB held 0.2 s, and then while the file named by ``&until=PATH``
exists, 10 s at most), ``/slow?S``
sleeps S seconds, ``/grow?M`` keeps M MiB at once, ``/`` answers; each says which worker answered.

Environment: ``MB_TEST_GUARD`` = ``none`` (bare app), ``health`` (``HealthMiddleware``; the
default) or ``full`` (and a Watchdog with ``on_hard=actions.refuse_new_work()`` started in each
worker at its first request); ``MB_TEST_ON_HARD`` = ``exit`` or ``refuse`` as in
``guarded_asgi.py`` (a Watchdog on the worker's own memory plus ``MB_TEST_HEADROOM_MIB``);
``MB_TEST_ERROR_PAGES=1`` puts the app behind a framework's error handling (an exception
becomes a 500 page).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from guarded_asgi import DOGS, HOLD_S, KEPT, LEAK, MIB, _start_watchdog, held_until

from membound.guard.middleware import HealthMiddleware

_started: list[int] = []


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path, query = environ.get("PATH_INFO"), environ.get("QUERY_STRING", "")
    if path == "/leak":
        KEPT.append(b"\x01" * LEAK)
        if query.startswith("hold="):  # a temporary of that many MiB, held 0.2 s
            size, _, until = query[5:].partition("&until=")
            held = bytearray(b"\x07") * (int(size) * MIB)
            deadline = held_until()
            time.sleep(HOLD_S)
            while until and os.path.exists(until) and time.monotonic() < deadline:
                time.sleep(0.01)
            del held
    elif path == "/grow":
        KEPT.append(b"\x02" * (int(query or "32") * MIB))
    elif path == "/slow":
        time.sleep(float(query or "1"))
    body = json.dumps({"pid": os.getpid(), "kept_mib": sum(map(len, KEPT)) / MIB}).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def start_in_worker() -> None:
    """Start this worker's watchdog, once (gunicorn forks workers after the import)."""
    if os.getpid() not in _started:
        _started.append(os.getpid())
        DOGS.clear()
        _start_watchdog()


def _per_worker(inner: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """Start the worker's watchdog at its first request, if its boot did not."""

    def first(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_in_worker()
        return inner(environ, start_response)

    return first


def error_pages(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """``app`` behind a framework's error handling (as Flask and Django have it): an exception
    becomes a 500 page."""
    try:
        return app(environ, start_response)
    except Exception:
        body = b"Internal Server Error"
        start_response("500 INTERNAL SERVER ERROR", [("Content-Length", str(len(body)))])
        return [body]


def _guarded() -> Callable[..., Iterable[bytes]]:
    guard = os.environ.get("MB_TEST_GUARD", "health")
    inner = error_pages if os.environ.get("MB_TEST_ERROR_PAGES") == "1" else app
    if guard == "none":
        return inner
    return _per_worker(HealthMiddleware(inner))


application = _guarded()
