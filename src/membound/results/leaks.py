"""``LeakReport``: the verdict of a leak hunt, with the sites, types and rounds behind it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Holder", "LeakReport", "LeakRound", "Site", "TypeGrowth"]


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
    kind: str = "python"
    """``python`` (traced by tracemalloc) or ``native`` (malloc, traced by memray; the line is
    the Python line that led into it)."""


@dataclass(frozen=True)
class Holder:
    """A container that keeps what leaks (or fills up to its bound)."""

    path: str
    """How a module reaches it, as in ``chain``: ``module app.handlers → ._SESSIONS``."""
    type_name: str
    """``dict``, ``list``, ``set``, ``collections.deque``, ``functools._lru_cache_wrapper``..."""
    file: str | None
    """File of the statement that adds to it (None when it was not seen adding)."""
    line: int | None
    """Line of that statement."""
    per_call: float
    """Entries added per call."""
    size: int = 0
    """Entries it held when counted, after the attribution (see ``calls``)."""
    capacity: int | None = None
    """Its bound (``maxsize``, ``maxlen``, ``__membound_bound__``), or None when unbounded."""
    function: str | None = None
    """The function the adding statement is in (None when it was not seen adding)."""
    trace: tuple[str, ...] = ()
    """The frames that led to the adding statement, innermost (the statement) first, as
    ``file:line``; a few at most, none of membound's own."""
    caller: str | None = None
    """``file:line`` of the user's line that led to the adding statement when that statement is
    not in the measured function's own frame (a helper's ``self.listeners.append(fn)``, an
    emitter in a library): the nearest frame outside the adding function that is not in the
    standard library, site-packages or membound, such as the ``bus.on(handler)`` never undone.
    None when the statement is the target's own, or no user frame led there."""
    calls: int | None = None
    """Calls of the target made when ``size`` was counted: the warm-up, the rounds and the
    calls made to attribute the growth (None in reports that did not record it)."""


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
    """``trend`` or ``late`` (the late half, whose growth decides the verdict)."""
    blocks: int
    """Allocated memory blocks (``sys.getallocatedblocks()``)."""
    rss: int
    """Resident set size, bytes."""
    heap: int | None
    """Heap allocated since tracing started and still held (tracemalloc), bytes; only where the
    allocators cannot be read untraced (None otherwise)."""
    held: int | None = None
    """Bytes the allocators hold (pymalloc's blocks and malloc's, untraced; None where they
    cannot be read)."""
    malloc: int | None = None
    """The part of ``held`` from malloc: larger Python objects and native memory."""


@dataclass(frozen=True)
class LeakReport:
    """The verdict of :func:`find_leaks`."""

    label: str
    """What was called."""
    verdict: str
    """``leak``, ``no leak`` or ``undecided`` (the run was too short to tell; see
    ``needed_iterations``)."""
    leaking: bool
    """True exactly when ``verdict`` is ``leak``."""
    bytes_per_call: float
    """Growth per call of the memory held after collection, over the late half of the rounds
    (or of the floor under a sawtooth): pymalloc's and malloc's bytes, untraced; the traced
    Python heap where those cannot be read."""
    tolerance: float
    """Growth per call treated as noise, bytes: given, or four times the noise measured in this
    run spread over the late half."""
    sites: tuple[Site, ...]
    """Where the kept memory was allocated, largest first (only when not ``no leak``)."""
    types: tuple[TypeGrowth, ...]
    """Object types whose live count grew, largest first (only when leaking)."""
    cycles_per_call: float
    """Objects per call that only the cyclic GC reclaims."""
    chain: tuple[str, ...]
    """A reference chain from a module to one leaked object of the top type (may be empty)."""
    rounds: tuple[LeakRound, ...]
    """Figures after each round, for charts."""
    iterations: int
    """Calls after the warm-up, over all rounds (the late half decides)."""
    warmup: int
    """Warm-up calls."""
    early_growth_bytes: float
    """Heap growth in the first half of the rounds when there was no leak later: a cache
    filling up, or objects made before tracing replaced by traced ones (0 when none)."""
    explanation: str
    """One sentence a person can act on."""
    holders: tuple[Holder, ...] = ()
    """Containers that grew over the attribution round, most entries first: what keeps the
    leak, or a bounded cache still filling."""
    shape: str = "flat"
    """How the memory held moved: ``flat``, ``levelled``, ``sawtooth``, ``bounded`` (a bounded
    container filling), ``steady``, ``slowing``, ``faint`` or ``step``."""
    period: float | None = None
    """Calls between falls back to the floor, for a sawtooth seen falling twice or more."""
    noise_bytes: float = 0.0
    """Spread of the round-to-round changes measured in this run, bytes."""
    needed_iterations: int | None = None
    """Iterations that would likely decide, when ``verdict`` is ``undecided``."""
    python_bytes_per_call: float | None = None
    """Growth per call of the traced Python heap over the attribution round (None when it did
    not run)."""
    native_bytes_per_call: float = 0.0
    """Growth per call of memory outside the Python heap: malloc's growth beyond what
    tracemalloc saw (where malloc can be read), else RSS growth in the late half."""
    extended_from: int | None = None
    """The iterations asked for, when the first run could not decide and was lengthened
    (``iterations`` is then what ran)."""
    native_site_hint: str = ""
    """When native memory leaks without a named site: how to get one."""
    native_sites_by: str = ""
    """What named the native sites: ``memray`` (its hooks saw each ``malloc``), ``malloc's
    total`` (read line by line: no hook saw the allocations), or empty (none named)."""
    calls: int | None = None
    """Calls of the target made in all: the warm-up, the rounds, and the calls made to find
    where the memory went and to count cycles (None in reports that did not record it)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LeakReport:
        """Inverse of :meth:`to_dict`."""
        kw = dict(data)
        kw["sites"] = tuple(Site(**{**s, "trace": tuple(s["trace"])}) for s in kw["sites"])
        kw["holders"] = tuple(
            Holder(**{**h, "trace": tuple(h.get("trace", ()))}) for h in kw.get("holders", ())
        )
        kw["types"] = tuple(TypeGrowth(**t) for t in kw["types"])
        kw["rounds"] = tuple(LeakRound(**r) for r in kw["rounds"])
        kw["chain"] = tuple(kw["chain"])
        return cls(**kw)

    def to_markdown(self) -> str:
        """A Markdown report: verdict, sites, types, chain."""
        from membound.report.markdown import render_leaks

        return render_leaks(self)

    def _repr_html_(self) -> str:
        """Jupyter's display: the HTML report's section for this result, with its chart where
        matplotlib is installed."""
        from membound.report.html import fragment

        return fragment(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's text display: the Markdown report, not every field of the dataclass."""
        printer.text(self.to_markdown())
