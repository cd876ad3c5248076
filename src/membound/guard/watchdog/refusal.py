"""Refusing new work, and the way out of a refusal that does not recover.

The flag (:func:`refusing`) is what the health middlewares read: while it is set, new requests
get 503 with ``Retry-After`` and ``/health`` answers 503. The watchdog clears it when memory is
back under ``recover`` (:func:`stop_refusing`). A leaking worker never gets there — what it
leaked stays with it — so refusing alone answered 87 % of requests with 503 for the rest of a
run. :func:`recycle_if_stuck` arms the way out: after ``recycle_after`` seconds (plus up to a
quarter more, drawn per worker) of refusing or shedding with memory not falling, a worker that
runs under a supervisor (gunicorn's arbiter, ``uvicorn --workers``) stops gracefully
(``membound.guard.serving``: no new connections, requests in flight finish) and the
supervisor starts a fresh one; at most ⌈workers / 4⌉ of them at once (or the recycler's
``max_recycling``), counted in the recycling slots the recycler counts (``membound.guard.slots``:
its folder, its number). A single process has no one to start it again: it keeps refusing,
``/health`` keeps answering 503, and a liveness probe on ``/health`` restarts it.

Memory "falls" when it is 2 % (at least 1 MiB) lower than at the last look: requests in flight
that hold memory finish and give it back, and the watchdog then recovers by itself.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from typing import TYPE_CHECKING

from membound.guard.serving import stop_serving, supervisor
from membound.guard.slots import release_slot, replaced, setting, take_slot
from membound.guard.watchdog.instances import current
from membound.measure.cgroup.memory import process_usage

if TYPE_CHECKING:
    from membound.guard.watchdog.core import Watchdog
    from membound.guard.watchdog.turns import RoomTurns

__all__ = [
    "asks_for_turn",
    "check_delay",
    "check_grace",
    "end_turn",
    "has_turn",
    "may_take_work",
    "memory_came_back",
    "note_serving",
    "recycle_if_stuck",
    "refusing",
    "start_refusing",
    "stop_refusing",
]

_log = logging.getLogger("membound.guard")
_refusing = threading.Event()
#: Memory has fallen while refusing when it is this fraction lower (at least 1 MiB).
_FALLING = 0.02
#: Seconds before a stuck worker that found every recycling slot taken tries again.
_SLOT_RETRY_S = 2.0

_stuck_lock = threading.Lock()
#: The check that waits: ``armed`` is its number (0: none; a check whose number is no longer
#: here returns at once: memory recovered, or a check due sooner replaced it), ``due`` when it
#: runs (monotonic seconds); ``checks`` numbers them.
_stuck: dict[str, float] = {"armed": 0, "due": 0.0, "checks": 0}
_said: set[tuple[int, str]] = set()
#: The pid of this process once :func:`note_serving` has run in it (a forked worker runs it anew).
_noted_serving: list[int] = []


def refusing() -> bool:
    """True while new work should be refused (set by ``actions.refuse_new_work`` and
    ``actions.exit_gracefully``; cleared when the watchdog recovers)."""
    return _refusing.is_set()


#: How the refusal in force may end besides below ``recover``: ``fall`` set when it began
#: with a backstop refusal (then it also ends once memory has fallen by ``_BACK_SHARE`` of the
#: limit from its highest reading since: the temporaries that filled the room are given
#: back), ``peak`` that highest reading.
_way_out: dict[str, int] = {"fall": 0, "peak": 0}


def start_refusing(*, refused_allocation: bool = False) -> None:
    """Refuse new work from now on (until :func:`stop_refusing`). ``refused_allocation``: it
    begins with the backstop's refusal of one allocation, not with memory past ``hard``: the
    process is not past its line (the kernel refused what would have passed it), so the
    refusal also ends once the memory that filled the room is given back (:func:`may_take_work`)
    — other workers' temporaries, usually, whose requests end within a fraction of a second.
    A refusal for memory past ``hard`` keeps that way out closed until it ends."""
    if not _refusing.is_set():
        _way_out["fall"], _way_out["peak"] = int(refused_allocation), 0
    elif not refused_allocation:
        _way_out["fall"] = 0
    _refusing.set()


def may_take_work(judged: int, limit: int) -> bool:
    """While a refusal that began with a backstop refusal is in force (see
    :func:`start_refusing`): whether memory, read at ``judged`` bytes, has fallen from its
    highest reading since by ``_BACK_SHARE`` of ``limit`` (at least 4 MiB)."""
    if not (_refusing.is_set() and _way_out["fall"]):
        return False
    _way_out["peak"] = max(_way_out["peak"], judged)
    return judged <= _way_out["peak"] - max(4 << 20, limit // _BACK_SHARE)


def stop_refusing() -> None:
    """Take new work again (the watchdog calls this when memory is back under ``recover``)."""
    with _stuck_lock:
        _stuck["armed"] = 0  # a recycle armed for this refusal is off
    _refusing.clear()


def note_serving() -> None:
    """This process serves requests now (the health middlewares call it at each request; it
    acts once per process): under a supervisor, the recycling slot that a stuck worker left
    waiting for its replacement is free again. Without it a service guarded by refusal alone
    (no recycler to say so as a worker boots) kept that slot for ``slots.PENDING_S`` (30 s),
    and every other stuck worker refused work meanwhile."""
    me = os.getpid()
    if me in _noted_serving:
        return
    _noted_serving[:] = [me]
    found = supervisor()
    if found is not None:
        slots = setting()
        replaced(slots.slot_dir, found.pid, slots.slots(found.workers))


#: Memory has come back for a retry once the judged usage is this share of the limit (at
#: least 4 MiB) below its reading when the work failed.
_BACK_SHARE = 32


def memory_came_back(watchdog: Watchdog | None, before: int, seen: list[int]) -> bool:
    """Whether memory has come back since work met a ``MemoryError`` at ``before`` bytes of
    judged usage: the usage has fallen well below it (another request's or task's temporary
    given back) and the watchdog has read once more since it saw that (its backstop's cap
    follows the reading: work run again at once met the cap of the reading before). ``seen``
    keeps the reading that saw it, from call to call; ``watchdog`` None: the current one."""
    dog = _dog(watchdog)
    if dog is None or dog.usage is None:
        return False
    if has_turn(dog):
        return True  # refused under its share: the turn is its own, the others gave way
    if seen:
        return bool(dog.readings > seen[0])
    if dog.usage.judged <= before - max(4 << 20, dog.limit.bytes // _BACK_SHARE):
        seen.append(dog.readings)
    return False


def _turns(watchdog: Watchdog | None) -> RoomTurns | None:
    """The room turns of ``watchdog``'s backstop (None: the current one), if it shares."""
    dog = _dog(watchdog)
    backstop = dog.backstop if dog is not None else None
    return backstop.turns if backstop is not None else None


def has_turn(watchdog: Watchdog | None) -> bool:
    """Whether the process holds the turn at its group's room and the group's other guarded
    processes gave way (``turns.py``): work refused under its share may run once more now.
    ``watchdog`` None: the current one."""
    turns = _turns(watchdog)
    return turns is not None and turns.ready


def asks_for_turn(watchdog: Watchdog | None) -> bool:
    """Whether the process asks for the turn at its group's room: its last ``MemoryError``
    was a refusal under its share (``turns.py``), not at the kernel's line. ``watchdog`` None:
    the current one."""
    turns = _turns(watchdog)
    return turns is not None and turns.asking


def end_turn(watchdog: Watchdog | None) -> None:
    """The work that waited for the turn at the group's room is done or gave up: the turn (or
    the ask) ends, and the group's other guarded processes get their shares back at their next
    reading. ``watchdog`` None: the current one."""
    turns = _turns(watchdog)
    if turns is not None:
        turns.withdraw()


def _check_seconds(name: str, value: float, most: float, none: str = "") -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 <= value <= most  # NaN fails this too
    ):
        raise ValueError(f"{name} is seconds from 0 to {most:g}{none}, got {value!r}")


def check_delay(seconds: float) -> None:
    """Refuse a ``recycle_after`` that is not seconds from 0 to a day."""
    _check_seconds("recycle_after", seconds, 86400, " or None")


def check_grace(grace: float) -> None:
    """Refuse a ``grace`` that is not seconds from 0 to an hour."""
    _check_seconds("grace", grace, 3600)


def _dog(watchdog: Watchdog | None) -> Watchdog | None:
    if watchdog is not None:
        return watchdog
    return current()


def _still_stuck(watchdog: Watchdog | None) -> bool:
    """Refusing, or shedding because the watchdog is ``hard``."""
    if _refusing.is_set():
        return True
    dog = _dog(watchdog)
    return dog is not None and dog.state == "hard"


def _memory_now(watchdog: Watchdog | None) -> int | None:
    """The memory the watchdog judges (the process's own when there is none)."""
    dog = _dog(watchdog)
    if dog is not None and dog.usage is not None:
        return dog.usage.judged
    usage = process_usage("self")
    return usage.judged if usage is not None else None


def _say_once(key: str, message: str, *args: object) -> None:
    if (os.getpid(), key) not in _said:
        _said.add((os.getpid(), key))
        _log.warning(message, *args)


def recycle_if_stuck(
    recycle_after: float | None = 30.0, grace: float = 30.0, watchdog: Watchdog | None = None
) -> None:
    """Arm the way out of a refusal that does not recover (see the module docstring); one
    check waits at a time — the one due first: a shorter ``recycle_after`` armed later (the
    watchdog's action after a middleware that shed first) replaces a longer one — and
    :func:`stop_refusing` disarms it.

    Args:
        recycle_after: seconds of refusing (or shedding in ``hard``) with memory not falling
            before a supervised worker recycles; None does nothing.
        grace: seconds its requests in flight have to finish.
        watchdog: the watchdog whose state and memory are judged (default: the current one).

    Raises:
        ValueError: ``recycle_after`` or ``grace`` out of range.
    """
    if recycle_after is None:
        return
    check_delay(recycle_after)
    check_grace(grace)
    delay = recycle_after * (1 + random.random() / 4)
    due = time.monotonic() + delay
    with _stuck_lock:
        if _stuck["armed"] and _stuck["due"] <= due:
            return
        _stuck["checks"] += 1
        _stuck["armed"], _stuck["due"] = _stuck["checks"], due
        check = int(_stuck["checks"])
    _schedule(delay, recycle_after, grace, watchdog, check, _memory_now(watchdog))


def _schedule(
    delay: float,
    recycle_after: float,
    grace: float,
    watchdog: Watchdog | None,
    check: int,
    before: int | None,
) -> None:
    with _stuck_lock:
        if _stuck["armed"] == check:
            _stuck["due"] = time.monotonic() + delay
    timer = threading.Timer(
        delay, _recycle_stuck, args=(recycle_after, grace, watchdog, check, before)
    )
    timer.daemon = True
    timer.name = "membound-refusal"
    timer.start()


def _disarm(check: int) -> None:
    with _stuck_lock:
        if _stuck["armed"] == check:
            _stuck["armed"] = 0


def _recycle_stuck(
    recycle_after: float,
    grace: float,
    watchdog: Watchdog | None,
    check: int,
    before: int | None,
) -> None:
    try:
        with _stuck_lock:
            if _stuck["armed"] != check:
                return  # memory recovered meanwhile, or a check due sooner took its place
        if not _still_stuck(watchdog):
            _disarm(check)
            return
        now = _memory_now(watchdog)
        if (
            now is not None
            and before is not None
            and now < before - max(1 << 20, before * _FALLING)
        ):
            _schedule(recycle_after, recycle_after, grace, watchdog, check, now)  # falling
            return
        found = supervisor()
        if found is None:
            _say_once(
                "no supervisor",
                "membound: new work refused for %.0f s and memory is not falling; nothing here "
                "starts a fresh process (no gunicorn arbiter, no uvicorn --workers): /health "
                "answers 503 so that a liveness probe restarts it",
                recycle_after,
            )
            _disarm(check)
            return
        slots = setting()  # the recycler's, when one serves here: one limit for both
        if not take_slot(slots.slot_dir, found.pid, slots.slots(found.workers)):
            retry = _SLOT_RETRY_S * (1 + random.random())
            _schedule(retry, recycle_after, grace, watchdog, check, now)
            return
        _log.warning(
            "membound: worker %s has refused new work for %.0f s and memory is not falling: "
            "it stops gracefully and its %s supervisor starts a fresh one",
            os.getpid(),
            recycle_after,
            found.kind,
        )
        stop_serving(grace, stopped=release_slot)
    except Exception:  # a timer thread must not die with a traceback and nothing said
        _log.exception("membound: recycling a stuck worker failed")


def _after_fork_in_child() -> None:
    """A forked child (a fresh gunicorn worker) takes work until its own watchdog says not."""
    _refusing.clear()
    _stuck["armed"] = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
