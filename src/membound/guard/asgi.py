"""What membound's ASGI wrappers share: the protocol's types, and an answer sent in slices.

**Slices.** A server holds what it cannot write to the socket at once, and some copy it to do so:
uvicorn (h11) on CPython 3.10 and 3.11 joins an answer's body into a new bytes object, and
asyncio's socket transport copies the part the socket did not take into its own buffer (3.12
keeps the caller's buffer instead). A 100 MiB answer to a slow reader took a uvicorn 0.54
worker's peak RSS to 318 MiB on 3.11 (316 on 3.10: three copies), 128 MiB when sent in
slices of 1 MiB (3.12 and 3.13: 126 MiB without slices, 129 with). Those copies are made in
the server's own code, where a refusal by the backstop cannot be run again (the connection is
lost). :func:`sliced_send` hands the server at most one slice per ``send``; uvicorn's flow
control waits for the socket to drain between them, so what the server buffers stays within a
slice and its high-water mark. The bytes sent are the same, in the same order; only the number
of ``http.response.body`` messages changes (``more_body`` is true on all but the last slice of
a last body).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["SLICE_BYTES", "ASGIApp", "Receive", "Scope", "Send", "sliced_send"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The most one ``http.response.body`` message hands the server (a body this size or smaller
#: passes as it is). 1 MiB: a copy of it costs nothing beside the answer, and a slice per
#: ``send`` keeps the per-message cost of a big answer below 1 % of writing it.
SLICE_BYTES = 1 << 20


def sliced_send(send: Send, size: int = SLICE_BYTES) -> Send:
    """``send`` that passes a response body bigger than ``size`` bytes to ``send`` in slices
    of at most ``size`` (every other message as it is)."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size is a number of bytes, at least 1, got {size!r}")

    async def sending(message: MutableMapping[str, Any]) -> None:
        body = message.get("body") if message.get("type") == "http.response.body" else None
        if not isinstance(body, bytes | bytearray) or len(body) <= size:
            await send(message)
            return
        more = bool(message.get("more_body", False))
        # Slices of a view copy only the slice; the view is released however the sends end
        # (a bytearray the app keeps could not be resized while a kept traceback held it).
        with memoryview(body) as whole:
            for start in range(0, len(whole), size):
                last = start + size >= len(whole)
                part = bytes(whole[start : start + size])
                await send({**message, "body": part, "more_body": more or not last})

    return sending
