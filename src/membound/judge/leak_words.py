"""The words of a leak verdict: what grew, by how much per call, what keeps it and where it was
allocated, with the tolerance the judge used. Every figure comes from the report beside it."""

from __future__ import annotations

import os

from membound._units import format_size
from membound.judge.chains import holder_name
from membound.judge.retained import QUANTUM, Retention
from membound.results.leaks import Holder, LeakReport

__all__ = ["explain"]


def _size(v: float, *, signed: bool = False) -> str:
    if abs(v) < 1024:
        text = f"{v:+.1f} B" if signed else f"{v:.1f} B"
        return text.replace(".0 B", " B")
    return format_size(v, signed=signed)


def _where(file: str, line: int | None) -> str:
    try:
        rel = os.path.relpath(file)
    except ValueError:  # another drive
        rel = file
    shown = rel if not rel.startswith("..") else file
    return f"{shown}:{line}" if line is not None else shown


def _per_call(n: float, one: str, many: str) -> str:
    figure = f"{n:.1f}" if n >= 0.1 else f"{n:.2g}"
    return f"+{figure} {one if figure == '1.0' else many}/call"


def _holder_words(h: Holder) -> str:
    rate = _per_call(h.per_call, "entry", "entries")
    if h.path.startswith("("):  # no module reaches it: a closure's or a caller's local
        text = f"a {h.type_name} no module reaches (a closure's or a local; {rate})"
    else:
        text = f"`{holder_name(h.path)}` ({h.type_name}, {rate})"
    if h.file is not None:
        text += f", added at {_where(h.file, h.line)}"
        if h.caller is not None and h.caller != f"{h.file}:{h.line}":
            file, _, line = h.caller.rpartition(":")
            caller = _where(file, int(line)) if line.isdigit() else h.caller
            text += (f" in {h.function}" if h.function else "") + f", called from {caller}"
    return text


def _tolerance_words(r: Retention, given: bool, late: int) -> str:
    if given:
        return f"tolerance {_size(r.tolerance)} per call, given"
    if r.noise <= QUANTUM:
        noise = f"{_size(r.noise)} per round (the smallest step measured)"
    else:
        noise = f"±{_size(r.noise)} per round (the noise measured in this run)"
    return f"tolerance {_size(r.tolerance)} per call: 4 × {noise} over the last {late:,} calls"


def _bounded_words(report: LeakReport) -> str:
    parts = []
    for h in report.holders:
        assert h.capacity is not None
        name = holder_name(h.path)
        parts.append(f"{h.size:,} of {h.capacity:,} entries (`{name}`, {h.type_name})")
    text = "bounded cache filling: " + "; ".join(parts)
    top = report.holders[0]
    if top.per_call > 0 and top.capacity:
        per_entry = report.bytes_per_call / top.per_call
        text += (
            f"; memory held grew {_size(report.bytes_per_call)} per call while it fills "
            f"(≈ {_size(per_entry * top.capacity)} when full), and stops when it is full"
        )
    return text


def _leak_words(report: LeakReport, r: Retention, late: int) -> str:
    native = report.native_bytes_per_call > 0
    what = "of native memory " if native else ""
    if r.shape == "sawtooth":
        text = (
            f"leaks {_size(report.bytes_per_call)} per call {what}: the floor under a sawtooth "
            "rises from trough to trough"
        )
    else:
        text = (
            f"leaks {_size(report.bytes_per_call)} per call {what}(memory held after "
            f"collection, over the last {late:,} calls)"
        )
    if native:
        traced = report.python_bytes_per_call or 0.0
        text += (
            f"; malloc outside the Python heap, which grew {_size(traced)} per call traced "
            "(C extensions, ctypes)"
        )
    if report.holders:
        text += "; kept by " + _holder_words(report.holders[0])
    python_sites = [s for s in report.sites if s.kind == "python"]
    natives = [s for s in report.sites if s.kind == "native"]
    if native and natives:
        s = natives[0]
        text += (
            f"; allocated natively under {_where(s.file, s.line)} "
            f"({_size(s.bytes_per_call)}/call, {report.native_sites_by or 'memray'})"
        )
    elif native and report.native_site_hint:
        text += f"; {report.native_site_hint}"
    elif python_sites:
        s = python_sites[0]
        text += f"; allocated at {_where(s.file, s.line)} ({_size(s.bytes_per_call)}/call traced)"
    if not native:
        g = next((t for t in report.types if not t.type_name.startswith("builtins.")), None)
        if g is not None:
            text += f" ({g.type_name} +{g.per_call:.2g} per call)"
        if report.chain and not report.holders:
            text += f", kept alive by {' → '.join(report.chain)}"
    return text


def explain(report: LeakReport, r: Retention, late: int, given: bool) -> str:
    """One sentence a person can act on, quoting the report's own figures."""
    tol = _tolerance_words(r, given, late)
    if report.verdict == "leak":
        text = f"{_leak_words(report, r, late)} ({tol})"
    elif report.verdict == "undecided":
        why = {
            "faint": "above the tolerance but under twice it",
            "slowing": "and the growth slowed within the run (a cache nearing its size, or a leak)",
            "step": "in a step rather than round after round",
        }.get(r.shape, "")
        text = (
            f"undecided: memory held grew {_size(report.bytes_per_call)} per call over the last "
            f"{late:,} calls, {why} ({tol}); run about {report.needed_iterations:,} iterations "
            "to decide"
        )
        if report.holders:
            text += "; growing: " + _holder_words(report.holders[0])
    elif report.shape == "bounded":
        text = "no leak: " + _bounded_words(report)
    elif report.shape == "step":
        text = (
            f"no leak: memory held rose in a step ({_size(r.per_unit * late, signed=True)} over "
            f"the last {late:,} calls, {_size(report.bytes_per_call, signed=True)} per call) "
            "while no new objects were kept and no container grew: storage resized once, not "
            f"growth per call ({tol})"
        )
    elif report.shape == "sawtooth":
        if report.period is not None:
            rhythm = f"drops back every ~{report.period:,.0f} calls"
        else:
            rhythm = f"fell back to its floor at call {r.first_drop:,.0f}"
        text = (
            f"no leak: sawtooth: {rhythm}; the floor under it changed "
            f"{_size(report.bytes_per_call, signed=True)} per call ({tol})"
        )
    else:
        text = (
            f"no leak: memory held after collection changed "
            f"{_size(report.bytes_per_call, signed=True)} per call over the last {late:,} calls "
            f"({tol})"
        )
        if report.early_growth_bytes:
            text += (
                f"; it grew {_size(report.early_growth_bytes)} early and then stopped "
                # Not said to be a cache: a function without one grows a little too, as its
                # first calls set things up (interned names, a first import's objects).
                "(what the first calls set up once, or a cache filling to its bound: not a leak)"
            )
    if report.extended_from is not None:
        text += (
            f"; the run was lengthened from {report.extended_from:,} to "
            f"{report.iterations:,} calls to decide"
        )
    if report.cycles_per_call >= 0.5:
        text += (
            f"; {report.cycles_per_call:.1f} objects per call are freed only by the cyclic GC "
            "(a leak under gc.disable(), and GC pauses)"
        )
    return text
