"""The WSGI middleware called as a WSGI server calls it: health served, load shed in ``hard``,
and shedding that lasts arms the recycle of a stuck worker."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from typing import Any

import pytest

from membound.guard.middleware import ASGIHealthMiddleware, HealthMiddleware
from membound.guard.watchdog import refusal
from membound.guard.watchdog.core import Watchdog
from membound.measure.cgroup.memory import process_usage


def _app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"served"]


def _call(app: HealthMiddleware, path: str) -> tuple[str, dict[str, str], bytes]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(app({"PATH_INFO": path, "REQUEST_METHOD": "GET"}, start_response))
    return seen["status"], seen["headers"], body


def _hard_dog() -> Watchdog:
    """A watchdog whose hard threshold is below this process's memory now."""
    usage = process_usage()
    assert usage is not None
    dog = Watchdog(limit=usage.judged * 4, soft="5%", hard="10%", recover="2%", on_soft=None)
    dog.check()
    assert "hard" == dog.state
    return dog


def test_health_is_served_and_requests_pass_while_ok() -> None:
    usage = process_usage()
    assert usage is not None
    dog = Watchdog(limit=usage.judged * 10, on_soft=None)
    dog.check()
    app = HealthMiddleware(_app, watchdog=dog)
    status, headers, body = _call(app, "/health")
    assert "200 OK" == status
    assert "application/json" == headers["Content-Type"]
    report = json.loads(body)
    assert "ok" == report["status"]
    assert dog.limit.bytes == report["limit_bytes"]
    assert ("200 OK", b"served") == (_call(app, "/work")[0], _call(app, "/work")[2])


def test_hard_sheds_new_work_and_says_so_on_health() -> None:
    app = HealthMiddleware(_app, watchdog=_hard_dog(), retry_after=7)
    status, headers, body = _call(app, "/work")
    assert status.startswith("503")
    assert "7" == headers["Retry-After"]
    assert b"served" not in body
    assert 1 == app.shed_count
    health_status, _, health_body = _call(app, "/health")
    assert health_status.startswith("503")
    assert "hard" == json.loads(health_body)["status"]


def test_shedding_can_be_turned_off() -> None:
    app = HealthMiddleware(_app, watchdog=_hard_dog(), shed=False)
    assert ("200 OK", b"served") == (_call(app, "/work")[0], _call(app, "/work")[2])


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"path": "health"}, "path"), ({"retry_after": -1}, "retry_after")]
)
def test_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HealthMiddleware(_app, **kwargs)
    with pytest.raises(ValueError, match=message):
        ASGIHealthMiddleware(_app, **kwargs)  # type: ignore[arg-type]


def test_shedding_that_lasts_arms_the_way_out(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="membound.guard")
    refusal.stop_refusing()  # what earlier tests' shedding armed is off
    refusal._said.clear()
    try:
        app = HealthMiddleware(_app, watchdog=_hard_dog(), recycle_after=0.2)
        assert _call(app, "/work")[0].startswith("503")
        time.sleep(0.6)  # still hard, memory not falling, and no supervisor in a test process
        assert "liveness probe" in caplog.text
        quiet = HealthMiddleware(_app, watchdog=_hard_dog(), recycle_after=None)
        refusal.stop_refusing()
        refusal._said.clear()
        caplog.clear()
        assert _call(quiet, "/work")[0].startswith("503")
        time.sleep(0.6)
        assert "liveness probe" not in caplog.text  # recycle_after=None: shed until it recovers
    finally:
        refusal.stop_refusing()
        refusal._said.clear()


def test_a_request_waits_for_a_temporary_to_go_and_is_served() -> None:
    """Past hard because of a 200 MiB temporary that is freed 0.1 s later: the request that
    came meanwhile waits and is served (WSGI and ASGI); one that comes while memory stays high
    is turned away after the wait."""
    for kind in ("wsgi", "asgi"):
        held = [bytearray(b"\x01") * (200 << 20)]
        usage = process_usage()
        assert usage is not None
        dog = Watchdog(limit=int(usage.judged * 1.02), hard="95%", on_soft=None, backstop=False)
        dog.check()
        assert "hard" == dog.state

        def free_soon(dog: Watchdog = dog, held: list[bytearray] = held) -> None:
            time.sleep(0.1)
            held.clear()
            dog.check()

        freeing = threading.Thread(target=free_soon)
        freeing.start()
        if kind == "wsgi":
            app = HealthMiddleware(_app, watchdog=dog, wait=2.0)
            status = _call(app, "/work")[0]
        else:
            asgi = ASGIHealthMiddleware(_asgi_app, watchdog=dog, wait=2.0)
            status = asyncio.run(_call_asgi(asgi, "/work"))
            app = asgi  # type: ignore[assignment]
        freeing.join()
        assert status.startswith("200"), (kind, status)
        assert (1, 0) == (app.waited_count, app.shed_count), kind
    stays = HealthMiddleware(_app, watchdog=_hard_dog(), wait=0.2)
    started = time.monotonic()
    assert _call(stays, "/work")[0].startswith("503")
    assert time.monotonic() - started >= 0.2  # it waited before turning the request away
    assert (0, 1) == (stays.waited_count, stays.shed_count)


async def _asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"served"})


async def _call_asgi(app: ASGIHealthMiddleware, path: str, method: str = "GET") -> str:
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    scope = {"type": "http", "path": path, "query_string": b"", "method": method}
    await app(scope, receive, send)
    return str(statuses[0])


class _RefusedWhileHeld:
    """An app whose first ``refusals`` runs write a temporary of a sixteenth of the limit, at
    least 40 MiB (twice the fall a retry waits for, or more), have the watchdog read it, and
    meet a ``MemoryError`` (as if a temporary held elsewhere left no room); a thread gives the
    temporary back 50 ms later, reading again meanwhile. Later runs are served."""

    def __init__(self, dog: Watchdog, refusals: int) -> None:
        self.dog, self.refusals, self.runs = dog, refusals, 0
        # At least 40 MiB: glibc maps a block of more than 32 MiB (its highest dynamic mmap
        # threshold) on its own, so freeing it lowers RSS; a smaller one, after an earlier
        # block of its size was freed, comes from the heap and may stay there when freed.
        self.size = max(dog.limit.bytes // 16, 40 << 20)
        self.held: list[bytearray] = []
        self.freeing: list[threading.Thread] = []

    def _refuse(self) -> None:
        self.held.append(bytearray(b"\x01") * self.size)
        self.dog.check()
        freeing = threading.Thread(target=self._free_soon)
        self.freeing.append(freeing)
        freeing.start()
        raise MemoryError

    def _free_soon(self) -> None:
        time.sleep(0.05)
        self.held.clear()
        for _ in range(5):
            self.dog.check()
            time.sleep(0.01)

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.runs += 1
        if self.runs <= self.refusals:
            self._refuse()
        return _app(environ, start_response)

    async def asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.runs += 1
        if self.runs <= self.refusals:
            self._refuse()
        await _asgi_app(scope, receive, send)


def _call_method(app: HealthMiddleware, environ: dict[str, Any]) -> str:
    seen: list[str] = []
    b"".join(app(environ, lambda status, headers: seen.append(status)))
    return seen[0]


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_a_get_refused_again_after_memory_came_back_waits_again(kind: str) -> None:
    """Memory read as back can still be too little (the group's figures move by more than the
    fall a retry waits for; the temporary that filled the room may still be held): a GET
    refused once more waits again within ``wait`` and is served (five times too: three ended
    the wait early), eight runs once more at most; a POST is never run again."""
    usage = process_usage()
    assert usage is not None
    # far from soft with a temporary, whatever this worker already holds
    dog = Watchdog(limit=usage.judged * 2 + (400 << 20), on_soft=None, backstop=False)
    dog.check()
    cases = [(2, "GET", "200", 3), (5, "GET", "200", 6), (9, "GET", "503", 9)]
    cases.append((1, "POST", "503", 1))
    for refusals, method, want, runs in cases:
        app = _RefusedWhileHeld(dog, refusals)
        if kind == "wsgi":
            wsgi = HealthMiddleware(app.wsgi, watchdog=dog, wait=5.0)
            environ = {"PATH_INFO": "/work", "REQUEST_METHOD": method}
            status = _call_method(wsgi, environ)
            retried = wsgi.retried_count
        else:
            asgi = ASGIHealthMiddleware(app.asgi, watchdog=dog, wait=5.0)
            status = asyncio.run(_call_asgi(asgi, "/work", method))
            retried = asgi.retried_count
        for thread in app.freeing:
            thread.join()
        said = (refusals, method, status, app.runs, retried, dog.state, refusal.refusing())
        assert status.startswith(want), said
        assert (runs, runs - 1) == (app.runs, retried), said
