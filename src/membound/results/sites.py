"""``PeakSite``: a place in the user's code that held memory at the high-water mark (or at the
end of a run), grouped by the stack of the user's frames."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = [
    "OTHER_FILE",
    "PeakSite",
    "SiteKind",
    "held_by",
    "short_path",
    "short_path_line",
    "sites_from_dicts",
    "sites_to_dicts",
]

#: ``python``: memory held through a Python line (with ``where=True`` that includes what C code
#: called from that line allocated); ``native``: allocated by native code (C extensions' malloc
#: and mmap, ``where="native"`` only), named by ``native_symbol``; ``other``: the remainder of
#: smaller sites after the named ones.
SiteKind = Literal["python", "native", "other"]

#: ``PeakSite.file`` of the remainder row.
OTHER_FILE = "(other)"


@dataclass(frozen=True)
class PeakSite:
    """Memory held at one place when the peak (or the end) was captured.

    Sites are grouped by the stack of the user's own frames (the standard library, installed
    packages and membound folded away); the same helper called from two lines is two sites,
    each with its caller in ``trace``.
    """

    file: str
    """Source file of the innermost user frame (``(other)`` for the remainder row)."""
    line: int
    """Its line number (0 for the remainder row)."""
    function: str
    """Its function (for the remainder row: how many smaller sites it sums)."""
    bytes: int
    """Bytes held here at the captured moment."""
    share: float
    """``bytes`` as a fraction (0–1) of all the traced memory held at that moment."""
    kind: SiteKind = "python"
    """``python``, ``native`` or ``other`` (see :data:`SiteKind`)."""
    trace: tuple[str, ...] = ()
    """The user's frames, innermost first, as ``file:line``."""
    native_symbol: str | None = None
    """The innermost native function that allocated (native sites only), e.g. ``sqlite3Malloc``."""
    thread: str | None = None
    """The thread that allocated, when not the main thread: its name, or how many threads of
    one kind (``4 threads like ThreadPoolExecutor-0_0``); ``trace`` then goes on through the
    line that started it. memray captures only."""
    process: str | None = None
    """The process that allocated, when not the measured one: a process it forked (``forked
    process 4121``, or ``3 forked processes like 4121``), each counted at its own peak. memray's
    streamed captures only."""

    @property
    def location(self) -> str:
        """``file:line`` (the file as given)."""
        return f"{self.file}:{self.line}"

    @property
    def thread_words(self) -> str:
        """``thread loader`` or ``4 threads like ThreadPoolExecutor-0_0`` (empty for the main
        thread)."""
        if not self.thread:
            return ""
        return self.thread if " threads like " in self.thread else f"thread {self.thread}"

    @property
    def ran_in(self) -> str:
        """Where it ran besides the measured process's main thread, in words (``forked process
        4121, thread loader``); empty for the main thread of the measured process."""
        return ", ".join(w for w in (self.process or "", self.thread_words) if w)

    @property
    def caller(self) -> str | None:
        """The next user frame out (``file:line``), or None when the site has no caller here."""
        return self.trace[1] if len(self.trace) > 1 else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        out = asdict(self)
        out["trace"] = list(self.trace)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PeakSite:
        """Inverse of :meth:`to_dict`."""
        return cls(
            file=str(data["file"]),
            line=int(data["line"]),
            function=str(data["function"]),
            bytes=int(data["bytes"]),
            share=float(data["share"]),
            kind=data.get("kind", "python"),
            trace=tuple(str(t) for t in data.get("trace", ())),
            native_symbol=data.get("native_symbol"),
            thread=data.get("thread"),
            process=data.get("process"),
        )


def sites_from_dicts(data: Iterable[Mapping[str, Any]] | None) -> tuple[PeakSite, ...]:
    """Sites read back from JSON (an absent list is no sites)."""
    return tuple(PeakSite.from_dict(d) for d in (data or ()))


def sites_to_dicts(sites: Sequence[PeakSite]) -> list[dict[str, Any]]:
    """Sites as JSON-ready dicts."""
    return [s.to_dict() for s in sites]


def short_path(path: str) -> str:
    """``path`` relative to the current directory when it is inside it, else as given."""
    if not os.path.isabs(path):
        return path
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def short_path_line(location: str) -> str:
    """A ``file:line`` with the file shortened as by :func:`short_path`."""
    file, sep, line = location.rpartition(":")
    return f"{short_path(file)}:{line}" if sep else location


def held_by(sites: Sequence[PeakSite]) -> str:
    """The top site in words: ``71 % held by job.py:42 in load_all ← main.py:10`` (empty when
    there is no named site)."""
    named = [s for s in sites if s.kind != "other"]
    if not named:
        return ""
    top = named[0]
    where = f"{short_path(top.file)}:{top.line} in {top.function}"
    if top.native_symbol:
        where += f" ({top.native_symbol}, native)"
    if top.ran_in:
        where += f" in {top.ran_in}"
    if top.caller is not None:
        where += f" ← {short_path_line(top.caller)}"
    return f"{top.share * 100:.0f} % held by {where}"
