"""This process against its memory limit: the report that :func:`membound.health` gives for
``scope="process"`` and the Prometheus exporters export. ``health()`` adds the service on top
(``guard/health.py``, which lists the fields); the exporters read this module, not that one, so
that no import runs from the service's sources back up to them.
"""

from __future__ import annotations

import gc
import os
import time
from typing import TYPE_CHECKING

from membound.guard.limit import Limit, memory_limit
from membound.guard.registry import pool_stats
from membound.guard.watchdog.actions import refusing
from membound.guard.watchdog.instances import current
from membound.measure.cgroup.memory import oom_kills, pressure, process_usage
from membound.measure.probes import peak_rss

if TYPE_CHECKING:
    from membound.guard.watchdog.core import Watchdog

__all__ = ["process_health"]

_DEFAULT_SOFT, _DEFAULT_HARD = 0.8, 0.9


def _status_without_watchdog(usage: int, limit: int) -> str:
    if usage >= _DEFAULT_HARD * limit:
        return "hard"
    return "soft" if usage >= _DEFAULT_SOFT * limit else "ok"


def process_health(watchdog: Watchdog | None = None) -> dict[str, object]:
    """Where this process stands against its memory limit: ``health()``'s report without
    ``service`` (the fields are listed in ``guard/health.py``).

    Args:
        watchdog: the watchdog to report (default: the one started last in this process).
    """
    dog = watchdog if watchdog is not None else current()
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
    refused = refusing()
    grouped = usage is not None and not usage.source.startswith("/proc/")
    report: dict[str, object] = {
        "status": "refusing" if refused and status != "hard" else status,
        "state": status,
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
        "refusing": refused,
        "group": limit.group.path if grouped and limit.group is not None else None,
        "per": _per(limit, grouped),
    }
    return report


#: Figures that are always this process's own.
_PROCESS = (
    "status",
    "state",
    "refusing",
    "pid",
    "rss_bytes",
    "peak_bytes",
    "gc",
    "pools",
    "watchdog",
)


def _per(limit: Limit, grouped: bool) -> dict[str, str]:
    """Whose each figure is: ``process`` (this worker's alone), ``group`` (the cgroup's, the
    same in every process of it), ``machine``, or ``given`` (a limit stated by the caller)."""
    usage = "group" if grouped else "process"
    if limit.source == "given":
        bound = "given"
    elif limit.group is not None:
        bound = "group"
    else:
        bound = "machine" if limit.kind == "ram" else "process"
    pressure_of = "group" if limit.group is not None and limit.group.version == 2 else "machine"
    per = dict.fromkeys(_PROCESS, "process")
    per.update(dict.fromkeys(("anon_bytes", "usage_bytes", "page_cache_bytes"), usage))
    per.update(headroom_bytes=usage, usage_source=usage, limit_bytes=bound, limit_source=bound)
    per.update(limit_kind=bound, pressure=pressure_of, growth=usage, time="process")
    if limit.group is not None:
        per["oom_kills"] = "group"
    return per
