"""``health()``: one JSON-ready dict of where this process stands against its memory limit.

The fields (sizes in bytes as integers, times in seconds):

* ``status``: the watchdog's state (``ok``/``soft``/``hard``); without a running watchdog, the
  state that the default thresholds (80 % and 90 % of the limit) give for the usage now.
* ``rss_bytes`` (this process's resident memory), ``anon_bytes`` (anonymous memory in what the
  limit counts: the cgroup's, or this process's), ``usage_bytes`` (the judged usage compared with
  the limit), ``page_cache_bytes``, ``peak_bytes`` (the process's ``VmHWM``),
  ``limit_bytes``/``limit_source``/``limit_kind`` and ``headroom_bytes`` (limit − usage).
  ``peak_bytes`` is the peak since the process started (or since a tool reset it), so it may
  stand far above today's usage: the watchdog judges current memory, never this.
* ``pressure``: PSI ``some``/``full`` averages over 10, 60, 300 s (percentages), or null.
* ``oom_kills``: the OOM killer's kills in the limit's cgroup, or null where not counted.
* ``gc``: per generation, collections run, objects collected and uncollectable, and the
  allocations pending toward the next collection (``gc.get_count()``).
* ``growth``: the leak trend (``pattern``, ``slope_bytes_per_s``, ``time_to_limit_s``); pattern
  ``unknown`` without a running watchdog or before its window filled.
* ``pools``: name → stats of every ``BoundedPool`` and registered cache.
* ``watchdog``: its state, thresholds, last transitions and callback counts, or null.
* ``refusing``: True while new work is refused (``actions.refuse_new_work``).
* ``service`` (only with ``scope="service"``): the whole service, every worker of the server and
  the leak trend judged per request across workers (``guard/service_health.py``): ``source``
  (``ledger``, ``prometheus``, ``cgroup`` or ``process``), ``workers`` (pid, served, memory,
  state), ``usage_bytes``/``limit_bytes``/``headroom_bytes`` of the service, ``recycled`` and
  ``growth`` (``pattern``, ``bytes_per_request``, ``explanation``).
"""

from __future__ import annotations

import gc
import os
import time
from typing import Literal

from membound.guard import watchdog as _watchdog
from membound.guard.actions import refusing
from membound.guard.limit import Limit, memory_limit
from membound.guard.registry import pool_stats
from membound.measure.cgroup_memory import oom_kills, pressure, process_usage
from membound.measure.probes import peak_rss

__all__ = ["health"]

_DEFAULT_SOFT, _DEFAULT_HARD = 0.8, 0.9


def _status_without_watchdog(usage: int, limit: int) -> str:
    if usage >= _DEFAULT_HARD * limit:
        return "hard"
    return "soft" if usage >= _DEFAULT_SOFT * limit else "ok"


def health(
    watchdog: _watchdog.Watchdog | None = None,
    scope: Literal["process", "service"] = "process",
) -> dict[str, object]:
    """Where this process stands against its memory limit, ready for ``json.dumps``.

    Args:
        watchdog: the watchdog to report (default: the one started last in this process).
        scope: ``"service"`` adds the whole service (every worker of the server this process
            serves in) under ``service``.

    Raises:
        ValueError: ``scope`` is neither ``"process"`` nor ``"service"``.

    Returns:
        The dict described in this module's docstring.
    """
    if scope not in ("process", "service"):
        raise ValueError(f"scope must be 'process' or 'service', got {scope!r}")
    dog = watchdog if watchdog is not None else _watchdog.current()
    limit: Limit = dog.limit if dog is not None else memory_limit()
    usage = limit.usage()
    own = process_usage("self")
    judged = usage.judged if usage is not None else (own.judged if own is not None else 0)
    if dog is not None:
        status: str = dog.state
        trend = dog.verdict
        growth: dict[str, object] = {
            "pattern": trend.pattern,
            "slope_bytes_per_s": None
            if trend.pattern == "unknown"
            else round(trend.slope_bytes_per_s),
            "time_to_limit_s": None
            if trend.time_to_limit_s is None
            else round(trend.time_to_limit_s, 1),
            "explanation": trend.explanation,
        }
    else:
        status = _status_without_watchdog(judged, limit.bytes)
        growth = {
            "pattern": "unknown",
            "slope_bytes_per_s": None,
            "time_to_limit_s": None,
            "explanation": "no watchdog is running: start mb.Watchdog() to judge the trend",
        }
    psi = pressure(limit.group)
    report: dict[str, object] = {
        "status": status,
        "pid": os.getpid(),
        "time": time.time(),
        "rss_bytes": own.charged if own is not None else None,
        "anon_bytes": usage.anon if usage is not None else None,
        "usage_bytes": judged,
        "page_cache_bytes": usage.file if usage is not None else None,
        "usage_source": usage.source if usage is not None else None,
        "peak_bytes": peak_rss()[0],
        "limit_bytes": limit.bytes,
        "limit_source": limit.source,
        "limit_kind": limit.kind,
        "headroom_bytes": limit.bytes - judged,
        "pressure": None
        if psi is None
        else {
            kind: {k: v for k, v in fields.items() if k != "total"} for kind, fields in psi.items()
        },
        "oom_kills": oom_kills(limit.group) if limit.group is not None else None,
        "gc": {
            "collections": [s["collections"] for s in gc.get_stats()],
            "collected": [s["collected"] for s in gc.get_stats()],
            "uncollectable": [s["uncollectable"] for s in gc.get_stats()],
            "pending": list(gc.get_count()),
        },
        "growth": growth,
        "pools": pool_stats(),
        "watchdog": dog.snapshot() if dog is not None else None,
        "refusing": refusing(),
    }
    if scope == "service":
        from membound.guard.service_health import service_health  # the servers' modules

        report["service"] = service_health(dog)
    return report
