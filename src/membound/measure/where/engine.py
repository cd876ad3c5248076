"""``where=``: which lines held the memory. Checks the option and picks the engine; the capture
itself is ``where_capture.py`` (run by path in child processes too)."""

from __future__ import annotations

import dataclasses
import importlib.util
from typing import Any, Literal

from membound._errors import TargetError
from membound._units import format_size
from membound.results.growth import Growth
from membound.results.sites import PeakSite, held_by, short_path, sites_from_dicts

__all__ = [
    "WhereMode",
    "fit_to_resident",
    "kept_by",
    "memray_available",
    "sites_fields",
    "stopped_detail",
    "where_engine",
    "where_mode",
]

#: What ``where=`` accepts: off (``False``/``None``), Python lines (``True``/``"python"``), or
#: Python and native lines (``"native"``, memray).
WhereMode = bool | Literal["python", "native"] | None

_CHOICES = "where=True (Python lines), 'native' (Python and native lines, memray) or False"


def memray_available() -> bool:
    """True when memray can be imported here."""
    return importlib.util.find_spec("memray") is not None


def where_mode(where: object) -> Literal["python", "native"] | None:
    """The mode ``where=`` asks for: None (off), ``"python"`` or ``"native"``.

    Raises:
        TargetError: any other value (the message lists the choices).
        ImportError: ``"native"`` without memray installed.
    """
    if where is None or (isinstance(where, int) and where in (0, 1)):  # False, True, 0, 1
        return "python" if where else None
    if where == "python":
        return "python"
    if where == "native":
        if not memray_available():
            raise ImportError(
                "where='native' needs memray (Linux, macOS): pip install 'membound[memray]'"
            ) from None
        return "native"
    raise TargetError(f"where={where!r} is not a choice: use {_CHOICES}")


def where_engine(mode: str | None) -> Literal["memray", "tracemalloc"] | None:
    """The engine that captures the sites: memray where installed, else tracemalloc (Python
    lines only; ``where="native"`` has already required memray)."""
    if mode is None:
        return None
    return "memray" if memray_available() else "tracemalloc"


#: What a stopped run says when ``where`` was off, so that the user knows how to get the lines.
ASK_FOR_WHERE = "--where, or where=True in Python, names the lines that held it"


def stopped_detail(
    detail: str,
    outcome: str,
    mode: str | None,
    peak_sites: tuple[PeakSite, ...],
    processes: int = 1,
    running: str = "",
    ask_where: bool = True,
) -> str:
    """A limit stop's words with the line that held the memory (or how to get it), right after
    "stopped"; with several processes, said to be the top process's line. ``running``: the
    line that was running at the limit (``limit_stack.running_words``), said where no capture
    names the lines that held the memory; ``ask_where``: whether ``where`` could be asked for
    (not for a command that is not Python)."""
    if outcome != "limit":
        return detail
    head, stopped, tail = detail.partition("; stopped")
    if not stopped:
        head, tail = detail, ""
    ran = f": {running} when it crossed" if running else ""
    if mode is None:
        said = f"{ran} ({ASK_FOR_WHERE})" if ask_where else ran
    elif not held_by(peak_sites):
        said = f"{ran} (no capture of the lines arrived)"
    elif processes > 1 and any(site.process for site in peak_sites):
        said = (
            ": in the top process and the processes it forked (any started as programs of "
            f"their own are not traced), {held_by(peak_sites)}"
        )
    elif processes > 1:
        said = (
            f": in the top process (its {processes - 1} other process(es) are not traced), "
            f"{held_by(peak_sites)}"
        )
    else:
        said = f": {held_by(peak_sites)}"
    return f"{head}{stopped}{said}{tail}"


def sites_fields(
    figures: dict[str, Any] | None, mode: str | None, outcome: str = "ok"
) -> dict[str, Any]:
    """The ``Measurement`` fields of the sites from a child's or runner's figures."""
    if mode is None:
        return {}
    figures = figures or {}
    note = str(figures.get("where_note") or "")
    peak = sites_from_dicts(figures.get("peak_sites"))
    if not figures.get("where_source"):
        note = note or (
            "no capture of the lines arrived before the run was stopped (it did not answer "
            "within 1 s: a long call in C code, or memory ran out first)"
            if outcome in ("limit", "timeout", "killed")
            else "no capture of the lines arrived"
        )
    elif not peak and not note:
        note = "no allocation was traced during the run: nothing to attribute"
    return {
        "peak_sites": peak,
        "end_sites": sites_from_dicts(figures.get("end_sites")),
        "where_source": figures.get("where_source"),
        "where_note": note,
    }


def fit_to_resident(fields: dict[str, Any], outcome: str, resident: int) -> dict[str, Any]:
    """At a limit stop, the lines' bytes as parts of what was resident (``resident``: the RSS
    at the stop), where the capture counted more: memray counts an allocation whole when it is
    made, and a stop in the middle of writing a big block found 433.8 MiB "held" by one line
    of a process at 286.6 MiB. The shares stay; the bytes become those shares of the RSS, and
    the note says what the lines had allocated. The peak's sites and the end's (at a stop, the
    same moment) each."""
    if outcome != "limit" or resident <= 0:
        return fields
    out = dict(fields)
    allocated = 0
    for key in ("peak_sites", "end_sites"):
        sites = fields.get(key, ())
        total = sum(site.bytes for site in sites)
        if total > resident:
            allocated = max(allocated, total)
            out[key] = tuple(
                dataclasses.replace(site, bytes=int(site.share * resident)) for site in sites
            )
    if not allocated:
        return fields
    said = (
        f"at the stop the lines had allocated {format_size(allocated)}, more than the "
        f"{format_size(resident)} resident (a block is counted whole when it is made, its pages "
        "only once written): the bytes shown are their shares of what was resident"
    )
    note = str(fields.get("where_note") or "")
    out["where_note"] = f"{note}; {said}" if note else said
    return out


def kept_by(growth: Growth, end_sites: tuple[PeakSite, ...], held: float | None = None) -> Growth:
    """A ``retained`` verdict that names the line that kept the most (``+190.7 MiB held at the
    end (by cell.py:3)``) when that line holds at least half of ``held`` (the bytes the words
    say were held); a line that holds less is named with its own figure (``the largest line
    still held at the end, prices.py:9 in load, holds 1.0 MiB of it``), as the end table shows
    it. Any other verdict, or no site, as it is."""
    named = [s for s in end_sites if s.kind != "other"]
    marker = "held at the end"
    if growth.pattern != "retained" or not named or marker not in growth.explanation:
        return growth
    top = named[0]
    where = f"{short_path(top.file)}:{top.line} in {top.function}"
    every = sum(site.bytes for site in end_sites)
    if held is not None and every < held / 2:
        # The lines together hold little of it: pages the allocator kept after the objects
        # went, native memory no tracer saw, or the tracer's own.
        by = (
            f"{marker} (the largest line still held at the end, {where}, holds "
            f"{format_size(top.bytes)} of it; every line still held at the end holds "
            f"{format_size(every)}: the rest was no live allocation the tracer saw — memory "
            "freed and not given back to the system, allocations made where no tracer looks, "
            "or the tracer's own)"
        )
    elif held is not None and top.bytes < held / 2:
        by = (
            f"{marker} (the largest line still held at the end, {where}, holds "
            f"{format_size(top.bytes)} of it)"
        )
    else:
        by = f"{marker} (by {where})"
    return dataclasses.replace(growth, explanation=growth.explanation.replace(marker, by, 1))
