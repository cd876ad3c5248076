"""A WSGI app whose workers hold memory on request: ``/grow`` keeps 50 MiB more (written),
``/drop`` gives it all back to the OS, anything else answers with the worker's pid."""

from __future__ import annotations

import ctypes
import gc
import os
from collections.abc import Callable, Iterable
from typing import Any

held: list[bytearray] = []


def application(environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "/")
    if path == "/grow":
        held.append(bytearray(b"\x01" * (50 << 20)))
    elif path == "/drop":
        held.clear()
        gc.collect()
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    start("200 OK", [("Content-Type", "text/plain")])
    return [f"{os.getpid()} {len(held) * 50} MiB\n".encode()]
