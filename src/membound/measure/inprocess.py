"""Measure in this process: one call, or a block, under :class:`track`.

Everything that measures in-process goes through here (``measure(isolate=False)``, comparisons
and complexity runs in one process, the pytest plugin), so the peak of a call means the same
everywhere: the kernel's ``VmHWM`` reset just before it (RSS), or tracemalloc's peak over the
heap at the start (heap).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from membound.measure import child_code, probes
from membound.measure.heap import HeapMode
from membound.measure.target import Target, load_target
from membound.measure.track import track
from membound.measure.where.engine import WhereMode
from membound.results.measurement import Measurement
from membound.results.sites import PeakSite

if TYPE_CHECKING:
    from membound.measure.children.where_capture import padded
else:
    padded = child_code.load("where_capture").padded

__all__ = ["BlockPeak", "PeakKind", "block_peak", "measure_call", "padded"]

PeakKind = Literal["rss", "heap"]


def measure_call(
    target: Target,
    args: Sequence[Any] = (),
    kwargs: dict[str, Any] | None = None,
    *,
    heap: HeapMode = False,
    label: str | None = None,
    interval: float | None = 0.01,
    where: WhereMode = False,
) -> Measurement:
    """Call ``target(*args, **kwargs)`` once in this process and measure it.

    Args:
        target: a callable, or a string imported by the rules of ``measure/target.py``.
        heap: also measure the heap (``True``/``"tracemalloc"`` or ``"memray"``).
        label: name for the result (default: the target's name).
        interval: sampling interval of the timeline; ``None`` samples nothing (the peak still
            comes from ``VmHWM``), for calls too short to draw.
        where: also say which lines held the peak (see :class:`track`).

    The garbage collector runs once before the call (not during the measured part).

    Raises:
        TargetError: a string target cannot be imported.
    """
    func, name = load_target(target)
    # Garbage left by earlier work would otherwise be collected during the call, and the memory
    # it frees would hide part of the call's own growth from its peak.
    gc.collect()
    probes.trim_heap()
    with track(label or name, heap=heap, interval=interval, where=where) as t:
        padded(func, *args, **(kwargs or {}))  # memray's stacks: see ``padded``
    assert t.result is not None
    return t.result


@dataclass
class BlockPeak:
    """The peak of a block, filled in when the block ends."""

    kind: PeakKind
    """``rss`` (Δ VmHWM over the RSS at the start) or ``heap`` (tracemalloc's peak)."""
    bytes: int = 0
    """The peak, bytes (0 until the block has ended)."""
    seconds: float = 0.0
    """Wall time of the block."""
    sites: tuple[PeakSite, ...] = ()
    """Where the memory was at the peak (with ``where``), largest first."""
    where_note: str = ""
    """What the sites do not cover, in words."""

    @property
    def source(self) -> str:
        """Where the figure comes from, in words."""
        return "tracemalloc" if self.kind == "heap" else "VmHWM, reset before the call"


@contextmanager
def block_peak(
    kind: PeakKind, where: WhereMode = False, sites_from: int = 0
) -> Iterator[BlockPeak]:
    """Measure the peak of a ``with`` block without a timeline (no sampler process); with
    ``where``, also the lines that held it (read only from a rise of ``sites_from`` bytes, as
    :class:`track` says)."""
    box = BlockPeak(kind)
    with track(
        "block", heap=kind == "heap", interval=None, where=where, sites_from=sites_from
    ) as t:
        yield box
    assert t.result is not None
    m = t.result
    box.bytes = (m.heap_peak or 0) if kind == "heap" else m.rss_peak_delta
    box.seconds = m.duration_s
    box.sites = m.peak_sites
    box.where_note = m.where_note
