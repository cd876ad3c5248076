"""An ASGI worker's recycler driven directly (no server, so nothing is stopped: it only says a
worker is above its point): one request holds a 200 MiB temporary while others are answered,
then frees it; later one request keeps 200 MiB for good. Prints one line per phase with the
number of "above its recycle point" warnings so far."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from membound.guard import ASGIRecycler
from membound.measure.cgroup.memory import process_usage

MiB = 1 << 20
warnings: list[str] = []


class Counted(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if "above its recycle point" in record.getMessage():
            warnings.append(record.getMessage())


logging.getLogger("membound.guard").addHandler(Counted())
kept: list[bytearray] = []
gate = asyncio.Event()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["path"] == "/temporary":
        held = bytearray(b"\x07") * (200 * MiB)
        await gate.wait()
        del held
    elif scope["path"] == "/keep":
        kept.append(bytearray(b"\x07") * (200 * MiB))
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def request(recycler: ASGIRecycler, path: str) -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        return None

    await recycler({"type": "http", "path": path}, receive, send)


async def main() -> None:
    usage = process_usage("self")
    assert usage is not None
    hard = usage.judged + 100 * MiB
    recycler = ASGIRecycler(app, hard=hard, jitter=0.0, workers=1, supervised=False)
    await request(recycler, "/")  # boot: the last reading without the temporary
    # The temporary's life counts from that reading: writing 200 MiB took most of a second under
    # load, and a deadline counted from after it let the whole life outlast the 2 s span.
    deadline = asyncio.get_running_loop().time() + float(sys.argv[1])
    big = asyncio.create_task(request(recycler, "/temporary"))
    await asyncio.sleep(0.05)
    while asyncio.get_running_loop().time() < deadline:  # others answered beside it
        await request(recycler, "/")
        await asyncio.sleep(0.01)
    print("while another request holds a temporary:", len(warnings), flush=True)
    gate.set()
    await big
    await request(recycler, "/")
    print("after it ended:", len(warnings), flush=True)
    await request(recycler, "/keep")
    print("after a request kept memory:", len(warnings), flush=True)


asyncio.run(main())
