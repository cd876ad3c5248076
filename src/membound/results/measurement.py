"""``Measurement``: the result of measuring one run of a block, a function or a command."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

from membound._units import format_size
from membound.results.growth import Anchors, Growth
from membound.results.sites import PeakSite, sites_from_dicts
from membound.results.timeline import Timeline

__all__ = ["Kind", "Measurement", "Outcome"]

Kind = Literal["in-process", "isolated", "command"]
Outcome = Literal["ok", "failed", "limit", "timeout", "killed"]


@dataclass(frozen=True)
class Measurement:
    """Memory of one run. RSS is what the OS sees; heap is what Python objects hold (tracemalloc).

    All sizes are bytes. ``*_delta`` fields are relative to ``rss_start``.
    """

    label: str
    """What was measured."""
    kind: Kind
    """``in-process`` (``track``), ``isolated`` (a function in a fresh interpreter) or
    ``command``."""
    duration_s: float
    """Wall time of the measured code, seconds."""
    rss_start: int
    """RSS just before the measured code ran. For isolated runs: the fresh interpreter's baseline
    after importing the target's module; for commands: the first sample after start."""
    rss_end: int
    """RSS right after the measured code ran (for commands: the last sample)."""
    rss_peak: int
    """Highest RSS during the run; ``rss_peak_source`` says how it was obtained."""
    rss_peak_delta: int
    """``rss_peak - rss_start``: what the measured code added at its worst."""
    rss_peak_source: str
    """Where the peak came from, e.g. ``VmHWM (reset at start)`` or ``sampler max``."""
    heap_current: int | None
    """Python heap still held at the end, over the heap at the start (tracemalloc); None unless
    heap tracing was asked for."""
    heap_peak: int | None
    """Highest Python heap during the run, over the heap at the start (tracemalloc); None unless
    heap tracing was asked for."""
    gc_collections: int | None
    """Garbage collections during the run (None where unobservable, e.g. foreign commands)."""
    gc_pause_s: float | None
    """Total time spent in those collections, seconds."""
    timeline: Timeline
    """RSS over time, from the sampler process (bounded in size)."""
    growth: Growth
    """The verdict on ``timeline``: flat, sawtooth, ramp, leak, spike or retained."""
    outcome: Outcome = "ok"
    """``ok``; ``failed`` (non-zero exit); ``limit`` or ``timeout`` (stopped by membound);
    ``killed`` (a signal membound did not send)."""
    outcome_detail: str = ""
    """The outcome in words, e.g. ``memory limit 512.0 MiB exceeded at 3.20 s``."""
    exit_code: int | None = None
    """Exit status of a command or isolated child (negative: killed by that signal)."""
    limit: int | None = None
    """The memory limit in force, bytes."""
    interval: float = 0.01
    """Sampling interval, seconds."""
    blocks_delta: int | None = None
    """Blocks Python's allocator held at the end minus at the start (``sys.getallocatedblocks``):
    about 0 when the Python objects made during the run were freed. None for commands."""
    rss_after_release: int | None = None
    """RSS after ``gc.collect()`` and ``malloc_trim(0)`` (what ``release_memory()`` does) at the
    end of an isolated run, bytes: how much of ``rss_end`` the allocator could hand back. None
    elsewhere (membound does not trim a process it does not own)."""
    heap_overhead: int | None = None
    """The heap tracer's own memory, bytes, at its largest during the run: tracemalloc's (polled
    every 10 ms from a thread: best effort, a lower bound), or memray's table of live
    allocations in a block's aggregated capture (measured as the capture closed, estimated at
    the peak from the allocations live then). It is resident, so the RSS figures include it; it
    is not the workload's. None unless heap tracing was on (or memray's was not measured)."""
    heap_source: str | None = None
    """Which engine measured ``heap_current``/``heap_peak``: tracemalloc (Python allocations
    only) or memray (Python allocators and native allocations: C extensions' malloc and mmap
    count too, DESIGN §5.2). None unless heap tracing was on."""
    peak_sites: tuple[PeakSite, ...] = ()
    """Where the memory was at the high-water mark: the largest sites grouped by the user's
    stack, largest first (ten at most, then an ``other`` remainder). Empty unless ``where`` was
    asked for; at a limit stop, the last capture before the stop (``where_note`` says when none
    arrived)."""
    end_sites: tuple[PeakSite, ...] = ()
    """What was still held when the run ended, the same way: the basis of a "retained" answer."""
    where_source: str | None = None
    """How the sites were captured (memray's high-water mark, tracemalloc polled, …); None
    unless ``where`` was asked for."""
    where_note: str = ""
    """Anything the sites do not cover, in words (no capture arrived before a kill, the run
    allocated nothing, only the top process of a tree was traced, …)."""
    limit_stack: tuple[str, ...] = ()
    """At a limit stop, the Python stack that was running when the limit was crossed
    (``file:line in function``, innermost first; the thread holding the GIL): read from outside
    the frozen process by py-spy, so it is there even when the process was inside one long C
    call and no capture of ``peak_sites`` arrived. Empty without a limit stop, where py-spy is
    not installed (the ``stack`` extra), or when it could not be read (``limit_stack_note``)."""
    limit_stack_note: str = ""
    """Which process ``limit_stack`` is from when the run had several (its largest), or why a
    limit stop has none (not a Python process, not permitted, …)."""

    def __str__(self) -> str:
        """One line, as ``print(measurement)`` shows it: the label, the outcome, the peak and
        its rise, the wall time and the growth word (``to_markdown()`` has the whole table)."""
        return (
            f"{self.label}: {self.outcome}, RSS peak {format_size(self.rss_peak)} "
            f"(+{format_size(self.rss_peak_delta)}), {self.duration_s:.2f} s, "
            f"{self.growth.label}"
        )

    @property
    def anchors(self) -> Anchors:
        """The headline figures the growth explanation quotes."""
        return Anchors.of(
            self.rss_start,
            self.rss_peak,
            self.rss_peak_source,
            self.rss_end,
            blocks_delta=self.blocks_delta,
            released=self.rss_after_release,
        )

    @property
    def ok(self) -> bool:
        """True when the run ended normally."""
        return self.outcome == "ok"

    def raise_for_outcome(self) -> Measurement:
        """Return self if the run ended normally, else raise.

        Raises:
            LimitExceeded: the run was stopped at its memory limit or timeout.
            ChildFailed: the run failed (non-zero exit) or was killed by a signal.
        """
        from membound._errors import ChildFailed, LimitExceeded

        if self.outcome in ("limit", "timeout"):
            raise LimitExceeded(f"{self.label}: {self.outcome_detail}", measurement=self)
        if self.outcome != "ok":
            raise ChildFailed(
                f"{self.label}: {self.outcome_detail}", exit_code=self.exit_code, measurement=self
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with stable keys (schema in ``report/json.py``)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple) and f.name.endswith("_sites"):
                out[f.name] = [site.to_dict() for site in value]
            else:
                out[f.name] = value.to_dict() if hasattr(value, "to_dict") else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        """Inverse of :meth:`to_dict`."""
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["timeline"] = Timeline.from_dict(data["timeline"])
        kwargs["growth"] = Growth.from_dict(data["growth"])
        kwargs["peak_sites"] = sites_from_dicts(data.get("peak_sites"))
        kwargs["end_sites"] = sites_from_dicts(data.get("end_sites"))
        kwargs["limit_stack"] = tuple(data.get("limit_stack", ()))
        return cls(**kwargs)

    def to_markdown(self) -> str:
        """A Markdown table of this measurement."""
        from membound.report.markdown import render_measurement

        return render_measurement(self)

    def _repr_html_(self) -> str:
        """Jupyter's display: the HTML report's section for this result, with its chart where
        matplotlib is installed."""
        from membound.report.html import fragment

        return fragment(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's text display: the Markdown report, not every field of the dataclass."""
        printer.text(self.to_markdown())
