"""``[tool.membound.lint]`` in pyproject.toml, and rule selection with ruff's semantics.

Selection follows ruff: a selector is a code prefix (``MB``, ``MB2``, ``MB201``); for each rule the
longest matching prefix decides, and on a tie ``ignore`` wins. So ``select = ["MB201"]`` with
``ignore = ["MB2"]`` keeps MB201, and ``select = ["MB"]`` with ``ignore = ["MB3"]`` drops MB3xx.
Like ruff, an empty selector or one that matches no rule is an error, not a silent no-op; unlike
ruff, so is a selection that leaves no rule at all (``select = []``, or ``ignore`` of everything
selected), since a run that checks nothing would still say "All checks passed!".

Test code and migrations get their own defaults (``DEFAULT_PER_FILE_IGNORES``): no rule runs on
tests (fixture tables hold a few rows), and the caching rules do not run on migrations (a migration
runs once and exits). As in ruff, ``per-file-ignores`` replaces these defaults and
``extend-per-file-ignores`` adds to them.

Preview rules (``Rule.preview``) and preview variants of a rule are below the default set's
precision target on real code: they run only when selected by their full code
(``--select MB202``) or with ``preview = true``.

``small-models`` and ``large-models`` say what only the user knows: the models (class names,
bare or dotted) whose tables stay small (never reported) or grow without bound (reported even
when a filter on one owner's foreign key would otherwise count as a bound).

``max-file-size`` is a size as membound parses sizes everywhere (``"10MB"``, ``"1.5MiB"``,
``10_000_000``); files larger than that are reported as ``MB000`` and not read.
"""

from __future__ import annotations

import fnmatch
import functools
import importlib
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from membound._errors import SizeError
from membound._units import parse_size
from membound.lint.evidence import Evidence
from membound.lint.reading import Unreadable, read_limited
from membound.lint.sizes import DEFAULT_SMALL_TABLE_ROWS, TableSizes

__all__ = [
    "DEFAULT_MAX_FILE_SIZE",
    "DEFAULT_PER_FILE_IGNORES",
    "ConfigError",
    "LintConfig",
    "check_selection",
    "find_config",
    "load_config",
    "normalise_selectors",
    "parse_max_file_size",
    "resolve_selection",
]

_KEYS = (
    "select",
    "ignore",
    "preview",
    "per-file-ignores",
    "extend-per-file-ignores",
    "extend-streaming-calls",
    "small-models",
    "large-models",
    "max-file-size",
    "sizes",
    "small-table-rows",
    "exclude",
)

_TEST_FILES = (
    "test_*.py",
    "tests_*.py",  # Django's test runner finds ``test*.py``: ``tests_vector.py``
    "*_test.py",
    "conftest.py",
    "tests.py",  # a Django app's own test module (``app/tests.py``)
    "*/tests.py",
    "tests/*",
    "*/tests/*",
    "test/*",
    "*/test/*",
    "testing/*",
    "*/testing/*",
)
_MIGRATIONS = (
    "migrations/*",
    "*/migrations/*",
    "alembic/versions/*",
    "*/alembic/versions/*",
)

#: Per-file defaults, replaced by ``per-file-ignores`` and extended by ``extend-per-file-ignores``.
#: Tests: every rule off (fixtures hold a handful of rows; in the real-code suite every finding in
#: a test file was false). Migrations: caches off (the process runs once and exits); loading rules
#: stay on, since a data migration that walks a whole table is the job that gets OOM-killed.
DEFAULT_PER_FILE_IGNORES: tuple[tuple[str, tuple[str, ...]], ...] = (
    *((pattern, ("MB",)) for pattern in _TEST_FILES),
    *((pattern, ("MB3",)) for pattern in _MIGRATIONS),
)

#: Files larger than this are not read (``max-file-size``): 10 MB, 10^7 bytes. Parsing takes 80
#: to 200 times a file's size in memory (50 MB of copies of argparse.py: 3.6 GiB and 42 s; the
#: file in issue 15: 10 GB and 103 s), and no hand-written module is anywhere near 10 MB.
DEFAULT_MAX_FILE_SIZE = 10_000_000

#: A pyproject.toml is read whole before its [tool.membound.lint] is known, so it gets a fixed cap
#: of its own; it is never near this size.
_CONFIG_FILE_LIMIT = 10_000_000


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
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = DEFAULT_PER_FILE_IGNORES
    """(glob, prefixes) pairs: rules not to run on files matching the glob."""
    preview: bool = False
    """Run preview rules and preview variants of every selected rule."""
    small_models: tuple[str, ...] = ()
    """Models whose tables stay small: queries on them are never reported."""
    large_models: tuple[str, ...] = ()
    """Models whose tables grow without bound, even the rows of one owner."""
    extend_streaming_calls: tuple[str, ...] = ()
    """Names (bare or qualified) of project helpers that stream, for MB201."""
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    """Files larger than this many bytes are not read (``MB000``)."""
    root: Path = field(default_factory=Path.cwd)
    """Directory that per-file-ignores globs are relative to (the config file's)."""
    source: Path | None = None
    """The pyproject.toml the settings came from, if any."""
    exclude: tuple[str, ...] = ()
    """Globs (relative to the configuration file) of files and folders that are not code to
    check (``exclude``). Files named on the command line are checked all the same, as ruff
    does."""
    ruff_exclude: tuple[str, ...] = ()
    """ruff's ``exclude`` and ``extend-exclude`` from the same file: not checked either, except
    migrations (a project leaves its generated migrations out of its style checks; a data
    migration that walks a whole table is the job that gets OOM-killed, and two of four
    held-out applications had every migration left out, in silence)."""
    sizes_file: Path | None = None
    """A sizes file to read (``sizes``, relative to the configuration file)."""
    small_table_rows: int = DEFAULT_SMALL_TABLE_ROWS
    """Tables with fewer rows are small: their loads are not reported."""
    sizes: TableSizes | None = None
    """Row counts of the run (read from ``--db``, ``--sizes`` or ``sizes``)."""
    evidence: Evidence | None = None
    """The sizes with the models of the linted files mapped to their tables."""

    @functools.cached_property
    def _real_root(self) -> str:
        # Once per run, not once per file (a frozen dataclass keeps cached_property's value in
        # its __dict__, which __setattr__ does not guard).
        return os.path.realpath(self.root)

    def _selected(self, all_codes: tuple[str, ...]) -> frozenset[str]:
        """The codes selected before per-file ignores, computed once per set of codes."""
        cache = self.__dict__.setdefault("_selected_cache", {})
        codes: frozenset[str] | None = cache.get(all_codes)
        if codes is None:
            codes = resolve_selection(self.select, self.ignore, all_codes)
            previews = preview_codes(all_codes)
            if previews and not self.preview:
                codes = frozenset(c for c in codes if c not in previews or c in self.select)
            cache[all_codes] = codes
        return codes

    def preview_for(self, codes: Iterable[str]) -> frozenset[str]:
        """The codes among ``codes`` whose preview variants run: all with ``preview``, else those
        selected by their full code."""
        return frozenset(c for c in codes if self.preview or c in self.select)

    def excluded(self, filename: str) -> bool:
        """Whether ``filename`` (found under a folder given) is excluded: by :attr:`exclude`,
        or by :attr:`ruff_exclude` when it is no migration (see :meth:`left_to_ruff`). A glob
        matches its path from the configuration's folder or, without a ``/``, any of its parts
        (``migrations`` excludes every ``migrations/`` folder, as in ruff)."""
        return self._matches(filename, self.exclude) or self.left_to_ruff(filename)

    def left_to_ruff(self, filename: str) -> bool:
        """Whether ``filename`` is left out only by ruff's excludes (never a migration, which
        is checked all the same)."""
        return self._under_ruff(filename) and not self._matches(filename, _MIGRATIONS)

    def kept_from_ruff(self, filename: str) -> bool:
        """Whether ``filename`` is a migration that ruff's excludes cover and that is checked
        all the same."""
        return self._under_ruff(filename) and self._matches(filename, _MIGRATIONS)

    def _under_ruff(self, filename: str) -> bool:
        """Whether ruff's excludes cover ``filename`` and membound's own do not."""
        return self._matches(filename, self.ruff_exclude) and not self._matches(
            filename, self.exclude
        )

    def _matches(self, filename: str, globs: tuple[str, ...]) -> bool:
        """Whether a glob of ``globs`` matches ``filename`` (see :meth:`excluded`)."""
        if not globs:
            return False
        path = Path(filename)
        try:
            rel = PurePosixPath(Path(os.path.realpath(path)).relative_to(self._real_root))
        except ValueError:
            rel = PurePosixPath(path.as_posix())
        text = rel.as_posix()
        for pattern in globs:
            glob = pattern.strip("/")
            if "/" in glob:
                if fnmatch.fnmatchcase(text, glob) or fnmatch.fnmatchcase(text, glob + "/*"):
                    return True
            elif any(fnmatch.fnmatchcase(part, glob) for part in rel.parts):
                return True
        return False

    def codes_for(self, filename: str, all_codes: Iterable[str]) -> frozenset[str]:
        """The rule codes that run on ``filename``.

        Args:
            filename: The path as given or found.
            all_codes: Every known rule code.

        Returns:
            The selected codes minus the per-file ignores that match ``filename``. Preview rules
            are in it only when selected by their full code or with ``preview``.
        """
        codes = self._selected(tuple(all_codes))
        if not self.per_file_ignores:
            return codes
        path = Path(filename)
        try:
            # os.path.realpath, not Path.resolve: before Python 3.13 the latter raises
            # RuntimeError on a symlink loop.
            real = Path(os.path.realpath(path))
            rel = PurePosixPath(real.relative_to(self._real_root)).as_posix()
        except ValueError:
            rel = PurePosixPath(path).as_posix()
        for pattern, prefixes in self.per_file_ignores:
            if fnmatch.fnmatchcase(rel, pattern) or fnmatch.fnmatchcase(path.name, pattern):
                codes = frozenset(c for c in codes if not any(c.startswith(p) for p in prefixes))
        return codes


def preview_codes(all_codes: Iterable[str]) -> frozenset[str]:
    """The codes of preview rules among ``all_codes`` (imported late: rules import this module's
    siblings, and configuration must load without the rule set for its own tests)."""
    from membound.lint.rules import RULES_BY_CODE

    return frozenset(c for c in all_codes if c in RULES_BY_CODE and RULES_BY_CODE[c].preview)


def normalise_selectors(
    selectors: Iterable[str], all_codes: Sequence[str], where: str
) -> tuple[str, ...]:
    """Upper-case selectors, map ``ALL`` to ``MB`` and reject ones that match no rule.

    Args:
        selectors: Code prefixes as written by the user.
        all_codes: Every known rule code.
        where: Where they came from, for the error message (the option or the setting).

    Raises:
        ConfigError: A selector is empty (or blank), or matches no rule.
    """
    out: list[str] = []
    for raw in selectors:
        selector = raw.strip().upper()
        if not selector:
            # As in ruff: an empty selector is a mistake (``--select "$CODES"`` with nothing in
            # the variable), not a request to run nothing.
            raise ConfigError(f"{where}: empty rule selector {raw!r}; give codes like MB1,MB201")
        if selector == "ALL":
            selector = "MB"
        if not any(code.startswith(selector) for code in all_codes):
            known = ", ".join(all_codes)
            raise ConfigError(f"{where}: unknown rule selector {raw!r} (known rules: {known})")
        out.append(selector)
    return tuple(out)


def check_selection(
    select: Sequence[str], ignore: Sequence[str], all_codes: Sequence[str], origin: str = ""
) -> None:
    """Refuse a selection that leaves no rule to run.

    Args:
        select: Normalised prefixes to enable.
        ignore: Normalised prefixes to disable.
        all_codes: Every known rule code.
        origin: Where the settings came from, appended to the message (e.g. ``" (settings
            from pyproject.toml)"``).

    Raises:
        ConfigError: No rule is selected: the run would check nothing and report success.
    """
    if not resolve_selection(select, ignore, all_codes):
        raise ConfigError(
            f"no rule selected: select [{','.join(select)}], ignore [{','.join(ignore)}] "
            f"leaves no rule to run{origin}"
        )


def parse_max_file_size(value: object, where: str) -> int:
    """Parse ``max-file-size``: a size such as ``"10MB"``, ``"1.5MiB"`` or ``10_000_000``.

    Args:
        value: The setting as written (a string, or a TOML integer or float).
        where: The option or setting, for the error message.

    Returns:
        The size in bytes, at least 1.

    Raises:
        ConfigError: The value is not a size (``membound._units.parse_size``), or is 0.
    """
    try:
        size = parse_size(value)  # type: ignore[arg-type]  # it rejects every other type itself
    except SizeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if size < 1:
        raise ConfigError(f"{where}: must be at least 1 byte, not {value!r}")
    return size


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
        # Read like a linted file (regular files only, capped): `--config` may name a FIFO or
        # /dev/zero, and a tree may hold a pyproject.toml of either kind.
        text = read_limited(str(path), _CONFIG_FILE_LIMIT, what="the limit").decode("utf-8")
    except Unreadable as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
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
        return b"membound" in read_limited(str(path), _CONFIG_FILE_LIMIT)
    except Unreadable:
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
            unknown key, a value of the wrong type, an empty or unknown rule selector, or a
            ``max-file-size`` that is not a size.
    """
    data = _load_toml(path)
    section = _section(data, path)
    root = path.resolve().parent
    ruff = _ruff_excludes(data)
    if section is None:
        return LintConfig(root=root, source=path, ruff_exclude=ruff)
    unknown = sorted(set(section) - set(_KEYS))
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) in [tool.membound.lint]: {', '.join(unknown)} "
            f"(known: {', '.join(_KEYS)})"
        )
    where = f"{path} [tool.membound.lint]"
    select = normalise_selectors(
        _strings(section.get("select", ["MB"]), "select", path), all_codes, f"{where} select"
    )
    ignore = normalise_selectors(
        _strings(section.get("ignore", []), "ignore", path), all_codes, f"{where} ignore"
    )
    per_file = (
        _per_file(section["per-file-ignores"], "per-file-ignores", path, all_codes)
        if "per-file-ignores" in section
        else DEFAULT_PER_FILE_IGNORES
    )
    per_file += _per_file(
        section.get("extend-per-file-ignores", {}), "extend-per-file-ignores", path, all_codes
    )
    streaming = _strings(section.get("extend-streaming-calls", []), "extend-streaming-calls", path)
    preview = section.get("preview", False)
    if not isinstance(preview, bool):
        raise ConfigError(f"{path}: [tool.membound.lint] preview must be true or false")
    small = _strings(section.get("small-models", []), "small-models", path)
    large = _strings(section.get("large-models", []), "large-models", path)
    both = sorted(set(small) & set(large))
    if both:
        raise ConfigError(
            f"{path}: [tool.membound.lint] {', '.join(both)} is in both small-models and "
            "large-models"
        )
    exclude = _strings(section.get("exclude", []), "exclude", path)
    sizes_file = None
    if "sizes" in section:
        if not isinstance(section["sizes"], str) or not section["sizes"].strip():
            raise ConfigError(f"{where} sizes must be the path of a sizes file")
        sizes_file = root / section["sizes"]
    small_rows = section.get("small-table-rows", DEFAULT_SMALL_TABLE_ROWS)
    if isinstance(small_rows, bool) or not isinstance(small_rows, int) or small_rows < 0:
        raise ConfigError(f"{where} small-table-rows must be a whole number >= 0")
    max_file_size = DEFAULT_MAX_FILE_SIZE
    if "max-file-size" in section:
        max_file_size = parse_max_file_size(section["max-file-size"], f"{where} max-file-size")
    return LintConfig(
        select=select,
        ignore=ignore,
        per_file_ignores=per_file,
        extend_streaming_calls=streaming,
        preview=preview,
        small_models=small,
        large_models=large,
        max_file_size=max_file_size,
        root=root,
        source=path,
        sizes_file=sizes_file,
        small_table_rows=small_rows,
        exclude=exclude,
        ruff_exclude=ruff,
    )


def _per_file(
    raw: object, key: str, path: Path, all_codes: Sequence[str]
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``per-file-ignores``-shaped table: glob -> list of code prefixes."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: [tool.membound.lint] {key} must be a table")
    where = f"{path} [tool.membound.lint]"
    return tuple(
        (
            pattern,
            normalise_selectors(
                _strings(codes, f"{key}.{pattern}", path), all_codes, f"{where} {key}.{pattern}"
            ),
        )
        for pattern, codes in raw.items()
    )


def find_config(paths: Sequence[str]) -> Path | None:
    """Find the pyproject.toml with a ``[tool.membound.lint]`` section that governs ``paths``.

    Like ruff, search from the inputs' common directory (the current directory if none) upward
    and take the first pyproject.toml that has the section; without one, the nearest whose
    ``[tool.ruff]`` excludes files (the project says they are not code to check). A
    pyproject.toml that cannot be read or parsed stops the search with an error when it mentions
    membound (it may hold the settings the user means); one that does not is another tool's file
    and is skipped.

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
        # os.path.realpath, not Path.resolve: before Python 3.13 the latter raises RuntimeError
        # on a symlink loop, and a loop given on the command line is reported as MB000 instead.
        path = Path(os.path.realpath(raw))
        dirs.append(path if path.is_dir() else path.parent)
    try:
        start = Path(_common(dirs))
    except ValueError:
        start = Path.cwd()
    ruff_only: Path | None = None
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        # os.path.isfile, not Path.is_file: the latter raises on a folder that cannot be searched
        # (EACCES), and such a folder cannot hold settings we could read anyway.
        if not os.path.isfile(candidate):
            continue
        try:
            data = _load_toml(candidate)
        except ConfigError:
            if _mentions_membound(candidate):
                raise
            continue  # an unrelated broken pyproject must not stop the search
        if _section(data, candidate) is not None:
            return candidate
        if ruff_only is None and _ruff_excludes(data):
            ruff_only = candidate  # the project's excludes, if no membound settings come
    return ruff_only


def _ruff_excludes(data: Mapping[str, Any]) -> tuple[str, ...]:
    """``exclude`` and ``extend-exclude`` of ``[tool.ruff]`` (lists of globs; anything else is
    ruff's to complain about)."""
    tool = data.get("tool")
    ruff = tool.get("ruff") if isinstance(tool, dict) else None
    if not isinstance(ruff, dict):
        return ()
    found: list[str] = []
    for key in ("exclude", "extend-exclude"):
        value = ruff.get(key)
        if isinstance(value, list):
            found.extend(v for v in value if isinstance(v, str) and v.strip())
    return tuple(found)


def _common(dirs: Sequence[Path]) -> str:
    return os.path.commonpath([str(d) for d in dirs])
