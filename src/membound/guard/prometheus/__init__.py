"""Prometheus: the guard's figures as metrics, the one home of every metric membound exports.

``metrics`` declares them (names, help, labels, how processes merge); ``collector`` reads them
at scrape time, this process's or those of a report (``membound watch``'s); ``multiprocess``
writes them for ``prometheus_client``'s multiprocess mode (gunicorn, Celery) from a thread that
updates them, and reads back what each worker wrote; ``server`` serves them on 127.0.0.1
(``membound watch --prometheus-port``). Needs the ``prometheus`` extra.
"""

from __future__ import annotations

from membound.guard.prometheus.collector import (
    MemboundCollector,
    Updater,
    child_exit,
    register,
    start_updater,
    stop_updater,
)

__all__ = [
    "MemboundCollector",
    "Updater",
    "child_exit",
    "register",
    "start_updater",
    "stop_updater",
]
