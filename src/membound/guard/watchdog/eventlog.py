"""The guard's log lines: one line per event per service, with the pid and the time.

Every worker of a gunicorn server or of ``uvicorn --workers`` runs its own watchdog, and in one
container they all judge the same cgroup: each sees the group cross ``soft`` within a reading
of the others, and each said so — the same line, without a pid or a time, once per worker
(133 lines in 34 s with three workers). Here:

* every line names its time and pid, and sizes in MiB as the rest of membound writes them
  (``format_size``): ``membound guard: 2026-01-05 14:03:11 pid 4242: soft: 480.3 MiB of
  600.0 MiB (soft since crossing 480.0 MiB) in /sys/fs/cgroup/memory/app``;
* an event of the group's memory (the watchdog judges a cgroup) is said once per service:
  the first worker of the supervisor that sees it claims it in a small file beside the
  recycling slots (``slot_folder``, one per supervisor: ``events-<group>.json``, under an
  ``fcntl`` lock, so workers spawned rather than forked share it too), and the others, seeing
  the same kind of event claimed less than :data:`SAME_EVENT_S` ago, say nothing. A refusal
  by the backstop is this process's own and always said; so is everything in a process that no
  server supervises.

A file that cannot be written never silences a line: the worker then says it itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import time
from typing import TYPE_CHECKING

from membound.guard.serving import Supervisor, supervisor
from membound.guard.slots import setting, slot_folder

if TYPE_CHECKING:
    from membound.guard.watchdog.event import WatchdogEvent

__all__ = ["SAME_EVENT_S", "first_in_service", "log_event", "stamp"]

_log = logging.getLogger("membound.guard")
#: Workers that see the same kind of group event within this many seconds see one event.
SAME_EVENT_S = 5.0
#: The same, for the leak alarm (each worker's trend matures at its own time).
SAME_LEAK_S = 600.0
#: Who supervises this process, found once per pid (a worker's supervisor does not change).
_found: dict[int, Supervisor | None] = {}


def stamp() -> str:
    """``2026-01-05 14:03:11 pid 4242``: when and who, for a line of the guard."""
    return f"{time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()}"


def _supervisor() -> Supervisor | None:
    pid = os.getpid()
    if pid not in _found:
        _found.clear()
        _found[pid] = supervisor()
    return _found[pid]


def first_in_service(
    event: WatchdogEvent, now: float | None = None, service: Supervisor | None = None
) -> bool:
    """Whether this worker is the first of its service to say ``event`` (an event of the
    group's memory): True outside a supervised server, or when the claim cannot be kept.
    ``now`` is the time of the claim (default: when the claims are read), ``service`` whose
    workers share the claims (default: this process's supervisor)."""
    if event.group is None:
        return True
    found = service or _supervisor()
    if found is None:
        return True
    folder = slot_folder(setting().slot_dir, found.pid)
    key = hashlib.sha1(event.group.encode(), usedforsecurity=False).hexdigest()[:12]
    try:
        os.makedirs(folder, exist_ok=True)
        fd = os.open(os.path.join(folder, f"events-{key}.json"), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return True
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        # the time once the lock is held: a worker that read the clock, then waited for the
        # lock while another claimed the event, found a claim "from the future" and said it too
        now = time.time() if now is None else now
        try:
            claims = json.loads(os.pread(fd, 65536, 0) or b"{}")
        except ValueError:
            claims = {}
        claims = claims if isinstance(claims, dict) else {}
        name = f"{event.kind}:{event.state}"
        last = claims.get(name)
        window = SAME_LEAK_S if event.kind == "leak" else SAME_EVENT_S
        if isinstance(last, dict) and abs(now - float(last.get("at", 0))) < window:
            return False
        claims[name] = {"at": now, "pid": os.getpid()}
        data = json.dumps(claims).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        return True
    except (OSError, TypeError, ValueError):
        return True
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)  # releases the lock


def log_event(event: WatchdogEvent) -> None:
    """Say ``event`` in one line (``soft``, ``hard`` and ``leak`` as warnings, ``recover`` as
    information), once per service for an event of the group's memory."""
    level = logging.WARNING if event.kind in ("soft", "hard", "leak") else logging.INFO
    if not _log.isEnabledFor(level):
        return
    words = event.describe()
    if event.group is not None and event.cause != "backstop":
        if not first_in_service(event):
            return
        words += f" in {event.group}"
    _log.log(level, "membound guard: %s: %s", stamp(), words)
