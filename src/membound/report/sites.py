"""Where the memory was: a measurement's sites (``Measurement.peak_sites``/``end_sites``) as
text for every renderer, and as the tree of blocks an icicle graph draws.

Plain text only, like ``report/sections.py``: the terminal, Markdown and HTML renderers add the
markup, so a site reads the same wherever it is shown (DESIGN §5 rule 9).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from membound._units import format_size
from membound.results import Measurement, PeakSite
from membound.results.sites import OTHER_FILE

__all__ = [
    "END_ROWS",
    "END_TITLE",
    "PEAK_TITLE",
    "SITE_HEAD",
    "Block",
    "Where",
    "icicle",
    "share_text",
    "shown_frame",
    "shown_path",
    "site_cells",
    "site_where",
    "top_sites",
]

#: Heading of the table (and graph) of the sites at the high-water mark.
PEAK_TITLE = "Where the memory was at the peak"
#: Heading of the table of what was still held when the run ended.
END_TITLE = "Still held at the end"
#: The end table is a short answer ("what did it keep?"): the largest sites, then the rest.
END_ROWS = 5
#: The columns of a sites table.
SITE_HEAD = ("share", "bytes", "where", "called from")


def shown_path(file: str) -> str:
    """``file`` relative to the current directory when it lies inside it, else as given."""
    if not os.path.isabs(file):
        return file
    try:
        here = os.getcwd()
        if os.path.commonpath([here, file]) != here:
            return file
        return os.path.relpath(file, here)
    except (OSError, ValueError):  # no current directory any more; another drive on Windows
        return file


def shown_frame(frame: str) -> str:
    """A ``file:line`` frame with its file shown as :func:`shown_path` shows it."""
    file, sep, line = frame.rpartition(":")
    if not sep or not line.isdigit():
        return frame
    return f"{shown_path(file)}:{line}"


def share_text(share: float) -> str:
    """A share (0–1) as a percentage, e.g. ``71.2 %``."""
    return f"{share * 100:.1f} %"


def site_where(site: PeakSite) -> str:
    """``file:line function``; a native site adds the native function that allocated
    (``db.py:41 fetch → sqlite3Malloc (native)``); the remainder row says what it sums."""
    if site.kind == "other":
        return f"{OTHER_FILE} {site.function}".rstrip()
    where = f"{shown_path(site.file)}:{site.line} {site.function}".rstrip()
    if site.kind == "native":
        where += f" → {site.native_symbol} (native)" if site.native_symbol else " (native)"
    if site.ran_in:
        where += f" [{site.ran_in}]"
    return where


def site_cells(site: PeakSite) -> tuple[str, str, str, str]:
    """One row of a sites table: share, bytes, where, called from."""
    caller = site.caller if site.kind != "other" else None
    return (
        share_text(site.share),
        format_size(site.bytes),
        site_where(site),
        shown_frame(caller) if caller else "-",
    )


def top_sites(sites: Sequence[PeakSite], n: int) -> tuple[PeakSite, ...]:
    """The ``n`` largest named sites (``sites`` come largest first), then one remainder row
    summing everything after them; ``sites`` unchanged when they are already that short."""
    named = [s for s in sites if s.kind != "other"]
    if len(named) <= n:
        return tuple(sites)
    kept = named[:n]
    chosen = {id(s) for s in kept}
    rest = [s for s in sites if id(s) not in chosen]
    remainder = PeakSite(
        file=OTHER_FILE,
        line=0,
        function="the rest",
        bytes=sum(s.bytes for s in rest),
        share=sum(s.share for s in rest),
        kind="other",
    )
    return (*kept, remainder)


@dataclass(frozen=True)
class Where:
    """A measurement's sites and how they were captured: what every renderer shows under the
    verdict."""

    peak: tuple[PeakSite, ...]
    """Sites at the high-water mark, largest first."""
    end: tuple[PeakSite, ...]
    """Sites still held at the end, largest first."""
    source: str | None
    """How the sites were captured; None when ``where`` was off."""
    note: str
    """What the sites do not cover, in words."""
    label: str = ""
    """Whose sites these are, when a result has several (a comparison's scenario)."""

    @classmethod
    def of(cls, m: Measurement) -> Where | None:
        """``m``'s sites, or None when it has nothing to say about them (``where`` off)."""
        if not (m.peak_sites or m.end_sites or m.where_source is not None or m.where_note):
            return None
        return cls(m.peak_sites, m.end_sites, m.where_source, m.where_note)

    @property
    def lines(self) -> tuple[str, ...]:
        """How the sites were captured, and the note; says so when a capture found nothing."""
        out = []
        if self.source is not None:
            out.append(f"Sites: {self.source}".rstrip(".") + ".")
        if self.note:
            out.append(self.note)
        elif self.source is not None and not self.peak:
            out.append("No sites: the capture held no traced memory at the peak.")
        return tuple(out)


@dataclass
class Block:
    """One block of the icicle graph: a frame of the user's stack, or the site's own line, with
    every byte held beneath it."""

    frame: str
    """The key: ``file:line`` (or the native function, or the remainder)."""
    label: str
    """What the block says: ``file:line function`` when the function is known."""
    kind: str
    """``frame`` (a caller only), ``python``, ``native`` or ``other``."""
    bytes: int = 0
    """Bytes held by the sites beneath it (itself included)."""
    share: float = 0.0
    """Their share of the traced memory, 0–1."""
    children: list[Block] = field(default_factory=list)
    """The blocks it calls, largest first."""


def _path(site: PeakSite) -> list[tuple[str, str, str]]:
    """Site's blocks from the outermost user frame down to its own line (then the native
    function, for native sites), as (key, label, kind)."""
    if site.kind == "other":
        return [(OTHER_FILE, site_where(site), "other")]
    own = site.location
    callers = site.trace[1:] if site.trace[:1] == (own,) else site.trace
    frames = list(reversed(callers))
    path = [(f, shown_frame(f), "frame") for f in frames]
    label = f"{shown_path(site.file)}:{site.line} {site.function}".rstrip()
    path.append((own, label, "python" if site.kind == "python" else "native"))
    if site.kind == "native":
        symbol = site.native_symbol or "native code"
        path.append((f"native:{symbol}", f"{symbol} (native)", "native"))
    return path


def icicle(sites: Sequence[PeakSite]) -> list[Block]:
    """The top row of the icicle graph of ``sites``: one block per outermost frame, each with
    the frames it called beneath it, down to the sites' own lines. The same caller shared by
    two sites is one block above both. Sites of 0 bytes are left out."""
    top: list[Block] = []
    for site in sites:
        if site.bytes <= 0:
            continue
        row = top
        for key, label, kind in _path(site):
            block = next((b for b in row if b.frame == key), None)
            if block is None:
                block = Block(key, label, kind)
                row.append(block)
            elif block.kind == "frame" and kind != "frame":
                # a caller of one site is another site's own line: name its function
                block.label, block.kind = label, kind
            block.bytes += site.bytes
            block.share += site.share
            row = block.children
    _sort(top)
    return top


def _sort(row: list[Block]) -> None:
    """Largest first, the remainder last, at every level."""
    row.sort(key=lambda b: (b.kind == "other", -b.bytes))
    for block in row:
        _sort(block.children)
