"""Which container keeps what leaks, whether it has a bound, and which line adds to it.

A leak is nearly always a container that only grows: a module-level dict, a listener list, a set
of ids, an unbounded cache. :func:`growing_holders` finds it by size, not by object identity:

1. Every live container of some size is noted with its length (dicts that the collector does
   not track, because they hold only atomic values, are found as referents of tracked objects).
   At most ``MAX_CANDIDATES`` are kept, the largest, so the list does not grow with the heap.
2. ``calls`` more calls, a collection, and the same containers are measured again: those that
   grew are the holders.
3. A holder with a bound (``functools.lru_cache`` with a ``maxsize``, ``deque(maxlen=...)``, or
   any object with ``__membound_bound__() -> (size, capacity)``) is reported with its capacity;
   the containers inside a cache (``functools.cache`` too) or such an object are not reported
   again.

:func:`adding_line` then runs a few calls under ``sys.settrace`` and checks the holder's size
at every traced event: the line executed just before it grew is the line that adds to it. When
that line is not in the measured target's own frame (a helper's ``self.listeners.append(fn)``,
an emitter in site-packages), the line to fix is the one that called it (the ``bus.on(handler)``
never undone): at the moment the growth is seen the adding frame is still running, so its
callers' current lines are the stack that led there. At most ``MAX_TRACE`` of them are kept, and
the walk stops at membound's own frames (what called the target is not part of a call).
"""

from __future__ import annotations

import collections
import functools
import gc
import heapq
import os
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from membound.measure.heap import LIBRARY_DIRS, OWN_DIRS, frozen_heap, instance_dict

__all__ = [
    "MAX_CANDIDATES",
    "MAX_TRACE",
    "Adding",
    "Growing",
    "adding_line",
    "growing_holders",
    "size_of",
]

#: The most containers noted in step 1 (the largest are kept).
MAX_CANDIDATES = 20_000
#: The most frames of the stack that led to an adding line kept in its trace.
MAX_TRACE = 8
#: The most frames walked outward from an adding line looking for the user's caller (a deep
#: recursion inside a library is not walked to its end).
_MAX_WALK = 100
#: Objects whose referents one call of ``gc.get_referents`` returns, in a holder scan...
_REFERENTS_BATCH = 256
#: ...unless it is a builtin container of more entries than this: its referents are asked
#: alone (the list one call returns holds every referent of the batch).
_ALONE = 256
#: Watches of the holders at most, when modules were imported during one (see growing_holders).
_WATCHES = 3
#: Any directory of installed packages is a library's, not only this interpreter's own
#: site-packages (``LIBRARY_DIRS``): a user site, a distribution's dist-packages, a path added
#: by a ``.pth`` file.
_PACKAGE_DIRS = (f"{os.sep}site-packages{os.sep}", f"{os.sep}dist-packages{os.sep}")

_LRU_TYPE = type(functools.lru_cache(maxsize=1)(len))


def size_of(obj: Any) -> tuple[int, int | None] | None:
    """``(size, capacity)`` of a container (capacity None when unbounded), or None when
    ``obj`` is not one membound can size."""
    kind = type(obj)  # never isinstance: it reads ``__class__``, which evaluates a lazy proxy
    if kind is _LRU_TYPE:
        info = obj.cache_info()
        return info.currsize, info.maxsize
    bound = getattr(kind, "__membound_bound__", None)
    if bound is not None and not issubclass(kind, type):
        try:
            size, capacity = obj.__membound_bound__()
        except Exception:
            return None
        return int(size), int(capacity)
    if issubclass(kind, collections.deque):
        return len(obj), obj.maxlen
    if issubclass(kind, dict | list | set):
        return len(obj), None
    return None


@dataclass(frozen=True)
class Growing:
    """A container that grew over the measured calls."""

    holder: Any
    """The container (or the bounded object owning it)."""
    before: int
    """Its size before the calls."""
    after: int
    """Its size after them."""
    capacity: int | None
    """Its bound, or None when it has none."""

    @property
    def type_name(self) -> str:
        """``dict``, ``functools._lru_cache_wrapper``, ``app.pool.Pool``..."""
        kind = type(self.holder)
        module = kind.__module__
        return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def _referents(obj: Any) -> list[Any]:
    """``gc.get_referents(obj)``, except for modules (none of their referents is a container
    the module alone refers to: their dict is tracked itself).

    Versions differ: on CPython 3.12.0–3.12.5 and 3.13.0, the referents of the ``_asyncio``
    module include the freed future iterators of its free list (CPython gh-122695); holding one
    frees it twice, and the next collection loops for ever in the corrupted list. Seen as a
    leak hunt of an anyio test that never ended on 3.12.1.
    """
    if issubclass(type(obj), types.ModuleType):
        return []
    return gc.get_referents(obj)


def _sizable(kind: type) -> bool:
    """Whether :func:`size_of` can size an instance of ``kind`` (asked once per type a scan
    meets, so that the scan pays its checks for types, not for objects)."""
    return (
        kind is _LRU_TYPE
        or (getattr(kind, "__membound_bound__", None) is not None and not issubclass(kind, type))
        or issubclass(kind, collections.deque | dict | list | set)
    )


def _candidates(min_size: int) -> list[tuple[int, int, Any, int | None]]:
    """The largest live containers of at least ``min_size``: (size, id, object, capacity).

    Live containers are the tracked objects and the untracked dicts they refer to (a dict of
    atomic values only is not tracked by the collector). Referents are asked for up to
    ``_REFERENTS_BATCH`` objects in one call (modules left out, see :func:`_referents`), a
    builtin container of more than ``_ALONE`` entries alone, so that the list of referents one
    call makes stays small; a dict two objects refer to is kept once. Whether a type can be
    sized is asked once per type, by its id (a metaclass's ``__hash__`` is user code, which a
    scan never runs).
    """
    heap: list[tuple[int, int, Any, int | None]] = []
    kept: set[int] = set()  # ids in ``heap``: at most MAX_CANDIDATES
    sizable: dict[int, bool] = {}  # by the id of each type met: its objects keep it alive
    batch: list[Any] = []

    def consider(obj: Any, size: int, capacity: int | None) -> None:
        key = id(obj)
        if key in kept:
            return
        if len(heap) < MAX_CANDIDATES:
            heapq.heappush(heap, (size, key, obj, capacity))
        elif size > heap[0][0]:
            kept.discard(heapq.heapreplace(heap, (size, key, obj, capacity))[1])
        else:
            return
        kept.add(key)

    def untracked_dicts(refs: list[Any]) -> None:
        for ref in refs:
            if type(ref) is dict and len(ref) >= min_size and not gc.is_tracked(ref):
                consider(ref, len(ref), None)

    objects = gc.get_objects()
    try:
        for obj in objects:
            kind = type(obj)
            if kind is dict or kind is list or kind is set or kind is tuple:
                # the common case: sized without size_of, referents alone when many
                if kind is not tuple and len(obj) >= min_size:
                    consider(obj, len(obj), None)
                if len(obj) > _ALONE:
                    untracked_dicts(gc.get_referents(obj))
                    continue
            else:
                known = sizable.get(id(kind))
                if known is None:
                    known = sizable[id(kind)] = _sizable(kind)
                if known:
                    sized = size_of(obj)
                    if sized is not None and sized[0] >= min_size:
                        consider(obj, sized[0], sized[1])
                if issubclass(kind, types.ModuleType):
                    continue
            batch.append(obj)
            if len(batch) == _REFERENTS_BATCH:
                untracked_dicts(gc.get_referents(*batch))
                batch.clear()
        untracked_dicts(gc.get_referents(*batch))
    finally:
        batch.clear()
        objects.clear()
    sizable.clear()
    return heap


def _owns_entries(obj: Any) -> bool:
    """Whether ``obj`` keeps its entries in containers of its own: a ``functools`` cache
    (bounded or not) or an object with ``__membound_bound__``; plain containers and deques
    are their own entries."""
    kind = type(obj)
    return kind is _LRU_TYPE or (
        getattr(kind, "__membound_bound__", None) is not None and not issubclass(kind, type)
    )


def _inside(obj: Any) -> set[int]:
    """Ids of the containers a bounded object keeps its entries in (two levels down)."""
    found: set[int] = set()
    for ref in _referents(obj):
        found.add(id(ref))
        if type(ref) is dict or instance_dict(ref) is not None:
            found.update(id(inner) for inner in _referents(ref))
    return found


def growing_holders(
    func: Callable[[], Any], calls: int, min_size: int, limit: int = 5
) -> tuple[list[Growing], int]:
    """Containers that grew by at least one entry in 50 calls over ``calls`` calls of ``func``,
    most growth first, and how many calls were made.

    Only containers of at least ``min_size`` entries before the calls are watched: a leak that
    has run since the warm-up has filled its holder well past that. A module imported while
    watching (a first call's lazy import, another thread's) grows ``sys.modules`` and the import
    system's caches by an entry or two, which is not the calls' growth: the watch is then made
    again, up to ``_WATCHES`` times (a function that imports a new module every call still
    shows it).
    """
    for watch in range(_WATCHES):
        # The young generations only (see frozen_heap): a dead container of the oldest one
        # noted among the candidates cannot grow, so it is never reported.
        gc.collect(1)
        watched = _candidates(min_size)
        modules = len(sys.modules)
        with frozen_heap(collected=True):  # the calls' own objects are what collections walk
            for _ in range(calls):
                func()
            gc.collect()
        if len(sys.modules) == modules or watch == _WATCHES - 1:
            break
        watched.clear()
    grown: list[Growing] = []
    for before, _, obj, capacity in watched:
        sized = size_of(obj)
        if sized is not None and sized[0] - before >= max(1, calls // 50):
            grown.append(Growing(obj, before, sized[0], capacity))
    watched.clear()
    # A cache or bounded object is reported, never the containers it keeps its entries in: they
    # grow by as much, and which of the two came first would be the order of their addresses.
    owners = [g for g in grown if _owns_entries(g.holder)]
    hidden = set().union(*(_inside(g.holder) for g in owners)) if owners else set()
    grown = [g for g in grown if id(g.holder) not in hidden or _owns_entries(g.holder)]
    grown.sort(key=lambda g: -(g.after - g.before))
    return grown[:limit], calls


def _own(filename: str) -> bool:
    return filename.startswith(OWN_DIRS)


def _library(filename: str) -> bool:
    """The standard library (frozen modules too) or installed packages: not the user's code."""
    return (
        filename.startswith(LIBRARY_DIRS)
        or filename.startswith("<frozen ")
        or any(part in filename for part in _PACKAGE_DIRS)
    )


@dataclass(frozen=True)
class Adding:
    """The statement whose execution made a holder grow, and the stack that led to it."""

    file: str
    """File of the statement."""
    line: int
    """Its line."""
    function: str
    """The function it is in."""
    trace: tuple[str, ...]
    """The frames that led to it, innermost (the statement) first, as ``file:line``; at most
    ``MAX_TRACE``, none of membound's own."""
    caller: str | None
    """``file:line`` of the nearest user frame outside the adding function (not the standard
    library, site-packages or membound); None when the statement is in the measured target's
    own frame, or when no user frame led there."""


def _adding(frame: types.FrameType, line: int) -> Adding:
    """``frame`` at ``line``, with the frames that called it (``frame`` still running)."""
    code = frame.f_code
    trace = [f"{code.co_filename}:{line}"]
    caller: str | None = None
    walk = frame.f_back
    for _ in range(_MAX_WALK):
        if walk is None or _own(walk.f_code.co_filename):
            break  # what called the measured target is not part of a call
        name = walk.f_code.co_filename
        where = f"{name}:{walk.f_lineno}"
        if len(trace) < MAX_TRACE:
            trace.append(where)
        if caller is None and walk.f_code is not code and not _library(name):
            caller = where
        if caller is not None and len(trace) >= MAX_TRACE:
            break
        walk = walk.f_back
    return Adding(code.co_filename, line, code.co_name, tuple(trace), caller)


def adding_line(func: Callable[[], Any], holder: Any, calls: int = 3) -> Adding | None:
    """The statement whose execution made ``holder`` grow, over ``calls`` traced calls of
    ``func``, with the stack that led to it (None when it did not grow, or grew outside any
    traced frame)."""
    last = [size_of(holder)]
    previous: list[tuple[types.FrameType, int] | None] = [None]
    found: list[Adding] = []

    def check() -> None:
        now = size_of(holder)
        if now is not None and last[0] is not None and now[0] > last[0][0]:
            where = previous[0]
            if where is not None and not found:
                found.append(_adding(*where))
        last[0] = now

    def trace(frame: types.FrameType, event: str, arg: Any) -> Any:
        if _own(frame.f_code.co_filename):
            return None  # membound's own frames: not traced inside
        check()
        if event == "line":
            previous[0] = (frame, frame.f_lineno)
        elif event == "return":
            # What runs next is the rest of the caller's line (``KEPT.append(make())`` appends
            # after ``make`` returns): not the callee's last line.
            back = frame.f_back
            if back is not None and not _own(back.f_code.co_filename):
                previous[0] = (back, back.f_lineno)
        return trace

    old = sys.gettrace()
    sys.settrace(trace)
    try:
        for _ in range(calls):
            func()
            check()
            if found:
                break
    finally:
        sys.settrace(old)
        previous[0] = None
    return found[0] if found else None
