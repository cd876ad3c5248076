"""Recycle gunicorn workers on their *current* memory, gracefully, a few at a time.

gunicorn recycles workers only by request count (``max_requests``; an RSS limit was refused in
gunicorn#1299 and #3581), uWSGI's ``reload-on-rss`` kills requests in flight (uwsgi#105), and
four workers restarted within 4 s despite jitter (gunicorn#3427). :class:`GunicornRecycler` gives
gunicorn's server hooks that:

* after each request (``post_request``), read the worker's own memory *now* — anonymous plus
  shared resident memory, what stays charged to it (never ``ru_maxrss``, the peak);
* when it is at its recycle point (``hard``, less a jitter drawn per worker so that workers
  growing at one pace do not all cross at once), stop the worker gracefully: ``worker.alive =
  False`` makes gunicorn's sync and gthread workers finish the request in hand, stop accepting
  and exit, and the arbiter starts a fresh one; the request that crossed the point has already
  been answered, and requests waiting on the socket go to the other workers;
* let at most ``max_recycling`` workers (default ⌈workers / 4⌉) recycle at once (slot locks
  held until the recycled worker exits; ``membound.guard.recycle.policy``);
* report a worker that starts serving above ``hard`` once, and never recycle it for memory
  (a fresh worker would be as big: a restart loop);
* with ``uvicorn.workers.UvicornWorker`` (``post_worker_init``), wrap the worker's ASGI app in
  :class:`~membound.guard.recycle.uvicorn.ASGIRecycler`, which does the same after each response
  and stops the worker as uvicorn stops itself (gunicorn's ``post_request`` never runs there).

Use it in a gunicorn config file::

    from membound.guard import GunicornRecycler

    recycler = GunicornRecycler(hard="300 MB")
    post_worker_init = recycler.post_worker_init
    post_request = recycler.post_request
    on_exit = recycler.on_exit

A percentage is of the worker's share of the limit (``memory_limit()`` divided by the number of
workers). The hooks never raise into gunicorn: a failure is logged through the worker's logger.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from membound.guard.in_flight import not_served
from membound.guard.recycle.policy import Policy, under_pressure, usage_now
from membound.guard.recycle.uvicorn import ASGIRecycler
from membound.guard.serving import Supervisor
from membound.measure.cgroup.memory import process_usage

__all__ = ["GunicornRecycler", "Recycler"]


def _workers(worker: Any) -> int:
    return int(getattr(worker.cfg, "workers", 1) or 1)


class GunicornRecycler:
    """gunicorn hooks that recycle a worker after the request in which it reached ``hard``.

    Args:
        hard: a worker's memory (anonymous + shared resident) at which it is recycled: a size, or
            a percentage of the worker's share of the limit.
        max_recycling: workers allowed to recycle at the same time (default ⌈workers / 4⌉).
        slot_dir: where the slot lock files live (default: the temporary directory).
        jitter: each worker recycles at a point drawn once between ``hard × (1 − jitter)`` and
            ``hard`` (0 to 0.5).
        grace: under ``UvicornWorker``, seconds the requests in flight have to finish (sync
            and gthread workers finish the request in hand; gunicorn's ``timeout`` bounds it).

    Attributes:
        recycled: workers this process told to recycle (in a worker: 0 or 1).
        policy: the recycle point, slots and boot check.
    """

    def __init__(
        self,
        hard: int | str = "90%",
        max_recycling: int | None = None,
        slot_dir: str | None = None,
        *,
        jitter: float = 0.1,
        grace: float = 30.0,
    ) -> None:
        self.policy = Policy(hard, jitter, max_recycling, slot_dir)
        self._hard = hard
        if (
            isinstance(grace, bool)
            or not isinstance(grace, int | float)
            or not 0 <= grace <= 3600  # NaN fails this too
        ):
            raise ValueError(f"grace is seconds from 0 to 3600, got {grace!r}")
        self.grace = float(grace)
        self.recycled = 0

    @property
    def max_recycling(self) -> int | None:
        """Workers allowed to recycle at once (None: ⌈workers / 4⌉)."""
        return self.policy.max_recycling

    @property
    def slot_dir(self) -> str:
        """Where the slot lock files live."""
        return self.policy.slot_dir

    @property
    def deferred(self) -> int:
        """Times this worker was over its point and found every slot taken."""
        return self.policy.deferred

    def hard_bytes(self, workers: int) -> int:
        """The threshold in bytes for a server of ``workers`` workers."""
        return self.policy.hard_bytes(workers)

    def post_worker_init(self, worker: Any) -> None:
        """gunicorn's ``post_worker_init`` hook: note the worker's memory as it starts serving
        (a worker above ``hard`` then is reported, not recycled), and wrap an ASGI app run by
        ``UvicornWorker`` in the recycler."""
        try:
            usage = process_usage("self")
            if usage is not None:
                message = self.policy.boot(usage.judged, _workers(worker), int(worker.ppid))
                if message is not None:
                    worker.log.warning("%s", message)
            if hasattr(worker, "config") and "uvicorn" in type(worker).__module__:
                wrapped = ASGIRecycler(worker.wsgi, self._hard, grace=self.grace)
                wrapped.policy = self.policy  # one point, one boot, one slot per worker
                wrapped.adopt(Supervisor("gunicorn", int(worker.ppid), _workers(worker)))
                worker.wsgi = wrapped
        except Exception as exc:  # a hook must never break the server
            with contextlib.suppress(Exception):
                worker.log.error("membound: the recycler could not start: %s", exc)

    def post_request(self, worker: Any, req: Any, environ: Any, resp: Any) -> None:
        """gunicorn's ``post_request`` hook: recycle this worker if it is at its point."""
        try:
            if not getattr(worker, "alive", False):
                return
            if getattr(resp, "status_code", None) == 503:
                not_served()  # refused, not served: the service ledger leaves it out
            workers, supervisor_pid = _workers(worker), int(worker.ppid)
            if not self.policy.booted:  # no post_worker_init hook: the first request's end
                usage = process_usage("self")
                if usage is not None:
                    message = self.policy.boot(usage.judged, workers, supervisor_pid)
                    if message is not None:
                        worker.log.warning("%s", message)
            pressure = under_pressure()
            judged = usage_now(self.policy.point_bytes(workers, pressure))
            if judged is None:
                return
            # gthread: the other requests its threads serve now hold their temporaries too
            others = max(0, len(getattr(worker, "futures", ())) - 1)
            decision = self.policy.judge(judged, workers, supervisor_pid, pressure, others)
            if decision.message is not None:
                worker.log.info("%s", decision.message)
            if decision.verdict == "recycle":
                self.recycled += 1
                worker.alive = False
        except Exception as exc:  # a hook must never break the server
            with contextlib.suppress(Exception):
                worker.log.error("membound: the recycling check failed: %s", exc)

    def on_exit(self, server: Any) -> None:
        """gunicorn's ``on_exit`` hook: remove the slot files of this arbiter."""
        self.policy.remove_slots(os.getpid())


#: The old name of :class:`GunicornRecycler`, kept for the code that imports it from here.
Recycler = GunicornRecycler
