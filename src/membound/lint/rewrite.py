"""Rewriting files in place: ``membound lint --fix`` / ``--diff`` and ``--add-noqa``.

A file is written only when its text changed, through a temporary file in the same folder and
``os.replace`` (an interrupted run leaves the old file or the new one, never half of each), in the
encoding it was read with and with its permission bits.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

from membound.lint.config import LintConfig
from membound.lint.engine import discover, kept, lint_text, read_source, with_evidence
from membound.lint.findings import FileError, Finding
from membound.lint.fixing import add_noqa, apply_fixes

__all__ = ["FileChange", "RewriteResult", "rewrite_paths", "unified_diff"]


@dataclass(frozen=True)
class FileChange:
    """One file whose text a rewrite changes."""

    filename: str
    """The path as given or found."""
    before: str
    """The text before."""
    after: str
    """The text after."""
    count: int
    """Fixes applied, or lines given a ``noqa``."""


@dataclass(frozen=True)
class RewriteResult:
    """What a rewrite did, and the findings left afterwards."""

    changes: tuple[FileChange, ...]
    """Files changed (or that would change, without ``write``)."""
    remaining: tuple[Finding, ...]
    """Findings in the rewritten text (all of them for ``--diff``: nothing was written)."""
    errors: tuple[FileError, ...]
    """Files that could not be checked or written."""
    files_checked: int
    """Files read and checked."""


def unified_diff(change: FileChange) -> str:
    """The change as a unified diff, ``a/`` and ``b/`` prefixed like git's."""
    return "".join(
        difflib.unified_diff(
            change.before.splitlines(keepends=True),
            change.after.splitlines(keepends=True),
            fromfile=f"a/{change.filename}",
            tofile=f"b/{change.filename}",
        )
    )


def _write(path: str, text: str, encoding: str) -> None:
    data = text.encode(encoding)
    folder = os.path.dirname(path) or "."
    mode = os.stat(path).st_mode & 0o7777
    fd, temp = tempfile.mkstemp(dir=folder, prefix=".membound-", suffix=".py.tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def rewrite_paths(
    paths: Sequence[str],
    config: LintConfig,
    *,
    mode: str,
    unsafe: bool = False,
    write: bool = True,
) -> RewriteResult:
    """Fix (``mode="fix"``) or silence (``mode="noqa"``) the findings in ``paths``.

    Args:
        paths: Files and directories, as for ``lint_paths``.
        config: Settings of the run.
        mode: ``"fix"`` applies fixes; ``"noqa"`` adds ``# noqa: CODE`` for every finding.
        unsafe: With ``"fix"``, apply unsafe fixes too.
        write: Write the files (False: only compute the changes, for ``--diff``).

    Returns:
        The changes, the findings left and the files that could not be handled.
    """
    changes: list[FileChange] = []
    remaining: list[Finding] = []
    errors: list[FileError] = []
    checked = 0

    def cannot_list(exc: OSError) -> None:
        where = str(exc.filename) if exc.filename is not None else "?"
        errors.append(FileError(where, f"cannot list folder: {exc.strerror or exc}"))

    files = kept(list(dict.fromkeys(discover(paths, cannot_list))), paths, config)
    config = with_evidence(config, files, paths)
    for path in files:
        read = read_source(path, config)
        if isinstance(read, FileError):
            errors.append(read)
            continue
        before, encoding = read
        findings = lint_text(before, path, config)
        if isinstance(findings, FileError):
            errors.append(findings)
            continue
        checked += 1
        findings = [f for f in findings if not f.hint]  # a hint is not a finding to silence
        if mode == "noqa":
            after, count = add_noqa(before, findings)
            left: list[Finding] = []
        else:

            def lint(text: str, path: str = path) -> list[Finding]:
                found = lint_text(text, path, config)
                return [] if isinstance(found, FileError) else [f for f in found if not f.hint]

            after, applied = apply_fixes(before, lint, unsafe=unsafe, first=findings)
            count = len(applied)
            left = lint(after) if write and applied else findings
        if after != before:
            try:
                after.encode(encoding)
                if write:
                    _write(path, after, encoding)
            except (OSError, UnicodeError) as exc:
                errors.append(FileError(path, f"cannot write the rewritten file: {exc}"))
                remaining.extend(findings)
                continue
            changes.append(FileChange(path, before, after, count))
        remaining.extend(left)
    return RewriteResult(tuple(changes), tuple(sorted(remaining)), tuple(errors), checked)
