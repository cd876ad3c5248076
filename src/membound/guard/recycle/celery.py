"""Recycle Celery's prefork children on their *current* memory, after the task in hand.

Celery's ``worker_max_memory_per_child`` judges ``ru_maxrss`` — the child's *peak* resident
memory — after each task. A child that once needed 1 GiB for a moment and gave it back is
recycled for ever after; one that holds what it grew is judged by a figure that never falls,
so the setting has to sit above every legitimate spike, where it no longer catches a leak.

:func:`recycle_children` keeps Celery's own mechanism — after a task's result has been sent to
the parent, billiard's worker loop compares the child's memory with the threshold and, above
it, ends the child cleanly (``EX_RECYCLE``); the pool starts a fresh one, and the tasks of the
other children go on — and changes what it compares: the child's *private* memory *now* (its
``Private_Dirty`` pages in ``/proc/self/smaps_rollup``: what it wrote since the fork, which its
exit gives back), instead of the peak. Not its anonymous resident memory: a child forked from
the worker's main process starts with all of it (62 MiB of a Celery app here) mapped and shared,
charged once to the main process, so judged that way every child would start above a modest
threshold and be recycled after every task. So no task is interrupted, no result lost, and a
child that freed a spike keeps working.

Use it in the module that makes the Celery app::

    from membound.guard.recycle.celery import recycle_children

    app = Celery("jobs", broker="redis://127.0.0.1:6379/0")
    recycle_children(app, hard="400 MiB")     # or "80%" of a child's share of the limit

**A task that does not fit.** Each child also runs a watchdog whose backstop (``guard``, on
by default) makes the allocation the OOM killer would have ended fail as ``MemoryError`` in
its task — two tasks' temporaries at once, say — instead of a child killed in the middle of
its task and the task lost; a task that meets one runs once more when memory comes back
(within ``RETRY_WAIT_S``), as Celery's own retries run a task again.

**Headroom.** A child is judged after its task, so while a task runs its child holds up to
``hard`` (what it kept) plus what the task needs for a moment; the pool as a whole holds up to
the worker's main process + ``hard`` × children + the largest task's temporary. When that is
more than the limit, the kernel OOM-kills a child in the middle of a task (a task lost). At the
worker's start :func:`headroom_warning` checks it — with ``largest_task`` when given, else
that anything is left at all — and logs one line saying how much room is left and the ``hard``
that would leave enough.

Written here: billiard has no hook for how a child's memory is judged, only its module-level
``mem_rss`` (used by that check alone), which this replaces in the process that calls it and so
in the children forked from it. Prefork pools only (threads, solo, gevent and eventlet run tasks
in the worker itself: nothing to recycle).
"""

from __future__ import annotations

import importlib
import logging
import os
import time
from typing import Any

from membound._errors import SizeError, TaskMemoryRefused
from membound._proc import private_dirty
from membound._units import format_size, parse_size
from membound.guard.limit import memory_limit
from membound.measure.cgroup.memory import process_usage

__all__ = [
    "RETRY_WAIT_S",
    "current_kib",
    "headroom_warning",
    "private_bytes",
    "recycle_children",
]

_log = logging.getLogger("membound.guard")
#: The threshold in KiB, once :func:`recycle_children` ran (billiard compares in KiB).
_threshold_kib: list[int] = []


def private_bytes() -> int:
    """This process's private memory now: the pages it wrote since it was forked (``Private_Dirty``
    of ``/proc/self/smaps_rollup``, ~0.1 ms), else its anonymous resident memory where the
    kernel has no rollup (before Linux 4.14)."""
    written = private_dirty()
    if written is not None:
        return written
    usage = process_usage("self")
    return usage.judged if usage is not None else 0


def current_kib() -> int:
    """This process's private memory now, in KiB (what billiard's check reads once
    :func:`recycle_children` ran). Logs the recycle when it is above the threshold."""
    private = private_bytes()
    kib = private // 1024
    if _threshold_kib and kib > _threshold_kib[0]:
        _log.warning(
            "membound: celery child %d recycles after its task: %s of private memory now is "
            "above hard %s (its peak, which Celery's own check reads, is %s)",
            os.getpid(),
            format_size(private),
            format_size(_threshold_kib[0] * 1024),
            format_size(_peak_bytes()),
        )
    return kib


def _peak_bytes() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _percent(hard: int | str) -> float | None:
    """``hard`` as a percentage, or None for a size (checked)."""
    if isinstance(hard, str) and hard.strip().endswith("%"):
        try:
            percent = float(hard.strip()[:-1])
        except ValueError:
            percent = float("nan")
        if not 0 < percent <= 100:
            raise SizeError(f"hard={hard!r} is no percentage: expected 0 < p <= 100")
        return percent
    if parse_size(hard) < 1024:
        raise SizeError(f"hard={hard!r} must be at least 1 KiB")
    return None


def headroom_warning(
    threshold: int, children: int, limit: int, parent: int, largest_task: int | None = None
) -> str | None:
    """A line to log when children recycled at ``threshold`` bytes leave too little of
    ``limit`` for a task's temporary memory, else None.

    Args:
        threshold: a child's recycle point (bytes of private memory).
        children: the pool's concurrency.
        limit: the memory limit the worker runs under.
        parent: the worker's main process now (its pages are shared by the children).
        largest_task: the most memory one task needs for a moment beyond what its child keeps;
            None: only check that anything is left.
    """
    room = limit - parent - threshold * children
    needed = largest_task if largest_task is not None else 1
    if room >= needed:
        return None
    fits = (limit - parent - (largest_task or 0)) // children
    advice = (
        f"lower hard to {format_size(fits)} or the concurrency"
        if fits > 0
        else "lower the concurrency or raise the limit: hard cannot make room"
    )
    task = (
        f" for a task needing {format_size(largest_task)} (largest_task)"
        if largest_task is not None
        else ""
    )
    return (
        f"membound: celery children at hard {format_size(threshold)} × {children} + the "
        f"worker's {format_size(parent)} leave {format_size(max(0, room))} of the limit "
        f"{format_size(limit)}{task}: a child may be OOM-killed in the middle of a task; {advice}"
    )


def _set_threshold(worker: Any, hard: int | str, largest_task: int | None = None) -> None:
    """At ``worker_init`` in the worker's main process, before the pool forks its children:
    the threshold, now that the number of children is known, into billiard's check; a warning
    when the children at that threshold leave no room for the largest task."""
    percent = _percent(hard)
    concurrency = getattr(worker, "concurrency", None)
    children = concurrency if isinstance(concurrency, int) and concurrency > 0 else None
    children = children or os.cpu_count() or 1
    limit = memory_limit().bytes
    if percent is None:
        threshold = parse_size(hard)
        words = f"hard {format_size(threshold)}"
    else:
        threshold = int(limit / children * percent / 100)
        words = (
            f"hard {format_size(threshold)}: {percent:g} % of a child's share of "
            f"{format_size(limit)} for {children} children"
        )
    _threshold_kib[:] = [max(1, threshold // 1024)]
    worker.max_memory_per_child = _threshold_kib[0]
    _log.info("membound: celery children recycle after a task above %s of private memory", words)
    usage = process_usage("self")
    if usage is not None:
        warning = headroom_warning(threshold, children, limit, usage.judged, largest_task)
        if warning is not None:
            _log.warning("%s", warning)


#: Seconds a task that met a ``MemoryError`` waits for memory to come back before it runs
#: once more (another child's temporary is usually given back well within it).
RETRY_WAIT_S = 5.0
#: Runs once more a task may have after ``MemoryError``s, each when memory came back: beside
#: several children's temporaries a run once more can meet the refusal again.
RETRIES = 3
#: Runs once more on its turn at the group's room a task may have besides (each after a
#: refusal under its share, ``turns.py``; under a stress load a turn can come while other
#: children's temporaries still hold the room, and the run then meets the kernel's line).
TURN_RETRIES = 6
#: The guard of this child: its watchdog (started in each child, kept alive here).
_child_guard: list[Any] = []


def _start_child_guard(**_: Any) -> None:
    """In each forked child (``worker_process_init``): a watchdog whose backstop refuses the
    allocation the OOM killer would have ended — a ``MemoryError`` in the task instead of a
    child killed in the middle of it and its task lost. Nothing else: the child recycles after
    its task, by :func:`current_kib`."""
    from membound.guard.watchdog.core import Watchdog

    try:
        # The children share the group's room: a task refused under its share runs again
        # on its turn (``_once_more``), so two tasks' temporaries made in the same instant no
        # longer both pass to the OOM killer.
        _child_guard[:] = [Watchdog(on_soft=None, on_hard=None, share_room=True).start()]
    except Exception as exc:  # a child must start whatever the guard can do
        _log.warning("membound: the celery child's guard could not start: %s", exc)


def _once_more(call: Any) -> Any:
    """A task's ``__call__`` that runs the task once more when it met a ``MemoryError`` and
    memory came back within ``RETRY_WAIT_S`` (the backstop refused an allocation beside
    other tasks' temporaries), up to ``RETRIES`` times: Celery asks tasks to be idempotent for
    its own retries, and an OOM kill would have lost the task for good. A task still meeting
    one fails with :class:`TaskMemoryRefused` (its cause the ``MemoryError``): Celery stops
    the whole worker when a task fails with a ``MemoryError``."""
    from membound.guard.watchdog.refusal import asks_for_turn, end_turn, memory_came_back

    def came_back(before: int) -> bool:
        dog = _child_guard[0] if _child_guard else None
        if dog is None or dog.usage is None:
            return False
        seen: list[int] = []
        deadline = time.monotonic() + RETRY_WAIT_S
        while time.monotonic() < deadline:
            if memory_came_back(dog, before, seen):
                return True
            time.sleep(0.01)
        return False

    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return runs(self, *args, **kwargs)
        finally:
            dog = _child_guard[0] if _child_guard else None
            if dog is not None:
                end_turn(dog)  # done or failed: the other children get their shares back

    def runs(self: Any, *args: Any, **kwargs: Any) -> Any:
        name = getattr(self, "name", "?")
        refused = turns = 0
        while True:
            try:
                return call(self, *args, **kwargs)
            except MemoryError as error:
                dog = _child_guard[0] if _child_guard else None
                before = dog.usage.judged if dog is not None and dog.usage is not None else 0
                # Refused under its share of the group's room (turns.py), the task waits for
                # its turn: that run once more is not one of the ``RETRIES``.
                on_turn = dog is not None and asks_for_turn(dog)
                turns, refused = turns + on_turn, refused + (not on_turn)
                if refused > RETRIES or turns > TURN_RETRIES:
                    why = f"in each of its {refused + turns} runs"
                elif not came_back(before):
                    why = f"and memory did not come back within {RETRY_WAIT_S:g} s"
                else:
                    why = ""
                if why:
                    raise TaskMemoryRefused(
                        f"membound: celery child {os.getpid()}: task {name} met a MemoryError "
                        f"{why}: the task failed, the worker goes on"
                    ) from error
            _log.info(
                "membound: celery child %d: task %s met a MemoryError; %s, and it runs "
                "once more (%d of %d after refusals, %d of %d on its turn)",
                os.getpid(),
                name,
                "its turn at the group's room came" if on_turn else "memory came back",
                refused,
                RETRIES,
                turns,
                TURN_RETRIES,
            )

    return run


def recycle_children(
    app: Any,
    hard: int | str = "90%",
    *,
    largest_task: int | str | None = None,
    guard: bool = True,
) -> None:
    """Make the prefork children of ``app``'s workers recycle, after the task in hand, when
    their private memory *now* is above ``hard``. Call it where the app is made, before the
    worker starts.

    Args:
        app: the ``celery.Celery`` app.
        hard: a size (``"400 MiB"``), or a percentage of each child's share of the memory limit
            (``memory_limit()`` divided by the worker's concurrency, read when it starts).
        largest_task: the most memory one task needs for a moment beyond what its child keeps
            (a size): at start, a warning when the main process + ``hard`` × children leaves
            less than that of the limit (without it: when it leaves nothing).
        guard: each child also runs a watchdog whose backstop turns the allocation the OOM
            killer would have ended into a ``MemoryError`` in its task, and a task that meets
            one runs once more when memory comes back (within ``RETRY_WAIT_S``, up to ``RETRIES``
            times; Celery asks tasks to be idempotent for its own retries), else fails with
            ``TaskMemoryRefused`` (no ``MemoryError``: that stops Celery's whole worker);
            False: recycling only.

    Raises:
        SizeError: ``hard`` is no size of at least 1 KiB, or no percentage in (0, 100];
            ``largest_task`` is no size.
        TypeError: ``app`` is not a Celery app.
        ImportError: billiard (Celery's pool) is not installed, or has no ``mem_rss`` check.
    """
    _percent(hard)
    largest = None if largest_task is None else parse_size(largest_task)
    if getattr(app, "conf", None) is None:
        raise TypeError(f"app={app!r} is not a Celery app (no .conf)")
    try:
        pool = importlib.import_module("billiard.pool")  # untyped: no stubs to import
        signals = importlib.import_module("celery.signals")
    except ImportError:
        raise ImportError(
            "recycle_children needs Celery's prefork pool: pip install 'membound[celery]'"
        ) from None
    if not callable(getattr(pool, "mem_rss", None)):
        raise ImportError(
            "this billiard has no mem_rss check after each task: recycle_children cannot hook it"
        )

    def on_worker_init(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", app) is app:
            _set_threshold(sender, hard, largest)

    signals.worker_init.connect(on_worker_init, weak=False)
    setattr(pool, "mem_rss", current_kib)  # noqa: B010 (a module, typed as ModuleType)
    if guard:
        signals.worker_process_init.connect(_start_child_guard, weak=False)
        # Celery's annotations: ``@__call__`` wraps every task's call (``Task.add_around``);
        # the user's own annotations stay, after this one.
        mine = {"*": {"@__call__": _once_more}}
        theirs = app.conf.task_annotations
        if theirs is None:
            app.conf.task_annotations = [mine]
        elif isinstance(theirs, (list, tuple)):
            app.conf.task_annotations = [mine, *theirs]
        else:
            app.conf.task_annotations = [mine, theirs]
