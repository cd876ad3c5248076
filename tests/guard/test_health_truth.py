"""What ``/health`` says agrees with what the worker does (issue 36): a worker that refuses
new work never answers ``"status": "ok"``, and every figure says whether it is this process's
or its cgroup's (the group every worker of a service shares)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from membound.guard.health import health
from membound.guard.middleware import ASGIHealthMiddleware, HealthMiddleware
from membound.guard.watchdog import refusal
from membound.guard.watchdog.core import Watchdog
from membound.measure.cgroup.memory import process_usage
from tests.guard.cgroup_helpers import memory_cgroup

MIB = 1 << 20


def _app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"served"]


async def _asgi(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"served"})


def _wsgi_get(app: HealthMiddleware, path: str) -> tuple[int, dict[str, Any]]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["code"] = int(status.split(maxsplit=1)[0])

    body = b"".join(app({"PATH_INFO": path, "REQUEST_METHOD": "GET"}, start_response))
    return seen["code"], json.loads(body) if body != b"served" else {}


def _asgi_get(app: ASGIHealthMiddleware, path: str) -> tuple[int, dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = {"type": "http", "path": path, "query_string": b"", "method": "GET"}
    asyncio.run(app(scope, receive, send))
    body = sent[1]["body"]
    return sent[0]["status"], json.loads(body) if body != b"served" else {}


@pytest.fixture
def ok_dog() -> Iterator[Watchdog]:
    """A watchdog that reads ``ok`` (its limit is ten times this process's memory)."""
    usage = process_usage()
    assert usage is not None
    dog = Watchdog(limit=usage.judged * 10, on_soft=None)
    dog.check()
    assert "ok" == dog.state
    yield dog
    refusal.stop_refusing()


def test_a_refusing_worker_never_says_ok(ok_dog: Watchdog) -> None:
    """The state was ``ok`` (a refusal that began at the backstop, or has not ended yet): the
    answer is 503, and its status says the worker refuses, not ``ok``."""
    wsgi = HealthMiddleware(_app, watchdog=ok_dog)
    asgi = ASGIHealthMiddleware(_asgi, watchdog=ok_dog)
    assert (200, "ok") == (_wsgi_get(wsgi, "/health")[0], _wsgi_get(wsgi, "/health")[1]["status"])
    refusal.start_refusing()
    for get, app in ((_wsgi_get, wsgi), (_asgi_get, asgi)):
        code, report = get(app, "/health")  # type: ignore[operator]
        assert 503 == code
        assert "refusing" == report["status"], report["status"]
        assert "ok" == report["state"]  # what the thresholds say, apart
        assert report["refusing"] is True
        code, shed = get(app, "/work")  # type: ignore[operator]
        assert (503, "refusing") == (code, shed["status"])
    report = health(ok_dog)
    assert "refusing" == report["status"]
    refusal.stop_refusing()
    assert "ok" == health(ok_dog)["status"]


def test_hard_is_hard_whether_or_not_work_is_refused() -> None:
    usage = process_usage()
    assert usage is not None
    dog = Watchdog(limit=usage.judged * 4, soft="5%", hard="10%", recover="2%", on_soft=None)
    dog.check()
    try:
        refusal.start_refusing()
        report = health(dog)
        assert ("hard", "hard") == (report["status"], report["state"])
    finally:
        refusal.stop_refusing()


def test_every_figure_says_whose_it_is_in_a_cgroup() -> None:
    """In a memory cgroup the usage, headroom and OOM kills are the group's (every worker of
    the service sees the same), RSS, peak and GC this process's."""
    code = "import json, membound as mb; print(json.dumps(mb.health()))"
    with memory_cgroup(400 * MIB) as group:
        done = group.run([sys.executable, "-c", code], check=True)
    report = json.loads(done.stdout)
    per = report["per"]
    assert group.path == report["group"]
    for name in ("usage_bytes", "anon_bytes", "page_cache_bytes", "headroom_bytes", "oom_kills"):
        assert "group" == per[name], (name, per)
    assert "group" == per["limit_bytes"]
    for name in ("rss_bytes", "peak_bytes", "gc", "pools", "refusing", "status", "watchdog"):
        assert "process" == per[name], (name, per)
    assert set(per) < set(report), set(per) - set(report)


def test_without_a_cgroup_limit_the_figures_are_the_process_own() -> None:
    usage = process_usage()
    assert usage is not None
    dog = Watchdog(limit=usage.judged * 10, on_soft=None)
    dog.check()
    report = health(dog)
    assert report["group"] is None
    per = report["per"]
    assert isinstance(per, dict)
    assert "process" == per["usage_bytes"] == per["headroom_bytes"] == per["rss_bytes"]
    assert "given" == per["limit_bytes"]
