"""``[tool.membound.lint]`` in pyproject.toml, and rule selection with ruff's semantics.

Selection follows ruff: a selector is a code prefix (``MB``, ``MB2``, ``MB201``); for each rule the
longest matching prefix decides, and on a tie ``ignore`` wins. So ``select = ["MB201"]`` with
``ignore = ["MB2"]`` keeps MB201, and ``select = ["MB"]`` with ``ignore = ["MB3"]`` drops MB3xx.
"""

from __future__ import annotations

import fnmatch
import importlib
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = [
    "ConfigError",
    "LintConfig",
    "find_config",
    "load_config",
    "normalise_selectors",
    "resolve_selection",
]

_KEYS = ("select", "ignore", "per-file-ignores", "extend-streaming-calls")


class ConfigError(ValueError):
    """The configuration or a command-line selector is invalid (the CLI exits with 2).

    The lint package never imports the rest of membound, so this is its own error type. The CLI
    turns an error in a configuration file into one line with a hint, and a bad ``--select`` or
    ``--ignore`` into a usage error.
    """


@dataclass(frozen=True)
class LintConfig:
    """Settings of one lint run.

    Attributes are the pyproject keys with dashes turned into underscores.
    """

    select: tuple[str, ...] = ("MB",)
    """Code prefixes to run (default: every rule)."""
    ignore: tuple[str, ...] = ()
    """Code prefixes not to run."""
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(glob, prefixes) pairs: rules not to run on files matching the glob."""
    extend_streaming_calls: tuple[str, ...] = ()
    """Names (bare or qualified) of project helpers that stream, for MB201."""
    root: Path = field(default_factory=Path.cwd)
    """Directory that per-file-ignores globs are relative to (the config file's)."""
    source: Path | None = None
    """The pyproject.toml the settings came from, if any."""

    def codes_for(self, filename: str, all_codes: Iterable[str]) -> frozenset[str]:
        """The rule codes that run on ``filename``.

        Args:
            filename: The path as given or found.
            all_codes: Every known rule code.

        Returns:
            The selected codes minus the per-file ignores that match ``filename``.
        """
        codes = resolve_selection(self.select, self.ignore, all_codes)
        if not self.per_file_ignores:
            return codes
        path = Path(filename)
        try:
            rel = PurePosixPath(path.resolve().relative_to(self.root.resolve())).as_posix()
        except ValueError:
            rel = PurePosixPath(path).as_posix()
        for pattern, prefixes in self.per_file_ignores:
            if fnmatch.fnmatchcase(rel, pattern) or fnmatch.fnmatchcase(path.name, pattern):
                codes = frozenset(c for c in codes if not any(c.startswith(p) for p in prefixes))
        return codes


def normalise_selectors(
    selectors: Iterable[str], all_codes: Sequence[str], where: str
) -> tuple[str, ...]:
    """Upper-case selectors, map ``ALL`` to ``MB`` and reject ones that match no rule.

    Args:
        selectors: Code prefixes as written by the user.
        all_codes: Every known rule code.
        where: Where they came from, for the error message.

    Raises:
        ConfigError: A selector matches no rule.
    """
    out: list[str] = []
    for raw in selectors:
        selector = raw.strip().upper()
        if not selector:
            continue
        if selector == "ALL":
            selector = "MB"
        if not any(code.startswith(selector) for code in all_codes):
            known = ", ".join(all_codes)
            raise ConfigError(f"{where}: unknown rule selector {raw!r} (known rules: {known})")
        out.append(selector)
    return tuple(out)


def resolve_selection(
    select: Iterable[str], ignore: Iterable[str], all_codes: Iterable[str]
) -> frozenset[str]:
    """Apply ruff-style selection: the longest matching prefix wins, ignore wins ties.

    Args:
        select: Prefixes to enable.
        ignore: Prefixes to disable.
        all_codes: Every known rule code.

    Returns:
        The codes that run.
    """
    chosen: set[str] = set()
    select = tuple(select)
    ignore = tuple(ignore)
    for code in all_codes:
        best_select = max((len(p) for p in select if code.startswith(p)), default=-1)
        best_ignore = max((len(p) for p in ignore if code.startswith(p)), default=-1)
        if best_select > best_ignore:
            chosen.add(code)
    return frozenset(chosen)


def _strings(value: object, key: str, source: Path) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{source}: [tool.membound.lint] {key} must be a list of strings")
    return tuple(value)


def _load_toml(path: Path) -> Mapping[str, Any]:
    """Parse ``path`` as TOML.

    Raises:
        ConfigError: The file cannot be read, is not UTF-8 or is not valid TOML; the message is one
            line that names the file and, for TOML, the parser's message (with line and column).
    """
    # tomllib is standard from 3.11; tomli is the same parser for 3.10. Imported by name so that
    # mypy (run for 3.10) does not need tomli's stubs on a 3.11+ interpreter.
    toml = importlib.import_module("tomllib" if sys.version_info >= (3, 11) else "tomli")
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 (invalid byte at offset {exc.start}); TOML files must be UTF-8"
        ) from None
    try:
        data: Mapping[str, Any] = toml.loads(text)
    except toml.TOMLDecodeError as exc:
        message = " ".join(str(exc).split())
        raise ConfigError(f"{path}: invalid TOML: {message}") from None
    return data


def _mentions_membound(path: Path) -> bool:
    # A file that does not contain the word cannot hold [tool.membound.lint], however broken.
    try:
        return b"membound" in path.read_bytes()
    except OSError:
        return False


def _section(data: Mapping[str, Any], path: Path) -> Mapping[str, Any] | None:
    """``[tool.membound.lint]`` of a parsed pyproject, or None when there is none.

    Raises:
        ConfigError: ``tool.membound`` or ``tool.membound.lint`` is there but is not a table.
    """
    tool = data.get("tool")
    if not isinstance(tool, dict) or "membound" not in tool:
        return None
    membound = tool["membound"]
    if not isinstance(membound, dict):
        raise ConfigError(f"{path}: [tool.membound] must be a table, not {type(membound).__name__}")
    if "lint" not in membound:
        return None
    section = membound["lint"]
    if not isinstance(section, dict):
        raise ConfigError(
            f"{path}: [tool.membound.lint] must be a table, not {type(section).__name__}"
        )
    return section


def load_config(path: Path, all_codes: Sequence[str]) -> LintConfig:
    """Read ``[tool.membound.lint]`` from a pyproject.toml.

    Args:
        path: The pyproject.toml to read.
        all_codes: Every known rule code (to reject unknown selectors early).

    Returns:
        The settings; defaults when the file has no such section.

    Raises:
        ConfigError: The file cannot be read or is not TOML, or the section is not a table, has an
            unknown key or a value of the wrong type.
    """
    section = _section(_load_toml(path), path)
    root = path.resolve().parent
    if section is None:
        return LintConfig(root=root, source=path)
    unknown = sorted(set(section) - set(_KEYS))
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) in [tool.membound.lint]: {', '.join(unknown)} "
            f"(known: {', '.join(_KEYS)})"
        )
    where = f"{path} [tool.membound.lint]"
    select = normalise_selectors(
        _strings(section.get("select", ["MB"]), "select", path), all_codes, where
    )
    ignore = normalise_selectors(
        _strings(section.get("ignore", []), "ignore", path), all_codes, where
    )
    pfi_raw = section.get("per-file-ignores", {})
    if not isinstance(pfi_raw, dict):
        raise ConfigError(f"{path}: [tool.membound.lint] per-file-ignores must be a table")
    per_file = tuple(
        (
            pattern,
            normalise_selectors(
                _strings(codes, f"per-file-ignores.{pattern}", path), all_codes, where
            ),
        )
        for pattern, codes in pfi_raw.items()
    )
    streaming = _strings(section.get("extend-streaming-calls", []), "extend-streaming-calls", path)
    return LintConfig(
        select=select,
        ignore=ignore,
        per_file_ignores=per_file,
        extend_streaming_calls=streaming,
        root=root,
        source=path,
    )


def find_config(paths: Sequence[str]) -> Path | None:
    """Find the pyproject.toml with a ``[tool.membound.lint]`` section that governs ``paths``.

    Like ruff, search from the inputs' common directory (the current directory if none) upward
    and take the first pyproject.toml that has the section. A pyproject.toml that cannot be read or
    parsed stops the search with an error when it mentions membound (it may hold the settings the
    user means); one that does not is another tool's file and is skipped.

    Args:
        paths: The paths given on the command line.

    Returns:
        The file, or None when there is none.

    Raises:
        ConfigError: A pyproject.toml on the way that mentions membound is not valid TOML, or its
            ``tool.membound`` or ``tool.membound.lint`` is not a table.
    """
    dirs = []
    for raw in paths or ["."]:
        path = Path(raw).resolve()
        dirs.append(path if path.is_dir() else path.parent)
    try:
        start = Path(_common(dirs))
    except ValueError:
        start = Path.cwd()
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if not candidate.is_file():
            continue
        try:
            data = _load_toml(candidate)
        except ConfigError:
            if _mentions_membound(candidate):
                raise
            continue  # an unrelated broken pyproject must not stop the search
        if _section(data, candidate) is not None:
            return candidate
    return None


def _common(dirs: Sequence[Path]) -> str:
    import os.path

    return os.path.commonpath([str(d) for d in dirs])
