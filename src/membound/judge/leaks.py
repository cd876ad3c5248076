"""Leak hunting: does memory keep growing per call, and where is what is kept allocated?

``find_leaks(target)`` calls ``target()`` repeatedly in this process, in four phases, each only as
expensive as its question needs (tracemalloc slows allocation-heavy code 4× with one frame and
20× with 25 frames on this project's reference machine):

1. **warm-up** (untraced): ``warmup`` calls, so that caches, freelists and lazy imports settle.
2. **trend** (tracemalloc with one frame: only the heap's size is needed): ``iterations`` calls
   in ``rounds`` rounds, then three **late** rounds; after each round a full ``gc.collect()`` and
   the traced heap, allocated blocks and RSS. The late rounds decide ``leaking``: the heap must
   grow per call by more than the tolerance, in at least two of the three. A cache that fills
   during the first rounds (``lru_cache(maxsize=256)``, the ``re`` cache) adds nothing there.
   Tracing starts before the trend so that a bounded cache has turned over all its entries
   (untraced ones replaced by traced ones look like growth) before the late rounds.
3. **attribution** (only when leaking; tracemalloc with ``ATTRIBUTION_FRAMES`` frames): a
   priming round, then one round between two snapshots grouped by traceback, to name the
   user's line that allocates what is kept; per-type object counts; and a reference chain
   (objgraph) from a module to one leaked object of the top type.

Separately, ``cycles_per_call`` counts objects per call that only the cyclic garbage collector
reclaims (measured with the collector disabled for a few calls): not a leak while the collector
runs, but one under ``gc.disable()`` and a source of GC pauses.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import importlib.util
import itertools
import os
import statistics
import sys
import sysconfig
import traceback
import tracemalloc
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from membound._errors import ChildFailed, TargetError
from membound._units import format_size, parse_size
from membound.measure import probes

__all__ = ["ATTRIBUTION_FRAMES", "LeakReport", "LeakRound", "Site", "TypeGrowth", "find_leaks"]

ATTRIBUTION_FRAMES = 16
_LATE_ROUNDS = 3
_MIN_CALLS_PER_ROUND = 10
_CYCLE_CALLS = 50
_NATIVE_MIN_GROWTH = 1 << 20
# membound's own measuring code (not its demo scenarios, which are user code here).
_OWN_DIRS = tuple(
    str(Path(__file__).resolve().parents[1] / part) for part in ("judge", "measure", "guard")
)
_SKIP_PARTS = (*_OWN_DIRS, tracemalloc.__file__, "<frozen importlib", "importlib/")
_LIBRARY_DIRS = tuple(
    {p for p in (sysconfig.get_paths().get("stdlib"), sysconfig.get_paths().get("purelib")) if p}
)


@dataclass(frozen=True)
class Site:
    """An allocation site of memory that is kept."""

    file: str
    """Source file of the line."""
    line: int
    """Line number."""
    bytes_per_call: float
    """Bytes allocated here and still held, per call."""
    count_per_call: float
    """Allocations (memory blocks) still held, per call."""
    trace: tuple[str, ...]
    """The traceback, innermost frame first, as ``file:line``."""


@dataclass(frozen=True)
class TypeGrowth:
    """Growth of the number of live objects of one type."""

    type_name: str
    """Qualified type name (``builtins.dict``, ``app.models.Session``)."""
    per_call: float
    """New live objects per call."""


@dataclass(frozen=True)
class LeakRound:
    """Figures after one round of calls (after a full garbage collection)."""

    calls: int
    """Calls made so far (warm-up excluded)."""
    phase: str
    """``trend`` or ``late`` (the rounds that decide the verdict)."""
    blocks: int
    """Allocated memory blocks (``sys.getallocatedblocks()``)."""
    rss: int
    """Resident set size, bytes."""
    heap: int | None
    """Heap allocated since tracing started and still held (tracemalloc), bytes."""


@dataclass(frozen=True)
class LeakReport:
    """The verdict of :func:`find_leaks`."""

    label: str
    """What was called."""
    leaking: bool
    """True when memory still grew per call, above the tolerance, in the late rounds: the Python
    heap, or else native memory (see ``native_bytes_per_call``)."""
    bytes_per_call: float
    """Heap growth per call in the late rounds (tracemalloc)."""
    tolerance: float
    """Growth per call treated as noise, bytes."""
    sites: tuple[Site, ...]
    """Where the kept memory was allocated, largest first (only when leaking)."""
    types: tuple[TypeGrowth, ...]
    """Object types whose live count grew, largest first (only when leaking)."""
    cycles_per_call: float
    """Objects per call that only the cyclic GC reclaims."""
    chain: tuple[str, ...]
    """A reference chain from a module to one leaked object of the top type (may be empty)."""
    rounds: tuple[LeakRound, ...]
    """Figures after each round, for charts."""
    iterations: int
    """Calls after the warm-up, over all rounds (the last three decide)."""
    warmup: int
    """Warm-up calls."""
    early_growth_bytes: float
    """Heap growth in the first half of the rounds when there was no leak later: a cache
    filling up, or objects made before tracing replaced by traced ones (0 when none)."""
    explanation: str
    """One sentence a person can act on."""
    native_bytes_per_call: float = 0.0
    """RSS growth per call in the late rounds. When the Python heap stays flat but this grows
    steadily (by at least 1 MiB over the late rounds), native memory leaks: C extensions or
    ``malloc`` that tracemalloc cannot see; ``leaking`` is then True with no sites. RSS only
    moves once the allocator's free memory is used up, so in a long-lived process a small
    native leak shows late, or not within the run."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LeakReport:
        """Inverse of :meth:`to_dict`."""
        kw = dict(data)
        kw["sites"] = tuple(Site(**{**s, "trace": tuple(s["trace"])}) for s in kw["sites"])
        kw["types"] = tuple(TypeGrowth(**t) for t in kw["types"])
        kw["rounds"] = tuple(LeakRound(**r) for r in kw["rounds"])
        kw["chain"] = tuple(kw["chain"])
        return cls(**kw)

    def to_markdown(self) -> str:
        """A Markdown report: verdict, sites, types, chain."""
        from membound.report.markdown import render_leaks

        return render_leaks(self)


def _resolve(target: Callable[[], Any] | str) -> tuple[Callable[[], Any], str]:
    if callable(target):
        return target, str(getattr(target, "__qualname__", repr(target)))
    spec, sep, qualname = str(target).rpartition(":")
    if not sep or not spec or not qualname:
        raise TargetError(f"target {target!r} is not of the form 'package.module:function'")
    try:
        if spec.endswith(".py") or os.sep in spec:
            mod_spec = importlib.util.spec_from_file_location(Path(spec).stem, spec)
            if mod_spec is None or mod_spec.loader is None:
                raise ImportError(f"cannot load {spec}")
            obj: Any = importlib.util.module_from_spec(mod_spec)
            mod_spec.loader.exec_module(obj)
        else:
            # As ``python -m`` would: modules in the current folder are importable.
            if os.getcwd() not in sys.path and "" not in sys.path:
                sys.path.insert(0, os.getcwd())
            obj = importlib.import_module(spec)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except Exception as exc:
        raise TargetError(f"cannot import {target}: {type(exc).__name__}: {exc}") from None
    if not callable(obj):
        raise TargetError(f"{target} is not callable")
    return obj, str(target)


def _guarded(func: Callable[[], Any], label: str) -> Callable[[], Any]:
    """``func``, with its exceptions turned into :class:`ChildFailed` carrying the traceback."""

    def call() -> Any:
        try:
            return func()
        except Exception as exc:
            raise ChildFailed(
                f"{label} raised while being called for leak hunting: {type(exc).__name__}: {exc}",
                traceback=traceback.format_exc(),
                hint="the measured code itself failed; its traceback is shown above",
            ) from exc

    return call


def _skipped(filename: str) -> bool:
    return any(part in filename for part in _SKIP_PARTS if part)


def _site_frame(trace: tracemalloc.Traceback) -> tracemalloc.Frame | None:
    """The user's line in ``trace``: the innermost frame outside membound, tracemalloc and
    importlib, preferring one outside the standard library and site-packages."""
    frames = [f for f in reversed(trace) if not _skipped(f.filename)]
    for frame in frames:
        if not frame.filename.startswith(_LIBRARY_DIRS):
            return frame
    return frames[0] if frames else None


def _own_filters() -> list[tracemalloc.Filter]:
    """Filters that drop allocations made by membound, objgraph, tracemalloc and importlib."""
    import objgraph

    patterns = [
        *(f"{d}{os.sep}*" for d in _OWN_DIRS),
        str(objgraph.__file__),
        str(tracemalloc.__file__),
        "<frozen importlib._bootstrap>",
        "<frozen importlib._bootstrap_external>",
    ]
    return [tracemalloc.Filter(False, p) for p in patterns]


def _sites(
    before: tracemalloc.Snapshot,
    after: tracemalloc.Snapshot,
    calls: int,
    filters: Sequence[tracemalloc.Filter],
    limit: int = 10,
) -> list[Site]:
    before, after = before.filter_traces(filters), after.filter_traces(filters)
    grouped: dict[tuple[str, int], list[Any]] = {}
    for stat in after.compare_to(before, "traceback"):
        if stat.size_diff <= 0:
            continue
        frame = _site_frame(stat.traceback)
        if frame is None:
            continue
        key = (frame.filename, frame.lineno)
        entry = grouped.setdefault(key, [0, 0, stat.traceback, 0])
        entry[0] += stat.size_diff
        entry[1] += stat.count_diff
        if stat.size_diff > entry[3]:
            entry[2], entry[3] = stat.traceback, stat.size_diff
    ranked = sorted(grouped.items(), key=lambda kv: -kv[1][0])[:limit]
    return [
        Site(
            file,
            line,
            size / calls,
            count / calls,
            tuple(f"{f.filename}:{f.lineno}" for f in reversed(trace) if not _skipped(f.filename))[
                :8
            ],
        )
        for (file, line), (size, count, trace, _) in ranked
    ]


def _label_chain(chain: Sequence[Any]) -> tuple[str, ...]:
    out: list[str] = []
    for i, obj in enumerate(chain):
        if isinstance(obj, types.ModuleType):
            out.append(f"module {obj.__name__}")
            continue
        prev = chain[i - 1] if i else None
        edge = ""
        if isinstance(prev, dict):
            key = next((k for k, v in prev.items() if v is obj), None)
            is_namespace = i >= 2 and isinstance(chain[i - 2], types.ModuleType)
            edge = f".{key}" if is_namespace else f"[{key!r}]"
        elif isinstance(prev, list | tuple):
            index = next((j for j, v in enumerate(prev) if v is obj), None)
            edge = f"[{index}]"
        name = type(obj).__qualname__
        if isinstance(obj, dict) and i + 1 < len(chain) and edge == "":
            continue  # an instance's or module's __dict__: the next step names the attribute
        out.append(f"{edge} ({name})" if edge else name)
    return tuple(out)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Collect once, then keep the cyclic GC off for the block (restoring its state after)."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _chain_to(func: Callable[[], Any], type_name: str, calls: int = 5) -> tuple[str, ...]:
    """A reference chain from a module to one object of ``type_name`` made by ``func``.

    With the collector paused, objects made by a few calls stay in generation 0, so one of them
    is found without a scan of the whole heap (and without a set the size of the heap).
    """
    import objgraph

    short = type_name.rsplit(".", 1)[-1]
    with _gc_paused():
        for _ in range(calls):
            func()
        young = [o for o in gc.get_objects(generation=0) if type(o).__qualname__ == short]
    if not young:
        return ()
    target = young[-1]
    young.clear()
    chain = objgraph.find_backref_chain(
        target,
        objgraph.is_proper_module,
        max_depth=12,
        extra_ignore=(id(sys._getframe()), id(young)),
    )
    if not chain or not isinstance(chain[0], types.ModuleType):
        return ()
    return _label_chain(chain)


def _type_counts() -> dict[str, int]:
    import objgraph

    return dict(objgraph.typestats(shortnames=False))


def _cycles_per_call(func: Callable[[], Any], calls: int) -> float:
    with _gc_paused():
        for _ in range(calls):
            func()
        found = gc.collect()
    return found / calls


def find_leaks(
    target: Callable[[], Any] | str,
    iterations: int = 1000,
    warmup: int = 50,
    rounds: int = 10,
    *,
    tolerance: int | str = 64,
    label: str | None = None,
) -> LeakReport:
    """Call ``target()`` repeatedly and decide whether memory leaks per call.

    Args:
        target: a callable taking no arguments, or ``"package.module:function"``.
        iterations: calls in the trend phase (split into ``rounds``).
        warmup: calls before anything is counted.
        rounds: rounds of the trend phase.
        tolerance: heap growth per call treated as noise (bytes or a size like ``"64 B"``).
        label: name for the report.

    Raises:
        TargetError: the target cannot be imported or the numbers do not make sense.
    """
    raw, name = _resolve(target)
    label = label or name
    func = _guarded(raw, label)
    tol = float(parse_size(tolerance))
    if rounds < _LATE_ROUNDS + 1 or warmup < 0:
        raise TargetError(
            f"need rounds >= {_LATE_ROUNDS + 1} and warmup >= 0",
            hint=f"the last {_LATE_ROUNDS} rounds decide; earlier ones let caches fill",
        )
    per_round = iterations // rounds
    if per_round < _MIN_CALLS_PER_ROUND:
        raise TargetError(
            f"{iterations} iterations in {rounds} rounds is under {_MIN_CALLS_PER_ROUND} calls "
            "per round: too few to tell a leak from noise",
            hint=f"use at least {_MIN_CALLS_PER_ROUND * rounds} iterations or fewer rounds",
        )

    for _ in range(warmup):
        func()
    gc.collect()

    history: list[LeakRound] = []
    calls = 0
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start(1)
    try:
        gc.collect()
        heap = [tracemalloc.get_traced_memory()[0]]
        rss = [probes.rss()]
        for r in range(rounds):
            for _ in range(per_round):
                func()
            calls += per_round
            gc.collect()
            heap.append(tracemalloc.get_traced_memory()[0])
            rss.append(probes.rss())
            phase = "late" if r >= rounds - _LATE_ROUNDS else "trend"
            history.append(LeakRound(calls, phase, sys.getallocatedblocks(), rss[-1], heap[-1]))
    finally:
        if not was_tracing:
            tracemalloc.stop()
    late = [b - a for a, b in itertools.pairwise(heap)][-_LATE_ROUNDS:]
    bytes_per_call = statistics.median(late) / per_round
    leaking = bytes_per_call > tol and sum(d > 0 for d in late) >= 2
    late_rss = [b - a for a, b in itertools.pairwise(rss)][-_LATE_ROUNDS:]
    native_per_call = statistics.median(late_rss) / per_round
    native = (
        not leaking
        and native_per_call > tol
        and all(d > 0 for d in late_rss)
        and sum(late_rss) >= _NATIVE_MIN_GROWTH
    )

    sites: list[Site] = []
    type_growth: list[TypeGrowth] = []
    chain: tuple[str, ...] = ()
    if leaking:
        sites, type_growth, chain = _attribute(func, per_round, was_tracing)
    cycles = _cycles_per_call(func, min(per_round, _CYCLE_CALLS))

    half = len(heap) // 2
    early = 0.0
    if not leaking and heap[half] - heap[0] > tol * per_round * 2:
        early = float(heap[half] - heap[0])

    return LeakReport(
        label=label,
        leaking=leaking or native,
        bytes_per_call=bytes_per_call,
        tolerance=tol,
        sites=tuple(sites),
        types=tuple(type_growth),
        cycles_per_call=cycles,
        chain=chain,
        rounds=tuple(history),
        iterations=iterations,
        warmup=warmup,
        early_growth_bytes=early,
        native_bytes_per_call=native_per_call,
        explanation=_explain(
            leaking,
            bytes_per_call,
            tol,
            sites,
            type_growth,
            chain,
            cycles,
            early,
            per_round,
            native_per_call if native else None,
        ),
    )


def _attribute(
    func: Callable[[], Any], calls: int, was_tracing: bool
) -> tuple[list[Site], list[TypeGrowth], tuple[str, ...]]:
    # Built (and objgraph imported) before tracing: that import must not look like a leak.
    filters = _own_filters()
    if not was_tracing:
        tracemalloc.start(ATTRIBUTION_FRAMES)
    try:
        # A priming round first: objects made before tracing and replaced now would otherwise
        # look like growth (their frees are not traced, the replacements are).
        for _ in range(calls):
            func()
        gc.collect()
        before = tracemalloc.take_snapshot()
        counts_before = _type_counts()
        for _ in range(calls):
            func()
        gc.collect()
        counts_after = _type_counts()
        after = tracemalloc.take_snapshot()
        sites = _sites(before, after, calls, filters)
        growth = sorted(
            (
                TypeGrowth(t, (counts_after.get(t, 0) - counts_before.get(t, 0)) / calls)
                for t in counts_after
                if counts_after.get(t, 0) - counts_before.get(t, 0) > 0
            ),
            key=lambda g: -g.per_call,
        )[:10]
        # Prefer a user-defined type for the chain: builtins say less about who keeps them.
        top = next((g for g in growth if not g.type_name.startswith("builtins.")), None)
        top = top or (growth[0] if growth else None)
        chain = _chain_to(func, top.type_name) if top else ()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return sites, growth, chain


def _explain(
    leaking: bool,
    per_call: float,
    tol: float,
    sites: Sequence[Site],
    growth: Sequence[TypeGrowth],
    chain: Sequence[str],
    cycles: float,
    early: float,
    per_round: int,
    native: float | None = None,
) -> str:
    def size(v: float) -> str:
        return f"{v:.0f} B" if abs(v) < 1024 else format_size(v)

    if native is not None:
        text = (
            f"leaks native memory: RSS grew {size(native)} per call over the last "
            f"{_LATE_ROUNDS * per_round} calls while the Python heap changed {size(per_call)} "
            f"per call (tolerance {size(tol)}); C extensions or malloc outside tracemalloc's "
            "view, so no allocation site can be named"
        )
    elif leaking:
        text = f"leaks {size(per_call)} per call"
        if sites:
            text += f" at {sites[0].file}:{sites[0].line}"
        if growth:
            g = next((t for t in growth if not t.type_name.startswith("builtins.")), growth[0])
            text += f" ({g.type_name} +{g.per_call:.2g} per call)"
        if chain:
            text += f", kept alive by {' → '.join(chain)}"
        text += f" (tolerance {size(tol)})"
    else:
        text = (
            f"no leak: the heap changed {size(per_call)} per call over the last "
            f"{_LATE_ROUNDS * per_round} calls (tolerance {size(tol)})"
        )
        if early:
            text += "; it grew early and then stopped (a bounded cache filling up, not a leak)"
    if cycles >= 0.5:
        text += (
            f"; {cycles:.1f} objects per call are freed only by the cyclic GC "
            "(a leak under gc.disable(), and GC pauses)"
        )
    return text
