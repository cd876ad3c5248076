"""Run the rules over files: discovery, decoding, parsing, ``noqa`` and bad-file handling.

A file that cannot be checked (unreadable, not a regular file, over ``max-file-size``, binary, not
UTF-8, a syntax error, nested too deep, or even a crash in a rule) becomes one ``MB000`` message,
never a traceback and never a hang: a linter in CI must not fail on the one odd file in a tree. A
folder that cannot be listed is one ``MB000`` too, rather than files silently left out.

Whatever a file holds, the time spent on it stays about linear in its size: the patterns here
never let a run of whitespace be scanned again from each line, and a source encoding whose decoder
is quadratic is refused. A run collects cyclic garbage less often (:func:`fewer_collections`).
"""

from __future__ import annotations

import ast
import codecs
import contextlib
import dataclasses
import gc
import io
import os
import re
import tokenize
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor

from membound.lint.call_graph import CallIndex, ModuleCalls, named_in_templates, read_calls
from membound.lint.config import LintConfig
from membound.lint.context import ModuleContext
from membound.lint.evidence import Evidence
from membound.lint.findings import FileError, Finding, LintResult
from membound.lint.fixing import comment_rows
from membound.lint.installed_models import installed_model_files, model_imports
from membound.lint.newer_python import relint_with_newer
from membound.lint.reading import Unreadable, read_limited
from membound.lint.rules import RULES
from membound.lint.sizes import TableSizes
from membound.lint.tables import index_models, joined, module_path

__all__ = [
    "EXCLUDED_DIRS",
    "LINT_GC_THRESHOLDS",
    "decode_source",
    "discover",
    "fewer_collections",
    "kept",
    "lint_file",
    "lint_paths",
    "lint_source",
    "lint_text",
    "read_source",
    "with_evidence",
]

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
#: The default set: every rule but the preview ones.
DEFAULT_CODES = tuple(rule.code for rule in RULES if not rule.preview)

# A bare noqa comment, or one followed by a colon and codes (flake8/ruff syntax).
_NOQA_RE = re.compile(
    r"#\s*noqa(?::[\s]?(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?", re.IGNORECASE
)
# The file-level form, ``membound: noqa`` (optionally with codes) alone on a line. Blanks are
# ``[^\S\n]`` (white space but the newline), not ``\s``: with MULTILINE, ``^\s*#`` let every line
# start scan on across all the blank lines after it, quadratic time (1 MB of newlines: minutes).
_BLANK = r"[^\S\n]*"
_FILE_NOQA_RE = re.compile(
    rf"^{_BLANK}#{_BLANK}membound:{_BLANK}noqa"
    rf"(?::{_BLANK}(?P<codes>[A-Z]+[0-9]+(?:(?:,|[^\S\n])+[A-Z]+[0-9]+)*))?{_BLANK}$",
    re.IGNORECASE | re.MULTILINE,
)
_CODE_RE = re.compile(r"[A-Z]+[0-9]+", re.IGNORECASE)
#: Source encodings refused although Python knows them: their decoders take quadratic time, so a
#: file of a few megabytes would hold the run for hours (the punycode decoder, 400 KB: 17 s).
_SLOW_ENCODINGS = frozenset({"punycode"})


#: The cyclic GC's thresholds during a run, as mypy sets them for its build (the same work:
#: millions of syntax-tree nodes made and dropped, almost none in a cycle). With CPython's
#: default (700, 10, 10) the collections took a third of a run's CPU (mlflow 3.18: 10.8 CPU-s,
#: 6.0 with these); the garbage a cycle can hold between collections is bounded by the first.
LINT_GC_THRESHOLDS = (200_000, 30, 30)


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Run the block with the cyclic GC at :data:`LINT_GC_THRESHOLDS` (or the process's own,
    where they are higher or the GC is off), and put the process's back after it."""
    before = gc.get_threshold()
    if before[0] == 0 or not gc.isenabled():
        yield
        return
    gc.set_threshold(*(max(a, b) for a, b in zip(before, LINT_GC_THRESHOLDS, strict=True)))
    try:
        yield
    finally:
        gc.set_threshold(*before)


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


def _suppressed(finding: Finding, lines: Sequence[str], row: int | None = None) -> bool:
    row = finding.row if row is None else row
    if not 0 < row <= len(lines):
        return False
    noqa = _line_noqa(lines[row - 1])
    if noqa is False:
        return False
    return noqa is None or (isinstance(noqa, frozenset) and finding.code in noqa)


def decode_source(data: bytes) -> tuple[str, str]:
    """Decode source bytes as Python does (BOM, PEP 263 cookie), UTF-8 by default.

    Returns:
        The text and the encoding it was decoded with (``utf-8-sig`` when there was a BOM).

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
    if codecs.lookup(encoding).name in _SLOW_ENCODINGS:
        raise ValueError(
            f"unsupported encoding declaration: {encoding} (its decoder takes quadratic time)"
        )
    try:
        return data.decode("utf-8-sig" if encoding == "utf-8-sig" else encoding), encoding
    except (UnicodeError, LookupError) as exc:
        # UnicodeError, not only UnicodeDecodeError: some codecs (``undefined``) raise the base.
        raise ValueError(f"not valid {encoding} text: {exc}") from None


#: A syntax tree at least this deep may exhaust the recursion of rules that walk it nested.
_DEEP = 100


def _depth(tree: ast.AST) -> int:
    """How deep ``tree`` nests (counted without recursion, which is what ran out)."""
    deepest = 0
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def lint_source(
    source: str,
    filename: str = "<string>",
    *,
    select: Iterable[str] | None = None,
    streaming_calls: Iterable[str] = (),
    preview: Iterable[str] = (),
    small_models: Iterable[str] = (),
    large_models: Iterable[str] = (),
    evidence: Evidence | None = None,
) -> list[Finding]:
    """Lint Python source text.

    Args:
        source: The module's text.
        filename: The name reported in findings.
        select: Rule codes to run (default: every rule of the default set, no preview rule).
        streaming_calls: Extra names of streaming helpers (``extend-streaming-calls``).
        preview: Codes whose preview variants run as well.
        small_models: Models whose tables stay small (``small-models``).
        large_models: Models whose tables grow without bound (``large-models``).
        evidence: Table sizes and the model → table map (``--db``/``--sizes``).

    Returns:
        The findings and hints (``Finding.kind``) after ``noqa``, sorted by position.

    Raises:
        SyntaxError: The source does not parse.
        ValueError: The source contains NUL bytes.
    """
    selected = frozenset(DEFAULT_CODES if select is None else select)
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
        preview=frozenset(preview),
        small_models=frozenset(small_models),
        large_models=frozenset(large_models),
        evidence=evidence,
    )
    found: set[Finding] = set()
    try:
        for rule in RULES:
            if rule.code in selected:
                found.update(rule.check(ctx))
    except RecursionError as exc:
        if _depth(tree) < _DEEP:
            # A shallow tree that recursed is a rule that went round in circles, not deep code.
            raise RuntimeError(f"a rule recursed without end on a shallow tree ({exc})") from exc
        raise
    kept = [f for f in found if not _suppressed(f, lines)]
    if kept and "noqa" in source:
        # A row that ends inside a multi-line string (or with a backslash) cannot hold a
        # comment: its noqa is on the row where the statement can take one.
        moves = comment_rows(source)
        kept = [f for f in kept if f.row not in moves or not _suppressed(f, lines, moves[f.row])]
    return sorted(kept)


def read_source(path: str, config: LintConfig) -> tuple[str, str] | FileError:
    """Read and decode one file: ``(text, encoding)``, or why it cannot be checked."""
    try:
        data = read_limited(path, config.max_file_size)
    except Unreadable as exc:
        return FileError(path, str(exc))
    try:
        return decode_source(data)
    except ValueError as exc:
        return FileError(path, str(exc))


def lint_text(source: str, path: str, config: LintConfig) -> list[Finding] | FileError:
    """Lint the decoded text of ``path`` with ``config``: its findings, or why it cannot be."""
    try:
        codes = config.codes_for(path, ALL_CODES)
        return lint_source(
            source,
            path,
            select=codes,
            streaming_calls=config.extend_streaming_calls,
            preview=config.preview_for(codes),
            small_models=config.small_models,
            large_models=config.large_models,
            evidence=config.evidence,
        )
    except SyntaxError as exc:
        return FileError(path, f"syntax error: {exc.msg}", exc.lineno or 1, exc.offset or 1)
    except (RecursionError, MemoryError) as exc:
        # CPython's parser raises these for deep nesting (``1+1+...`` or ``- - - ... 1``), the
        # MemoryError without a message; with the file size capped, that is what they mean here.
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return FileError(path, f"too deeply nested to check ({detail})")
    except ValueError as exc:
        return FileError(path, f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # a bug in a rule must cost one file, not the whole run
        return FileError(path, f"internal error, please report: {type(exc).__name__}: {exc}")


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
    read = read_source(path, config)
    if isinstance(read, FileError):
        return [], read, 0
    source = read[0]
    findings = lint_text(source, path, config)
    if isinstance(findings, FileError):
        return [], findings, 0
    partial_line = 1 if source and not source.endswith("\n") else 0
    return findings, None, source.count("\n") + partial_line


def discover(
    paths: Sequence[str], on_error: Callable[[OSError], object] | None = None
) -> Iterator[str]:
    """Expand directories into their ``*.py`` files; give files (any name) as they are.

    Missing paths are yielded too, so that they are reported as ``MB000`` like any other
    unreadable input. Excluded directories (``.git``, ``.venv``, ``__pycache__``...) and hidden
    ones (names starting with a dot) are skipped below the paths given. Symlinks to folders are
    not followed (so a link loop cannot make the walk endless); a name ending in ``.py`` that is
    not a regular file (a FIFO, a link to a device) is yielded and refused when it is read.
    Files come folder by folder, depth first, each folder's files and subfolders sorted by name.

    Args:
        paths: Files and folders as given.
        on_error: Called with the ``OSError`` of each folder that cannot be listed (its
            ``filename`` is the folder); by default such folders are skipped silently.
    """
    for raw in paths:
        if os.path.isdir(raw):
            yield from _walk(raw, on_error)
        else:
            yield raw


def _walk(top: str, on_error: Callable[[OSError], object] | None) -> Iterator[str]:
    """The ``*.py`` files under ``top``, in :func:`discover`'s order.

    ``os.walk`` with an explicit stack: before Python 3.12 ``os.walk`` recurses once per level, so
    a tree 1,000 folders deep stopped the whole run with RecursionError.
    """
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError as exc:
            if on_error is not None:
                on_error(exc)
            continue
        subfolders: list[str] = []
        files: list[str] = []
        for entry in entries:
            try:
                is_dir = entry.is_dir()
            except OSError:  # as os.walk: a link loop or a vanished entry is not a folder
                is_dir = False
            if not is_dir:
                files.append(entry.name)
            elif not entry.is_symlink() and _searched(entry.name):
                subfolders.append(entry.name)
        for name in sorted(files):
            if name.endswith((".py", ".pyi")):
                yield os.path.join(folder, name)
        stack.extend(os.path.join(folder, name) for name in sorted(subfolders, reverse=True))


def _searched(name: str) -> bool:
    # Hidden folders (caches, tool state) are skipped too; name one to lint it.
    return name not in EXCLUDED_DIRS and not name.endswith(".egg-info") and not name.startswith(".")


def _lint_many(
    args: tuple[list[str], LintConfig],
) -> list[tuple[list[Finding], FileError | None, int]]:
    paths, config = args
    with fewer_collections():  # a worker process's own run
        return [lint_file(p, config) for p in paths]


#: An identifier of the code linted (the words a sizes file's names are looked for among).
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
#: ``apps.get_model("app", "Model")``, ``get_model("app.Model")`` and the keyword form: a
#: migration's model, whose default table (``app_model``) the code thus names.
_GET_MODEL = re.compile(
    r"(?:get_model|load_model|get_swapped_model)\(\s*(?:\w+\s*,\s*)?(?:app_label\s*=\s*)?"
    r"[\"'](\w+)[\"']\s*,\s*(?:model_name\s*=\s*)?[\"'](\w+)[\"']"
    r"|get_model\(\s*[\"'](\w+)\.(\w+)[\"']"
)
#: Names of a sizes file listed in the warning about names that match nothing.
_NAMES_SHOWN = 20


def kept(files: Sequence[str], paths: Sequence[str], config: LintConfig) -> list[str]:
    """``files`` less those the configuration excludes; a file named in ``paths`` is kept."""
    if not config.exclude and not config.ruff_exclude:
        return list(files)
    named = {p for p in paths if not os.path.isdir(p)}
    return [f for f in files if f in named or not config.excluded(f)]


def ruff_exclude_note(files: Sequence[str], paths: Sequence[str], config: LintConfig) -> str:
    """One line on what ruff's excludes took out of ``files`` and which migrations they cover
    were checked all the same, or an empty string (nothing is left out in silence)."""
    if not config.ruff_exclude:
        return ""
    named = {p for p in paths if not os.path.isdir(p)}
    left = sum(1 for f in files if f not in named and config.left_to_ruff(f))
    migrations = sum(1 for f in files if f not in named and config.kept_from_ruff(f))
    if not left and not migrations:
        return ""
    source = config.source.name if config.source is not None else "pyproject.toml"
    said = []
    if left:
        said.append(f"{left} file(s) left out by ruff's exclude in {source}")
    if migrations:
        said.append(
            f"{migrations} migration(s) under ruff's exclude in {source} checked all the same "
            "(a data migration is a job that loads tables)"
        )
    return (
        f"membound lint: note: {'; '.join(said)}; [tool.membound.lint] exclude leaves files "
        "out of membound's checks"
    )


def _read_calls_many(
    args: tuple[list[str], LintConfig, str, bool],
) -> list[ModuleCalls | None]:
    """What each of ``paths`` defines and calls (module paths counted from ``root``): the
    call graph's part of the evidence, read in a worker process."""
    paths, config, root, words = args
    found: list[ModuleCalls | None] = []
    with fewer_collections():
        for path in paths:
            read = read_source(path, config)
            text = None if isinstance(read, FileError) else read[0]
            found.append(
                None
                if text is None
                else read_calls(path, module_path(path, root), text, words=words)[0]
            )
    return found


def _calls_read_by(
    pool: Executor,
    workers: int,
    files: Sequence[str],
    config: LintConfig,
    root: str,
    words: bool,
) -> Iterator[ModuleCalls | None]:
    """:func:`_read_calls_many` over ``files`` in ``pool``, in order: contiguous chunks, a few
    per worker so that one big file does not leave the others idle (``words``: read their
    words too). The work is handed out at once; the results come as they are iterated."""
    size = max(1, -(-len(files) // (workers * 4)))
    chunks = [list(files[i : i + size]) for i in range(0, len(files), size)]
    parts = pool.map(_read_calls_many, [(c, config, root, words) for c in chunks])
    return (read for part in parts for read in part)


#: Files that mark the root of a project (its callers are all below).
_PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", "manage.py", ".git", "PKG-INFO")


def whole_project(paths: Sequence[str]) -> bool:
    """``paths`` is one folder that holds a whole project (a ``pyproject.toml``, ``setup.py``,
    ``manage.py``, ``.git``… at its top): every caller of its functions is in the run."""
    return (
        len(paths) == 1
        and os.path.isdir(paths[0])
        and any(os.path.exists(os.path.join(paths[0], m)) for m in _PROJECT_MARKERS)
    )


def with_evidence(
    config: LintConfig,
    files: Sequence[str],
    paths: Sequence[str],
    *,
    pool: Executor | None = None,
    workers: int = 1,
) -> LintConfig:
    """``config`` with its evidence: the models of ``files`` mapped to their tables and shapes
    (module paths counted from the folder linted, or the current one), the project's call
    graph, and the table sizes given, if any. With a ``pool`` of ``workers`` processes the
    call graph's files are read there (most of the evidence's time) while this process reads
    the models' files."""
    if config.evidence is not None:
        return config
    folders = [p for p in paths if os.path.isdir(p)]
    root = folders[0] if len(folders) == 1 else os.getcwd()
    # Only a run that reads every file of a project knows every caller; excluded files may
    # hold some (and a file that cannot be read, below).
    whole = whole_project(paths) and not config.exclude and not config.ruff_exclude
    unread: list[str] = []
    read_elsewhere = (
        None if pool is None else _calls_read_by(pool, workers, files, config, root, whole)
    )
    # With reads elsewhere: the files read here and their modules (only they are indexed).
    readable: dict[str, str] = {}

    sizes = config.sizes if config.sizes is not None else TableSizes()
    check_names = sizes.from_file and bool(sizes)
    words: set[str] = set()
    calls = CallIndex(words=whole)
    imported: set[str] = set()
    own: set[str] = set()

    def texts() -> Iterator[tuple[str, str]]:
        for path in files:
            read = read_source(path, config)
            if isinstance(read, FileError):
                unread.append(path)
            else:
                text = read[0]
                if check_names:
                    words.update(w.lower() for w in _WORD.findall(text))
                    if "_model(" in text:
                        for found in _GET_MODEL.finditer(text):
                            app, model = found.group(1, 2) if found.group(1) else found.group(3, 4)
                            words.add(f"{app}_{model}".lower())
                module = module_path(path, root)
                own.update(module.split("."))
                if "model" in text:
                    imported.update(model_imports(text))
                # Kept only while this file is the one being read: the model index takes
                # the call graph's tree instead of parsing the file a second time.
                current.clear()
                if read_elsewhere is not None:
                    readable[path] = module
                    yield path, text
                    continue
                tree = calls.add(path, module, text)
                if tree is not None:
                    current[path] = tree
                yield path, text

    current: dict[str, ast.Module] = {}
    tables = index_models(texts(), root, tree_of=current.get)
    current.clear()
    if read_elsewhere is not None:
        for path, read in zip(files, read_elsewhere, strict=True):
            if path in readable:  # as :meth:`CallIndex.add` is called for readable files only
                calls.add_read(path, readable[path], read)
    installed: dict[str, list[tuple[str, str]]] = {}
    linted = [p if os.path.isdir(p) else os.path.dirname(os.path.abspath(p)) for p in paths]
    for path, text, package_root in installed_model_files(imported, own, linted):
        installed.setdefault(package_root, []).append((path, text))
    for package_root, found in installed.items():
        tables = joined(tables, index_models(found, package_root))
    unmatched = Evidence.unmatched_names(sizes, tables, words) if check_names else ()
    graph = calls.graph()
    named = (
        named_in_templates(graph.unreferenced, paths, config.max_file_size)
        if whole and not unread
        else None
    )
    if named is not None:
        graph = dataclasses.replace(graph, unreferenced=graph.unreferenced - named)
    else:  # callers may live outside what was read: nothing is known to be uncalled
        graph = dataclasses.replace(graph, unreferenced=frozenset())
    evidence = Evidence(sizes, tables, config.small_table_rows, unmatched, graph)
    return dataclasses.replace(config, evidence=evidence)


def lint_paths(
    paths: Sequence[str], config: LintConfig | None = None, *, jobs: int = 1
) -> LintResult:
    """Lint files and directories.

    Args:
        paths: Files and directories (directories are searched for ``*.py``).
        config: Settings (default: every rule).
        jobs: Worker processes; 1 lints in this process. Parsing is CPU-bound and the GIL
            serialises it, so processes (not threads) are what scale: they read the files for
            the call graph of the evidence, then for the rules (over 50 files).

    The cyclic GC runs less often meanwhile (:func:`fewer_collections`); the process's
    thresholds are put back after.

    Returns:
        Findings, hints, per-file errors and counts.
    """
    config = config or LintConfig()
    unlisted: list[FileError] = []

    def cannot_list(exc: OSError) -> None:
        # A folder that cannot be listed hides its files: say so, or they would silently be
        # left out (and a run over nothing but that folder would claim "no Python files").
        where = str(exc.filename) if exc.filename is not None else "?"
        unlisted.append(FileError(where, f"cannot list folder: {exc.strerror or exc}"))

    discovered = list(dict.fromkeys(discover(paths, cannot_list)))
    files = kept(discovered, paths, config)
    told = ruff_exclude_note(discovered, paths, config)
    if jobs > 1 and len(files) > 50:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            with fewer_collections():
                config = with_evidence(config, files, paths, pool=pool, workers=jobs)
            chunks = [files[i :: jobs * 4] for i in range(jobs * 4)]
            results = [
                r for part in pool.map(_lint_many, [(c, config) for c in chunks]) for r in part
            ]
    else:
        with fewer_collections():
            config = with_evidence(config, files, paths)
        results = _lint_many((files, config))
    errors_here = [e for _, e, _ in results if e is not None]
    again = relint_with_newer(errors_here, config, ALL_CODES) if errors_here else {}
    if again:
        results = [
            again.get(e.filename, (f, e, c)) if e is not None else (f, e, c) for f, e, c in results
        ]
    findings: list[Finding] = []
    hints: list[Finding] = []
    errors = unlisted
    checked = 0
    lines = 0
    for file_findings, error, count in results:
        if error is not None:
            errors.append(error)
            continue
        checked += 1
        lines += count
        for found in file_findings:
            (hints if found.hint else findings).append(found)
    errors.sort(key=lambda e: e.filename)
    notes: list[str] = [told] if told else []
    unmatched = config.evidence.unmatched if config.evidence is not None else ()
    if unmatched:
        listed = ", ".join(unmatched[:_NAMES_SHOWN])
        more = f" and {len(unmatched) - _NAMES_SHOWN} more" if len(unmatched) > _NAMES_SHOWN else ""
        notes.append(
            f"membound lint: warning: {len(unmatched)} name(s) of the sizes file match nothing "
            f"in the code linted (a misspelling changes nothing): {listed}{more}"
        )
    return LintResult(
        findings=tuple(sorted(findings)),
        errors=tuple(errors),
        files_checked=checked,
        lines_checked=lines,
        hints=tuple(sorted(hints)),
        notes=tuple(notes),
    )
