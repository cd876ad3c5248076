"""gunicorn config for the Prometheus multiprocess test: the way the module docstring of
``membound.guard.prometheus`` says to set it up."""

from __future__ import annotations

from typing import Any

from membound.guard import prometheus as membound_prometheus

#: Short, so that the test sees a worker's growth soon.
UPDATE_INTERVAL = 0.2


def post_fork(server: Any, worker: Any) -> None:
    membound_prometheus.start_updater(interval=UPDATE_INTERVAL)


child_exit = membound_prometheus.child_exit

# Recent gunicorn releases open a control socket at one fixed path (~/.gunicorn/gunicorn.ctl):
# servers started side by side by parallel tests must not share it. Older releases ignore this.
control_socket_disable = True
