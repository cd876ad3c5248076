"""prometheus_client's multiprocess mode: each worker writes its figures into files that
``MultiProcessCollector`` merges, from a daemon thread (:class:`Updater`), gunicorn's
``child_exit`` drops a dead worker's series, and :func:`read_workers` reads back what each worker
wrote (``health(scope="service")``). Used through ``guard/prometheus/collector.py``, whose
docstring says how to set it up."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import struct
import threading
import time
from collections.abc import Mapping
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client import values as _prometheus_values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from membound._errors import MemboundError
from membound.guard.process_health import process_health
from membound.guard.prometheus.metrics import ERRORS, SPECS, STATES, MetricSpec, samples
from membound.guard.watchdog.core import Watchdog
from membound.guard.watchdog.instances import current

__all__ = [
    "Updater",
    "check_multiprocess",
    "child_exit",
    "multiprocess_dir",
    "read_workers",
    "start_updater",
    "stop_updater",
]

_log = logging.getLogger("membound.guard")

#: How often the updater looks at the watchdog's state between updates, seconds.
_STATE_POLL_S = 0.25
#: The files prometheus_client keeps a process's values in: ``<prefix>_<pid>.db``, one per
#: metric type and gauge mode (the modes :class:`_Writer` uses).
_FILE_PREFIXES = ("counter", "gauge_liveall", "gauge_livesum", "gauge_livemostrecent")
#: The size prometheus_client gives a new file (``mmap_dict.py``); zeros read as no entries.
_NEW_FILE_BYTES = 1 << 16


def _files_in_place(path: str, pid: int) -> None:
    """Put this process's value files in ``path`` in place, sized, before prometheus_client
    opens them.

    prometheus_client creates a file, then sizes it: a scrape in that moment reads 0 bytes and
    ``MultiProcessCollector`` fails whole (``struct.error``; prometheus/client_python#1199,
    seen with 0.26), a 500 from ``/metrics`` each time gunicorn starts a worker, and a worker
    killed in that moment leaves the empty file for good. A file that is already there, sized,
    is opened as it is. Each is written under another name and linked into place, so that no
    name in the directory ever holds an empty file, and one already there is kept.
    """
    for prefix in _FILE_PREFIXES:
        final = os.path.join(path, f"{prefix}_{pid}.db")
        if os.path.exists(final):
            continue
        # No ``.db`` ending: the collector reads every ``*.db`` file.
        staged = os.path.join(path, f".membound-{prefix}-{pid}.staged")
        try:
            with open(staged, "wb") as out:
                out.truncate(_NEW_FILE_BYTES)
            os.link(staged, final)
        except FileExistsError:
            pass  # opened by prometheus_client meanwhile: its own is kept
        except OSError:
            return  # prometheus_client creates them as it always has, and says what failed
        finally:
            with contextlib.suppress(OSError):
                os.unlink(staged)


def multiprocess_dir() -> str | None:
    """The directory of prometheus_client's multiprocess mode, or None when not set."""
    # The lower-case name is the one older prometheus_client releases read; they still do.
    old = os.environ.get("prometheus_multiproc_dir")  # noqa: SIM112
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or old


def check_multiprocess() -> None:
    """Refuse, in one line each, what would keep multiprocess mode from working."""
    path = multiprocess_dir()
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
        path = multiprocess_dir()
        if path:
            _files_in_place(path, os.getpid())
        self._metrics: dict[str, Gauge | Counter] = {}
        self._written: dict[str, set[tuple[str, ...]]] = {}
        #: Last cumulative value seen per counter series: counters are advanced by the change.
        self._counted: dict[tuple[str, tuple[str, ...]], float] = {}
        self._usage_mode: Literal["liveall", "livemostrecent"] | None = None
        self._metric(SPECS[ERRORS])  # shows 0 from the start

    def _metric(self, spec: MetricSpec) -> Gauge | Counter:
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
        for name, labels, value in samples(report, multiprocess=True):
            spec = SPECS[name]
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
            spec = SPECS[name]
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
        errors = self._metrics[ERRORS]
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

    def __init__(self, interval: float = 5.0, watchdog: Watchdog | None = None) -> None:
        if isinstance(interval, bool) or not isinstance(interval, int | float):
            raise MemboundError(f"interval={interval!r} must be a number of seconds")
        if not 0.05 <= interval <= 3600:
            raise MemboundError(f"interval={interval!r} must be from 0.05 to 3600 s")
        check_multiprocess()
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
                self._writer.write(process_health(self.watchdog))
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
        dog = self.watchdog if self.watchdog is not None else current()
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


def start_updater(interval: float = 5.0, watchdog: Watchdog | None = None) -> Updater:
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


def child_exit(server: object, worker: Any) -> None:
    """gunicorn's ``child_exit`` hook: drop a dead worker's series (``mark_process_dead``).

    Use it in a gunicorn config file: ``child_exit = membound.guard.prometheus.child_exit``
    (or call it from your own ``child_exit``). It runs in the master and never raises.
    """
    path = multiprocess_dir()
    if not path:
        return
    try:
        mark_process_dead(worker.pid, path)  # type: ignore[no-untyped-call]
    except Exception:
        _log.exception("membound prometheus: dropping the series of worker %r failed", worker)


#: The metrics :func:`read_workers` reads, and the key of each in what it returns.
_WORKER_FIGURES = {
    "membound_memory_rss_bytes": "rss_bytes",
    "membound_watchdog_state": "state",
    "membound_exporter_last_update_timestamp_seconds": "updated",
}
_STATE_NAMES = {code: name for name, code in STATES.items()}


def read_workers(path: str) -> list[dict[str, Any]]:
    """What each process exporting into the multiprocess directory ``path`` last wrote of its own:
    ``pid``, and where known ``rss_bytes``, ``state`` (``ok``, ``soft`` or ``hard``) and
    ``updated`` (seconds since the epoch). Processes whose series are still there are listed
    whether or not they still run."""
    workers: dict[str, dict[str, Any]] = {}
    for metric in _collect(path):
        for sample in metric.samples:
            key = _WORKER_FIGURES.get(sample.name)
            pid = sample.labels.get("pid")
            if key is None or pid is None or sample.value != sample.value:  # NaN: unknown
                continue
            value = _STATE_NAMES.get(sample.value) if key == "state" else sample.value
            workers.setdefault(pid, {"pid": int(pid)})[key] = value
    return list(workers.values())


#: Reads of the multiprocess directory before an empty file is taken to be left for good.
_READ_TRIES = 5
_READ_PAUSE_S = 0.02


def _collect(path: str) -> list[Any]:
    """``MultiProcessCollector``'s metrics for ``path``. A file another process has just
    created reads 0 bytes for a moment and fails the whole read (see :func:`_files_in_place`):
    read again a few times; a file still empty then was left by a process killed in that
    moment, and is named."""
    for _ in range(_READ_TRIES):
        try:
            return list(MultiProcessCollector(CollectorRegistry(), path).collect())  # type: ignore[no-untyped-call]
        except struct.error:
            time.sleep(_READ_PAUSE_S)
    empty = sorted(
        name
        for name in os.listdir(path)
        if name.endswith(".db") and os.path.getsize(os.path.join(path, name)) == 0
    )
    raise MemboundError(
        f"prometheus_client cannot read {path!r}: empty value file(s) {', '.join(empty) or '?'}",
        hint="remove them: a process killed as it created them left them behind",
    )
