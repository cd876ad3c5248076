"""A WSGI app whose workers hold memory on request: ``/grow`` keeps 50 MiB more (written, so
the cgroup is charged for it), ``/drop`` gives it all back to the OS, anything else
answers with the worker's pid. ``?hold=SECONDS`` keeps the worker busy that long after the
work: a sync worker takes one request at a time, so requests sent together while each holds
its worker land on different workers."""

from __future__ import annotations

import ctypes
import gc
import os
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

#: What each ``/grow`` keeps.
GROW_BYTES = 50 << 20
held: list[bytearray] = []


def application(environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "/")
    if path == "/grow":
        held.append(bytearray(b"\x01") * GROW_BYTES)  # written: charged, no second copy
    elif path == "/drop":
        held.clear()
        gc.collect()
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    hold = float(parse_qs(environ.get("QUERY_STRING", "")).get("hold", ["0"])[0])
    time.sleep(min(hold, 10.0))
    start("200 OK", [("Content-Type", "text/plain")])
    return [f"{os.getpid()} {len(held) * GROW_BYTES >> 20} MiB\n".encode()]
