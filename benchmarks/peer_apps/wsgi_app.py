"""The plain WSGI app of ``bench_peers.py`` (gunicorn sync workers): ``/work?id=N`` does
``work.py``'s request N and answers which worker served it; any other path just answers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import work


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    n = work.request_id(environ.get("QUERY_STRING", ""))
    if environ.get("PATH_INFO") == "/work":
        work.keep()
        size = work.spike_bytes(n)
        if size:
            held = work.spike(size)
            time.sleep(work.HOLD_S)
            del held
    body = work.answer(n)
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    start_response("200 OK", headers)
    return [body]
