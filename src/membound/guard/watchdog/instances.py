"""Which watchdog is this process's own: the one started last and not yet stopped.

A leaf of the watchdog package, so that what the watchdog itself imports (its actions, the
refusal, the recyclers, the Prometheus collector) can ask for it without importing the
watchdog back.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from membound.guard.watchdog.core import Watchdog

__all__ = ["current", "forget", "forget_all", "make_current"]

_lock = threading.Lock()
_current: Watchdog | None = None


def current() -> Watchdog | None:
    """The watchdog started last in this process and not yet stopped, if any."""
    return _current


def make_current(watchdog: Watchdog) -> None:
    """Make ``watchdog`` the one health(), the middlewares and the actions speak of."""
    global _current
    with _lock:
        _current = watchdog


def forget(watchdog: Watchdog) -> None:
    """``watchdog`` stopped: nothing is current, unless another was started since."""
    global _current
    with _lock:
        if _current is watchdog:
            _current = None


def forget_all() -> None:
    """After a fork: the child has none of its parent's threads, so no watchdog is current;
    the lock is a fresh one (a thread of the parent may have held it at the fork, and the
    child's own watchdog takes it when it starts)."""
    global _current, _lock
    _lock = threading.Lock()
    _current = None
