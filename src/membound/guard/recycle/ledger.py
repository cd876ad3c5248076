"""The service ledger: what each worker of a supervised server has served and how it grew, kept
in small files beside the recycling slots, so that any worker can report the whole service and
judge its leak trend per request, across workers that live only seconds.

A recycled worker lives seconds to minutes: its own leak trend (a window of 30 minutes) never
matures, and the service's memory looks flat because the recycler keeps it so. What a leak
leaves is the same in every worker: memory that grows with the requests served. Each worker
therefore keeps, in ``worker-PID.json``:

* requests served, memory at boot and now (anonymous + shared resident, as the recycler judges
  it), its state and whether it refuses work; rewritten at most once a second, and when it
  decides to recycle (so its last figures are fresh);
* its memory at a **mark**: the last power-of-two request count at most half of what it has
  served. Growth from the mark to now covers the later half of the worker's life (at least),
  so what its first requests warm up (imports, caches, connection pools) is left out.

Only requests the app **served** count: a health probe, a request shed with 503 while work is
refused and any 503 the app answers are not (the health middlewares and the gunicorn hook say
so with :func:`not_served`); counted, they made a leak look smaller per request.

Growth is judged on the worker's **lasting** memory: its anonymous memory read when a request
ends and no other request of the worker is in flight (the health middlewares count them), so
no request's temporary is in it. Under ``uvicorn --workers`` a worker serves other requests
while one holds a temporary, and it recycles (writing its last figures) at such a moment: read
then, memory held 60–150 MiB that no request kept, and a 100 KiB-per-request leak read as
642–897 KiB per request. Growth is divided by the requests served between the two readings it
spans. A reading costs one ``pread`` of ``/proc/self/statm``.

A record whose worker is gone (its pid no longer runs) is folded into
``finished.json``: the last :data:`FINISHED_KEPT` lives and a count of all, so the files stay
bounded however long the service runs and however many workers it recycles.

Files rather than shared memory: uvicorn's workers are spawned, not forked, so nothing set up
in the parent is shared; files need no set-up, and ``os.replace`` makes every write whole.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from membound._proc import PAGE, KeptStatm, pid_exists
from membound.guard.in_flight import in_flight, take_not_served
from membound.guard.slots import slot_folder
from membound.guard.watchdog.instances import current
from membound.guard.watchdog.refusal import refusing
from membound.measure.cgroup.memory import process_usage

__all__ = [
    "FINISHED_KEPT",
    "Ledger",
    "Life",
    "ledger",
    "read_service",
]

#: Finished workers' lives kept in ``finished.json`` (the newest).
FINISHED_KEPT = 32
#: Seconds between two writes of a worker's record (it is also written when it recycles).
WRITE_EVERY_S = 1.0
_PREFIX, _SUFFIX = "worker-", ".json"
_statm = KeptStatm()


def _anon_now() -> int | None:
    """This process's anonymous resident memory (``statm``: resident less file-backed and
    shared pages), or None when it cannot be read."""
    fields = _statm.fields()
    if fields is None or len(fields) < 3:
        return None
    return (fields[1] - fields[2]) * PAGE


@dataclass
class Life:
    """One worker's life as the ledger keeps it (sizes in bytes, times in seconds since the
    epoch)."""

    pid: int
    started: float
    boot_bytes: int
    served: int = 0
    usage_bytes: int = 0
    mark_served: int = 0
    """Requests served at the mark (the last power of two at most half of ``served``)."""
    mark_bytes: int = 0
    """Memory at the mark."""
    state: str | None = None
    refusing: bool = False
    updated: float = 0.0
    lasting_bytes: int | None = None
    """Its lasting memory: anonymous memory read when a request ended and no other was in
    flight, so no temporary of a request was held (None in a record that an older release
    wrote: ``usage_bytes`` stands in)."""
    lasting_served: int | None = None
    """Requests served when ``lasting_bytes`` was read."""
    answered: int = 0
    """Requests answered without being served (health probes, 503s): not in ``served``."""

    @property
    def later_served(self) -> int:
        """Requests served from the mark to the last reading of the lasting memory."""
        end = self.lasting_served if self.lasting_served is not None else self.served
        return end - self.mark_served

    @property
    def later_bytes(self) -> int:
        """Growth of its lasting memory since the mark (negative when the worker gave memory
        back)."""
        now = self.lasting_bytes if self.lasting_bytes is not None else self.usage_bytes
        return now - self.mark_bytes

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Life | None:
        """A life read back from JSON, or None for a record that is not one."""
        try:
            return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
        except TypeError:
            return None


@dataclass
class _Marks:
    """Lasting memory at the first quiet reading from each power-of-two request count on, the
    newest few: enough to find the mark."""

    at: dict[int, int] = field(default_factory=dict)
    due: int = 1

    def note(self, served: int, usage: int) -> None:
        if served < self.due:
            return
        self.at[served] = usage
        while self.due <= served:
            self.due *= 2
        for old in [n for n in self.at if n * 4 < served]:
            del self.at[old]  # a mark is never below a quarter of what is served

    def mark(self, served: int) -> tuple[int, int]:
        usable = [n for n in self.at if n * 2 <= served]
        if not usable:
            return 0, 0
        n = max(usable)
        return n, self.at[n]


def _usage() -> int | None:
    usage = process_usage("self")
    return usage.judged if usage is not None else None


class Ledger:
    """This worker's record in the ledger of the server whose supervisor is ``supervisor_pid``
    (files in ``slot_folder(slot_dir, supervisor_pid)``)."""

    def __init__(self, slot_dir: str, supervisor_pid: int, boot_bytes: int) -> None:
        self.folder = slot_folder(slot_dir, supervisor_pid)
        self.supervisor_pid = supervisor_pid
        self.life = Life(os.getpid(), time.time(), boot_bytes, usage_bytes=boot_bytes)
        self._marks = _Marks()
        self._written_at = 0.0
        self._first = _anon_now()

    def served(self) -> None:
        """One request answered: note it as served (unless :func:`not_served` was said of it),
        read the lasting memory when no other request is in flight, and write the record when
        one is due."""
        life = self.life
        quiet = in_flight() == 0
        if take_not_served():
            life.answered += 1
        else:
            life.served += 1
        if quiet:
            anon = _anon_now()  # one pread, ~1 µs
            if anon is not None:
                life.lasting_bytes, life.lasting_served = anon, life.served
                self._marks.note(life.served, anon)
        now = time.monotonic()
        if now - self._written_at >= WRITE_EVERY_S:
            self.write()

    def write(self) -> None:
        """Write the record now."""
        life = self.life
        usage = _usage()
        if usage is not None:
            life.usage_bytes = usage
        reached = life.lasting_served if life.lasting_served is not None else life.served
        life.mark_served, life.mark_bytes = self._marks.mark(reached)
        if life.mark_served == 0:
            life.mark_bytes = self._first if self._first is not None else life.boot_bytes
        dog = current()
        life.state = dog.state if dog is not None else None
        life.refusing = refusing()
        life.updated = time.time()
        self._written_at = time.monotonic()
        with contextlib.suppress(OSError):
            os.makedirs(self.folder, exist_ok=True)
            _write_json(os.path.join(self.folder, f"{_PREFIX}{life.pid}{_SUFFIX}"), asdict(life))


def _write_json(path: str, data: object) -> None:
    partial = f"{path}.{os.getpid()}.part"
    with open(partial, "w") as f:
        json.dump(data, f)
    os.replace(partial, path)


def _read_json(path: str) -> Any:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def _locked(folder: str) -> Iterator[None]:
    fd = os.open(os.path.join(folder, "ledger.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def read_service(slot_dir: str, supervisor_pid: int) -> tuple[list[Life], list[Life], int]:
    """The ledger of a server: its live workers' lives, the last finished ones (oldest first)
    and how many finished in all. Records of workers that are gone are folded into the
    finished ones here (under a lock: any worker may read at the same time)."""
    folder = slot_folder(slot_dir, supervisor_pid)
    if not os.path.isdir(folder):
        return [], [], 0
    live: list[Life] = []
    gone: list[tuple[str, Life]] = []
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            if not (name.startswith(_PREFIX) and name.endswith(_SUFFIX)):
                continue
            data = _read_json(os.path.join(folder, name))
            life = Life.from_dict(data) if isinstance(data, dict) else None
            if life is None:
                continue
            if not pid_exists(life.pid):
                gone.append((name, life))
            else:
                live.append(life)
    stored = _read_json(os.path.join(folder, "finished.json"))
    stored = stored if isinstance(stored, dict) else {}
    if gone:
        with contextlib.suppress(OSError), _locked(folder):
            stored = _read_json(os.path.join(folder, "finished.json"))
            stored = stored if isinstance(stored, dict) else {}
            lives = [x for x in stored.get("lives", []) if isinstance(x, dict)]
            count = int(stored.get("count", 0))
            for name, life in gone:
                path = os.path.join(folder, name)
                if os.path.exists(path):  # not folded by another worker meanwhile
                    lives.append(asdict(life))
                    count += 1
                    os.unlink(path)
            stored = {"count": count, "lives": lives[-FINISHED_KEPT:]}
            _write_json(os.path.join(folder, "finished.json"), stored)
    finished = [
        life
        for life in (Life.from_dict(x) for x in stored.get("lives", []) if isinstance(x, dict))
        if life is not None
    ]
    return live, finished, int(stored.get("count", len(finished)))


#: This process's ledger, once its recycler has booted it (kept per pid: a forked child must
#: not write its parent's record).
_mine: list[Ledger] = []


def ledger() -> Ledger | None:
    """This worker's ledger, or None when no recycler keeps one in this process."""
    if _mine and _mine[0].life.pid == os.getpid():
        return _mine[0]
    return None


def start(slot_dir: str, supervisor_pid: int, boot_bytes: int) -> Ledger:
    """Start this worker's record (its recycler calls it when the worker starts serving)."""
    found = ledger()
    if found is not None:
        return found
    made = Ledger(slot_dir, supervisor_pid, boot_bytes)
    _mine[:] = [made]
    made.write()
    return made
