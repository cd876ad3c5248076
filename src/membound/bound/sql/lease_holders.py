"""Who holds a range's lease: a worker's name (``host:pid:random``), whether a holder is known
gone so its range can be taken over at once, and the heartbeat that renews a lease while its
range is worked."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from membound._errors import LeaseLost

with contextlib.suppress(ImportError):
    from sqlalchemy import exc as sa_exc

if TYPE_CHECKING:
    from membound.bound.sql.leases import Lease

__all__ = ["Heartbeat", "abandoned", "default_owner", "driving"]


def default_owner() -> str:
    """A name for this worker that no other worker has: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


#: Drivers running in this process now (``run_partitioned`` calls under way: a handful).
_LIVE_DRIVERS: set[str] = set()


@contextlib.contextmanager
def driving(driver: str) -> Iterator[None]:
    """Mark ``driver`` (a ``run_partitioned`` call of this process) as running for the block:
    a lease held by a task of a driver of this process that is not running any more is known
    abandoned (see :func:`abandoned`)."""
    _LIVE_DRIVERS.add(driver)
    try:
        yield
    finally:
        _LIVE_DRIVERS.discard(driver)


def abandoned(owner: str | None) -> bool:
    """Whether the holder of a lease is known to be gone, so its range can be taken over now
    rather than when the lease runs out: a name of this host (``host:pid:…``, the driver's or
    the worker's) whose process no longer exists, or a driver of this very process that has
    returned (an interrupted or failed call; its in-process tasks ended with it). Holders on
    other hosts are never judged: their leases run out. A wrong guess (a reused pid) costs
    nothing but time: the fence stops the old holder's next commit."""
    if not owner or owner.startswith(("stopping:", "interrupt:")):
        return False
    names = owner.split("|", 1)  # "driver|worker" (run_partitioned) or "worker" (claims)
    host = socket.gethostname()
    for i, name in enumerate(names):
        where, _, rest = name.partition(":")
        pid_text = rest.partition(":")[0]
        if where != host or not pid_text.isdigit():
            continue
        pid = int(pid_text)
        if pid == os.getpid():
            if len(names) == 2 and i == 0 and name not in _LIVE_DRIVERS:
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
    with contextlib.suppress(OSError, ValueError):  # a zombie has ended: only not reaped
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


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
