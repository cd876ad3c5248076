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
import math
import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

try:
    from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge
    from prometheus_client import values as _prometheus_values
    from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
    from prometheus_client.multiprocess import mark_process_dead
except ImportError:
    raise ImportError(
        "membound's Prometheus exporter needs prometheus-client: pip install 'membound[prometheus]'"
    ) from None

from membound._errors import MemboundError
from membound.guard import watchdog as _watchdog
from membound.guard.health import health

__all__ = [
    "MemboundCollector",
    "Updater",
    "child_exit",
    "register",
    "start_updater",
    "stop_updater",
]

_log = logging.getLogger("membound.guard")

Scope = Literal["process", "usage", "shared", "workers"]


@dataclass(frozen=True)
class _Spec:
    name: str
    """The name as exposed (counters with ``_total``)."""
    help: str
    labels: tuple[str, ...] = ()
    scope: Scope = "process"
    """Multiprocess mode: ``process`` liveall, ``usage`` follows the limit (see the module
    docstring), ``shared`` livemostrecent, ``workers`` livesum (multiprocess mode only)."""
    counter: bool = False


_POOL = ("pool",)
_SPECS: dict[str, _Spec] = {
    spec.name: spec
    for spec in (
        _Spec("membound_memory_rss_bytes", "Resident memory of the process (VmRSS), bytes."),
        _Spec("membound_memory_peak_bytes", "Peak resident memory of the process (VmHWM), bytes."),
        _Spec(
            "membound_memory_anon_bytes",
            "Anonymous memory in what the limit counts (the cgroup's, or the process's), bytes.",
            scope="usage",
        ),
        _Spec(
            "membound_memory_usage_bytes",
            "Memory judged against the limit (as the OOM killer counts it), bytes.",
            scope="usage",
        ),
        _Spec(
            "membound_memory_page_cache_bytes",
            "Page cache in what the limit counts (file-backed RSS for a process), bytes.",
            scope="usage",
        ),
        _Spec(
            "membound_memory_headroom_bytes",
            "The limit less the judged usage, bytes.",
            scope="usage",
        ),
        _Spec(
            "membound_memory_limit_bytes",
            "The tightest memory limit that applies, bytes.",
            ("source", "kind"),
            scope="shared",
        ),
        _Spec(
            "membound_memory_oom_kills_total",
            "Processes the OOM killer killed in the limit's cgroup.",
            scope="shared",
            counter=True,
        ),
        _Spec(
            "membound_memory_pressure",
            "Memory pressure stall information: percent of wall time stalled, averaged over "
            "the window (seconds).",
            ("kind", "window"),
            scope="shared",
        ),
        _Spec(
            "membound_growth_bytes_per_second",
            "Slope of the floor of memory after collections (NaN when unknown).",
        ),
        _Spec(
            "membound_time_to_limit_seconds",
            "Seconds until the limit at the floor's slope (NaN when unknown or not rising).",
        ),
        _Spec("membound_watchdog_state", "Watchdog state: 0 ok, 1 soft, 2 hard."),
        _Spec("membound_refusing_new_work", "1 while new work is refused, else 0."),
        _Spec("membound_pool_idle", "Idle objects kept by the pool.", _POOL),
        _Spec("membound_pool_in_use", "Objects of the pool lent out now.", _POOL),
        _Spec(
            "membound_pool_objects_created_total",
            "Objects made by the pool's factory.",
            _POOL,
            counter=True,
        ),
        _Spec(
            "membound_pool_objects_reused_total",
            "Acquisitions served by an idle object.",
            _POOL,
            counter=True,
        ),
        _Spec(
            "membound_pool_objects_discarded_total",
            "Objects dropped on release (pool full, or reset raised).",
            _POOL,
            counter=True,
        ),
        _Spec(
            "membound_exporter_errors_total",
            "Readings of membound's figures that failed (each one is logged).",
            counter=True,
        ),
        _Spec(
            "membound_processes",
            "Live processes exporting membound figures.",
            scope="workers",
        ),
        _Spec(
            "membound_processes_rss_bytes",
            "Resident memory of the live processes exporting membound figures, summed, bytes.",
            scope="workers",
        ),
        _Spec(
            "membound_exporter_last_update_timestamp_seconds",
            "When this process last wrote its membound figures (seconds since the epoch).",
        ),
    )
}
#: Metrics only multiprocess mode has (a single process's figures are computed at scrape time).
_MULTIPROCESS_ONLY = frozenset(
    {
        "membound_processes",
        "membound_processes_rss_bytes",
        "membound_exporter_last_update_timestamp_seconds",
    }
)
_STATES = {"ok": 0.0, "soft": 1.0, "hard": 2.0}
#: ``pool_stats()`` key → metric.
_POOL_FIELDS = (
    ("idle", "membound_pool_idle"),
    ("in_use", "membound_pool_in_use"),
    ("created", "membound_pool_objects_created_total"),
    ("reused", "membound_pool_objects_reused_total"),
    ("discarded", "membound_pool_objects_discarded_total"),
)
_ERRORS = "membound_exporter_errors_total"
#: How often the updater looks at the watchdog's state between updates, seconds.
_STATE_POLL_S = 0.25

_Sample = tuple[str, tuple[str, ...], float]


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _samples(report: Mapping[str, Any], multiprocess: bool) -> list[_Sample]:
    """The metrics' samples drawn from one ``health()`` report."""
    found: list[_Sample] = []

    def add(name: str, value: float | None, labels: tuple[str, ...] = ()) -> None:
        if value is not None:
            found.append((name, labels, value))

    rss = _number(report.get("rss_bytes"))
    add("membound_memory_rss_bytes", rss)
    add("membound_memory_peak_bytes", _number(report.get("peak_bytes")))
    add("membound_memory_anon_bytes", _number(report.get("anon_bytes")))
    add("membound_memory_usage_bytes", _number(report.get("usage_bytes")))
    add("membound_memory_page_cache_bytes", _number(report.get("page_cache_bytes")))
    add("membound_memory_headroom_bytes", _number(report.get("headroom_bytes")))
    add(
        "membound_memory_limit_bytes",
        _number(report.get("limit_bytes")),
        (str(report.get("limit_source")), str(report.get("limit_kind"))),
    )
    add("membound_memory_oom_kills_total", _number(report.get("oom_kills")))
    psi = report.get("pressure")
    if isinstance(psi, Mapping):
        for kind in ("some", "full"):
            fields = psi.get(kind)
            if isinstance(fields, Mapping):
                for window in ("10", "60", "300"):
                    add(
                        "membound_memory_pressure",
                        _number(fields.get(f"avg{window}")),
                        (kind, window),
                    )
    growth = report.get("growth")
    growth = growth if isinstance(growth, Mapping) else {}
    known = growth.get("pattern") not in (None, "unknown")
    slope = _number(growth.get("slope_bytes_per_s")) if known else None
    to_limit = _number(growth.get("time_to_limit_s"))
    add("membound_growth_bytes_per_second", math.nan if slope is None else slope)
    add("membound_time_to_limit_seconds", math.nan if to_limit is None else to_limit)
    add("membound_watchdog_state", _STATES.get(str(report.get("status")), math.nan))
    add("membound_refusing_new_work", 1.0 if report.get("refusing") else 0.0)
    pools = report.get("pools")
    if isinstance(pools, Mapping):
        for pool, stats in sorted(pools.items()):
            if isinstance(stats, Mapping):
                for key, name in _POOL_FIELDS:
                    add(name, _number(stats.get(key)), (str(pool),))
    if multiprocess:
        add("membound_processes", 1.0)
        add("membound_processes_rss_bytes", rss)
        add("membound_exporter_last_update_timestamp_seconds", time.time())
    return found


def _family(spec: _Spec) -> GaugeMetricFamily | CounterMetricFamily:
    if spec.counter:
        return CounterMetricFamily(spec.name, spec.help, labels=spec.labels)
    return GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)


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

    def __init__(self, watchdog: _watchdog.Watchdog | None = None) -> None:
        self.watchdog = watchdog
        self.errors = 0

    def describe(self) -> Iterator[Metric]:
        """Every family this collector may yield (so a registry spots clashing names without
        reading memory at registration)."""
        for spec in _SPECS.values():
            if spec.name not in _MULTIPROCESS_ONLY:
                yield _family(spec)

    def collect(self) -> Iterator[Metric]:
        """The families with the figures of now."""
        try:
            samples = _samples(health(self.watchdog), multiprocess=False)
        except Exception:
            self.errors += 1
            _log.exception("membound prometheus: reading the figures failed")
            samples = []
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}
        for name, labels, value in samples:
            family = families.get(name)
            if family is None:
                family = families[name] = _family(_SPECS[name])
            family.add_metric(labels, value)
        errors = CounterMetricFamily(_ERRORS, _SPECS[_ERRORS].help)
        errors.add_metric((), float(self.errors))
        families[_ERRORS] = errors
        yield from families.values()


# --- multiprocess mode ---------------------------------------------------------------------------


def _multiprocess_dir() -> str | None:
    # The lower-case name is the one older prometheus_client releases read; they still do.
    old = os.environ.get("prometheus_multiproc_dir")  # noqa: SIM112
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or old


def _check_multiprocess() -> None:
    path = _multiprocess_dir()
    if not path:
        raise MemboundError(
            "PROMETHEUS_MULTIPROC_DIR is not set: not prometheus_client's multiprocess mode",
            hint="in one process, register MemboundCollector() (or call register())",
        )
    if not os.path.isdir(path):
        raise MemboundError(
            f"PROMETHEUS_MULTIPROC_DIR={path!r} is not a directory",
            hint="create it (empty) before the server starts",
        )
    if not getattr(_prometheus_values.ValueClass, "_multiprocess", False):
        raise MemboundError(
            "prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set, so its "
            "metrics would stay in this process",
            hint="set PROMETHEUS_MULTIPROC_DIR in the environment that starts the server",
        )
    if "livemostrecent" not in getattr(Gauge, "_MULTIPROC_MODES", ()):
        raise MemboundError(
            "multiprocess mode needs prometheus-client 0.18 or newer (gauge mode livemostrecent)",
            hint="pip install -U 'prometheus-client>=0.18'",
        )


class _Writer:
    """Writes one process's figures into multiprocess-mode metrics (files that
    ``MultiProcessCollector`` merges)."""

    def __init__(self) -> None:
        self._metrics: dict[str, Gauge | Counter] = {}
        self._written: dict[str, set[tuple[str, ...]]] = {}
        #: Last cumulative value seen per counter series: counters are advanced by the change.
        self._counted: dict[tuple[str, tuple[str, ...]], float] = {}
        self._usage_mode: Literal["liveall", "livemostrecent"] | None = None
        self._metric(_SPECS[_ERRORS])  # shows 0 from the start

    def _metric(self, spec: _Spec) -> Gauge | Counter:
        found = self._metrics.get(spec.name)
        if found is not None:
            return found
        made: Gauge | Counter
        # registry=None: the files are what is scraped; registered in a registry too, the
        # metric would show a second time, unmerged, next to MultiProcessCollector's output.
        if spec.counter and spec.scope != "shared":
            made = Counter(spec.name, spec.help, spec.labels, registry=None)
        else:
            mode: Literal["liveall", "livemostrecent", "livesum"]
            if spec.scope == "shared":
                mode = "livemostrecent"
            elif spec.scope == "workers":
                mode = "livesum"
            elif spec.scope == "usage":
                mode = self._usage_mode or "liveall"
            else:
                mode = "liveall"
            made = Gauge(spec.name, spec.help, spec.labels, registry=None, multiprocess_mode=mode)
        self._metrics[spec.name] = made
        return made

    def write(self, report: Mapping[str, Any]) -> None:
        if self._usage_mode is None:
            cgroup = str(report.get("limit_kind", "")).startswith("cgroup")
            self._usage_mode = "livemostrecent" if cgroup else "liveall"
        written: dict[str, set[tuple[str, ...]]] = {}
        for name, labels, value in _samples(report, multiprocess=True):
            spec = _SPECS[name]
            metric = self._metric(spec)
            child = metric.labels(*labels) if spec.labels else metric
            if isinstance(child, Counter):
                last = self._counted.get((name, labels), 0.0)
                # A count that went down belongs to a new pool of the same name: count it anew.
                change = value - last if value >= last else value
                if change > 0:
                    child.inc(change)
                self._counted[name, labels] = value
            else:
                child.set(value)
            written.setdefault(name, set()).add(labels)
        for name, before in self._written.items():
            spec = _SPECS[name]
            for labels in before - written.get(name, set()):
                # Multiprocess mode cannot delete a sample: a pool that is gone holds nothing;
                # any other figure that is gone is unknown.
                if spec.counter and spec.scope != "shared":
                    self._counted.pop((name, labels), None)
                    continue
                metric = self._metrics[name]
                child = metric.labels(*labels) if spec.labels else metric
                assert isinstance(child, Gauge)
                child.set(0.0 if name.startswith("membound_pool_") else math.nan)
        self._written = written

    def count_error(self) -> None:
        errors = self._metrics[_ERRORS]
        assert isinstance(errors, Counter)
        errors.inc()


class Updater:
    """Writes this process's figures for prometheus_client's multiprocess mode, from a daemon
    thread: every ``interval`` seconds, and within a quarter second of a watchdog state change.

    Made by :func:`start_updater` (one per process). A reading that fails is logged and counted
    (``errors``, and ``membound_exporter_errors_total``); the thread goes on.

    Args:
        interval: seconds between updates (0.05 to 3600).
        watchdog: the watchdog to report (default: the one started last, looked up each time).
    """

    def __init__(self, interval: float = 5.0, watchdog: _watchdog.Watchdog | None = None) -> None:
        if isinstance(interval, bool) or not isinstance(interval, int | float):
            raise MemboundError(f"interval={interval!r} must be a number of seconds")
        if not 0.05 <= interval <= 3600:
            raise MemboundError(f"interval={interval!r} must be from 0.05 to 3600 s")
        _check_multiprocess()
        self.interval = float(interval)
        self.watchdog = watchdog
        self.pid = os.getpid()
        self.updates = 0
        self.errors = 0
        self._writer = _Writer()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """True while the thread runs (in this process: a thread does not survive ``fork``)."""
        return self._thread is not None and self._thread.is_alive() and self.pid == os.getpid()

    def update(self) -> bool:
        """Write the figures now; False when the reading failed (logged and counted)."""
        with self._lock:
            try:
                self._writer.write(health(self.watchdog))
            except Exception:
                self.errors += 1
                _log.exception("membound prometheus: updating the figures failed")
                try:
                    self._writer.count_error()
                except Exception:  # the files themselves are broken: the log says it
                    _log.exception("membound prometheus: counting the error failed")
                return False
            self.updates += 1
            return True

    def start(self) -> Updater:
        """Write the figures once, then start the thread; returns the updater."""
        if self.running:
            return self
        self._stopping.clear()
        self.update()
        self._thread = threading.Thread(target=self._run, name="membound-prometheus", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread (waiting up to ``timeout`` seconds for an update under way)."""
        self._stopping.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None

    def _state(self) -> str | None:
        dog = self.watchdog if self.watchdog is not None else _watchdog.current()
        return dog.state if dog is not None else None

    def _run(self) -> None:
        last = time.monotonic()
        state = self._state()
        while not self._stopping.wait(min(self.interval, _STATE_POLL_S)):
            try:
                now_state = self._state()
                if now_state != state or time.monotonic() - last >= self.interval:
                    state = now_state
                    last = time.monotonic()
                    self.update()
            except Exception:  # nothing may end the thread but stop()
                self.errors += 1
                _log.exception("membound prometheus: the updater failed")


_updater_lock = threading.Lock()
_updater: Updater | None = None


def start_updater(interval: float = 5.0, watchdog: _watchdog.Watchdog | None = None) -> Updater:
    """Start writing this process's figures for prometheus_client's multiprocess mode.

    Call it in each worker after the fork (gunicorn: ``post_fork``). One updater runs per
    process: a second call returns the running one.

    Args:
        interval: seconds between updates.
        watchdog: the watchdog to report (default: the one started last, looked up each time).

    Raises:
        MemboundError: not in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` unset or not a
            directory, or set only after ``prometheus_client`` was imported), or a
            prometheus-client older than 0.18.
    """
    global _updater
    with _updater_lock:
        if _updater is not None and _updater.running:
            return _updater
        _updater = Updater(interval, watchdog).start()
        return _updater


def stop_updater() -> None:
    """Stop this process's updater, if one runs."""
    global _updater
    with _updater_lock:
        if _updater is not None:
            _updater.stop()
            _updater = None


def register(
    registry: CollectorRegistry | None = None,
    watchdog: _watchdog.Watchdog | None = None,
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
    if _multiprocess_dir() is not None:
        return start_updater(interval, watchdog)
    collector = MemboundCollector(watchdog)
    (registry if registry is not None else REGISTRY).register(collector)
    return collector


def child_exit(server: object, worker: Any) -> None:
    """gunicorn's ``child_exit`` hook: drop a dead worker's series (``mark_process_dead``).

    Use it in a gunicorn config file: ``child_exit = membound.guard.prometheus.child_exit``
    (or call it from your own ``child_exit``). It runs in the master and never raises.
    """
    path = _multiprocess_dir()
    if not path:
        return
    try:
        mark_process_dead(worker.pid, path)  # type: ignore[no-untyped-call]
    except Exception:
        _log.exception("membound prometheus: dropping the series of worker %r failed", worker)
