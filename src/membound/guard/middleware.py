"""Health endpoints and load shedding for WSGI and ASGI apps.

Both middlewares serve :func:`~membound.guard.health.health` as JSON at ``path`` (default
``/health``): status 200 while the process is ``ok`` or ``soft``, 503 in ``hard`` or while it
refuses work, so that a load balancer drains it (Dask's ``/health`` says "ok" whatever
happens); the answer's ``status`` agrees with the code (``refusing`` while work is refused
below ``hard``, never ``ok``). Every other request passes through, except while the watchdog
is ``hard`` or new work is refused (``actions.refuse_new_work``): then it waits up to ``wait``
seconds (0.5 s by default) for memory to come back — another request's temporary freed — and
is served if it does, else it is answered with 503 and ``Retry-After`` (and never reaches the
app), so a process near its limit stops taking work instead of being killed in the middle of
it. A request that waits allocates nothing meanwhile; the backstop (on by default) refuses the
one allocation that would pass the kernel's limit. Without the wait an unpaced client got
dozens of 503s in the 0.1 s a 150 MiB temporary held the service past ``hard``. Shedding must
end: when it has lasted ``recycle_after`` seconds with memory not falling (a leaking worker
never gets back under ``recover``), a worker under a supervisor (gunicorn, ``uvicorn
--workers``) recycles itself gracefully (``refusal.recycle_if_stuck``); a single process keeps
answering 503 on ``/health`` so that a liveness probe restarts it
(``membound.guard.watchdog.refusal``).

``/health?scope=service`` (or ``scope="service"`` for every request to ``path``) adds the whole
service to the answer: every worker of the server and the leak trend judged across them
(``health(scope="service")``). The status code stays this worker's: a load balancer asks
whether *this* worker takes work.

Written here rather than taken from a library: the WSGI and ASGI protocols are a few lines
each, and a framework's health plugin would tie membound to that framework.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from membound.guard.asgi import SLICE_BYTES, ASGIApp, Receive, Scope, Send, sliced_send
from membound.guard.health import health
from membound.guard.in_flight import begin_request, end_request, not_served
from membound.guard.watchdog.backstop import refused_so_far
from membound.guard.watchdog.instances import current
from membound.guard.watchdog.refusal import (
    asks_for_turn,
    check_delay,
    end_turn,
    memory_came_back,
    note_serving,
    recycle_if_stuck,
    refusing,
)

if TYPE_CHECKING:
    from membound.guard.watchdog.core import Watchdog

__all__ = ["ASGIHealthMiddleware", "HealthMiddleware", "shedding"]

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

App = TypeVar("App")

_log = logging.getLogger("membound.guard")

#: How often a waiting request looks again (a reading of the watchdog's state: no I/O).
_WAIT_STEP_S = 0.01
_SHED_BODY = b'{"status": "hard", "error": "memory near its limit: try again later"}'
#: Methods that change nothing (RFC 9110, 9.2.1): a request of these that met a ``MemoryError``
#: before its answer began is run once more, as a proxy retries an idempotent request.
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The answer while work is refused and the watchdog is not ``hard`` (``health()`` says the same
#: status: never ``ok`` while refusing).
_REFUSING_BODY = b'{"status": "refusing", "error": "memory near its limit: try again later"}'


def shedding(watchdog: Watchdog | None = None) -> bool:
    """True when new work should be turned away: the watchdog is ``hard`` or work is refused."""
    dog = watchdog if watchdog is not None else current()
    return refusing() or (dog is not None and dog.state == "hard")


def _shed_body(watchdog: Watchdog | None) -> bytes:
    dog = watchdog if watchdog is not None else current()
    return _SHED_BODY if dog is not None and dog.state == "hard" else _REFUSING_BODY


HealthScope = Literal["process", "service"]


def _scope(default: HealthScope, query: str) -> HealthScope:
    """The scope a request to the health path asks for (``?scope=service``)."""
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        if key == "scope" and value in ("process", "service"):
            return "service" if value == "service" else "process"
    return default


def _health_response(
    watchdog: Watchdog | None, scope: HealthScope = "process"
) -> tuple[int, bytes]:
    report = health(watchdog, scope)
    code = 503 if report["status"] in ("hard", "refusing") else 200
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
        watchdog: Watchdog | None = None,
        retry_after: int = 5,
        shed: bool = True,
        recycle_after: float | None = 30.0,
        scope: HealthScope = "process",
        wait: float = 0.5,
        retry: bool = True,
    ) -> None:
        _check_args(path, retry_after)
        if (
            isinstance(wait, bool)
            or not isinstance(wait, int | float)
            or not 0 <= wait <= 60  # NaN fails this too
        ):
            raise ValueError(f"wait is seconds from 0 to 60, got {wait!r}")
        if scope not in ("process", "service"):
            raise ValueError(f"scope must be 'process' or 'service', got {scope!r}")
        if recycle_after is not None:
            check_delay(recycle_after)
        self.app, self.path, self.watchdog = app, path, watchdog
        self.retry_after, self.shed, self.recycle_after = retry_after, shed, recycle_after
        self.scope: HealthScope = scope
        self.wait = float(wait)
        self.retry = bool(retry)
        self.shed_count = 0
        self.waited_count = 0
        self.retried_count = 0
        self.memory_errors = 0

    def _still_shedding(self) -> bool:
        """Whether to turn the request in hand away, after waiting up to ``wait`` seconds (in
        ``_WAIT_STEP_S`` steps, in this thread) for memory to come back."""
        if not (self.shed and shedding(self.watchdog)):
            return False
        deadline = time.monotonic() + self.wait
        while time.monotonic() < deadline:
            time.sleep(_WAIT_STEP_S)
            if not shedding(self.watchdog):
                self.waited_count += 1
                return False
        return True

    async def _still_shedding_async(self) -> bool:
        """:meth:`_still_shedding` without blocking the event loop."""
        if not (self.shed and shedding(self.watchdog)):
            return False
        deadline = time.monotonic() + self.wait
        while time.monotonic() < deadline:
            await asyncio.sleep(_WAIT_STEP_S)
            if not shedding(self.watchdog):
                self.waited_count += 1
                return False
        return True

    def _shed_one(self) -> None:
        """Count a request turned away, and arm the recycle of a worker stuck shedding."""
        self.shed_count += 1
        recycle_if_stuck(self.recycle_after, watchdog=self.watchdog)

    def _failed_usage(self, method: str, retries: _Retries) -> int | None:
        """After a ``MemoryError`` before the answer began: the judged usage to wait to fall
        below before a retry of a safe method, or None (no retry: another method, no retry
        left, retries off, or no watchdog to read)."""
        dog = self.watchdog if self.watchdog is not None else current()
        if not (self.retry and method in _SAFE_METHODS) or dog is None:
            return None
        if not retries.may_retry(asks_for_turn(dog)):
            return None
        usage = dog.usage
        return usage.judged if usage is not None else None

    def _wait_for_memory(self, before: int, deadline: float) -> None:
        """Wait until the monotonic ``deadline`` at most for memory to come back, or the turn at
        the group's room (``turns.py``), in ``_WAIT_STEP_S`` steps."""
        seen: list[int] = []
        while time.monotonic() < deadline and not memory_came_back(self.watchdog, before, seen):
            time.sleep(_WAIT_STEP_S)

    async def _wait_for_memory_async(self, before: int, deadline: float) -> None:
        """:meth:`_wait_for_memory` without blocking the event loop."""
        seen: list[int] = []
        while time.monotonic() < deadline and not memory_came_back(self.watchdog, before, seen):
            await asyncio.sleep(_WAIT_STEP_S)

    def _out_of_memory(self) -> None:
        """Count a request answered 503 because the app met a ``MemoryError``."""
        self.memory_errors += 1
        not_served()
        _log.info(
            "membound: pid %d: a request met a MemoryError before its answer began: 503 with "
            "Retry-After (%d so far)",
            os.getpid(),
            self.memory_errors,
        )

    def _retrying(self, waited: float) -> None:
        """Count a request run once more after a ``MemoryError``, and say so."""
        self.retried_count += 1
        _log.info(
            "membound: pid %d: a request met a MemoryError before its answer began; within "
            "%.2f s memory came back or its turn at the group's room came, and it runs once more",
            os.getpid(),
            waited,
        )


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
        wait: seconds a request that comes while work is turned away waits for memory to come
            back (served if it does) before it gets 503 (0: at once).
        retry: a GET, HEAD or OPTIONS request whose app met a ``MemoryError`` (the backstop
            refused an allocation that did not fit: another request's temporary held the room)
            before its answer began runs once more when memory comes back, and again each
            time it does, within ``wait`` seconds of that first refusal; refused under its
            share of the group's room (``turns.py``), it runs again on its turn (a wait of up
            to ``wait`` each); at most eight runs once more in all. Any other request, or a
            request out of runs or time, gets 503 with ``Retry-After`` instead of the
            server's 500. A 5xx answer the
            app begins after an allocation was refused in the process (a framework's own
            error page for the ``MemoryError``: Django, Flask, Starlette) is taken for that
            ``MemoryError``: held back, never sent.

    Attributes:
        shed_count: requests turned away with 503.
        waited_count: requests that waited and were served.
        retried_count: requests run again after a ``MemoryError``.
        memory_errors: requests answered 503 after a ``MemoryError`` in the app.
    """

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        note_serving()  # a replacement serves: a slot a recycled worker held is free again
        counted = begin_request()  # the ledger reads lasting memory only with none in flight
        try:
            return self._answer(environ, start_response)
        finally:
            end_request(counted)

    def _answer(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == self.path:
            not_served()  # a probe: the service ledger counts requests the app served
            scope = _scope(self.scope, str(environ.get("QUERY_STRING", "")))
            code, body = _health_response(self.watchdog, scope)
            status = "200 OK" if code == 200 else "503 Service Unavailable"
            headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            headers.append(("Cache-Control", "no-store"))
            start_response(status, headers)
            return [body]
        if self._still_shedding():
            self._shed_one()
            not_served()
            return self._refuse(start_response, _shed_body(self.watchdog))
        return self._run_app(environ, start_response)

    def _refuse(self, start_response: StartResponse, body: bytes) -> Iterable[bytes]:
        """A 503 with ``body`` and the ``Retry-After`` the middleware was given."""
        start_response(
            "503 Service Unavailable",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Retry-After", str(self.retry_after)),
            ],
        )
        return [body]

    def _run_app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """The app, with a ``MemoryError`` raised before its answer began handled (see
        ``retry``): what it raises later, while its body is read, is the server's to handle."""
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        retries = _Retries(self.wait)
        try:
            while True:
                began: list[bool] = []
                held: list[bool] = []
                returned: list[bool] = []
                holding = _holding_back(_noting_503(start_response), held, returned)
                tracked = _tracking_start_response(holding, began)
                try:
                    answer = self.app(environ, tracked)
                    returned.append(True)  # an answer begun from now on is the server's
                    if not held:
                        return answer
                    _close(answer)  # the app's own error page for the refusal: not sent
                    raise MemoryError
                except MemoryError:
                    retries.met = True
                    if began and not held:
                        raise
                    before = self._failed_usage(method, retries)
                    if before is None:
                        break
                started = time.monotonic()
                self._wait_for_memory(before, retries.until)
                self._retrying(time.monotonic() - started)
            self._out_of_memory()
            return self._refuse(start_response, _SHED_BODY)
        finally:
            if retries.met:
                end_turn(self.watchdog)  # done or given up: the others get their shares back


class ASGIHealthMiddleware(_Guarded[ASGIApp]):
    """ASGI middleware: ``/health`` and load shedding in the ``hard`` state (HTTP only;
    lifespan and websocket scopes pass through). Arguments as :class:`HealthMiddleware`, and:

    Args:
        answer_slice: the app's answer reaches the server in bodies of at most this many bytes
            (``membound.guard.asgi.sliced_send``): uvicorn on CPython 3.10 and 3.11 otherwise
            holds two more copies of a big answer while a slow client reads it (100 MiB:
            a worker's peak 318 -> 128 MiB), made in its own code, where a refused allocation
            loses the connection. None: the app's messages as they are.
    """

    def __init__(
        self,
        app: ASGIApp,
        path: str = "/health",
        watchdog: Watchdog | None = None,
        retry_after: int = 5,
        shed: bool = True,
        recycle_after: float | None = 30.0,
        scope: HealthScope = "process",
        wait: float = 0.5,
        retry: bool = True,
        *,
        answer_slice: int | None = SLICE_BYTES,
    ) -> None:
        super().__init__(app, path, watchdog, retry_after, shed, recycle_after, scope, wait, retry)
        if answer_slice is not None:
            sliced_send(_never_sent, answer_slice)  # the same check, before any request
        self.answer_slice = answer_slice

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        note_serving()  # a replacement serves: a slot a recycled worker held is free again
        counted = begin_request()  # the ledger reads lasting memory only with none in flight
        try:
            await self._answer(scope, receive, send)
        finally:
            end_request(counted)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("path") == self.path:
            not_served()  # a probe: the service ledger counts requests the app served
            query = scope.get("query_string", b"")
            asked = _scope(self.scope, query.decode("latin-1") if isinstance(query, bytes) else "")
            code, body = _health_response(self.watchdog, asked)
            await _respond(send, code, body, [(b"cache-control", b"no-store")])
            return
        if await self._still_shedding_async():
            self._shed_one()
            not_served()
            retry = [(b"retry-after", str(self.retry_after).encode())]
            await _respond(send, 503, _shed_body(self.watchdog), retry)
            return
        await self._run_app(scope, receive, send)

    async def _run_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app, with a ``MemoryError`` raised before its answer began handled (see
        ``retry``): a retry reads the request's messages again from what the first run read."""
        method = str(scope.get("method", "GET")).upper()
        read: list[MutableMapping[str, Any]] = []
        retries = _Retries(self.wait)
        try:
            while True:
                began: list[bool] = []
                held: list[bool] = []
                reading = _replaying_receive(receive, read)
                to_server = (
                    send if self.answer_slice is None else sliced_send(send, self.answer_slice)
                )
                tracked = _tracking_send(
                    _holding_back_sent(_noting_503_sent(to_server), held, refused_so_far()),
                    began,
                )
                try:
                    await self.app(scope, reading, tracked)
                    if not held:
                        return
                    raise MemoryError  # the app's own error page for the refusal: not sent
                except MemoryError:
                    retries.met = True
                    if began and not held:
                        raise
                    before = self._failed_usage(method, retries)
                    if before is None:
                        break
                started = time.monotonic()
                await self._wait_for_memory_async(before, retries.until)
                self._retrying(time.monotonic() - started)
            self._out_of_memory()
            retry_after = [(b"retry-after", str(self.retry_after).encode())]
            await _respond(send, 503, _SHED_BODY, retry_after)
        finally:
            if retries.met:
                end_turn(self.watchdog)  # done or given up: the others get their shares back


#: Runs once more one request may have in all, each once memory has come back (or its turn
#: came), all within ``wait``. A run refused again fails at its allocation, before most of its
#: work, so ``wait`` is what bounds a retried request; this only bounds an app that works long
#: before it allocates. Three ended the wait early: under the peers' stress load (gunicorn, 3
#: workers holding 60–150 MiB temporaries) memory came back by a little several times while
#: no room for the refused temporary was free, and 1–2 requests a round got 503 after 0.26–0.41
#: s of a 0.5 s wait (none with eight, in 6 rounds).
_MOST_RETRIES = 8


class _Retries:
    """The runs once more one request may still have, at most ``_MOST_RETRIES`` in all: after a
    refusal at the kernel's line, one each time memory comes back, all within ``wait`` seconds
    of the first such refusal (memory read as back may not yet be enough: the group's figures
    move by more than a temporary's worth on their own, and the temporary that filled the room
    may still be held, so a run refused once more waits again in the time left); after each
    refusal under its share of the group's room (``turns.py``), one on its turn — the whole
    room, which may still be too little while another request's temporary is held: then it is
    refused at the kernel's line and waits for memory to come back."""

    def __init__(self, wait: float) -> None:
        self._runs = 0
        self._wait = wait
        self._memory_deadline: float | None = None
        # Without a wait nothing can come back between runs: one run once more, as before.
        self._most = _MOST_RETRIES if wait > 0 else 1
        #: The request met a ``MemoryError`` (its turn, if it asked for one, ends with it).
        self.met = False
        #: The monotonic time the wait before the run once more allowed last ends.
        self.until = 0.0

    def may_retry(self, on_turn: bool) -> bool:
        """Whether a run once more may follow this ``MemoryError`` (counted if so, and
        :attr:`until` set); ``on_turn``: it was a refusal under the share, the run waits for
        the turn."""
        now = time.monotonic()
        if self._runs >= self._most:
            return False
        until = now + self._wait
        if not on_turn:
            if self._memory_deadline is None:
                self._memory_deadline = until
            elif now >= self._memory_deadline:
                return False
            until = self._memory_deadline
        self._runs += 1
        self.until = until
        return True


def _holding_back(
    start_response: StartResponse, held: list[bool], returned: list[bool]
) -> StartResponse:
    """``start_response`` that holds back a 5xx answer begun, before the app returned, after an
    allocation was refused in this process since it was made (``backstop.refused_so_far``): a
    framework that turns the ``MemoryError`` into its own error page (Django, Flask,
    Datasette, Starlette's ``ServerErrorMiddleware``) would otherwise hide the refusal from the
    retry. Notes it in ``held``; what the app writes meanwhile goes nowhere. An answer begun
    once the app has returned (``returned``: a lazy iterable) goes to the server."""
    mark = refused_so_far()

    def holding(status: str, headers: Any, *rest: Any) -> Any:
        if not returned and (status[:1] == "5" and refused_so_far() > mark):
            held.append(True)
            return lambda _data: None
        return start_response(status, headers, *rest)

    return holding


def _holding_back_sent(send: Send, held: list[bool], mark: int) -> Send:
    """``send`` that holds back a 5xx answer begun after an allocation was refused in this
    process since ``mark``, and the rest of that answer (see :func:`_holding_back`)."""

    async def holding(message: MutableMapping[str, Any]) -> None:
        kind = message.get("type")
        if kind == "http.response.start":
            status = message.get("status")
            if isinstance(status, int) and status >= 500 and refused_so_far() > mark:
                held.append(True)
                return
        if held and isinstance(kind, str) and kind.startswith("http.response."):
            return
        await send(message)

    return holding


async def _never_sent(message: MutableMapping[str, Any]) -> None:
    """A ``send`` for checking arguments only."""


def _close(answer: Iterable[bytes]) -> None:
    """Close a WSGI answer that is not sent (PEP 3333: ``close`` must be called)."""
    close = getattr(answer, "close", None)
    if callable(close):
        close()


def _tracking_start_response(start_response: StartResponse, began: list[bool]) -> StartResponse:
    """``start_response`` that notes in ``began`` that the answer has begun."""

    def tracked(status: str, headers: Any, *rest: Any) -> Any:
        began.append(True)
        return start_response(status, headers, *rest)

    return tracked


def _tracking_send(send: Send, began: list[bool]) -> Send:
    """``send`` that notes in ``began`` that the answer has begun."""

    async def tracked(message: MutableMapping[str, Any]) -> None:
        if message.get("type") == "http.response.start":
            began.append(True)
        await send(message)

    return tracked


def _replaying_receive(receive: Receive, read: list[MutableMapping[str, Any]]) -> Receive:
    """``receive`` that gives the messages an earlier run read (``read``) first, then reads on,
    keeping what it reads there: a retried request reads its body again."""
    replay = list(read)

    async def reading() -> MutableMapping[str, Any]:
        if replay:
            return replay.pop(0)
        message = await receive()
        read.append(message)
        return message

    return reading


def _noting_503(start_response: StartResponse) -> StartResponse:
    """``start_response`` that tells the service ledger when the app answers 503 (not served)."""

    def noted(status: str, headers: Any, *rest: Any) -> Any:
        if status.startswith("503"):
            not_served()
        return start_response(status, headers, *rest)

    return noted


def _noting_503_sent(send: Send) -> Send:
    """``send`` that tells the service ledger when the app answers 503 (not served)."""

    async def noted(message: MutableMapping[str, Any]) -> None:
        if message.get("status") == 503 and message.get("type") == "http.response.start":
            not_served()
        await send(message)

    return noted


async def _respond(send: Send, code: int, body: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
