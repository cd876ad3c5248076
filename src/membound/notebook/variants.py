"""A ``%%membound_compare`` cell as scenarios that run in fresh processes.

The cell holds optional setup lines, then variants, each opened by a line ``# --- name``::

    rows = list(range(1_000_000))
    # --- list
    total = sum([r * 2 for r in rows])
    # --- generator
    total = sum(r * 2 for r in rows)

The cell becomes a generated scenarios file: the notebook names the cell uses (loaded by value,
since a fresh process cannot import the notebook's ``__main__``) and the setup run when the file
is imported, before the baseline, as ``timeit`` runs its setup; each variant is a function that
runs its code with the file's globals, so it reads and assigns names as a cell would.

Names are shipped with cloudpickle (functions and classes defined in the notebook by value,
importable modules and objects by reference; ``measure/isolate/by_value.py``): the well-kept
library for exactly this, which Dask and Ray use to ship notebook code to workers.
"""

from __future__ import annotations

import ast
import builtins
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from membound._errors import TargetError
from membound.measure.by_value import dumps_by_value

__all__ = ["Variant", "ship_names", "split_cell", "used_names", "write_scenarios"]

#: ``# --- name`` at the start of a line (trailing dashes allowed: ``# --- name ---``).
_MARKER = re.compile(r"^#\s*-{3,}\s*(?P<name>.*?)\s*-*\s*$")

#: The notebook's own machinery: never shipped, and no cell means them as data.
_KERNEL_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit", "display"})


@dataclass(frozen=True)
class Variant:
    """One variant of a compare cell."""

    name: str
    """The name after ``# ---`` (``variant N`` when the line gives none)."""
    code: str
    """Its lines, as written."""
    first_line: int
    """Line number of its first code line in the cell (1-based), for error messages."""


def _check_syntax(code: str, what: str, first_line: int) -> None:
    try:
        ast.parse(code)
    except SyntaxError as exc:
        line = (exc.lineno or 1) + first_line - 1
        raise TargetError(
            f"{what} does not parse (cell line {line}): {exc.msg}",
            hint="fix the code, or check that each variant starts with a '# --- name' line",
        ) from None


def split_cell(cell: str) -> tuple[str, list[Variant]]:
    """The setup (lines before the first marker) and the variants of a compare cell.

    Raises:
        TargetError: no variant, two variants of one name, a variant without code, or code that
            does not parse.
    """
    setup: list[str] = []
    found: list[tuple[str, list[str], int]] = []
    for number, line in enumerate(cell.splitlines(), 1):
        marker = _MARKER.match(line.rstrip())
        if marker:
            name = marker.group("name") or f"variant {len(found) + 1}"
            found.append((name, [], number + 1))
        elif found:
            found[-1][1].append(line)
        else:
            setup.append(line)
    if not found:
        raise TargetError(
            "the cell has no variants",
            hint="open each variant with a line '# --- name'; lines before the first are setup",
        )
    names = [name for name, _, _ in found]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise TargetError(
            f"two variants are named {twice[0]!r}", hint="give each '# --- name' line its own name"
        )
    setup_code = "\n".join(setup)
    _check_syntax(setup_code, "the setup", 1)
    variants = []
    for name, lines, first in found:
        code = "\n".join(lines)
        if not code.strip() or all(not ln.strip() or ln.lstrip().startswith("#") for ln in lines):
            raise TargetError(f"variant {name!r} has no code", hint="put its code under its line")
        _check_syntax(code, f"variant {name!r}", first)
        variants.append(Variant(name, code, first))
    return setup_code, variants


def used_names(*sources: str) -> set[str]:
    """Names the code reads that it does not bind itself anywhere: what must come from the
    notebook. Builtins are left out."""
    read: set[str] = set()
    bound: set[str] = set()
    for source in sources:
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Name):
                (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                bound.add(node.name)
            elif isinstance(node, ast.Import | ast.ImportFrom):
                bound.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, ast.arg):
                bound.add(node.arg)
    return {n for n in read - bound if not hasattr(builtins, n) and n not in _KERNEL_NAMES}


def ship_names(names: set[str], namespace: Mapping[str, Any]) -> bytes:
    """The values of ``names`` found in ``namespace``, pickled by value as one dict
    (``measure/isolate/by_value.py``).

    Raises:
        TargetError: cloudpickle is missing, or a value cannot be shipped (named in the message).
    """
    values = {n: namespace[n] for n in sorted(names) if n in namespace}
    hint = "create it in the cell's setup lines instead, or add --in-kernel"
    for name, value in values.items():
        if not isinstance(value, types.ModuleType):  # modules go by reference: the child imports
            dumps_by_value(value, f"{name!r} ({type(value).__name__})", hint)
    return dumps_by_value(values, "the notebook's names", hint, check=False)


#: What a variant printed is shown up to this many characters.
OUTPUT_SHOWN = 10_000


def output_path(folder: Path, index: int) -> Path:
    """Where the first run of variant ``index`` leaves what it printed."""
    return folder / f"output-{index}.txt"


def variant_outputs(folder: Path, variants: list[Variant]) -> list[str]:
    """What each variant printed in its first run, as blocks to show (none for silent ones)."""
    blocks = []
    for i, variant in enumerate(variants):
        path = output_path(folder, i)
        if not path.is_file():
            continue
        with path.open(encoding="utf-8", errors="replace") as f:
            text = f.read(OUTPUT_SHOWN + 1)
        if text:
            cut = len(text) > OUTPUT_SHOWN
            body = text[:OUTPUT_SHOWN] + ("\n… (cut)" if cut else "")
            blocks.append(f"--- {variant.name} printed (first run):\n{body.rstrip()}")
    return blocks


def write_scenarios(
    folder: Path, setup: str, variants: list[Variant], shipped: bytes
) -> dict[str, str]:
    """Write the scenarios file for a compare cell into ``folder``; ``{name: target}``."""
    names_file = folder / "names.pickle"
    names_file.write_bytes(shipped)
    lines = [
        "import contextlib as _membound_contextlib",
        "import os as _membound_os",
        "import pickle as _membound_pickle",
        f"with open({str(names_file)!r}, 'rb') as _membound_file:",
        "    globals().update(_membound_pickle.load(_membound_file))",
        "del _membound_file, _membound_pickle",
        "",
        "def _membound_output(path):",
        "    # The first run of a variant keeps what it prints, for the notebook to show; the",
        "    # others print to nowhere. Opened at import: outside the measured call.",
        "    try:",
        "        return open(path, 'x', encoding='utf-8')",
        "    except FileExistsError:",
        "        return open(_membound_os.devnull, 'w', encoding='utf-8')",
        "",
        setup,
        "",
    ]
    for i, variant in enumerate(variants):
        # Compiled at import, outside the measured call; run with the file's globals, as a cell.
        out = str(output_path(folder, i))
        lines += [
            f"_membound_code_{i} = compile({variant.code!r}, {f'<variant {variant.name}>'!r}, "
            "'exec')",
            f"def _membound_variant_{i}():",
            f"    with _membound_output({out!r}) as _membound_out, \\",
            "            _membound_contextlib.redirect_stdout(_membound_out), \\",
            "            _membound_contextlib.redirect_stderr(_membound_out):",
            f"        exec(_membound_code_{i}, globals())",
            "",
        ]
    cell_file = folder / "cell.py"
    cell_file.write_text("\n".join(lines), encoding="utf-8")
    return {v.name: f"{cell_file}:_membound_variant_{i}" for i, v in enumerate(variants)}
