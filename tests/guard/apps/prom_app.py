"""A WSGI app for the Prometheus multiprocess test, served by several gunicorn workers.

* ``/metrics``: every worker's figures, merged by ``MultiProcessCollector``;
* ``/grow?mb=N``: this worker keeps N MiB more (non-zero bytes, so they are resident) and
  answers its pid;
* ``/exit``: answers its pid, then the worker ends (gunicorn starts another one).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

held: list[bytes] = []


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "/")
    content_type = "text/plain"
    if path == "/metrics":
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        body = generate_latest(registry)
        content_type = CONTENT_TYPE_LATEST
    elif path == "/grow":
        mib = int(parse_qs(environ.get("QUERY_STRING", "")).get("mb", ["0"])[0])
        held.append(b"\x01" * (mib << 20))
        body = str(os.getpid()).encode()
    elif path == "/exit":
        threading.Timer(0.1, os._exit, (0,)).start()
        body = str(os.getpid()).encode()
    else:
        start_response("404 Not Found", [("Content-Type", content_type)])
        return [b"not found"]
    start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]
