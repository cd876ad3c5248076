"""Rewriting linted source: applying fixes (``--fix``) and recording findings (``--add-noqa``).

Both work on the text, not on a re-printed AST: ``ast.unparse`` would drop comments and
formatting, and libcst (which keeps them) would be a heavy dependency for a few span
replacements whose positions the parser already gives. Positions are 1-based rows and character
columns, rows counted as Python counts them (``\\n``, ``\\r\\n`` or ``\\r``; ``str.splitlines``
would also split on form feeds and other separators the tokenizer does not).
"""

from __future__ import annotations

import io
import re
import tokenize
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

from membound.lint.findings import Edit, Finding

__all__ = ["add_noqa", "apply_fixes", "comment_rows", "physical_lines"]

_LINE_END = re.compile(r"\r\n|\r|\n")
_NOQA_CODES = re.compile(
    r"#\s*noqa:[\s]?(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*)", re.IGNORECASE
)
_BARE_NOQA = re.compile(r"#\s*noqa(?!:)", re.IGNORECASE)

#: How often fixes are applied and the file linted again: a fix may expose another (ruff: 100).
MAX_ROUNDS = 10


def physical_lines(source: str) -> list[str]:
    """The source's lines with their line endings, split where Python's tokenizer splits."""
    lines: list[str] = []
    start = 0
    for match in _LINE_END.finditer(source):
        lines.append(source[start : match.end()])
        start = match.end()
    if start < len(source):
        lines.append(source[start:])
    return lines


def comment_rows(source: str) -> dict[int, int]:
    """Rows where a comment cannot go, mapped to the row where the statement's comment goes.

    A row that ends inside a multi-line string, or with a backslash continuation, cannot take a
    ``# noqa``: it would become part of the string, or a syntax error. Its findings are silenced
    by (and ``--add-noqa`` writes to) the first row after it that can.
    """
    moves: dict[int, int] = {}
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return moves
    for tok in tokens:
        if tok.start[0] < tok.end[0] and tok.type == tokenize.STRING:
            for row in range(tok.start[0], tok.end[0]):
                moves[row] = tok.end[0]
    fstring_start = getattr(tokenize, "FSTRING_START", None)
    fstring_end = getattr(tokenize, "FSTRING_END", None)
    if fstring_start is not None:
        open_rows: list[int] = []
        for tok in tokens:
            if tok.type == fstring_start:
                open_rows.append(tok.start[0])
            elif tok.type == fstring_end and open_rows:
                begin = open_rows.pop()
                for row in range(begin, tok.end[0]):
                    moves[row] = tok.end[0]
    lines = physical_lines(source)
    for row, line in enumerate(lines, 1):
        if row not in moves and line.rstrip("\r\n").endswith("\\"):
            moves[row] = row + 1
    # Follow chains: a continuation that lands in a string goes on to the string's end.
    for row in sorted(moves, reverse=True):
        target = moves[row]
        seen = 0
        while target in moves and seen < len(moves):
            target = moves[target]
            seen += 1
        moves[row] = min(target, len(lines))
    return moves


def _offsets(lines: Sequence[str]) -> list[int]:
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    return starts


def _apply(source: str, edits: Iterable[Edit]) -> str:
    lines = physical_lines(source)
    starts = _offsets(lines)

    def at(row: int, column: int) -> int:
        if row > len(lines):
            return len(source)
        return starts[row - 1] + column - 1

    out: list[str] = []
    cursor = 0
    for edit in sorted(edits, key=lambda e: (e.row, e.column)):
        begin, end = at(edit.row, edit.column), at(edit.end_row, edit.end_column)
        out.append(source[cursor:begin])
        out.append(edit.content)
        cursor = end
    out.append(source[cursor:])
    return "".join(out)


def _span(edit: Edit) -> tuple[tuple[int, int], tuple[int, int]]:
    return (edit.row, edit.column), (edit.end_row, edit.end_column)


def apply_fixes(
    source: str,
    lint: Callable[[str], list[Finding]],
    *,
    unsafe: bool = False,
    first: list[Finding] | None = None,
) -> tuple[str, list[Finding]]:
    """Apply the fixes of ``lint(source)`` until none is left (at most ``MAX_ROUNDS`` rounds).

    Args:
        source: The module's text.
        lint: Lints a text (the same settings as the run).
        unsafe: Apply unsafe fixes too.
        first: The findings of ``source`` when already known (saves one lint).

    Returns:
        The new text and the findings whose fixes were applied. Overlapping fixes are applied
        one per round; a round whose result no longer parses is undone and ends the loop.
    """
    applied: list[Finding] = []
    for _ in range(MAX_ROUNDS):
        found = first if first is not None else lint(source)
        first = None
        fixable = [
            f for f in found if f.fix is not None and (unsafe or f.fix.applicability == "safe")
        ]
        chosen: list[Finding] = []
        taken: list[tuple[tuple[int, int], tuple[int, int]]] = []
        for finding in fixable:
            assert finding.fix is not None
            spans = [_span(e) for e in finding.fix.edits]
            if any(a[0] < b[1] and b[0] < a[1] for a in spans for b in taken):
                continue
            chosen.append(finding)
            taken.extend(spans)
        if not chosen:
            break
        new = _apply(source, [e for f in chosen if f.fix is not None for e in f.fix.edits])
        try:
            compile(new, "<fixed>", "exec", dont_inherit=True, flags=0x400)  # PyCF_ONLY_AST
        except (SyntaxError, ValueError):
            break
        source = new
        applied.extend(chosen)
    return source, applied


def _with_codes(line: str, codes: set[str]) -> str:
    body = line.rstrip("\r\n")
    ending = line[len(body) :]
    if _BARE_NOQA.search(body):
        return line
    match = _NOQA_CODES.search(body)
    if match is not None:
        have = [c.upper() for c in re.findall(r"[A-Z]+[0-9]+", match.group("codes"), re.I)]
        merged = have + sorted(codes - set(have))
        if merged == have:
            return line
        new = f"# noqa: {', '.join(merged)}"
        return body[: match.start()] + new + body[match.end() :] + ending
    return f"{body.rstrip()}  # noqa: {', '.join(sorted(codes))}{ending}"


def add_noqa(source: str, findings: Iterable[Finding]) -> tuple[str, int]:
    """Add ``# noqa: CODE`` comments that silence ``findings`` (ruff's ``--add-noqa``).

    Codes already named on a line are kept and new ones appended; a line with a bare ``# noqa``
    is left alone.

    Returns:
        The new text and the number of lines changed.
    """
    wanted: dict[int, set[str]] = defaultdict(set)
    moves: dict[int, int] | None = None
    for finding in findings:
        if moves is None:
            moves = comment_rows(source)
        wanted[moves.get(finding.row, finding.row)].add(finding.code)
    if not wanted:
        return source, 0
    lines = physical_lines(source)
    changed = 0
    for row, codes in wanted.items():
        if not 0 < row <= len(lines):
            continue
        new = _with_codes(lines[row - 1], codes)
        if new != lines[row - 1]:
            lines[row - 1] = new
            changed += 1
    return "".join(lines), changed
