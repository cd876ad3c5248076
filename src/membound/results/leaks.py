"""``LeakReport``: the verdict of a leak hunt, with the sites, types and rounds behind it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["LeakReport", "LeakRound", "Site", "TypeGrowth"]


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
