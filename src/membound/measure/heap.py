"""Looking into this process's Python heap: tracemalloc sessions, live objects by type, and the
reference chain that keeps an object alive.

Used by leak hunting (``measure/rounds.py`` measures, ``judge/leaks.py`` decides). Allocations
made by membound's own measuring code are filtered out of every snapshot.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import os
import sys
import sysconfig
import tracemalloc
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from membound._errors import TargetError

__all__ = [
    "HEAP_ENGINES",
    "LIBRARY_DIRS",
    "OWN_DIRS",
    "HeapMode",
    "backref_chain",
    "chain_to",
    "frozen_heap",
    "gc_paused",
    "heap_engine",
    "instance_dict",
    "own_filters",
    "tracing",
    "type_counts",
]

#: membound's own measuring code (not its demo scenarios, which are user code when measured).
OWN_DIRS: tuple[str, ...] = tuple(
    str(Path(__file__).resolve().parents[1] / part) for part in ("judge", "measure", "guard")
)

#: The standard library and site-packages: code that is not the user's own.
LIBRARY_DIRS: tuple[str, ...] = tuple(
    {p for p in (sysconfig.get_paths().get("stdlib"), sysconfig.get_paths().get("purelib")) if p}
)


#: What ``heap=`` accepts: off, on (tracemalloc), or an engine by name.
HeapMode = bool | Literal["tracemalloc", "memray"]
HEAP_ENGINES = ("tracemalloc", "memray")


def heap_engine(heap: object) -> Literal["tracemalloc", "memray"] | None:
    """The engine ``heap=`` asks for: None (off), ``"tracemalloc"`` (``True``) or ``"memray"``.

    Raises:
        TargetError: any other value.
        ImportError: ``"memray"`` without memray installed.
    """
    if heap is False or heap is None:
        return None
    if heap is True or heap == "tracemalloc":
        return "tracemalloc"
    if heap == "memray":
        import importlib.util

        if importlib.util.find_spec("memray") is None:
            raise ImportError(
                "heap='memray' needs memray (Linux, macOS): pip install 'membound[memray]'"
            ) from None
        return "memray"
    raise TargetError(
        f"heap={heap!r} is not a heap mode", hint="use heap=True, 'tracemalloc' or 'memray'"
    )


@contextlib.contextmanager
def tracing(frames: int) -> Iterator[None]:
    """Trace allocations with ``frames`` frames for the block, unless something already traces
    (then its setting stays, and tracing goes on after the block)."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start(frames)
    try:
        yield
    finally:
        if started:
            tracemalloc.stop()


def own_filters() -> list[tracemalloc.Filter]:
    """Filters that drop allocations made by membound, objgraph, tracemalloc and importlib.

    Build them before tracing starts: importing objgraph must not look like a leak.
    """
    import objgraph

    patterns = [
        *(f"{d}{os.sep}*" for d in OWN_DIRS),
        str(objgraph.__file__),
        str(tracemalloc.__file__),
        "<frozen importlib._bootstrap>",
        "<frozen importlib._bootstrap_external>",
    ]
    return [tracemalloc.Filter(False, p) for p in patterns]


def instance_dict(obj: Any) -> dict[str, Any] | None:
    """The attribute dict of ``obj``, read without running any of its code (None when it has
    none, or a class of its own decides what ``__dict__`` is).

    Scans of the whole heap meet objects written to act on any attribute read: a lazy proxy
    (Celery's task proxies, Django's ``SimpleLazyObject``, werkzeug's ``LocalProxy``) answers
    ``__dict__`` and ``__class__`` by evaluating what it stands for, which imports modules and
    registers tasks in the middle of a measurement. So heap scans test types with ``type()``
    (``isinstance`` reads ``__class__``) and take an instance's dict from the C slot alone.
    """
    for klass in type(obj).__mro__:
        slot = vars(klass).get("__dict__")
        if slot is None:
            continue
        if type(slot) is not types.GetSetDescriptorType:
            return None  # a property of the class's own: reading it runs its code
        try:
            found = slot.__get__(obj)
        except (AttributeError, TypeError):
            return None
        return found if type(found) is dict else None
    return None


def type_counts() -> dict[str, int]:
    """Live objects the cyclic GC tracks, by qualified type name (``module.Qualname``, as
    objgraph's ``typestats(shortnames=False)`` names them; counted here in C, which is several
    times faster than objgraph's per-object Python loop)."""
    by_type = collections.Counter(map(type, gc.get_objects()))
    counts: dict[str, int] = {}
    for kind, n in by_type.items():
        name = f"{kind.__module__}.{kind.__qualname__}"
        counts[name] = counts.get(name, 0) + n
    return counts


#: Objects in the permanent generation before anyone froze any. Versions differ: 3.12 starts
#: with its deep-frozen modules' constant tuples there (375 on 3.12.1), which must not read as a
#: process that froze its heap (a pre-fork server) or no hunt would ever freeze; the first
#: hunt's thaw leaves them in the oldest generation, where, immortal, they are never collected.
#: Other versions start with none.
_STARTUP_FROZEN = gc.get_freeze_count() if sys.version_info[:2] == (3, 12) else 0


@contextlib.contextmanager
def frozen_heap(*, collected: bool = False) -> Iterator[None]:
    """The objects alive now left out of the collections in the block (``gc.freeze``).

    A full collection walks every tracked object: in a test process that imported a framework
    or two (half a million objects) each took about 70 ms, and a leak hunt makes a dozen of
    them; counting objects by type walks them all again. The rounds only judge what the calls
    make, so what lived before them is frozen: collections and ``gc.get_objects`` see the new
    objects alone, and reference counting still frees frozen objects as usual (only cyclic
    garbage among them waits, a constant that cannot look like growth). Holder scans and
    reference chains must see the whole heap, so they run outside the block. Nothing is frozen
    when the process froze objects itself (a pre-fork server): unfreezing would thaw them too.

    Before freezing, only the two young generations are collected: the cyclic garbage of the
    calls just made (a warm-up's, what ran between two blocks) is there, while the oldest
    holds what lived before the hunt and what earlier blocks kept, each block having ended
    with a collection of all it made. A full collection would walk the whole heap again (0.15 s
    among the 210,000 objects of a test process, four times a hunt) to find at most cycles that
    died outside the calls, which frozen are a constant like any other.
    ``collected``: a collection was just made (none is made again before freezing).
    """
    if gc.get_freeze_count() > _STARTUP_FROZEN:
        yield
        return
    if not collected:
        gc.collect(1)
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Collect once, then keep the cyclic GC off for the block (restoring its state after)."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


#: Referrer scans one chain search may make: each walks the whole heap (about 0.1 s among half a
#: million objects), and a holder no module reaches would otherwise be searched to the depth
#: limit, one scan per object met (4 s seen in a test process).
_MAX_SCANS = 48
#: Objects one search may remember (a class met on the way is referred to by all its instances).
_MAX_SEEN = 20_000


def _chain_from_a_module(obj: Any, max_depth: int, ignore: set[int]) -> list[Any]:
    """The shortest chain of referrers from a module in ``sys.modules`` to ``obj`` (module
    first; empty when none is found within ``max_depth`` links and the scan budget). A
    function whose globals belong to no module (a notebook function shipped by value) is a
    root too: the chain then starts at it, then its globals.

    Written here rather than taken from objgraph: ``objgraph.find_backref_chain`` makes one
    ``gc.get_referrers`` scan of the whole heap for every object it visits, with no bound on
    their number, and a full collection first. Frames are not followed: a module does not
    refer to a running frame, so they only lengthen the search.
    """
    modules = {id(m) for m in list(sys.modules.values())}
    module_dicts = {id(vars(m)) for m in list(sys.modules.values()) if hasattr(m, "__dict__")}
    queue: collections.deque[Any] = collections.deque([obj])
    depth: dict[int, int] = {id(obj): 0}
    parent: dict[int, Any] = {id(obj): None}
    ignore = ignore | {id(queue), id(depth), id(parent), id(sys._getframe())}
    ignore.add(id(ignore))
    scans = 0
    try:
        while queue:
            target = queue.popleft()
            if id(target) in modules and issubclass(type(target), types.ModuleType):
                chain = [target]
                while parent[id(chain[-1])] is not None:
                    chain.append(parent[id(chain[-1])])
                return chain
            if depth[id(target)] >= max_depth or scans >= _MAX_SCANS:
                continue
            scans += 1
            referrers = gc.get_referrers(target)
            ignore.add(id(referrers))
            for source in referrers:
                key = id(source)
                if key in ignore or key in depth or type(source) is types.FrameType:
                    continue
                if _globals_of(source, target) and id(target) not in module_dicts:
                    # The globals of a function that belongs to no module (a notebook's, sent
                    # to a fresh process by value): a root, named by the function.
                    chain = [source, target]
                    while parent[id(chain[-1])] is not None:
                        chain.append(parent[id(chain[-1])])
                    return chain
                if len(depth) >= _MAX_SEEN:
                    break
                depth[key] = depth[id(target)] + 1
                parent[key] = target
                queue.append(source)
            del referrers
        return []
    finally:
        queue.clear()
        parent.clear()


def _globals_of(source: Any, target: Any) -> bool:
    """True when ``source`` is a function whose globals are ``target``."""
    return type(source) is types.FunctionType and source.__globals__ is target


def backref_chain(func: Any, type_name: str, calls: int = 5, max_depth: int = 12) -> list[Any]:
    """A reference chain from a module to one object of ``type_name`` made by ``func``
    (module first; empty when none is found).

    With the collector paused, objects made by a few calls stay in generation 0, so one of them
    is found without a scan of the whole heap (and without a set the size of the heap).
    """
    short = type_name.rsplit(".", 1)[-1]
    with gc_paused():
        for _ in range(calls):
            func()
        young = [o for o in gc.get_objects(generation=0) if type(o).__qualname__ == short]
    if not young:
        return []
    target = young[-1]
    young.clear()
    return _chain_from_a_module(target, max_depth, {id(sys._getframe()), id(young)})


def chain_to(obj: Any, max_depth: int = 12) -> list[Any]:
    """A reference chain from a module to ``obj`` (module first; empty when none is found)."""
    return _chain_from_a_module(obj, max_depth, {id(sys._getframe())})
