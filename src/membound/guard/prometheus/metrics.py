"""The guard's Prometheus metrics: their names, help, labels and multiprocess modes, and the
samples one :func:`membound.health` report gives (the table is in
``guard/prometheus/collector.py``)."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily

__all__ = [
    "ERRORS",
    "MULTIPROCESS_ONLY",
    "SPECS",
    "STATES",
    "MetricSpec",
    "Sample",
    "families",
    "family",
    "samples",
]

Scope = Literal["process", "usage", "shared", "workers"]


@dataclass(frozen=True)
class MetricSpec:
    """One metric: how it is named, described, labelled and merged across processes."""

    name: str
    """The name as exposed (counters with ``_total``)."""
    help: str
    labels: tuple[str, ...] = ()
    scope: Scope = "process"
    """Multiprocess mode: ``process`` liveall, ``usage`` follows the limit (see the module
    docstring), ``shared`` livemostrecent, ``workers`` livesum (multiprocess mode only)."""
    counter: bool = False


_POOL = ("pool",)
SPECS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("membound_memory_rss_bytes", "Resident memory of the process (VmRSS), bytes."),
        MetricSpec(
            "membound_memory_peak_bytes", "Peak resident memory of the process (VmHWM), bytes."
        ),
        MetricSpec(
            "membound_memory_anon_bytes",
            "Anonymous memory in what the limit counts (the cgroup's, or the process's), bytes.",
            scope="usage",
        ),
        MetricSpec(
            "membound_memory_usage_bytes",
            "Memory judged against the limit (as the OOM killer counts it), bytes.",
            scope="usage",
        ),
        MetricSpec(
            "membound_memory_page_cache_bytes",
            "Page cache in what the limit counts (file-backed RSS for a process), bytes.",
            scope="usage",
        ),
        MetricSpec(
            "membound_memory_headroom_bytes",
            "The limit less the judged usage, bytes.",
            scope="usage",
        ),
        MetricSpec(
            "membound_memory_limit_bytes",
            "The tightest memory limit that applies, bytes.",
            ("source", "kind"),
            scope="shared",
        ),
        MetricSpec(
            "membound_memory_oom_kills_total",
            "Processes the OOM killer killed in the limit's cgroup.",
            scope="shared",
            counter=True,
        ),
        MetricSpec(
            "membound_memory_pressure",
            "Memory pressure stall information: percent of wall time stalled, averaged over "
            "the window (seconds).",
            ("kind", "window"),
            scope="shared",
        ),
        MetricSpec(
            "membound_growth_bytes_per_second",
            "Slope of the floor of memory after collections (NaN when unknown).",
        ),
        MetricSpec(
            "membound_time_to_limit_seconds",
            "Seconds until the limit at the floor's slope (NaN when unknown or not rising).",
        ),
        MetricSpec("membound_watchdog_state", "Watchdog state: 0 ok, 1 soft, 2 hard."),
        MetricSpec(
            "membound_watchdog_threshold_bytes",
            "The watchdog's thresholds (soft, hard, recover), bytes.",
            ("threshold",),
        ),
        MetricSpec("membound_refusing_new_work", "1 while new work is refused, else 0."),
        MetricSpec("membound_pool_idle", "Idle objects kept by the pool.", _POOL),
        MetricSpec("membound_pool_in_use", "Objects of the pool lent out now.", _POOL),
        MetricSpec(
            "membound_pool_objects_created_total",
            "Objects made by the pool's factory.",
            _POOL,
            counter=True,
        ),
        MetricSpec(
            "membound_pool_objects_reused_total",
            "Acquisitions served by an idle object.",
            _POOL,
            counter=True,
        ),
        MetricSpec(
            "membound_pool_objects_discarded_total",
            "Objects dropped on release (pool full, or reset raised).",
            _POOL,
            counter=True,
        ),
        MetricSpec(
            "membound_exporter_errors_total",
            "Readings of membound's figures that failed (each one is logged).",
            counter=True,
        ),
        MetricSpec(
            "membound_processes",
            "Live processes exporting membound figures.",
            scope="workers",
        ),
        MetricSpec(
            "membound_processes_rss_bytes",
            "Resident memory of the live processes exporting membound figures, summed, bytes.",
            scope="workers",
        ),
        MetricSpec(
            "membound_exporter_last_update_timestamp_seconds",
            "When this process last wrote its membound figures (seconds since the epoch).",
        ),
    )
}
#: Metrics only multiprocess mode has (a single process's figures are computed at scrape time).
MULTIPROCESS_ONLY = frozenset(
    {
        "membound_processes",
        "membound_processes_rss_bytes",
        "membound_exporter_last_update_timestamp_seconds",
    }
)
#: The watchdog's states as ``membound_watchdog_state`` writes them.
STATES = {"ok": 0.0, "soft": 1.0, "hard": 2.0}
#: ``pool_stats()`` key → metric.
_POOL_FIELDS = (
    ("idle", "membound_pool_idle"),
    ("in_use", "membound_pool_in_use"),
    ("created", "membound_pool_objects_created_total"),
    ("reused", "membound_pool_objects_reused_total"),
    ("discarded", "membound_pool_objects_discarded_total"),
)
ERRORS = "membound_exporter_errors_total"

Sample = tuple[str, tuple[str, ...], float]


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def samples(report: Mapping[str, Any], multiprocess: bool) -> list[Sample]:
    """The metrics' samples drawn from one ``health()`` report (or a report of the same keys,
    as ``membound watch`` makes of the process it watches); a key that is absent or None gives
    no sample."""
    found: list[Sample] = []

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
    state = report.get("state", report.get("status"))  # status may be "refusing"
    add("membound_watchdog_state", STATES.get(str(state), math.nan))
    watchdog = report.get("watchdog")
    thresholds = watchdog.get("thresholds") if isinstance(watchdog, Mapping) else None
    if isinstance(thresholds, Mapping):
        for threshold in ("soft", "hard", "recover"):
            add(
                "membound_watchdog_threshold_bytes",
                _number(thresholds.get(f"{threshold}_bytes")),
                (threshold,),
            )
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


def family(spec: MetricSpec) -> GaugeMetricFamily | CounterMetricFamily:
    """An empty family of ``spec``'s type, name, help and labels, for a collector to fill."""
    if spec.counter:
        return CounterMetricFamily(spec.name, spec.help, labels=spec.labels)
    return GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)


def families(found: list[Sample]) -> list[GaugeMetricFamily | CounterMetricFamily]:
    """The samples grouped in their families, in the order they were first found."""
    made: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}
    for name, labels, value in found:
        group = made.get(name)
        if group is None:
            group = made[name] = family(SPECS[name])
        group.add_metric(labels, value)
    return list(made.values())
