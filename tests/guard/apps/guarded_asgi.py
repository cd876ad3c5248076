"""An ASGI app for the server tests and ``benchmarks/bench_servers.py``, guarded as the
environment says (read in each worker, so ``uvicorn --workers`` children see it too).

Endpoints: ``/leak`` keeps 1 MiB more in the worker (``MB_TEST_LEAK_MIB`` to change it;
``/leak?hold=M`` also writes a temporary M MiB and holds it 0.2 s without blocking the loop,
then while the file named by ``&until=PATH`` exists, 10 s at most);
``/slow?S`` sleeps S seconds (default 1) before answering; ``/grow?M`` keeps M MiB at once; ``/``
answers. Each says which worker answered and how much it keeps. The lifespan shutdown prints
``TIME lifespan shutdown PID`` (a worker that drained and closed); the guard's log lines go to
stderr with the time they were said.

Environment:

* ``MB_TEST_GUARD``: ``none`` (the bare app), ``health`` (``ASGIHealthMiddleware`` only; the
  default), ``recycle`` (and ``ASGIRecycler`` around it), ``full`` (``recycle`` plus a Watchdog
  started in each worker with ``on_hard=actions.refuse_new_work()``: the whole guard).
* ``MB_TEST_HARD`` (the recycler's ``hard``, default "64 MiB"), ``MB_TEST_SLOT_DIR``,
  ``MB_TEST_JITTER``, ``MB_TEST_SUPERVISED`` ("1": ``supervised=True``).
* ``MB_TEST_ON_HARD``: ``exit`` or ``refuse`` starts a Watchdog in each worker whose limit is
  its own memory at startup plus ``MB_TEST_HEADROOM_MIB`` (default 96), ``hard`` at half the
  headroom, with ``exit_gracefully(status=75, grace=10)`` or
  ``refuse_new_work(recycle_after=MB_TEST_RECYCLE_AFTER)`` as ``on_hard``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from typing import Any

from membound.guard import actions
from membound.guard.middleware import ASGIHealthMiddleware
from membound.guard.recycle.uvicorn import ASGIRecycler
from membound.guard.watchdog.core import Watchdog
from membound.measure.cgroup.memory import process_usage

MIB = 1 << 20
KEPT: list[bytes] = []
DOGS: list[Watchdog] = []
LEAK = int(float(os.environ.get("MB_TEST_LEAK_MIB", "1")) * MIB)
#: Seconds ``/leak?hold=M`` holds its temporary (other requests are served meanwhile;
#: ``MB_TEST_HOLD_S`` to change it).
HOLD_S = float(os.environ.get("MB_TEST_HOLD_S", "0.2"))

#: ``&until=PATH`` holds a temporary at most this long after it was made.
UNTIL_MOST_S = 10.0


def held_until() -> float:
    """The monotonic time a temporary made now is held until at most (``&until=``)."""
    return time.monotonic() + UNTIL_MOST_S


# The guard's lines (recycling, deferring) with the time they were said, for the tests.
_handler = logging.StreamHandler(sys.stderr)
_handler.setFormatter(logging.Formatter("%(created).3f %(message)s"))
logging.getLogger("membound.guard").addHandler(_handler)
logging.getLogger("membound.guard").setLevel(logging.INFO)


def _start_watchdog() -> None:
    on_hard = os.environ.get("MB_TEST_ON_HARD", "")
    if os.environ.get("MB_TEST_GUARD") == "full":
        DOGS.append(Watchdog(on_hard=actions.refuse_new_work()).start())
    elif on_hard:
        usage = process_usage("self")
        assert usage is not None
        base = usage.judged
        room = int(float(os.environ.get("MB_TEST_HEADROOM_MIB", "96")) * MIB)
        if on_hard == "exit":
            action = actions.exit_gracefully(status=75, grace=10)
        else:
            after = float(os.environ.get("MB_TEST_RECYCLE_AFTER", "2"))
            action = actions.refuse_new_work(recycle_after=after, grace=10)
        dog = Watchdog(
            soft=base + room // 4,
            hard=base + room // 2,
            recover=base + room // 8,
            limit=base + room,
            on_soft=None,
            on_hard=action,
        )
        DOGS.append(dog.start())


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _start_watchdog()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                print(f"{time.time():.3f} lifespan shutdown {os.getpid()}", flush=True)
                await send({"type": "lifespan.shutdown.complete"})
                return
    path, query = scope["path"], scope.get("query_string", b"").decode()
    if path == "/leak":
        KEPT.append(b"\x01" * LEAK)
        if query.startswith("hold="):  # a temporary of that many MiB, held 0.2 s
            size, _, until = query[5:].partition("&until=")
            held = bytearray(b"\x07") * (int(size) * MIB)
            deadline = held_until()
            await asyncio.sleep(HOLD_S)
            while until and os.path.exists(until) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            del held
    elif path == "/grow":
        KEPT.append(b"\x02" * (int(query or "32") * MIB))
    elif path == "/slow":
        await asyncio.sleep(float(query or "1"))
    body = json.dumps({"pid": os.getpid(), "kept_mib": sum(map(len, KEPT)) / MIB}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def error_pages(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``app`` behind a framework's error handling (as Starlette's ``ServerErrorMiddleware``):
    an exception becomes a 500 page, then propagates."""
    started: list[bool] = []

    async def noting(message: dict[str, Any]) -> None:
        started.append(message.get("type") == "http.response.start")
        await send(message)

    try:
        await app(scope, receive, noting)
    except Exception:
        if not any(started):
            body = b"Internal Server Error"
            await send({"type": "http.response.start", "status": 500, "headers": []})
            await send({"type": "http.response.body", "body": body})
        raise


def _guarded() -> Any:
    guard = os.environ.get("MB_TEST_GUARD", "health")
    inner: Any = error_pages if os.environ.get("MB_TEST_ERROR_PAGES") == "1" else app
    if guard == "none":
        return inner
    wrapped: Any = ASGIHealthMiddleware(inner)
    if guard in ("recycle", "full"):
        wrapped = ASGIRecycler(
            wrapped,
            hard=os.environ.get("MB_TEST_HARD", "64 MiB"),
            grace=10,
            jitter=float(os.environ.get("MB_TEST_JITTER", "0.1")),
            supervised=True if os.environ.get("MB_TEST_SUPERVISED") == "1" else None,
            slot_dir=os.environ.get("MB_TEST_SLOT_DIR") or None,
        )
    return wrapped


application = _guarded()
