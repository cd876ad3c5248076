"""Ready-made watchdog actions: what to do at the soft and hard thresholds.

* :func:`free_memory` (the default soft action): ``gc.collect()``, clear every registered pool
  and cache, ``release_memory()`` (which trims the allocator), and report what came back.
* :func:`raise_in` — raise :class:`~membound.MemoryBudgetExceeded` in chosen threads (the main
  thread by default), so that the work in them unwinds and frees what it holds.
* :func:`refuse_new_work` — set the flag that :class:`~membound.guard.HealthMiddleware` and
  :class:`~membound.guard.ASGIHealthMiddleware` read: new requests get 503 with ``Retry-After``
  until memory is back under the ``recover`` threshold (the flag clears itself then).
* :func:`exit_gracefully` — stop taking work, raise ``SystemExit(status)`` in the main thread so
  that ``finally`` blocks and ``atexit`` run, and end the process with ``status`` after
  ``grace`` seconds if it is still there: a status for the supervisor to restart on.

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
from membound.bound.release import release_memory
from membound.guard.registry import clear_all

if TYPE_CHECKING:
    from membound.guard.watchdog import WatchdogEvent

__all__ = [
    "HardLimitReached",
    "exit_gracefully",
    "free_memory",
    "raise_in",
    "refuse_new_work",
    "refusing",
]

_log = logging.getLogger("membound.guard")
_refusing = threading.Event()

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


def refusing() -> bool:
    """True while new work should be refused (set by :func:`refuse_new_work` and
    :func:`exit_gracefully`; cleared when the watchdog recovers)."""
    return _refusing.is_set()


def stop_refusing() -> None:
    """Take new work again (the watchdog calls this when memory is back under ``recover``)."""
    _refusing.clear()


def free_memory(event: WatchdogEvent) -> dict[str, object]:
    """The default soft action: collect garbage, clear registered pools and caches, give freed
    memory back to the OS. Returns what it did (also logged)."""
    collected = gc.collect()
    cleared = clear_all()
    released = release_memory()
    _log.warning(
        "membound guard: %s; collected %d objects, cleared %d pools/caches, RSS %d → %d bytes",
        event.describe(),
        collected,
        len(cleared),
        released.rss_before,
        released.rss_after,
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


def refuse_new_work() -> Action:
    """An action that sets the refuse-new-work flag (see :func:`refusing`)."""

    @_immediate
    def action(event: WatchdogEvent) -> bool:
        _refusing.set()
        return True

    return action


def exit_gracefully(status: int = 75, grace: float = 10.0) -> Action:
    """An action that stops the process for its supervisor to restart it.

    Args:
        status: the exit status (75, ``EX_TEMPFAIL``, by default: "try again").
        grace: seconds for ``finally`` blocks and ``atexit`` handlers before ``os._exit``.
    """
    if isinstance(status, bool) or not isinstance(status, int) or not 0 <= status <= 255:
        raise ValueError(f"an exit status is a whole number 0-255, got {status!r}")
    if (
        isinstance(grace, bool)
        or not isinstance(grace, int | float)
        or not 0 <= grace <= 3600  # NaN fails this too
    ):
        raise ValueError(f"grace is seconds from 0 to 3600, got {grace!r}")

    class _Exit(SystemExit):
        def __init__(self) -> None:
            super().__init__(status)

    @_immediate
    def action(event: WatchdogEvent) -> bool:
        _refusing.set()
        main = threading.main_thread()
        if main.ident is not None:
            _set_async_exc(main.ident, _Exit)
        timer = threading.Timer(grace, os._exit, args=(status,))
        timer.daemon = True
        timer.start()
        return True

    return action
