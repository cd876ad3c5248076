"""Interpreters for the tests of traced commands: another CPython without memray, and a
wrapper script in front of one (as pyenv's shim is)."""

from __future__ import annotations

import glob
import os
import sys
from pathlib import Path

from membound.measure.interpreter import probe


def _without_memray(candidates: list[str]) -> str | None:
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK) and not probe(candidate).has_memray:
            return candidate
    return None


def other_version_without_memray() -> str:
    """A CPython of another minor version, without memray (pyenv's builds the matrix uses)."""
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    here = f"{sys.version_info[0]}.{sys.version_info[1]}."
    found = _without_memray(
        [
            p
            for p in sorted(glob.glob(os.path.join(root, "versions", "3.*", "bin", "python3")))
            if f"/versions/{here}" not in p
        ]
    )
    assert found, "this machine has other CPythons (pyenv, as `make test-matrix` needs)"
    return found


def wrapper(folder: Path, target: str) -> Path:
    """A ``python3`` in ``folder`` that, as pyenv's shim does, runs a helper first and then
    starts ``target`` with a variable of its own set."""
    script = folder / "python3"
    script.write_text(
        "#!/bin/sh\n"
        "MB_WRAPPED=yes; export MB_WRAPPED\n"
        f'"{target}" -c "pass"\n'
        f'exec "{target}" "$@"\n'
    )
    script.chmod(0o755)
    return script
