"""Run the rules over files: discovery, decoding, parsing, ``noqa`` and bad-file handling.

A file that cannot be checked (unreadable, binary, not UTF-8, a syntax error, or even a crash in
a rule) becomes one ``MB000`` message, never a traceback: a linter in CI must not fail on the one
odd file in a tree.
"""

from __future__ import annotations

import ast
import io
import os
import re
import tokenize
import warnings
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from membound.lint.config import LintConfig
from membound.lint.context import ModuleContext
from membound.lint.model import FileError, Finding, LintResult
from membound.lint.rules import RULES

__all__ = ["EXCLUDED_DIRS", "discover", "lint_file", "lint_paths", "lint_source"]

#: Directory names never descended into (ruff's default excludes, roughly).
EXCLUDED_DIRS = frozenset(
    {
        ".bzr",
        ".direnv",
        ".eggs",
        ".git",
        ".hg",
        ".mypy_cache",
        ".nox",
        ".pytest_cache",
        ".ruff_cache",
        ".svn",
        ".tox",
        ".venv",
        "__pycache__",
        "__pypackages__",
        "_build",
        "build",
        "dist",
        "node_modules",
        "site-packages",
        "venv",
    }
)
ALL_CODES = tuple(rule.code for rule in RULES)

# A bare noqa comment, or one followed by a colon and codes (flake8/ruff syntax).
_NOQA_RE = re.compile(
    r"#\s*noqa(?::[\s]?(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?", re.IGNORECASE
)
# The file-level form, ``membound: noqa`` (optionally with codes) alone on a line.
_FILE_NOQA_RE = re.compile(
    r"^\s*#\s*membound:\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_CODE_RE = re.compile(r"[A-Z]+[0-9]+", re.IGNORECASE)


def _codes(text: str | None) -> frozenset[str] | None:
    """None means every code (a bare ``noqa``)."""
    if not text:
        return None
    return frozenset(c.upper() for c in _CODE_RE.findall(text))


def _line_noqa(line: str) -> frozenset[str] | bool | None:
    """False when the line has no noqa; None for a bare noqa; else the codes it names."""
    if "noqa" not in line.lower():
        return False
    match = _NOQA_RE.search(line)
    if match is None:
        return False
    return _codes(match.group("codes"))


def _suppressed(finding: Finding, lines: Sequence[str]) -> bool:
    if not 0 < finding.row <= len(lines):
        return False
    noqa = _line_noqa(lines[finding.row - 1])
    if noqa is False:
        return False
    return noqa is None or (isinstance(noqa, frozenset) and finding.code in noqa)


def _decode(data: bytes) -> str:
    """Decode source bytes as Python does (BOM, PEP 263 cookie), UTF-8 by default.

    Raises:
        ValueError: Binary data, or bytes that are not valid in the declared encoding.
    """
    if b"\0" in data:
        raise ValueError("binary file (contains NUL bytes)")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        # detect_encoding also rejects undeclared non-UTF-8 bytes; say which problem it is.
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as bad:
            raise ValueError(f"not valid UTF-8 text: {bad}") from None
        raise ValueError(f"bad encoding declaration: {exc.msg}") from None
    try:
        return data.decode("utf-8-sig" if encoding == "utf-8-sig" else encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise ValueError(f"not valid {encoding} text: {exc}") from None


def lint_source(
    source: str,
    filename: str = "<string>",
    *,
    select: Iterable[str] | None = None,
    streaming_calls: Iterable[str] = (),
) -> list[Finding]:
    """Lint Python source text.

    Args:
        source: The module's text.
        filename: The name reported in findings.
        select: Rule codes to run (default: all).
        streaming_calls: Extra names of streaming helpers (``extend-streaming-calls``).

    Returns:
        The findings after ``noqa``, sorted by position.

    Raises:
        SyntaxError: The source does not parse.
        ValueError: The source contains NUL bytes.
    """
    selected = frozenset(ALL_CODES if select is None else select)
    lines = source.splitlines()
    file_noqa = _FILE_NOQA_RE.search(source) if "membound" in source else None
    if file_noqa is not None:
        codes = _codes(file_noqa.group("codes"))
        if codes is None:
            return []
        selected -= codes
    with warnings.catch_warnings():
        # Invalid escape sequences in the linted code are its business, not ours.
        warnings.simplefilter("ignore")
        tree = ast.parse(source, filename=filename)
    ctx = ModuleContext(
        tree,
        filename,
        lines,
        selected=selected,
        streaming_calls=frozenset(streaming_calls),
    )
    found: set[Finding] = set()
    for rule in RULES:
        if rule.code in selected:
            found.update(rule.check(ctx))
    return sorted(f for f in found if not _suppressed(f, lines))


def lint_file(
    path: str, config: LintConfig | None = None
) -> tuple[list[Finding], FileError | None, int]:
    """Lint one file.

    Args:
        path: The file to read.
        config: Settings (default: every rule).

    Returns:
        ``(findings, error, lines)``: the error is set (and findings empty) when the file could
        not be checked; ``lines`` is the number of lines checked.
    """
    config = config or LintConfig()
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return [], FileError(path, exc.strerror or str(exc)), 0
    try:
        source = _decode(data)
    except ValueError as exc:
        return [], FileError(path, str(exc)), 0
    try:
        findings = lint_source(
            source,
            path,
            select=config.codes_for(path, ALL_CODES),
            streaming_calls=config.extend_streaming_calls,
        )
    except SyntaxError as exc:
        return [], FileError(path, f"syntax error: {exc.msg}", exc.lineno or 1, exc.offset or 1), 0
    except (ValueError, RecursionError, MemoryError) as exc:
        return [], FileError(path, f"{type(exc).__name__}: {exc}"), 0
    except Exception as exc:  # a bug in a rule must cost one file, not the whole run
        return [], FileError(path, f"internal error, please report: {type(exc).__name__}: {exc}"), 0
    partial_line = 1 if source and not source.endswith("\n") else 0
    return findings, None, source.count("\n") + partial_line


def discover(paths: Sequence[str]) -> Iterator[str]:
    """Expand directories into their ``*.py`` files; give files (any name) as they are.

    Missing paths are yielded too, so that they are reported as ``MB000`` like any other
    unreadable input. Excluded directories (``.git``, ``.venv``, ``__pycache__``...) and hidden
    ones (names starting with a dot) are skipped below the paths given.
    """
    for raw in paths:
        if not os.path.isdir(raw):
            yield raw
            continue
        for root, dirs, files in os.walk(raw):
            # Hidden folders (caches, tool state) are skipped too; name one to lint it.
            dirs[:] = sorted(
                d
                for d in dirs
                if d not in EXCLUDED_DIRS and not d.endswith(".egg-info") and not d.startswith(".")
            )
            for name in sorted(files):
                if name.endswith((".py", ".pyi")):
                    yield os.path.join(root, name)


def _lint_many(
    args: tuple[list[str], LintConfig],
) -> list[tuple[list[Finding], FileError | None, int]]:
    paths, config = args
    return [lint_file(p, config) for p in paths]


def lint_paths(
    paths: Sequence[str], config: LintConfig | None = None, *, jobs: int = 1
) -> LintResult:
    """Lint files and directories.

    Args:
        paths: Files and directories (directories are searched for ``*.py``).
        config: Settings (default: every rule).
        jobs: Worker processes; 1 lints in this process. Parsing is CPU-bound and the GIL
            serialises it, so processes (not threads) are what scale.

    Returns:
        Findings, per-file errors and counts.
    """
    config = config or LintConfig()
    files = list(dict.fromkeys(discover(paths)))
    if jobs > 1 and len(files) > 50:
        chunks = [files[i :: jobs * 4] for i in range(jobs * 4)]
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            results = [
                r for part in pool.map(_lint_many, [(c, config) for c in chunks]) for r in part
            ]
    else:
        results = _lint_many((files, config))
    findings: list[Finding] = []
    errors: list[FileError] = []
    checked = 0
    lines = 0
    for file_findings, error, count in results:
        if error is not None:
            errors.append(error)
            continue
        checked += 1
        lines += count
        findings.extend(file_findings)
    errors.sort(key=lambda e: e.filename)
    return LintResult(
        findings=tuple(sorted(findings)),
        errors=tuple(errors),
        files_checked=checked,
        lines_checked=lines,
    )
