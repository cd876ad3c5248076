"""The magics in a real Jupyter kernel: a notebook built here and executed by nbclient (an
ipykernel started from this interpreter), its outputs read back."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

CELLS = [
    "%load_ext membound",
    # 1: a cell measured in the kernel; the result is `_` and shows as HTML
    "%%membound --label build\nblocks = [bytes(1000) for _ in range(60_000)]",
    "first = _\nprint(json.dumps({'label': first.label, 'delta': first.rss_peak_delta,"
    " 'kind': type(first).__name__, 'verdict': first.growth.pattern}))",
    # 2: a statement with the heap traced
    "%membound --heap x = [dict(a=i) for i in range(20_000)]",
    "print(json.dumps({'heap_peak': _.heap_peak}))",
    # 3: functions of the notebook shipped by value to fresh processes
    "KEPT = []\n"
    "def build(n):\n    return [bytes(100) for _ in range(n)]\n"
    "def leaky():\n    KEPT.append(bytearray(2000))\n"
    "def clean():\n    return sum(range(100))",
    "%membound_scale build --sizes 20000,40000,80000,160000 --repeat 1",
    "print(json.dumps({'big_o': _.big_o, 'kind': type(_).__name__}))",
    "%membound_leaks leaky --iterations 300",
    "print(json.dumps({'verdict': _.verdict}))",
    "%membound_leaks clean --iterations 300",
    "print(json.dumps({'verdict': _.verdict, 'kept_in_kernel': len(KEPT)}))",
    # 4: variants of one cell, each in a fresh process, reading a notebook name
    "ROWS = 200_000",
    "%%membound_compare --repeat 1\n"
    "# --- list\n"
    "total = len([str(i) for i in range(ROWS)])\n"
    "# --- generator\n"
    "total = sum(1 for i in range(ROWS) if str(i))",
    "print(json.dumps({s.name: s.rss_peak_delta.median for s in _.rows}))",
    # 5: what a fresh process cannot get, and failures there
    "import functools, threading\n"
    "@functools.lru_cache(maxsize=300)\n"
    "def cached(i):\n    return bytes(100)\n"
    "def uses_cached(n):\n    return [cached(i % 300) for i in range(n)]\n"
    "LOCK = threading.Lock()\n"
    "def uses_lock():\n    with LOCK:\n        return 1\n"
    "def needs_an_argument(x):\n    return x",
    "%membound_scale uses_cached --sizes 10000,20000,40000 --repeat 1",
    "print(json.dumps({'kind': type(_).__name__}))",
    "%membound_leaks uses_lock",
    "%membound_leaks needs_an_argument",
    "%membound x = (",
    # 7: the lines that held the cell's peak (21-23)
    "def load_rows(n):\n    return [str(i) * 20 for i in range(n)]",
    "%%membound --where\nrows = load_rows(300_000)",
    "w = _\ntop = w.peak_sites[0]\n"
    "print(json.dumps({'function': top.function, 'line': top.line, 'share': top.share,"
    " 'caller_line': top.caller.rsplit(':', 1)[1] if top.caller else None,"
    " 'same_cell_as_def': top.file == load_rows.__code__.co_filename}))",
    # 6: bad input is one line
    "%membound_scale nothing_here --sizes 1,2,3",
]


def _run(tmp_path: Path) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import json")] + [
        nbformat.v4.new_code_cell(source) for source in CELLS
    ]
    client = NotebookClient(
        nb,
        timeout=240,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    return nb


def _printed(cell: Any) -> dict[str, Any]:
    text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
    line = [ln for ln in text.splitlines() if ln.startswith("{")][-1]
    return json.loads(line)  # type: ignore[no-any-return]


def _html(cell: Any) -> str:
    return "".join(
        o.get("data", {}).get("text/html", "")
        for o in cell.outputs
        if o.output_type in ("execute_result", "display_data")
    )


@pytest.mark.slow
def test_magics_in_a_real_kernel(tmp_path: Path) -> None:
    nb = _run(tmp_path)
    cells = nb.cells[1:]  # after "import json"
    errors = [
        (i, o.get("ename"), o.get("evalue"))
        for i, c in enumerate(cells)
        for o in c.outputs
        if o.output_type == "error"
    ]
    assert [] == errors  # no cell raised

    def stderr_of(cell: Any) -> str:
        return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")

    # an lru_cache'd notebook function travels by value (rebuilt around the function it wraps)
    assert {"kind": "Complexity"} == _printed(cells[17])
    # an unpicklable global is named in one line, with the magic's own option as the way out
    lock = stderr_of(cells[18])
    assert "UsageError: uses_lock cannot be shipped to a fresh interpreter" in lock, lock
    assert "_thread.lock" in lock
    assert "add --in-kernel" in lock
    assert "Traceback" not in lock
    # a failure in the fresh process shows that process's traceback, then one line
    failed = stderr_of(cells[19])
    assert "Traceback" in failed
    assert "TypeError" in failed
    assert failed.rstrip().splitlines()[-1].startswith("UsageError: ")
    # a statement that does not parse is one line
    syntax = stderr_of(cells[20])
    assert 1 == len(syntax.strip().splitlines()), syntax
    assert syntax.startswith("UsageError: SyntaxError")
    # bad input is one line: IPython prints a UsageError without a traceback
    last = "".join(o.get("text", "") for o in cells[-1].outputs if o.output_type == "stream")
    assert "UsageError: 'nothing_here' is not defined in the notebook" in last
    assert "Traceback" not in last
    assert 1 == len(last.strip().splitlines())

    build = _printed(cells[2])
    assert "Measurement" == build["kind"]
    assert "build" == build["label"]
    assert build["delta"] > 40 * 2**20  # 60,000 × 1 kB blocks kept by the cell
    html = _html(cells[1])
    assert "<table" in html
    assert "build" in html
    assert "<img" in html  # matplotlib is installed here: the chart is inline

    assert _printed(cells[4])["heap_peak"] > 2 * 2**20

    scale = _printed(cells[7])
    assert {"big_o": "O(n)", "kind": "Complexity"} == scale
    assert "O(n)" in _html(cells[6])
    assert "leak" == _printed(cells[9])["verdict"]
    clean = _printed(cells[11])
    assert "no leak" == clean["verdict"]
    assert 0 == clean["kept_in_kernel"]  # the hunt ran in a fresh process, not here
    assert "leak" in _html(cells[8])

    where = _printed(cells[23])
    assert {"function": "load_rows", "line": 2, "caller_line": "1", "same_cell_as_def": True} == {
        k: v for k, v in where.items() if k != "share"
    }
    assert where["share"] > 0.8
    assert "Where the memory was at the peak" in _html(cells[22])
    assert "mb-icicle" in _html(cells[22])

    peaks = _printed(cells[14])
    assert ["list", "generator"] == list(peaks)
    assert peaks["list"] > 8 * 2**20 > 4 * peaks["generator"], peaks
    assert "generator" in _html(cells[13])


POLISH = [
    "%load_ext membound",
    '%membound --label "two words" x = [0] * 1000',
    "print(json.dumps({'label': _.label}))",
    "KEPT = []\n"
    "def leaky():\n    KEPT.append(bytearray(2000))\n"
    "def build(n):\n    return [0] * n\n"
    "def boom():\n    raise ValueError('mine')",
    "%membound_leaks leaky --iterations 300",
    "print(json.dumps({'holder': _.holders[0].path if _.holders else None,"
    " 'explanation': _.explanation}))",
    "%membound_scale build --sizez 1000,2000,3000",
    "%%membound\nboom()",
    "%%membound_compare --repeat 2\n"
    "# --- quiet\n"
    "x = 1\n"
    "# --- talks\n"
    "print('hello from talks')\n"
    "# --- fails\n"
    "raise KeyError('inner')",
    "%%membound_compare --repeat 2\n# --- one\nx = 1\n# --- two\ny = 2",
]


@pytest.mark.slow
def test_what_a_notebook_user_reads(tmp_path: Path) -> None:
    """Quoted labels, a notebook global named as a leak's holder, a mistyped option named,
    tracebacks that start at the user's code, and what a variant printed."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import json")] + [
        nbformat.v4.new_code_cell(source) for source in POLISH
    ]
    NotebookClient(nb, timeout=240, kernel_name="python3", allow_errors=True).execute()
    cells = nb.cells[1:]

    def streams(cell: Any) -> str:
        return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")

    def traceback_of(cell: Any) -> str:
        return "\n".join(
            "\n".join(o.get("traceback", [])) for o in cell.outputs if o.output_type == "error"
        )

    assert _printed(cells[2]) == {"label": "two words"}

    leak = _printed(cells[5])
    assert leak["holder"] == "globals of leaky() → .KEPT", leak
    assert "kept by `KEPT`" in leak["explanation"]
    assert "no module reaches" not in leak["explanation"]

    mistyped = streams(cells[6])
    assert "unknown option --sizez; did you mean --sizes?" in mistyped, mistyped
    assert 1 == len(mistyped.strip().splitlines())

    boom = traceback_of(cells[7])
    assert "ValueError" in boom
    assert "boom()" in boom
    for own in ("magics.py", "where_capture.py", "track.py", "padded"):
        assert own not in boom, boom

    compared = streams(cells[8])
    assert "--- talks printed (first run):\nhello from talks" in compared, compared
    assert compared.count("hello from talks") == 1  # its second run printed nowhere
    assert "quiet printed" not in compared
    assert "KeyError: 'inner'" in compared
    for own in ("isolated_call.py", "_membound_variant", "exec(_membound_code"):
        assert own not in compared, compared

    def shown(cell: Any) -> str:  # displays, updated in place by their id
        return "".join(
            o.get("data", {}).get("text/plain", "")
            for o in cell.outputs
            if o.output_type == "display_data"
        )

    # Live progress: one line per magic, refreshed in place, left saying what was done.
    assert re.fullmatch(r"membound_compare: 4 runs done in [0-9.]+ s", shown(cells[9])), shown(
        cells[9]
    )
    assert re.fullmatch(r"membound_leaks: \d+ rounds done in [0-9.]+ s", shown(cells[4]))
