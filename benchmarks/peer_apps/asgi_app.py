"""The plain ASGI app of ``bench_peers.py`` (``uvicorn --workers``): ``/work?id=N`` does
``work.py``'s request N (holding its buffer without blocking the event loop) and answers which
worker served it; any other path just answers."""

from __future__ import annotations

import asyncio
from typing import Any

import work


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    n = work.request_id(scope.get("query_string", b"").decode())
    if scope["path"] == "/work":
        work.keep()
        size = work.spike_bytes(n)
        if size:
            held = work.spike(size)
            await asyncio.sleep(work.HOLD_S)
            del held
    body = work.answer(n)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
