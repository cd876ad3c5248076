"""gunicorn config for the server tests and ``benchmarks/bench_servers.py``: membound's
``GunicornRecycler`` as its module docstring says to set it up (sync workers and ``UvicornWorker``
alike), unless ``MB_TEST_RECYCLER=0``; with ``MB_TEST_GUARD=full`` a sync worker also starts
its Watchdog as it boots (``guarded_wsgi.start_in_worker``).

Environment: ``MB_TEST_HARD`` (default "64 MiB"), ``MB_TEST_SLOT_DIR``, ``MB_TEST_JITTER``.
"""

from __future__ import annotations

import os
from typing import Any

from membound.guard import GunicornRecycler

recycler = GunicornRecycler(
    hard=os.environ.get("MB_TEST_HARD", "64 MiB"),
    slot_dir=os.environ.get("MB_TEST_SLOT_DIR") or None,
    jitter=float(os.environ.get("MB_TEST_JITTER", "0.1")),
    grace=10,
)
RECYCLE = os.environ.get("MB_TEST_RECYCLER", "1") == "1"


def post_worker_init(worker: Any) -> None:
    if RECYCLE:
        recycler.post_worker_init(worker)
    if os.environ.get("MB_TEST_GUARD") == "full" and not hasattr(worker, "config"):
        import guarded_wsgi  # the app's module, loaded in this worker already

        guarded_wsgi.start_in_worker()


if RECYCLE:
    post_request = recycler.post_request
    on_exit = recycler.on_exit

# Recent gunicorn releases open a control socket at one fixed path (~/.gunicorn/gunicorn.ctl):
# servers started side by side must not share it. Older releases ignore this.
control_socket_disable = True
