"""An ASGI answer reaches the server in slices (``membound.guard.asgi.sliced_send``): the same
bytes in the same order, and under uvicorn a big answer to a slow client is no longer copied
twice more by the server (CPython 3.10 and 3.11)."""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from membound.guard.asgi import sliced_send
from tests.guard.server_helpers import get, python, serve
from tests.ports import free_port

MIB = 1 << 20


def _sent(messages: list[dict[str, Any]], size: int) -> list[MutableMapping[str, Any]]:
    out: list[MutableMapping[str, Any]] = []

    async def server(message: MutableMapping[str, Any]) -> None:
        out.append(message)

    async def run() -> None:
        send = sliced_send(server, size)
        for message in messages:
            await send(message)

    asyncio.run(run())
    return out


_body = st.one_of(st.binary(max_size=300), st.binary(max_size=300).map(bytearray))
_message = st.one_of(
    st.builds(
        lambda body, more, extra: {
            "type": "http.response.body",
            "body": body,
            **({"more_body": more} if more is not None else {}),
            **extra,
        },
        _body,
        st.none() | st.booleans(),
        st.dictionaries(st.sampled_from(["trailers", "x-extension"]), st.integers(), max_size=1),
    ),
    st.just({"type": "http.response.start", "status": 200, "headers": []}),
    st.just({"type": "http.response.body"}),  # no body key: an empty body
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_message, max_size=6), st.integers(min_value=1, max_value=64))
def test_slices_carry_the_same_bytes_in_the_same_order(
    messages: list[dict[str, Any]], size: int
) -> None:
    out = _sent(messages, size)
    bodies = [m for m in out if m.get("type") == "http.response.body"]
    # every body the server gets is at most one slice; together they are the app's bytes
    assert all(len(m.get("body", b"")) <= size for m in bodies)
    sent = b"".join(bytes(m.get("body", b"")) for m in bodies)
    wanted = b"".join(
        bytes(m.get("body", b"")) for m in messages if m.get("type") == "http.response.body"
    )
    assert wanted == sent
    # the other messages pass as they are, in order
    assert [m for m in messages if m.get("type") != "http.response.body"] == [
        m for m in out if m.get("type") != "http.response.body"
    ]
    # each app message's last slice says what the app's message said; earlier ones say more
    follows = iter(out)
    for message in messages:
        if message.get("type") != "http.response.body":
            assert message == next(follows)
            continue
        body = message.get("body", b"")
        count = max(1, -(-len(body) // size)) if len(body) > size else 1
        parts = [next(follows) for _ in range(count)]
        if count == 1:
            assert message == parts[0]  # small enough: the very message
            continue
        assert all(p["more_body"] is True for p in parts[:-1])
        assert parts[-1]["more_body"] is bool(message.get("more_body", False))
        extra = {k: v for k, v in message.items() if k not in ("body", "more_body")}
        assert all({k: p[k] for k in extra} == extra for p in parts)


def test_a_slice_size_that_is_not_a_count_of_bytes_is_refused() -> None:
    async def server(message: MutableMapping[str, Any]) -> None:
        pass

    for bad in (0, -1, 1.5, True, "1"):
        with pytest.raises(ValueError, match="size is a number of bytes"):
            sliced_send(server, bad)  # type: ignore[arg-type]


def _slow_read(port: int, path: str) -> bytes:
    """GET ``path`` as a slow client: a small receive buffer, and a second before reading, so
    that the server must hold what the socket did not take."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as client:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        client.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        time.sleep(1.0)
        chunks = []
        while chunk := client.recv(MIB):
            chunks.append(chunk)
    return b"".join(chunks)


def _peak(port: int) -> int:
    reply = get(f"http://127.0.0.1:{port}/hwm")
    assert 200 == reply.status, reply
    return int(str(reply.body["hwm"]))


@pytest.mark.parametrize("answer_slice", [str(MIB), "none"])
def test_a_big_answer_to_a_slow_client_is_not_copied_by_uvicorn(
    tmp_path: Path, answer_slice: str
) -> None:
    size_mib = 64
    port = free_port()
    argv = python("uvicorn", "--host", "127.0.0.1", "--port", str(port), "--no-access-log")
    argv += ["--http", "h11", "--loop", "asyncio"]  # the copies below are h11's and asyncio's
    with serve([*argv, "big_answer:application"], port, tmp_path, {"MB_TEST_SLICE": answer_slice}):
        before = _peak(port)
        raw = _slow_read(port, f"/big?{size_mib}")
        after = _peak(port)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"x" * (size_mib * MIB) == body  # every byte, in order
    grew = (after - before) / (size_mib * MIB)
    if answer_slice != "none" or sys.version_info >= (3, 12):
        # the answer itself and about a slice more (3.12's transport keeps the caller's buffer)
        assert grew < 1.5, grew
    else:
        # h11 joins the body into a new object, asyncio's transport copies what the socket
        # did not take: the contrast that makes the slices worth sending
        assert grew > 2.5, grew
