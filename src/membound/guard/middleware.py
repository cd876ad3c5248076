"""Health endpoints and load shedding for WSGI and ASGI apps.

Both middlewares serve :func:`~membound.guard.health.health` as JSON at ``path`` (default
``/health``): status 200 while the process is ``ok`` or ``soft``, 503 in ``hard`` so that a load
balancer drains it (Dask's ``/health`` says "ok" whatever happens). Every other request passes
through, except while the watchdog is ``hard`` or new work is refused
(``actions.refuse_new_work``): then it is answered at once with 503 and ``Retry-After`` (and
never reaches the app), so a process near its limit stops taking work instead of being killed
in the middle of it. Shedding must end: when it has lasted ``recycle_after`` seconds with memory
not falling (a leaking worker never gets back under ``recover``), a worker under a supervisor
(gunicorn, ``uvicorn --workers``) recycles itself gracefully (``refusal.recycle_if_stuck``); a
single process keeps answering 503 on ``/health`` so that a liveness probe restarts it
(``membound.guard.refusal``).

``/health?scope=service`` (or ``scope="service"`` for every request to ``path``) adds the whole
service to the answer: every worker of the server and the leak trend judged across them
(``health(scope="service")``). The status code stays this worker's: a load balancer asks
whether *this* worker takes work.

Written here rather than taken from a library: the WSGI and ASGI protocols are a few lines
each, and a framework's health plugin would tie membound to that framework.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, Generic, Literal, TypeVar

from membound.guard import watchdog as _watchdog
from membound.guard.health import health
from membound.guard.refusal import recycle_if_stuck, refusing

__all__ = ["ASGIHealthMiddleware", "HealthMiddleware", "shedding"]

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

App = TypeVar("App")

_SHED_BODY = b'{"status": "hard", "error": "memory near its limit: try again later"}'


def shedding(watchdog: _watchdog.Watchdog | None = None) -> bool:
    """True when new work should be turned away: the watchdog is ``hard`` or work is refused."""
    dog = watchdog if watchdog is not None else _watchdog.current()
    return refusing() or (dog is not None and dog.state == "hard")


HealthScope = Literal["process", "service"]


def _scope(default: HealthScope, query: str) -> HealthScope:
    """The scope a request to the health path asks for (``?scope=service``)."""
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        if key == "scope" and value in ("process", "service"):
            return "service" if value == "service" else "process"
    return default


def _health_response(
    watchdog: _watchdog.Watchdog | None, scope: HealthScope = "process"
) -> tuple[int, bytes]:
    report = health(watchdog, scope)
    code = 503 if report["status"] == "hard" or report["refusing"] else 200
    return code, json.dumps(report).encode()


def _check_args(path: str, retry_after: int) -> None:
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"path must start with '/', got {path!r}")
    if isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 0:
        raise ValueError(f"retry_after must be a whole number of seconds >= 0, got {retry_after!r}")


class _Guarded(Generic[App]):
    """What both middlewares keep: the app, where health is served, whom to ask, how to shed."""

    def __init__(
        self,
        app: App,
        path: str = "/health",
        watchdog: _watchdog.Watchdog | None = None,
        retry_after: int = 5,
        shed: bool = True,
        recycle_after: float | None = 30.0,
        scope: HealthScope = "process",
    ) -> None:
        _check_args(path, retry_after)
        if scope not in ("process", "service"):
            raise ValueError(f"scope must be 'process' or 'service', got {scope!r}")
        if recycle_after is not None and (
            isinstance(recycle_after, bool)
            or not isinstance(recycle_after, int | float)
            or not 0 <= recycle_after <= 86400  # NaN fails this too
        ):
            raise ValueError(
                f"recycle_after is seconds from 0 to 86400 or None, got {recycle_after!r}"
            )
        self.app, self.path, self.watchdog = app, path, watchdog
        self.retry_after, self.shed, self.recycle_after = retry_after, shed, recycle_after
        self.scope: HealthScope = scope
        self.shed_count = 0

    def _shed_one(self) -> None:
        """Count a request turned away, and arm the recycle of a worker stuck shedding."""
        self.shed_count += 1
        recycle_if_stuck(self.recycle_after, watchdog=self.watchdog)


class HealthMiddleware(_Guarded[WSGIApp]):
    """WSGI middleware: ``/health`` and load shedding in the ``hard`` state.

    Args:
        app: the WSGI application.
        path: where health is served.
        watchdog: the watchdog to read (default: the one started last in the process).
        retry_after: seconds put in ``Retry-After`` when shedding.
        shed: turn requests away with 503 in ``hard`` (False: only serve health).
        recycle_after: seconds of shedding with memory not falling after which a worker under
            a supervisor recycles itself gracefully (None: shed until memory recovers).
        scope: ``"service"`` reports the whole service at ``path`` (a request may also ask
            with ``?scope=service``).
    """

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == self.path:
            scope = _scope(self.scope, str(environ.get("QUERY_STRING", "")))
            code, body = _health_response(self.watchdog, scope)
            status = "200 OK" if code == 200 else "503 Service Unavailable"
            headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            headers.append(("Cache-Control", "no-store"))
            start_response(status, headers)
            return [body]
        if self.shed and shedding(self.watchdog):
            self._shed_one()
            start_response(
                "503 Service Unavailable",
                [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(_SHED_BODY))),
                    ("Retry-After", str(self.retry_after)),
                ],
            )
            return [_SHED_BODY]
        return self.app(environ, start_response)


class ASGIHealthMiddleware(_Guarded[ASGIApp]):
    """ASGI middleware: ``/health`` and load shedding in the ``hard`` state (HTTP only;
    lifespan and websocket scopes pass through). Arguments as :class:`HealthMiddleware`."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        if scope.get("path") == self.path:
            query = scope.get("query_string", b"")
            asked = _scope(self.scope, query.decode("latin-1") if isinstance(query, bytes) else "")
            code, body = _health_response(self.watchdog, asked)
            await _respond(send, code, body, [(b"cache-control", b"no-store")])
            return
        if self.shed and shedding(self.watchdog):
            self._shed_one()
            retry = [(b"retry-after", str(self.retry_after).encode())]
            await _respond(send, 503, _SHED_BODY, retry)
            return
        await self.app(scope, receive, send)


async def _respond(send: Send, code: int, body: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
