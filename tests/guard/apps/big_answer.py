"""An ASGI app whose ``/big?N`` answers N MiB of written bytes, and ``/hwm`` the process's peak
RSS in bytes (JSON); behind ``ASGIHealthMiddleware`` with ``answer_slice`` from ``MB_TEST_SLICE``
(``none``: the app's messages as they are)."""

from __future__ import annotations

import json
import os
from typing import Any

from membound.guard import ASGIHealthMiddleware


def _peak_rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/big":
        body = b"x" * (int(scope["query_string"] or b"1") << 20)  # every page written
    else:
        body = json.dumps({"hwm": _peak_rss()}).encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_slice = os.environ.get("MB_TEST_SLICE", "none")
application = ASGIHealthMiddleware(app, answer_slice=None if _slice == "none" else int(_slice))
