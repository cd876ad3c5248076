"""An ASGI app behind membound's ASGI health middleware. ``/refuse`` sets the refuse-new-work
flag (what a watchdog's hard action does); ``/`` answers with the worker's pid."""

from __future__ import annotations

import os
from typing import Any

from membound.guard import actions
from membound.guard.middleware import ASGIHealthMiddleware


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/refuse":
        actions.refuse_new_work()(None)  # type: ignore[arg-type]
    body = str(os.getpid()).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


application = ASGIHealthMiddleware(app)
