"""A real measurement (``membound.track``) given hand-made sites, for the renderers' tests: the
sites' figures are known exactly, so what each report shows can be checked against them."""

from __future__ import annotations

import os
from typing import Any

import membound as mb

MIB = 2**20
#: A function name that would run if it reached a page unescaped.
HOSTILE_FUNCTION = "<script>alert(1)</script>"


def _site(
    file: str, line: int, function: str, size: int, total: int, **more: Any
) -> dict[str, Any]:
    return {
        "file": file,
        "line": line,
        "function": function,
        "bytes": size,
        "share": size / total,
        "kind": more.pop("kind", "python"),
        "trace": more.pop("trace", [f"{file}:{line}"]),
        "native_symbol": more.pop("native_symbol", None),
        "thread": more.pop("thread", None),
        "process": more.pop("process", None),
    }


def peak_site_dicts() -> list[dict[str, Any]]:
    """Six sites and the remainder, largest first: two share a caller (``main.py:10``), one
    helper is called from two lines, one is native, one lies outside the current directory and
    has a hostile function name."""
    here = os.getcwd()
    jobs, util, main = (os.path.join(here, "app", n) for n in ("jobs.py", "util.py", "main.py"))
    sizes = [64 * MIB, 32 * MIB, 16 * MIB, 12 * MIB, 8 * MIB, 6 * MIB, 2 * MIB]
    total = sum(sizes)
    return [
        _site(jobs, 42, "load_all", sizes[0], total, trace=[f"{jobs}:42", f"{main}:10"]),
        _site(util, 7, "copy_rows", sizes[1], total, trace=[f"{util}:7", f"{main}:10"]),
        _site(util, 7, "copy_rows", sizes[2], total, trace=[f"{util}:7", f"{main}:12"]),
        _site(
            jobs,
            50,
            "fetch",
            sizes[3],
            total,
            kind="native",
            native_symbol="sqlite3Malloc",
            trace=[f"{jobs}:50", f"{main}:14"],
        ),
        _site("/elsewhere/evil.py", 3, HOSTILE_FUNCTION, sizes[4], total),
        _site(main, 20, "a|b", sizes[5], total, trace=[f"{main}:20"], thread="loader"),
        _site("(other)", 0, "9 smaller sites", sizes[6], total, kind="other", trace=[]),
    ]


def end_site_dicts() -> list[dict[str, Any]]:
    """Seven named sites and the remainder: more than the end table shows."""
    here = os.getcwd()
    sizes = [(8 - i) * MIB for i in range(7)]
    total = sum(sizes) + MIB
    sites = [
        _site(os.path.join(here, "keep.py"), 10 + i, f"keep_{i}", size, total)
        for i, size in enumerate(sizes)
    ]
    sites.append(_site("(other)", 0, "3 smaller sites", MIB, total, kind="other", trace=[]))
    return sites


SOURCE = "memray high-water mark (aggregated)"
NOTE = "only the process with the highest peak is attributed"


def plain_measurement() -> mb.Measurement:
    """A real in-process measurement, no sites."""
    with mb.track("sited") as t:
        kept = bytearray(4 * MIB)
    del kept
    assert t.result is not None
    return t.result


def sited(m: mb.Measurement, **fields: Any) -> mb.Measurement:
    """``m`` read back with sites: peak and end sites, source and note unless given."""
    extra = {
        "peak_sites": peak_site_dicts(),
        "end_sites": end_site_dicts(),
        "where_source": SOURCE,
        "where_note": NOTE,
    }
    return mb.Measurement.from_dict(m.to_dict() | extra | fields)
