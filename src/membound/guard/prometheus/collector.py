"""Prometheus metrics of the production guard, in one process or across a server's workers.

Every figure comes from :func:`membound.health` (about 0.4 ms a call on the development machine:
cheap enough to compute at each scrape, or every few seconds in each worker).

Metrics (sizes in bytes; ``*`` marks a metric that exists only in multiprocess mode):

=========================================  =======  ==========================================
name {labels}                              type     figure, and its multiprocess mode
=========================================  =======  ==========================================
``membound_memory_rss_bytes``              gauge    this process's RSS (``VmRSS``); liveall
``membound_memory_peak_bytes``             gauge    this process's peak RSS (``VmHWM``); liveall
``membound_memory_anon_bytes``             gauge    anonymous memory that the limit counts [1]
``membound_memory_usage_bytes``            gauge    the usage judged against the limit [1]
``membound_memory_page_cache_bytes``       gauge    page cache (or file-backed RSS) [1]
``membound_memory_headroom_bytes``         gauge    limit − usage [1]
``membound_memory_limit_bytes``            gauge    the tightest limit; livemostrecent
  ``{source, kind}``                                (``kind``: ``cgroup-v1``, ``ram``, … [2])
``membound_memory_oom_kills_total``        counter  OOM kills in the limit's cgroup, only where
                                                    the kernel counts them; a livemostrecent
                                                    *gauge* in multiprocess mode [3]
``membound_memory_pressure``               gauge    PSI: % of wall time stalled on memory, as
  ``{kind="some|full", window="10|60|300"}``        the kernel reports it; livemostrecent
``membound_growth_bytes_per_second``       gauge    the leak trend's slope; NaN when unknown;
                                                    liveall
``membound_time_to_limit_seconds``         gauge    when the limit is reached at that slope;
                                                    NaN when unknown or not rising; liveall
``membound_watchdog_state``                gauge    0 ok, 1 soft, 2 hard; liveall
``membound_refusing_new_work``             gauge    1 while ``refuse_new_work`` holds; liveall
``membound_pool_idle {pool}``              gauge    idle objects of a ``BoundedPool``; liveall
``membound_pool_in_use {pool}``            gauge    objects lent out; liveall
``membound_pool_objects_created_total``    counter  objects made by the pool's factory
``membound_pool_objects_reused_total``     counter  acquisitions served by an idle object
``membound_pool_objects_discarded_total``  counter  objects dropped on release
``membound_exporter_errors_total``         counter  readings that failed (logged)
``membound_processes`` *                   gauge    live processes exporting; livesum
``membound_processes_rss_bytes`` *         gauge    their RSS summed; livesum
``membound_exporter_last_update_``         gauge    when this process last wrote its figures;
  ``timestamp_seconds`` *                           liveall
=========================================  =======  ==========================================

[1] These follow the limit: under a cgroup limit they are the cgroup's (one series,
livemostrecent); under an rlimit, a given limit or RAM they are the process's own (liveall, one
series per ``pid``). ``min(membound_memory_headroom_bytes)`` is the headroom that matters in both
cases. The choice is made from the limit when a process starts exporting.

[2] ``source`` and ``kind`` are those of :func:`membound.memory_limit` (or of the watchdog's limit).

[3] Counters of several processes are summed; a count that the kernel keeps for the whole cgroup
must not be, so in multiprocess mode it is the most recent value any worker read.

Counters of pools: in multiprocess mode each worker advances its own counter by what the pool
counted since the last update, and prometheus_client sums every process's counters, those of
dead workers included, so the totals only go up. A pool made anew under the same name counts
from 0 again; between two updates only its new count is seen, so what the pool it replaced counted
after the last update is lost.

Unknown values: ``membound_time_to_limit_seconds`` and ``membound_growth_bytes_per_second`` read
NaN while there is nothing to say (no watchdog, the trend's window not yet filled, a floor that
is not rising). NaN rather than an absent series because multiprocess mode cannot take back a
sample once written; NaN compares false in every alert rule, as an absent series would. The OOM
kill count and pressure are absent where the kernel does not offer them.

**One process** (``python app.py``, uvicorn with one worker)::

    from prometheus_client import REGISTRY
    from membound.guard.prometheus import MemboundCollector
    REGISTRY.register(MemboundCollector())        # or: membound.guard.prometheus.register()

The collector computes the figures at scrape time.

**Several processes** (gunicorn, prometheus_client's multiprocess mode, ``PROMETHEUS_MULTIPROC_DIR``
set in the server's environment before anything imports ``prometheus_client``): a scrape is
answered by one worker, which merges the files that every worker writes; a custom collector
would only show the worker that answers. So each worker writes its figures into
multiprocess-mode metrics from a daemon thread (:func:`start_updater`, every ``interval``
seconds, and at once when the watchdog changes state). In a gunicorn config file::

    from membound.guard import prometheus as membound_prometheus

    def post_fork(server, worker):
        membound_prometheus.start_updater(interval=5.0)   # in each worker: threads don't fork

    child_exit = membound_prometheus.child_exit   # drops a dead worker's series

and serve ``/metrics`` with ``MultiProcessCollector(CollectorRegistry())`` as the
prometheus_client documentation shows. Without ``child_exit`` the series of dead workers stay
until the directory is wiped (wipe it before the server starts, as prometheus_client advises).
Start the updater in the workers, not in the master: a ``liveall`` series is removed only by
``child_exit``, so a process that dies without one (a ``multiprocessing`` child) would leave its
series behind. Multiprocess mode needs prometheus_client 0.18 or newer (``livemostrecent``).

Why a module of our own: prometheus_client's ``ProcessCollector`` reports RSS and nothing about
limits, cgroups, pressure or the watchdog, and is not merged across workers either.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

try:
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.metrics_core import CounterMetricFamily, Metric
except ImportError:
    raise ImportError(
        "membound's Prometheus exporter needs prometheus-client: pip install 'membound[prometheus]'"
    ) from None

from membound.guard.process_health import process_health
from membound.guard.prometheus.metrics import (
    ERRORS,
    MULTIPROCESS_ONLY,
    SPECS,
    families,
    family,
    samples,
)
from membound.guard.prometheus.multiprocess import (
    Updater,
    child_exit,
    multiprocess_dir,
    start_updater,
    stop_updater,
)
from membound.guard.watchdog.core import Watchdog

__all__ = [
    "MemboundCollector",
    "ReportCollector",
    "Updater",
    "child_exit",
    "register",
    "start_updater",
    "stop_updater",
]

_log = logging.getLogger("membound.guard")


class MemboundCollector:
    """A ``prometheus_client`` collector of the guard's figures, read at scrape time.

    For one process: ``REGISTRY.register(MemboundCollector())``. Under prometheus_client's
    multiprocess mode a custom collector shows only the worker that answers the scrape: use
    :func:`register` or :func:`start_updater` there.

    Args:
        watchdog: the watchdog to report (default: the one started last in this process, read
            at each scrape).

    A reading that fails is logged and counted in ``membound_exporter_errors_total``; the scrape
    still answers, with the other collectors' metrics.
    """

    def __init__(self, watchdog: Watchdog | None = None) -> None:
        self.watchdog = watchdog
        self.errors = 0

    def describe(self) -> Iterator[Metric]:
        """Every family this collector may yield (so a registry spots clashing names without
        reading memory at registration)."""
        for spec in SPECS.values():
            if spec.name not in MULTIPROCESS_ONLY:
                yield family(spec)

    def collect(self) -> Iterator[Metric]:
        """The families with the figures of now."""
        try:
            found = samples(process_health(self.watchdog), multiprocess=False)
        except Exception:
            self.errors += 1
            _log.exception("membound prometheus: reading the figures failed")
            found = []
        yield from families([s for s in found if s[0] != ERRORS])
        errors = CounterMetricFamily(ERRORS, SPECS[ERRORS].help)
        errors.add_metric((), float(self.errors))
        yield errors


class ReportCollector:
    """The metrics of a report with :func:`membound.health`'s keys, made by ``report`` at each
    scrape: another process's figures (``membound watch`` reports the process it watches).

    Args:
        report: makes the report; what it raises fails the scrape.
        leave_out: names of metrics not to serve (a figure that would speak of this process).
    """

    def __init__(
        self, report: Callable[[], Mapping[str, Any]], leave_out: Collection[str] = ()
    ) -> None:
        self.report = report
        self.leave_out = frozenset(leave_out)

    def collect(self) -> Iterator[Metric]:
        """The families with the report's figures of now."""
        found = samples(self.report(), multiprocess=False)
        yield from families([s for s in found if s[0] not in self.leave_out])


def register(
    registry: CollectorRegistry | None = None,
    watchdog: Watchdog | None = None,
    interval: float = 5.0,
) -> MemboundCollector | Updater:
    """Export the guard's figures the way the process's mode needs.

    * One process: registers a :class:`MemboundCollector` in ``registry`` (default:
      ``prometheus_client.REGISTRY``) and returns it.
    * Multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` or ``prometheus_multiproc_dir`` set):
      :func:`start_updater` (``registry`` is not used: the figures go to the directory that
      ``MultiProcessCollector`` reads) and returns the :class:`Updater`.

    Args:
        registry: where to register the collector in one process.
        watchdog: the watchdog to report (default: the one started last).
        interval: seconds between updates in multiprocess mode.
    """
    if multiprocess_dir() is not None:
        return start_updater(interval, watchdog)
    collector = MemboundCollector(watchdog)
    (registry if registry is not None else REGISTRY).register(collector)
    return collector
