"""The pieces under the magics: the options before a statement, a compare cell's variants and
the names it needs, and functions of an interactive ``__main__`` shipped by value."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from IPython.core.error import UsageError

from membound._errors import TargetError
from membound.notebook.magics import parse_leading_options
from membound.notebook.variants import split_cell, used_names

KNOWN: dict[str, bool | None] = {"heap": None, "label": True, "interval": True}


@pytest.mark.parametrize(
    ("line", "options", "rest"),
    [
        ("x = [0] * 10", {}, "x = [0] * 10"),
        ("--heap x = -1", {"heap": None}, "x = -1"),
        (
            "--heap=memray  --label big  y = f(--z)",
            {"heap": "memray", "label": "big"},
            "y = f(--z)",
        ),
        ("--label=a -- --heap", {"label": "a"}, "--heap"),
        ("  --interval 0.5", {"interval": "0.5"}, ""),
    ],
)
def test_only_leading_options_are_options(line: str, options: dict[str, str], rest: str) -> None:
    assert (options, rest) == parse_leading_options(line, KNOWN)


@pytest.mark.parametrize(
    ("line", "message"),
    [("--heep x", "unknown option --heep"), ("--label", "--label needs a value")],
)
def test_bad_options_are_one_line(line: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_leading_options(line, KNOWN)


def test_a_cell_splits_into_setup_and_named_variants() -> None:
    cell = "rows = range(10)\n# --- list\nt = sum([r for r in rows])\n#--- gen ---\nt = sum(rows)\n"
    setup, variants = split_cell(cell)
    assert "rows = range(10)" == setup
    assert [("list", "t = sum([r for r in rows])", 3), ("gen", "t = sum(rows)", 5)] == [
        (v.name, v.code.strip(), v.first_line) for v in variants
    ]


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("x = 1\n", "the cell has no variants"),
        ("# --- a\nx = 1\n# --- a\nx = 2\n", "two variants are named 'a'"),
        ("# --- a\n# only a comment\n# --- b\nx = 2\n", "variant 'a' has no code"),
        ("# --- a\nx = 1\n# --- b\nx = (\n", r"variant 'b' does not parse \(cell line 4\)"),
    ],
)
def test_bad_cells_are_one_line(cell: str, message: str) -> None:
    with pytest.raises(TargetError, match=message):
        split_cell(cell)


def test_names_the_cell_needs_from_the_notebook() -> None:
    setup = "import math\nlimit = 10"
    variant = "def inner(k):\n    return helper(k) + limit\nresult = [inner(i) for i in ROWS]"
    assert {"helper", "ROWS"} == used_names(setup, variant)


def test_a_function_of_an_interactive_main_is_measured_in_a_fresh_process_by_value() -> None:
    # `python -c` has an interactive __main__ (no file), like a notebook's kernel
    code = textwrap.dedent(
        """
        import os, membound as mb
        SIZE = 30 * 2**20
        def build():
            return os.getpid(), len(bytearray(SIZE))
        m = mb.measure(build)
        print(m.outcome, m.rss_peak_delta > 25 * 2**20)
        # four sizes over 64x: three over 16x left O(n) and O(n log n) a hair apart, and a
        # loaded box read "undecided" once
        sizes = [1000, 4000, 16000, 64000]
        c = mb.complexity(lambda n: bytearray(n * 1000), sizes=sizes, repeat=1)
        print(c.big_o)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert 0 == done.returncode, done.stderr
    assert ["ok True", "O(n)"] == done.stdout.split("\n")[:2]
