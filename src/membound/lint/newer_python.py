"""Valid Python for a newer interpreter than membound's own is linted too.

membound's rules walk CPython's own syntax tree, so a file written for a newer Python than the
one running membound (``type`` aliases and generic classes of 3.12, say, under 3.11) does not
parse here. ruff has a parser of its own and knows every grammar; pylint and mypy use the
running interpreter's and give up. membound hands such files to the newest CPython found on the
machine — ``python3.N`` on ``PATH`` or in ``/usr/bin`` and ``/usr/local/bin``, pyenv's versions
(``$PYENV_ROOT`` or ``~/.pyenv``) — which lints them with the same rules and settings, all in
one subprocess per run (``lint/_newer_child.py``; about 0.1 s, measured in docs/numbers.md).
Only a file that this newest one refuses too is ``MB000``, with both versions named.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence

from membound.lint.config import LintConfig
from membound.lint.findings import Edit, FileError, Finding, Fix

__all__ = ["SYSTEM_BIN_DIRS", "newer_pythons", "relint_with_newer"]

_CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_newer_child.py")
#: Folders searched for ``python3.N`` besides pyenv's versions and ``PATH``.
SYSTEM_BIN_DIRS: tuple[str, ...] = ("/usr/bin", "/usr/local/bin")
_VERSION = re.compile(r"python(3)\.(\d+)$|/(3)\.(\d+)\.\d+[^/]*/bin/python3?$")
Result = tuple[list[Finding], FileError | None, int]


@functools.cache
def newer_pythons() -> tuple[tuple[tuple[int, int], str], ...]:
    """CPython interpreters newer than this one on the machine, newest first:
    ``((major, minor), path)``."""
    here = sys.version_info[:2]
    found: dict[tuple[int, int], str] = {}
    names = [f"python3.{minor}" for minor in range(here[1] + 1, here[1] + 10)]
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    places = sorted(glob.glob(os.path.join(root, "versions", "3.*", "bin", "python3")))
    places += [f"{d}/{name}" for d in SYSTEM_BIN_DIRS for name in names]
    places += [p for p in (shutil.which(name) for name in names) if p]
    for place in places:
        # pyenv's shims run only the versions made active: its versions folder is used instead
        if not place or "/shims/" in place or not os.access(place, os.X_OK):
            continue
        match = _VERSION.search(place)
        if match is None:
            continue
        minor = int(match.group(2) or match.group(4))
        if (3, minor) > here:
            found.setdefault((3, minor), place)
    return tuple(sorted(found.items(), reverse=True))


def _finding(data: dict[str, object]) -> Finding:
    fix = data.get("fix")
    made = None
    if isinstance(fix, dict):
        edits = tuple(Edit(**e) for e in fix["edits"])
        made = Fix(fix["message"], edits, fix["applicability"])
    fields = {k: v for k, v in data.items() if k != "fix"}
    return Finding(**fields, fix=made)  # type: ignore[arg-type]


def _job(paths: Sequence[str], config: LintConfig, all_codes: Sequence[str]) -> str:
    files = []
    for path in paths:
        codes = config.codes_for(path, all_codes)
        files.append(
            {"path": path, "codes": sorted(codes), "preview": sorted(config.preview_for(codes))}
        )
    evidence = None
    if config.evidence is not None:
        e = config.evidence
        evidence = {
            "tables": dict(e.sizes.tables),
            "models": dict(e.sizes.models),
            "source": e.sizes.source,
            "capped": sorted(e.sizes.capped),
            "by_path": e.tables.by_path,
            "modules": e.tables.modules,
            "shapes": {
                path: [
                    [sorted(key) for key in shape.unique],
                    shape.plain,
                    shape.identified,
                    shape.fields,
                    sorted(shape.foreign_keys),
                ]
                for path, shape in e.tables.shapes.items()
            },
            "small_table_rows": e.small_table_rows,
            "batch": e.calls.batch if e.calls is not None else {},
            "batch_modules": e.calls.modules if e.calls is not None else {},
        }
    settings = {
        "streaming_calls": list(config.extend_streaming_calls),
        "small_models": list(config.small_models),
        "large_models": list(config.large_models),
        "max_file_size": config.max_file_size,
    }
    return json.dumps({"files": files, "settings": settings, "evidence": evidence})


def relint_with_newer(
    errors: Sequence[FileError], config: LintConfig, all_codes: Sequence[str]
) -> dict[str, Result]:
    """Lint again, under the newest Python found, the files of ``errors`` that did not parse
    here: path → (findings, error, lines). Files it refuses too stay errors, with both
    versions named; without a newer Python, they say so."""
    syntax = [e for e in errors if e.reason.startswith("syntax error")]
    if not syntax:
        return {}
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    pythons = newer_pythons()
    if not pythons:
        return {
            e.filename: (
                [],
                dataclasses.replace(
                    e, reason=f"{e.reason} (Python {here}; no newer Python found here to try)"
                ),
                0,
            )
            for e in syntax
        }
    (major, minor), python = pythons[0]
    try:
        done = subprocess.run(
            [python, "-I", "-S", _CHILD],
            input=_job([e.filename for e in syntax], config, all_codes),
            capture_output=True,
            text=True,
            timeout=60 + len(syntax),
            check=True,
        )
        answers = json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return {}  # the errors stand as they are
    results: dict[str, Result] = {}
    for error, answer in zip(syntax, answers, strict=False):
        if "error" in answer:
            reason, row, column = answer["error"]
            both = f"{reason} (Python {here} and {major}.{minor})"
            results[error.filename] = ([], FileError(error.filename, both, row, column), 0)
        else:
            found = [_finding(f) for f in answer["findings"]]
            results[error.filename] = (found, None, int(answer["lines"]))
    return results
