"""When a server's worker recycles on its current memory: the policy that gunicorn's
``GunicornRecycler`` and the ASGI recycler share.

* **The point.** A worker recycles when its own memory *now* (anonymous + shared resident, as
  ``measure.cgroup.memory.process_usage`` reads it; never ``ru_maxrss``, the peak) is at its
  recycle point: ``hard`` (a size, or a percentage of the worker's share of the limit) less a
  random part of ``jitter`` drawn once per worker. Workers that grow at one pace then cross at
  different requests instead of all at once (the reason for gunicorn's ``max_requests_jitter``).
* **At most ⌈workers / 4⌉ at once** (``max_recycling``) out of service: a worker takes one of
  that many slots (``membound.guard.slots``), which stays taken until a fresh worker
  serves in its place; one that finds every slot taken keeps serving and tries again after its
  next request (gunicorn#3427: four workers restarted within 4 s despite jitter).
* **Under pressure** — the worker's watchdog finds memory past ``soft`` (in a cgroup shared by
  the workers, the service's), or work is refused — a worker recycles halfway from its memory
  at boot to its point: the grown workers give memory back before the service reaches
  ``hard``. With 4 uvicorn workers leaking 1 MiB a request in 400 MiB, recycling only at the
  point left the service refusing 78 % of 1,500 requests (every worker under its point, the
  service above ``recover``).
* **Booted above hard.** A worker whose memory when it started serving was already at ``hard``
  would be replaced by one as big, in a loop (uWSGI's ``reload-on-rss`` does that). It is
  reported once per server (a marker file beside the slots) and never recycled for memory; the
  watchdog's actions still apply to it.

One :class:`Policy` object may be made in a parent (gunicorn reads its config file in the
arbiter) and copied into every worker by ``fork``: what a worker learns (its point, memory at
boot, its slot) is kept per process id, so a fresh worker starts from nothing.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from dataclasses import dataclass
from typing import Literal

from membound._errors import SizeError
from membound._proc import PAGE, KeptStatm
from membound._units import format_size, parse_size
from membound.guard.limit import memory_limit
from membound.guard.recycle.lasting import SPAN_S, LastingFloor
from membound.guard.recycle.ledger import ledger, start
from membound.guard.slots import (
    Setting,
    default_slot_dir,
    replaced,
    slot_folder,
    take_slot,
    use_setting,
)
from membound.guard.watchdog.instances import current
from membound.guard.watchdog.refusal import refusing
from membound.measure.cgroup.memory import KeptFiles, process_usage

__all__ = ["Decision", "Policy", "under_pressure", "usage_now"]

_files = KeptFiles(1)  # /proc/self/status
_statm = KeptStatm()

#: Seconds a worker trusts the limit it read (``hard`` as a percentage of its share).
_LIMIT_TTL_S = 10.0

Verdict = Literal["keep", "recycle", "deferred", "exempt"]


def under_pressure() -> bool:
    """Whether this worker's watchdog finds memory past ``soft`` (in a cgroup shared by the
    workers: the whole service's), or new work is refused: the moment to recycle grown workers
    early, before the service reaches ``hard`` and refuses work."""
    if refusing():
        return True
    dog = current()
    return dog is not None and dog.state != "ok"


def usage_now(below: int) -> int | None:
    """This process's memory as the recycler judges it (anonymous + shared resident, from
    ``/proc/self/status``), or, while its whole resident set is under ``below``, that resident
    set: an upper bound that already says "under", read from ``statm`` in ~1 µs where
    ``status`` takes ~25 µs (after every request, that was most of the recycler's cost). None
    when it cannot be read."""
    fields = _statm.fields()
    if fields is not None and fields[1] * PAGE < below:
        return fields[1] * PAGE
    usage = process_usage("self", "ram", _files.read)
    return usage.judged if usage is not None else None


@dataclass(frozen=True)
class Decision:
    """What a worker does after a request."""

    verdict: Verdict
    """``keep`` serving, ``recycle`` now (a slot is held), ``deferred`` (over its point, every
    slot taken), ``exempt`` (booted above ``hard``: never recycled for memory)."""
    usage_bytes: int
    """The worker's memory judged."""
    point_bytes: int
    """Its recycle point."""
    message: str | None
    """A line to log, the first time something is worth saying."""


@dataclass
class _Worker:
    pid: int
    jitter_draw: float
    boot_bytes: int | None = None
    exempt: bool = False
    deferred: int = 0
    recycling: bool = False
    limit_bytes: int | None = None
    limit_at: float = 0.0
    floor: LastingFloor | None = None


class Policy:
    """The recycle point, the slots and the boot check of a server's workers.

    Args:
        hard: memory (anonymous + shared resident) at which a worker recycles: a size, or a
            percentage of the worker's share of the limit (``memory_limit()`` / workers).
        jitter: a worker recycles at a point drawn once between ``hard × (1 − jitter)`` and
            ``hard`` (0 to 0.5).
        max_recycling: workers allowed to recycle at once (default ⌈workers / 4⌉).
        slot_dir: where the slot lock files live (default: the temporary directory).

    Raises:
        SizeError: ``hard`` is no size or no percentage in (0, 100].
        ValueError: ``jitter`` or ``max_recycling`` out of range.
    """

    def __init__(
        self,
        hard: int | str = "90%",
        jitter: float = 0.1,
        max_recycling: int | None = None,
        slot_dir: str | None = None,
    ) -> None:
        self._percent: float | None = None
        self._hard_bytes: int | None = None
        if isinstance(hard, str) and hard.strip().endswith("%"):
            try:
                self._percent = float(hard.strip()[:-1])
            except ValueError:
                self._percent = float("nan")
            if not 0 < self._percent <= 100:
                raise SizeError(f"hard={hard!r} is no percentage: expected 0 < p <= 100")
        else:
            self._hard_bytes = parse_size(hard)
            if self._hard_bytes <= 0:
                raise SizeError(f"hard={hard!r} must be more than 0 bytes")
        if (
            isinstance(jitter, bool)
            or not isinstance(jitter, int | float)
            or not 0 <= jitter <= 0.5  # NaN fails this too
        ):
            raise ValueError(f"jitter is a fraction of hard from 0 to 0.5, got {jitter!r}")
        if max_recycling is not None and (
            isinstance(max_recycling, bool)
            or not isinstance(max_recycling, int)
            or max_recycling < 1
        ):
            raise ValueError(f"max_recycling must be a whole number >= 1, got {max_recycling!r}")
        self.jitter = float(jitter)
        self.max_recycling = max_recycling
        self.slot_dir = slot_dir if slot_dir is not None else default_slot_dir()
        self._worker: _Worker | None = None
        # The process's slots from now on: a worker that refuses before this one boots (or
        # whose /health reads the service ledger) counts the same ones.
        use_setting(self.setting)

    def hard_bytes(self, workers: int) -> int:
        """``hard`` in bytes for a server of ``workers`` workers."""
        if self._hard_bytes is not None:
            return self._hard_bytes
        assert self._percent is not None
        me = self._me()
        now = time.monotonic()
        if me.limit_bytes is None or now - me.limit_at > _LIMIT_TTL_S:
            # Reading every limit costs ~0.2 ms (cgroup files, rlimits, /proc/meminfo): once
            # per request it put 0.5 ms on a uvicorn worker's median; limits rarely change.
            me.limit_bytes, me.limit_at = memory_limit().bytes, now
        share = me.limit_bytes / max(1, workers)
        return int(share * self._percent / 100)

    @property
    def setting(self) -> Setting:
        """Its slots' folder and number."""
        return Setting(self.slot_dir, self.max_recycling)

    def slots(self, workers: int) -> int:
        """How many workers may recycle at once."""
        return self.setting.slots(workers)

    def _me(self) -> _Worker:
        worker = self._worker
        if worker is None or worker.pid != os.getpid():  # first use, or a fresh forked worker
            worker = self._worker = _Worker(os.getpid(), random.random())
        return worker

    def point_bytes(self, workers: int, pressure: bool = False) -> int:
        """This worker's recycle point (``hard`` less its part of the jitter); under
        ``pressure``, halfway from its memory at boot to that point."""
        me = self._me()
        hard = self.hard_bytes(workers)
        point = int(hard * (1 - self.jitter * me.jitter_draw))
        if me.boot_bytes is not None and me.boot_bytes >= point:
            return hard  # booted between its point and hard: hard itself, not a loop
        if pressure and me.boot_bytes is not None:
            return me.boot_bytes + (point - me.boot_bytes) // 2
        return point

    def lasting(self, reading: int, others: int) -> int | None:
        """This worker's lasting memory, given its memory now (``reading``) and how many
        other requests it has in flight: the reading itself when none, else the lowest reading
        of the last few seconds (``membound.guard.recycle.lasting``), or None while that is not
        known yet — other requests' temporaries are not this worker's to recycle."""
        me = self._me()
        if me.floor is None:
            me.floor = LastingFloor()
        now = time.monotonic()
        me.floor.add(now, reading)
        if others <= 0:
            return reading
        return me.floor.floor(now)

    @property
    def booted(self) -> bool:
        """Whether this worker's memory at boot is known."""
        return self._me().boot_bytes is not None

    def boot(self, usage_bytes: int, workers: int, supervisor_pid: int) -> str | None:
        """Note that this worker starts serving, and its memory then (a slot waiting for a
        replacement is freed); a line to log (once per server) when it is at ``hard`` already."""
        me = self._me()
        if me.boot_bytes is not None:
            return None
        me.boot_bytes = usage_bytes
        use_setting(self.setting)  # the one that serves, if more than one was made here
        replaced(self.slot_dir, supervisor_pid, self.slots(workers))
        start(self.slot_dir, supervisor_pid, usage_bytes)  # the service ledger
        hard = self.hard_bytes(workers)
        if usage_bytes < hard:
            return None
        me.exempt = True
        if not self._first_report(supervisor_pid):
            return None
        return (
            f"membound: worker {os.getpid()} started serving at {format_size(usage_bytes)}, "
            f"at or above hard {format_size(hard)}: a fresh worker would be as big, so workers "
            "that boot above hard are not recycled for memory (raise hard above what a worker "
            "needs at boot)"
        )

    def _first_report(self, supervisor_pid: int) -> bool:
        folder = slot_folder(self.slot_dir, supervisor_pid)
        try:
            os.makedirs(folder, exist_ok=True)
            fd = os.open(os.path.join(folder, "booted-above-hard"), os.O_CREAT | os.O_EXCL, 0o600)
        except OSError:
            return False
        os.close(fd)
        return True

    def judge(
        self,
        usage_bytes: int,
        workers: int,
        supervisor_pid: int,
        pressure: bool = False,
        others: int = 0,
    ) -> Decision:
        """What this worker does now that its memory is ``usage_bytes`` (``pressure``: the
        service's memory is past the watchdog's ``soft``, or work is refused; ``others``: the
        requests still in flight in this worker besides the one just answered, whose
        temporaries are judged by what lasts, ``lasting``)."""
        me = self._me()
        mine = ledger()
        if mine is not None and not me.recycling:
            mine.served()
        point = self.point_bytes(workers, pressure)
        lasting = None if me.exempt or me.recycling else self.lasting(usage_bytes, others)
        if me.exempt or me.recycling or lasting is None or lasting < point:
            verdict: Verdict = "exempt" if me.exempt else "keep"
            return Decision(verdict, usage_bytes, point, None)
        # among other requests: its lowest memory over the last few seconds, not one reading
        among = (
            f" (its lowest over the last {SPAN_S:g} s, with other requests in flight)"
            if others > 0
            else ""
        )
        hard = self.hard_bytes(workers)
        slots = self.slots(workers)
        if not take_slot(self.slot_dir, supervisor_pid, slots, lasting < hard):
            me.deferred += 1
            message = None
            if me.deferred == 1:
                message = (
                    f"membound: worker {os.getpid()} is at {format_size(lasting)}{among}, "
                    f"above its recycle point {format_size(point)}, but {slots} worker(s) are "
                    "recycling already: it keeps serving and tries again after each request"
                )
            return Decision("deferred", lasting, point, message)
        me.recycling = True
        if mine is not None:
            mine.write()  # its last figures, fresh, before it stops serving
        return Decision(
            "recycle",
            lasting,
            point,
            f"membound: worker {os.getpid()} recycles after this request: "
            f"{format_size(lasting)} anonymous memory{among} is at or above its recycle point "
            f"{format_size(point)} (hard {format_size(hard)})"
            + (", halfway from its boot while the service's memory is high" if pressure else ""),
        )

    @property
    def deferred(self) -> int:
        """Times this worker was over its point and found every slot taken."""
        return self._me().deferred

    @property
    def recycling(self) -> bool:
        """Whether this worker has decided to recycle."""
        return self._me().recycling

    def remove_slots(self, supervisor_pid: int) -> None:
        """Remove the slot folder of ``supervisor_pid`` (its exit hook)."""
        shutil.rmtree(slot_folder(self.slot_dir, supervisor_pid), ignore_errors=True)
