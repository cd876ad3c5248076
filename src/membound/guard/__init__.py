"""guard: the pytest plugin, and the production guard — the memory limit, the watchdog, health,
recycling, middlewares and Prometheus.

``mb.memory_limit()``, ``mb.Watchdog`` and ``mb.health()`` are re-exported by ``membound``;
``membound.guard.actions`` holds the ready-made watchdog actions, ``membound.guard.register``
adds a cache to what the guard reports and clears; :class:`HealthMiddleware` (WSGI) and
:class:`ASGIHealthMiddleware` serve ``/health`` and shed load near the limit. The servers'
recyclers (:class:`GunicornRecycler`, :class:`ASGIRecycler`, :func:`recycle_children` for
Celery, :class:`RecyclingProcessPool`) and ``membound.guard.prometheus`` are imported when first
used, so that ``import membound`` stays light.

Modules: ``limit`` (the tightest limit that applies), ``health`` (``health()``: this process,
or the whole service), ``in_flight`` (requests in flight and whether the one in hand was
served), ``asgi`` (the ASGI protocol's types, and an answer sent to the server in slices),
``process_health`` (this process's report, which Prometheus exports),
``service_health`` (every worker of the server, as one worker sees it), ``middleware`` (health
endpoints and load shedding, WSGI and ASGI), ``registry`` (pools and caches the guard reports and
clears), ``serving`` (which server this process serves in, and its graceful stop), ``slots`` (at
most N workers out of service at once). Deprecated paths, kept for earlier guides:
``asgi_recycler``, ``celery_recycler``, ``gunicorn`` and ``pools`` (now in ``recycle``).

Packages: ``watchdog`` (the watchdog, its actions and events), ``recycle`` (replacing workers
between requests), ``prometheus`` (every metric), ``pytest`` (the plugin).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from membound._lazy import on_first_use
from membound.guard.health import health
from membound.guard.limit import Limit, memory_limit
from membound.guard.middleware import ASGIHealthMiddleware, HealthMiddleware
from membound.guard.registry import register, unregister
from membound.guard.watchdog import actions
from membound.guard.watchdog.core import Watchdog, WatchdogEvent

if TYPE_CHECKING:
    from membound.guard import prometheus
    from membound.guard.recycle.celery import recycle_children
    from membound.guard.recycle.gunicorn import GunicornRecycler
    from membound.guard.recycle.process_pools import RecyclingProcessPool
    from membound.guard.recycle.uvicorn import ASGIRecycler

__all__ = [
    "ASGIHealthMiddleware",
    "ASGIRecycler",
    "GunicornRecycler",
    "HealthMiddleware",
    "Limit",
    "RecyclingProcessPool",
    "Watchdog",
    "WatchdogEvent",
    "actions",
    "health",
    "memory_limit",
    "prometheus",
    "recycle_children",
    "register",
    "unregister",
]

# ``membound.guard.actions`` was a module before the watchdog became a package: importing it by
# that name (``from membound.guard.actions import refuse_new_work``) keeps working.
sys.modules.setdefault("membound.guard.actions", actions)

__getattr__, __dir__ = on_first_use(
    __name__,
    {
        "ASGIRecycler": "membound.guard.recycle.uvicorn:ASGIRecycler",
        "GunicornRecycler": "membound.guard.recycle.gunicorn:GunicornRecycler",
        "RecyclingProcessPool": "membound.guard.recycle.process_pools:RecyclingProcessPool",
        "recycle_children": "membound.guard.recycle.celery:recycle_children",
        "prometheus": "membound.guard.prometheus",
    },
)
