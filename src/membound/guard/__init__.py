"""guard: the pytest plugin, and the production guard — the memory limit, the watchdog, health,
middlewares and Prometheus.

``mb.memory_limit()``, ``mb.Watchdog`` and ``mb.health()`` are re-exported by ``membound``;
``membound.guard.actions`` holds the ready-made watchdog actions, ``membound.guard.register``
adds a cache to what the guard reports and clears. The middlewares and the Prometheus collector
are imported from their modules when used (``membound.guard.middleware``,
``membound.guard.prometheus``) so that ``import membound`` stays light.
"""

from __future__ import annotations

from membound.guard import actions
from membound.guard.health import health
from membound.guard.limit import Limit, memory_limit
from membound.guard.registry import register, unregister
from membound.guard.watchdog import Watchdog, WatchdogEvent

__all__ = [
    "Limit",
    "Watchdog",
    "WatchdogEvent",
    "actions",
    "health",
    "memory_limit",
    "register",
    "unregister",
]
