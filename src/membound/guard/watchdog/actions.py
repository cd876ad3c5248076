"""Ready-made watchdog actions: what to do at the soft and hard thresholds.

* :func:`free_memory` (the default soft action): ``gc.collect()``, clear every registered pool
  and cache, ``release_memory()`` (which trims the allocator), and report what came back (a
  line of information with the pid, the time and RSS in MiB: the event itself is the
  watchdog's warning, said once per service).
* :func:`raise_in` — raise :class:`~membound.MemoryBudgetExceeded` in chosen threads (the main
  thread by default), so that the work in them unwinds and frees what it holds.
* :func:`refuse_new_work` — set the flag that :class:`~membound.guard.HealthMiddleware` and
  :class:`~membound.guard.ASGIHealthMiddleware` read: new requests get 503 with ``Retry-After``
  (and ``/health`` 503) until memory is back under the ``recover`` threshold (the flag clears
  itself then). A leaking worker never gets there, so refusing does not last for ever: after
  ``recycle_after`` seconds with memory not falling, a worker that runs under a supervisor (a
  gunicorn arbiter, ``uvicorn --workers``) recycles itself gracefully and a fresh one takes
  its place; a single process keeps answering 503 on ``/health`` for a liveness probe to
  restart it.
* :func:`exit_gracefully` — stop taking work and end the process for its supervisor to restart
  it. In a server (uvicorn: its own graceful shutdown; anything with a SIGTERM handler, such as
  gunicorn's workers: SIGTERM) the listeners close and requests in flight finish first
  (``membound.guard.serving``); in a plain script ``SystemExit(status)`` is raised in the main
  thread so that ``finally`` blocks and ``atexit`` run. Either way the process ends with
  ``status`` if it is still there when the grace is over.

The ready-made actions are quick and never block, so the watchdog runs them in its own thread
the moment it decides (no hand-over to the callback thread): ``raise_in`` must land before the
allocating thread takes the rest of the headroom.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from membound._errors import MemoryBudgetExceeded
from membound._units import format_size
from membound.bound.release import release_memory
from membound.guard.registry import clear_all
from membound.guard.serving import stop_serving
from membound.guard.watchdog.eventlog import stamp
from membound.guard.watchdog.refusal import (
    check_delay,
    check_grace,
    recycle_if_stuck,
    refusing,
    start_refusing,
    stop_refusing,
)

if TYPE_CHECKING:
    from membound.guard.watchdog.core import WatchdogEvent

__all__ = [
    "HardLimitReached",
    "exit_gracefully",
    "free_memory",
    "raise_in",
    "recycle_if_stuck",
    "refuse_new_work",
    "refusing",
    "stop_refusing",
]

_log = logging.getLogger("membound.guard")
#: Seconds past the grace before a stopped server's process is ended by ``os._exit``.
_LATE_S = 5.0

Action = Callable[["WatchdogEvent"], object]


class HardLimitReached(MemoryBudgetExceeded):
    """Raised in a thread by :func:`raise_in`: memory crossed the watchdog's hard threshold."""

    hint = "memory crossed the watchdog's hard threshold; the work in this thread was stopped"

    def __init__(self, message: str = "memory crossed the watchdog's hard threshold") -> None:
        super().__init__(message)

    def __reduce__(self) -> tuple[type[HardLimitReached], tuple[str]]:
        return (type(self), (str(self),))


def _immediate(action: Callable[[WatchdogEvent], Any]) -> Callable[[WatchdogEvent], Any]:
    action._membound_immediate = True  # type: ignore[attr-defined]
    return action


def free_memory(event: WatchdogEvent) -> dict[str, object]:
    """The default soft action: collect garbage, clear registered pools and caches, give freed
    memory back to the OS. Returns what it did (also logged)."""
    collected = gc.collect()
    cleared = clear_all()
    released = release_memory()
    # This process's own part: information (the event itself is said once per service).
    _log.info(
        "membound guard: %s: soft action: collected %d objects, cleared %d pools/caches, RSS "
        "%s → %s",
        stamp(),
        collected,
        len(cleared),
        format_size(released.rss_before),
        format_size(released.rss_after),
    )
    return {"collected": collected, "cleared": cleared, "released_bytes": released.released}


def _set_async_exc(thread_id: int, exc_type: type[BaseException]) -> int:
    return int(
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(thread_id), ctypes.py_object(exc_type)
        )
    )


def raise_in(threads: Iterable[threading.Thread] | None = None) -> Action:
    """An action that raises :class:`HardLimitReached` (a ``MemoryBudgetExceeded``) in
    ``threads`` (default: the main thread). The exception lands between two bytecodes: a
    thread blocked in a long C call gets it when the call returns."""
    chosen = list(threads) if threads is not None else None

    @_immediate
    def action(event: WatchdogEvent) -> int:
        targets = chosen if chosen is not None else [threading.main_thread()]
        raised = 0
        for thread in targets:
            if thread.ident is not None and thread.is_alive():
                raised += _set_async_exc(thread.ident, HardLimitReached)
        return raised

    return action


def refuse_new_work(recycle_after: float | None = 30.0, grace: float = 30.0) -> Action:
    """An action that sets the refuse-new-work flag (see :func:`refusing`), cleared when memory
    is back under ``recover`` — or, when the action runs for a backstop refusal (one allocation
    the kernel would have OOM-killed, refused below ``hard``), also once memory has fallen
    from its highest reading since by 1/32 of the limit: the temporaries that filled the room
    are given back, and the worker's next requests wait no longer.

    Args:
        recycle_after: seconds of refusing with memory not falling after which a worker under a
            supervisor (gunicorn, ``uvicorn --workers``) recycles itself gracefully (see
            ``refusal.recycle_if_stuck``); None: refuse until memory recovers.
        grace: seconds the requests in flight have to finish when it recycles.
    """
    if recycle_after is not None:
        check_delay(recycle_after)
    check_grace(grace)

    @_immediate
    def action(event: WatchdogEvent) -> bool:
        # A backstop refusal is not memory past ``hard``: its refusal may also end once the
        # memory that filled the room is given back (``refusal.start_refusing``).
        start_refusing(refused_allocation=getattr(event, "cause", None) == "backstop")
        recycle_if_stuck(recycle_after, grace)
        return True

    return action


def exit_gracefully(status: int = 75, grace: float = 10.0) -> Action:
    """An action that stops the process for its supervisor to restart it.

    In a server it stops the way the server stops itself (uvicorn: ``should_exit``, its
    graceful shutdown; a process with its own SIGTERM handler, such as a gunicorn worker:
    SIGTERM): no new connections, the requests in flight finish (up to ``grace`` seconds),
    then it exits — with ``status`` under uvicorn, as its SIGTERM handling decides elsewhere.
    In a plain script it raises ``SystemExit(status)`` in the main thread. New requests that
    reach the health middlewares meanwhile get 503. If the process is still there after the
    grace (plus 5 s for a server's shutdown), ``os._exit(status)`` ends it.

    Args:
        status: the exit status (75, ``EX_TEMPFAIL``, by default: "try again").
        grace: seconds for requests in flight, ``finally`` blocks and ``atexit`` handlers.
    """
    if isinstance(status, bool) or not isinstance(status, int) or not 0 <= status <= 255:
        raise ValueError(f"an exit status is a whole number 0-255, got {status!r}")
    check_grace(grace)

    class _Exit(SystemExit):
        def __init__(self) -> None:
            super().__init__(status)

    @_immediate
    def action(event: WatchdogEvent) -> bool:
        start_refusing()
        late = grace
        if stop_serving(grace, status) is not None:
            late += _LATE_S
        else:
            main = threading.main_thread()
            if main.ident is not None:
                _set_async_exc(main.ident, _Exit)
        timer = threading.Timer(late, os._exit, args=(status,))
        timer.daemon = True
        timer.start()
        return True

    return action
