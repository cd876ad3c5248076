"""Recycle gunicorn workers on their *current* memory, gracefully, a few at a time.

gunicorn recycles workers only by request count (``max_requests``; an RSS limit was refused in
gunicorn#1299 and #3581), uWSGI's ``reload-on-rss`` kills requests in flight (uwsgi#105), and
four workers restarted within 4 s despite jitter (gunicorn#3427). :class:`Recycler` gives
gunicorn's server hooks that:

* after each request (``post_request``), read the worker's own memory *now* — anonymous plus
  shared resident memory, what stays charged to it (never ``ru_maxrss``, the peak);
* when it is at ``hard`` or above, stop the worker gracefully: ``worker.alive = False`` makes
  gunicorn's sync and gthread workers finish the request in hand, stop accepting and exit, and
  the arbiter starts a fresh one; the request that crossed the threshold has already been
  answered, and requests waiting on the socket go to the other workers;
* let at most ``max_recycling`` workers (default ⌈workers / 4⌉) recycle at once: a worker takes
  one of that many slot locks (``fcntl`` locks on files named after the arbiter's pid) and holds
  it until it exits, when the kernel releases it. A worker that finds no free slot keeps
  serving and tries again after its next request.

Use it in a gunicorn config file::

    from membound.guard.gunicorn import Recycler

    recycler = Recycler(hard="300 MB")
    post_request = recycler.post_request
    on_exit = recycler.on_exit

A percentage is of the worker's share of the limit (``memory_limit()`` divided by the number of
workers). The hooks never raise into gunicorn: a failure is logged through the worker's logger.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import shutil
import tempfile
from typing import Any

from membound._errors import SizeError
from membound._units import format_size, parse_size
from membound.guard.limit import memory_limit
from membound.measure.cgroup_memory import process_usage

__all__ = ["Recycler"]


class Recycler:
    """gunicorn hooks that recycle a worker after the request in which it crossed ``hard``.

    Args:
        hard: a worker's memory (anonymous + shared resident) at which it is recycled: a size, or
            a percentage of the worker's share of the limit.
        max_recycling: workers allowed to recycle at the same time (default ⌈workers / 4⌉).
        slot_dir: where the slot lock files live (default: the temporary directory).

    Attributes:
        recycled: workers this process told to recycle (in a worker: 0 or 1).
        deferred: times a worker over ``hard`` found every slot taken and kept serving.
    """

    def __init__(
        self,
        hard: int | str = "90%",
        max_recycling: int | None = None,
        slot_dir: str | None = None,
    ) -> None:
        self._hard_text = hard
        self._percent: float | None = None
        if isinstance(hard, str) and hard.strip().endswith("%"):
            try:
                self._percent = float(hard.strip()[:-1])
            except ValueError:
                self._percent = float("nan")
            if not 0 < self._percent <= 100:
                raise SizeError(f"hard={hard!r} is no percentage: expected 0 < p <= 100")
            self._hard_bytes: int | None = None
        else:
            self._hard_bytes = parse_size(hard)
            if self._hard_bytes <= 0:
                raise SizeError(f"hard={hard!r} must be more than 0 bytes")
        if max_recycling is not None and (
            isinstance(max_recycling, bool)
            or not isinstance(max_recycling, int)
            or max_recycling < 1
        ):
            raise ValueError(f"max_recycling must be a whole number >= 1, got {max_recycling!r}")
        self.max_recycling = max_recycling
        self.slot_dir = slot_dir if slot_dir is not None else tempfile.gettempdir()
        self.recycled = 0
        self.deferred = 0
        self._slot_fd: int | None = None

    def hard_bytes(self, workers: int) -> int:
        """The threshold in bytes for a server of ``workers`` workers."""
        if self._hard_bytes is not None:
            return self._hard_bytes
        assert self._percent is not None
        share = memory_limit().bytes / max(1, workers)
        return int(share * self._percent / 100)

    def _slots(self, workers: int) -> int:
        if self.max_recycling is not None:
            return self.max_recycling
        return max(1, math.ceil(workers / 4))

    def _dir(self, arbiter_pid: int) -> str:
        return os.path.join(self.slot_dir, f"membound-gunicorn-{arbiter_pid}")

    def _take_slot(self, arbiter_pid: int, workers: int) -> bool:
        """Lock a free recycling slot for the rest of this worker's life; False if none is."""
        if self._slot_fd is not None:
            return True
        folder = self._dir(arbiter_pid)
        os.makedirs(folder, exist_ok=True)
        for n in range(self._slots(workers)):
            fd = os.open(os.path.join(folder, f"slot-{n}"), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self._slot_fd = fd  # held until the process exits: the kernel releases it then
            return True
        return False

    def post_request(self, worker: Any, req: Any, environ: Any, resp: Any) -> None:
        """gunicorn's ``post_request`` hook: recycle this worker if it is at ``hard``."""
        try:
            if not getattr(worker, "alive", False):
                return
            usage = process_usage("self")
            if usage is None:
                return
            workers = int(getattr(worker.cfg, "workers", 1) or 1)
            hard = self.hard_bytes(workers)
            if usage.judged < hard:
                return
            if not self._take_slot(int(worker.ppid), workers):
                self.deferred += 1
                if self.deferred == 1:
                    worker.log.info(
                        "membound: worker %s is at %s, above hard %s, but %d worker(s) are "
                        "recycling already: it keeps serving and tries again after each request",
                        os.getpid(),
                        format_size(usage.judged),
                        format_size(hard),
                        self._slots(workers),
                    )
                return
            self.recycled += 1
            worker.alive = False
            worker.log.info(
                "membound: worker %s recycles after this request: %s anonymous memory is at or "
                "above hard %s",
                os.getpid(),
                format_size(usage.judged),
                format_size(hard),
            )
        except Exception as exc:  # a hook must never break the server
            with contextlib.suppress(Exception):
                worker.log.error("membound: the recycling check failed: %s", exc)

    def on_exit(self, server: Any) -> None:
        """gunicorn's ``on_exit`` hook: remove the slot files of this arbiter."""
        shutil.rmtree(self._dir(os.getpid()), ignore_errors=True)
