"""The whole service as one worker can see it: ``health(scope="service")``.

A request to ``/health`` is answered by whichever worker took it; its own figures say little
about the service. This module adds what every worker of the server holds, from the first
source that knows them:

1. the **service ledger** that the recyclers keep (``guard/recycle/ledger.py``): every worker's
   requests served, memory at boot and now, state; and the leak trend judged **per request
   across workers**, which matures even when workers live seconds;
2. prometheus_client's **multiprocess directory** (``PROMETHEUS_MULTIPROC_DIR``), where
   ``start_updater`` makes each worker write its figures;
3. the **cgroup** of the limit: every process in it, read from ``/proc``;
4. else this process alone (and the field ``source`` says so).

The service's memory is the cgroup's usage when the limit is a cgroup (what the OOM killer
counts), else the workers' memory summed.

The trend across workers: each worker's growth over the later half of its life (from its
mark, see the ledger) divided by the requests it served meanwhile. It says ``leak`` when at
least two thirds of the lives judged grew by :data:`GREW_BYTES` or more there, ``flat`` when
fewer did, ``unknown`` before :data:`MIN_LIVES` lives of :data:`MIN_LATER_REQUESTS` requests
each are known, with :data:`MIN_REQUESTS` in all. Below 1 MiB over half a life, growth is
within what allocator arenas and page-granular resident memory move by anyway.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import TYPE_CHECKING, Any

from membound._errors import MemboundError
from membound._proc import pid_exists
from membound._units import format_size
from membound.guard.limit import Limit, memory_limit
from membound.guard.recycle.ledger import Life, ledger, read_service
from membound.guard.serving import supervisor
from membound.guard.slots import setting
from membound.guard.watchdog.instances import current
from membound.measure.cgroup.memory import process_usage, read_text

if TYPE_CHECKING:
    from membound.guard.watchdog.core import Watchdog

__all__ = [
    "GREW_BYTES",
    "MIN_LATER_REQUESTS",
    "MIN_LIVES",
    "MIN_REQUESTS",
    "judge_lives",
    "service_health",
]

#: Growth over the later half of a life that counts as growing.
GREW_BYTES = 1 << 20
#: Lives needed before the trend says anything.
MIN_LIVES = 2
#: Requests a life must have served after its mark to be judged.
MIN_LATER_REQUESTS = 4
#: Requests after their marks, over the lives judged, before the trend says anything.
MIN_REQUESTS = 20
#: Workers listed one by one (the counts cover all).
LISTED = 64
_STATE_RANK = {"ok": 0, "soft": 1, "hard": 2}


def judge_lives(lives: list[Life]) -> dict[str, Any]:
    """The leak trend of a service from its workers' lives (live and finished)."""
    judged = [life for life in lives if life.later_served >= MIN_LATER_REQUESTS]
    requests = sum(life.later_served for life in judged)
    if len(judged) < MIN_LIVES or requests < MIN_REQUESTS:
        return {
            "pattern": "unknown",
            "bytes_per_request": None,
            "lives_judged": len(judged),
            "requests_judged": requests,
            "explanation": f"unknown: {len(judged)} worker lives of the {MIN_LIVES} needed have "
            f"served {MIN_LATER_REQUESTS} or more requests after their warm-up half, "
            f"{requests} of the {MIN_REQUESTS} requests needed",
        }
    grown = sum(life.later_bytes for life in judged)
    per_request = grown / requests
    grew = sum(1 for life in judged if life.later_bytes >= GREW_BYTES)
    leak = 3 * grew >= 2 * len(judged) and per_request > 0
    where = (
        f"{grew} of {len(judged)} worker lives grew ≥ {format_size(GREW_BYTES)} over the "
        f"later half of their life ({requests} requests)"
    )
    if leak:
        words = f"leak: workers grow ≈{format_size(per_request)} per request; {where}"
    else:
        words = f"flat: {where}; ≈{format_size(per_request)} per request on average"
    return {
        "pattern": "leak" if leak else "flat",
        "bytes_per_request": round(per_request),
        "lives_judged": len(judged),
        "requests_judged": requests,
        "explanation": words,
    }


def _from_ledger() -> tuple[list[Life], list[Life], int, int] | None:
    """Live lives, finished lives, finished count and the supervisor's pid, from the ledger
    this worker writes, or the one its supervisor's workers write."""
    mine = ledger()
    if mine is not None:
        mine.write()  # this worker's figures as of now; the others' are at most a second old
        slot_dir, pid = os.path.dirname(mine.folder), mine.supervisor_pid
    else:
        found = supervisor()
        if found is None:
            return None
        slot_dir, pid = setting().slot_dir, found.pid
    live, finished, count = read_service(slot_dir, pid)
    if not live and not finished:
        return None
    return live, finished, count, pid


def _from_prometheus() -> list[dict[str, Any]] | None:
    """Workers from the multiprocess directory, with the figures they last wrote."""
    # The directory is looked up before anything imports prometheus_client: imported where the
    # variable is not set, its metrics would stay in this process for good.
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get(
        "prometheus_multiproc_dir"  # noqa: SIM112 (older prometheus_client releases read it)
    )
    if not path or not os.path.isdir(path):
        return None
    try:
        from membound.guard.prometheus.multiprocess import read_workers
    except ImportError:
        return None
    try:
        workers = read_workers(path)
    except MemboundError:
        # An empty file left by a killed worker: the next source counts the workers, and the
        # answer's ``source`` says which one did.
        return None
    found = []
    for figures in workers:
        if not pid_exists(figures["pid"]):
            continue
        if "rss_bytes" in figures:
            figures["usage_bytes"] = int(figures["rss_bytes"])
        found.append(figures)
    return found or None


def _from_cgroup(limit: Limit) -> list[dict[str, Any]] | None:
    """Every process in the limit's cgroup, with its own memory."""
    if limit.group is None:
        return None
    text = read_text(limit.group.file("cgroup.procs"))
    if not text:
        return None
    found = []
    for word in text.split()[: LISTED * 4]:
        usage = process_usage(int(word)) if word.isdigit() else None
        if usage is not None:
            row = {"pid": int(word), "usage_bytes": usage.judged, "rss_bytes": usage.charged}
            found.append(row)
    return found or None


def _life_row(life: Life, now: float) -> dict[str, Any]:
    return {
        "pid": life.pid,
        "served": life.served,
        "usage_bytes": life.usage_bytes,
        "boot_bytes": life.boot_bytes,
        "state": life.state,
        "refusing": life.refusing,
        "age_s": round(now - life.started, 1),
    }


def service_health(watchdog: Watchdog | None = None) -> dict[str, Any]:
    """The ``service`` part of ``health(scope="service")`` (see this module's docstring)."""
    dog = watchdog if watchdog is not None else current()
    limit: Limit = dog.limit if dog is not None else memory_limit()
    now = time.time()
    trend: dict[str, Any] = judge_lives([])
    trend["explanation"] = "unknown: no recycler keeps a ledger of this service's workers"
    recycled: int | None = None
    supervisor_pid: int | None = None
    rows: list[dict[str, Any]] | None = None
    source = "process"
    with contextlib.suppress(OSError):
        from_ledger = _from_ledger()
        if from_ledger is not None:
            live, finished, recycled, supervisor_pid = from_ledger
            rows = [_life_row(life, now) for life in sorted(live, key=lambda x: x.pid)]
            trend = judge_lives(live + finished)
            source = "ledger"
    if rows is None:
        rows = _from_prometheus()
        source = "prometheus" if rows is not None else source
    if rows is None:
        rows = _from_cgroup(limit)
        source = "cgroup" if rows is not None else source
    if rows is None:
        own = process_usage("self")
        rows = [{"pid": os.getpid(), "usage_bytes": own.judged if own is not None else 0}]
    usage = limit.usage() if limit.group is not None else None
    if usage is not None:
        total, usage_source = usage.judged, usage.source
    else:
        total = sum(int(row.get("usage_bytes") or 0) for row in rows)
        usage_source = f"the {len(rows)} worker(s) summed"
    states = [str(row["state"]) for row in rows if row.get("state") in _STATE_RANK]
    return {
        "source": source,
        "supervisor_pid": supervisor_pid,
        "workers_count": len(rows),
        "workers": rows[:LISTED],
        "worst_state": max(states, key=_STATE_RANK.__getitem__) if states else None,
        "usage_bytes": total,
        "usage_source": usage_source,
        "limit_bytes": limit.bytes,
        "headroom_bytes": limit.bytes - total,
        "recycled": recycled,
        "growth": trend,
    }
