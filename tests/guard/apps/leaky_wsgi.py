"""A WSGI app with a leaking endpoint, behind membound's health middleware.

``/leak`` keeps 1 MiB more in the worker each time (the leak); ``/`` answers; both say which
worker answered. ``/health`` is the middleware's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

from membound.guard.middleware import HealthMiddleware

KEPT: list[bytes] = []


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("PATH_INFO") == "/leak":
        KEPT.append(b"\x01" * (1 << 20))
    body = json.dumps({"pid": os.getpid(), "kept_mib": len(KEPT)}).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


application = HealthMiddleware(app)
