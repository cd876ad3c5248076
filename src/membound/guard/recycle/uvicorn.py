"""Recycle uvicorn workers on their *current* memory, gracefully, a few at a time.

uvicorn recycles workers only by request count (``--limit-max-requests``), gunicorn only by
request count too (``max_requests``), and uWSGI's ``reload-on-rss`` kills requests in flight.
:class:`ASGIRecycler` is ASGI middleware that, after each HTTP response, reads the worker's own
memory now (anonymous + shared resident; never the peak) — with other requests still in flight,
what lasts across their temporaries (``membound.guard.recycle.lasting``) — and, at its
recycle point (``hard``, less a jitter drawn per worker; ``membound.guard.recycle.policy``),
stops the worker the way uvicorn stops itself: its listening sockets close, requests in flight
finish (up to ``grace`` seconds), the lifespan shuts down and the process exits; its supervisor
starts a fresh one. At most ⌈workers / 4⌉ recycle at once, and a worker that starts above
``hard`` is reported once and not recycled in a loop.

It runs under ``uvicorn --workers N`` (the supervisor is uvicorn's parent process) and under
gunicorn with ``uvicorn.workers.UvicornWorker`` (give gunicorn
``GunicornRecycler.post_worker_init``, which wraps the app, or wrap it yourself). A single
``uvicorn app`` has no supervisor to start a fresh worker: there the recycler only logs that it
would recycle, unless ``supervised=True`` says that something outside (systemd, Kubernetes)
restarts the process; it then exits with status 75.

Middleware and not a worker class: it is the one hook that both ``uvicorn --workers`` and
gunicorn's ``UvicornWorker`` run in every worker, and it sees each response end.
"""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping
from typing import Any

from membound._units import format_size
from membound.guard.asgi import ASGIApp, Receive, Scope, Send
from membound.guard.in_flight import begin_request, end_request
from membound.guard.recycle.policy import Policy, under_pressure, usage_now
from membound.guard.serving import Supervisor, stop_serving, supervisor
from membound.guard.slots import release_slot
from membound.measure.cgroup.memory import process_usage

__all__ = ["ASGIRecycler"]


_log = logging.getLogger("membound.guard")
#: The exit status of a recycled process that only an outside supervisor restarts
#: (``EX_TEMPFAIL``: systemd's ``Restart=on-failure`` restarts it, 0 it would not).
_OUTSIDE_STATUS = 75


class ASGIRecycler:
    """ASGI middleware: recycle this worker after the response in which its memory reached
    its recycle point.

    Args:
        app: the ASGI application.
        hard: memory (anonymous + shared resident) at which a worker recycles: a size, or a
            percentage of the worker's share of the limit (``memory_limit()`` / workers).
        grace: seconds the requests in flight have to finish (uvicorn's
            ``timeout_graceful_shutdown`` is lowered to it when longer or unset).
        jitter: each worker recycles at a point drawn once between ``hard × (1 − jitter)`` and
            ``hard``.
        max_recycling: workers allowed to recycle at once (default ⌈workers / 4⌉).
        workers: how many workers the server runs (default: uvicorn's ``--workers``, or under
            gunicorn the worker processes of its arbiter).
        supervised: whether something restarts this process when it exits (default: found —
            a gunicorn arbiter or uvicorn's ``--workers`` parent; True for systemd or Kubernetes
            around a single process; False never to stop).
        slot_dir: where the slot lock files live (default: the temporary directory).

    Attributes:
        recycled: times this process decided to recycle (0 or 1).
        policy: the recycle point, slots and boot check (shared with ``GunicornRecycler``).

    Raises:
        SizeError: ``hard`` is no size or percentage.
        ValueError: another argument out of range.
    """

    def __init__(
        self,
        app: ASGIApp,
        hard: int | str = "90%",
        *,
        grace: float = 30.0,
        jitter: float = 0.1,
        max_recycling: int | None = None,
        workers: int | None = None,
        supervised: bool | None = None,
        slot_dir: str | None = None,
    ) -> None:
        if (
            isinstance(grace, bool)
            or not isinstance(grace, int | float)
            or not 0 <= grace <= 3600  # NaN fails this too
        ):
            raise ValueError(f"grace is seconds from 0 to 3600, got {grace!r}")
        if workers is not None and (
            isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
        ):
            raise ValueError(f"workers must be a whole number >= 1, got {workers!r}")
        if supervised is not None and not isinstance(supervised, bool):
            raise ValueError(f"supervised must be True, False or None, got {supervised!r}")
        self.app = app
        self.policy = Policy(hard, jitter, max_recycling, slot_dir)
        self.grace = float(grace)
        self.workers = workers
        self.supervised = supervised
        self.recycled = 0
        #: Who restarts this worker, once found (per process: a forked worker looks again).
        self._found: tuple[int, Supervisor | None] | None = None
        self._told: tuple[int, str] | None = None

    def _supervisor(self) -> Supervisor | None:
        found = self._found
        if found is None or found[0] != os.getpid():
            found = self._found = (os.getpid(), supervisor())
        return found[1]

    def adopt(self, found: Supervisor) -> None:
        """Use ``found`` as this worker's supervisor (``GunicornRecycler`` knows it)."""
        self._found = (os.getpid(), found)

    def _where(self) -> tuple[int, int, bool]:
        """(workers, supervisor pid, whether a stop is followed by a fresh process)."""
        found = self._supervisor()
        workers = self.workers or (found.workers if found is not None else 1)
        pid = found.pid if found is not None else os.getpid()
        supervised = self.supervised if self.supervised is not None else found is not None
        return workers, pid, supervised

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "lifespan":
            await self.app(scope, receive, self._watch_startup(send))
            return
        if kind != "http":  # websockets pass through
            await self.app(scope, receive, send)
            return
        if not self.policy.booted:
            self._boot()
        # Counted in flight in this process (the health middleware inside does not count it
        # again): the other requests in flight when this one ends hold their temporaries.
        counted = begin_request()
        try:
            await self.app(scope, receive, send)
        finally:
            others = end_request(counted)
            if not self.policy.recycling:
                self._after_response(others)

    def _watch_startup(self, send: Send) -> Send:
        """``send`` that notes the worker's boot when the app says its startup is complete."""

        async def watched(message: MutableMapping[str, Any]) -> None:
            await send(message)
            if message.get("type") == "lifespan.startup.complete" and not self.policy.booted:
                self._boot()

        return watched

    def _boot(self) -> None:
        try:
            usage = process_usage("self")
            if usage is None:
                return
            workers, pid, _ = self._where()
            message = self.policy.boot(usage.judged, workers, pid)
            if message is not None:
                _log.warning("%s", message)
        except Exception:  # the middleware must never break a response
            _log.exception("membound: noting the worker's boot failed")

    def _after_response(self, others: int = 0) -> None:
        try:
            workers, pid, supervised = self._where()
            pressure = under_pressure()
            point = self.policy.point_bytes(workers, pressure)
            judged = usage_now(point)
            if judged is None:
                return
            if not supervised:
                lasting = self.policy.lasting(judged, others)
                if lasting is not None and lasting >= point:
                    self._say_once(
                        "unsupervised",
                        f"membound: worker {os.getpid()} is at {format_size(lasting)}, "
                        f"above its recycle point {format_size(point)}, but nothing here starts "
                        "a fresh process when it exits (no gunicorn arbiter, no uvicorn "
                        "--workers): it is not stopped; pass supervised=True where systemd or "
                        "Kubernetes restarts it",
                    )
                return
            decision = self.policy.judge(judged, workers, pid, pressure, others)
            if decision.message is not None:
                level = logging.WARNING if decision.verdict == "recycle" else logging.INFO
                _log.log(level, "%s", decision.message)
            if decision.verdict != "recycle":
                return
            self.recycled += 1
            status = None if self._supervisor() is not None else _OUTSIDE_STATUS
            if stop_serving(self.grace, status, stopped=release_slot) is None:
                release_slot()  # nothing stops: the others must not wait for this one
                self._say_once(
                    "no server",
                    f"membound: worker {os.getpid()} should recycle but no server to stop was "
                    "found (uvicorn in the main thread, or a SIGTERM handler)",
                )
        except Exception:  # the middleware must never break a response
            _log.exception("membound: the recycling check failed")

    def _say_once(self, key: str, message: str) -> None:
        if self._told != (os.getpid(), key):
            self._told = (os.getpid(), key)
            _log.warning("%s", message)
