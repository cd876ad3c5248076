"""The WSGI middleware called as a WSGI server calls it: health served, load shed in ``hard``,
and shedding that lasts arms the recycle of a stuck worker."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest

from membound.guard import refusal
from membound.guard.middleware import ASGIHealthMiddleware, HealthMiddleware
from membound.guard.watchdog import Watchdog
from membound.measure.cgroup_memory import process_usage


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
