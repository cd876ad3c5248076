"""Who owns a range's lease: an owner's name (``host:pid:random``, after its coordinator's name
and ``|`` for a ``run_partitioned`` task), whether an owner is known gone so its range can be
taken over at once, and the heartbeat that renews a lease while its range is worked."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

from membound._errors import LeaseLost
from membound._proc import process_state

with contextlib.suppress(ImportError):
    from sqlalchemy import exc as sa_exc

if TYPE_CHECKING:
    from membound.bound.sql.partition.leases import Lease

__all__ = ["Heartbeat", "abandoned", "coordinating", "default_owner"]


def default_owner() -> str:
    """A name for this worker that no other worker has: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


#: Coordinators running in this process now (``run_partitioned`` calls under way: a handful).
_LIVE_COORDINATORS: set[str] = set()


@contextlib.contextmanager
def coordinating(coordinator: str) -> Iterator[None]:
    """Mark ``coordinator`` (a ``run_partitioned`` call of this process) as running for the
    block: a lease owned by a task of a coordinator of this process that is not running any more
    is known abandoned (see :func:`abandoned`)."""
    _LIVE_COORDINATORS.add(coordinator)
    try:
        yield
    finally:
        _LIVE_COORDINATORS.discard(coordinator)


def abandoned(owner: str | None) -> bool:
    """Whether the owner of a lease is known to be gone, so its range can be taken over now
    rather than when the lease runs out: a name of this host (``host:pid:…``, the coordinator's
    or the worker's) whose process no longer exists, or a coordinator of this very process that
    has returned (an interrupted or failed call; its in-process tasks ended with it). Owners on
    other hosts are never judged: their leases run out. A wrong guess (a reused pid) costs
    nothing but time: the fence stops the old owner's next commit."""
    if not owner or owner.startswith(("stopping:", "interrupt:")):
        return False
    names = owner.split("|", 1)  # "coordinator|worker" (run_partitioned) or "worker" (claims)
    host = socket.gethostname()
    for i, name in enumerate(names):
        where, _, rest = name.partition(":")
        pid_text = rest.partition(":")[0]
        if where != host or not pid_text.isdigit():
            continue
        pid = int(pid_text)
        if pid == os.getpid():
            if len(names) == 2 and i == 0 and name not in _LIVE_COORDINATORS:
                return True
            continue
        if not _process_exists(pid):
            return True
    return False


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return process_state(pid) != b"Z"  # a zombie has ended: only not reaped


class Heartbeat:
    """Renews a lease every third of its length from a daemon thread, while a range is worked.

    A renewal that finds the lease lost stops the thread; ``lease.lost`` says so.
    """

    def __init__(self, lease: Lease) -> None:
        self.lease = lease
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="membound-lease", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        interval = max(self.lease.lease_s / 3, 0.05)
        while not self._stop.wait(interval):
            try:
                self.lease.renew()
            except LeaseLost:
                return
            except sa_exc.SQLAlchemyError:
                continue  # the database is unreachable for now: the next beat tries again

    def stop(self) -> None:
        """Stop renewing (before the range is finished or released)."""
        self._stop.set()
        self._thread.join()
