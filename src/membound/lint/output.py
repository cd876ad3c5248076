"""Render a lint result: text, JSON (ruff's field names), SARIF 2.1.0, GitHub annotations.

Each renderer returns the full text; the CLI decides where it goes. ``MB000`` file errors are not
findings: text leaves them to stderr, JSON lists them with the findings (same fields, ``url`` and
``name`` null), SARIF as tool notifications and the GitHub format as ``::error`` annotations, so
CI shows them where it shows findings.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from membound.lint.findings import Finding, LintResult
from membound.lint.rules import RULES, RULES_BY_CODE

__all__ = [
    "FORMATS",
    "GIVE_SIZES",
    "hints_line",
    "render",
    "render_errors",
    "render_github",
    "render_json",
    "render_sarif",
    "render_statistics",
    "render_text",
    "to_dicts",
]

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


#: How to turn hints into findings or silence them: evidence of the tables' sizes.
GIVE_SIZES = (
    "give table sizes (`--db URL`, `--sizes FILE`) or name big models in `large-models` "
    "(small ones in `small-models`)"
)


def hints_line(result: LintResult) -> str | None:
    """The one line that counts the hints: loads not judged, and how to judge them."""
    n = result.hint_count
    if not n:
        return None
    loads = "load" if n == 1 else "loads"
    where = "listed above" if result.hints else "`--hints` lists them"
    return (
        f"{n} whole-table {loads} not judged (hints: nothing shows the table is big; {where}): "
        f"{GIVE_SIZES}."
    )


def render_text(result: LintResult) -> str:
    """``path:row:col: CODE message`` per finding, then a summary line (ruff's concise style);
    the hints in a section of their own when they are shown, and a line counting them."""
    out = [f"{f.filename}:{f.row}:{f.column}: {f.code} {f.message}" for f in result.findings]
    count = len(result.findings)
    if count:
        files = len({f.filename for f in result.findings})
        noun = "finding" if count == 1 else "findings"
        out.append(f"Found {count} {noun} in {files} file{'s' if files != 1 else ''}.")
        safe = sum(1 for f in result.findings if f.fix and f.fix.applicability == "safe")
        unsafe = sum(1 for f in result.findings if f.fix and f.fix.applicability != "safe")
        if safe:
            out.append(f"{safe} fixable with `membound lint --fix`.")
        if unsafe:
            out.append(f"{unsafe} more fixable with `--fix --unsafe-fixes` (review the diff).")
    if result.errors and result.files_checked:
        n = len(result.errors)
        out.append(
            f"{n} file{'s' if n != 1 else ''} could not be checked (MB000, listed on stderr)."
        )
    elif not count and result.files_checked:
        out.append("All checks passed!")
    if result.hints:
        out.append("")
        out.append("Hints (not findings: nothing shows these tables are big):")
        out += [
            f"{f.filename}:{f.row}:{f.column}: {f.code} hint: {f.message}" for f in result.hints
        ]
    said = hints_line(result)
    if said:
        out.append(said)
    # Nothing checked and nothing found (every input was MB000): no stray empty line.
    return "".join(line + "\n" for line in out)


def render_errors(result: LintResult) -> str:
    """One ``path:row:col: MB000 ...`` line per file that could not be checked."""
    return "".join(f"{e.filename}:{e.row}:{e.column}: {e.message}\n" for e in result.errors)


def to_dicts(result: LintResult) -> list[dict[str, Any]]:
    """Findings, hints and ``MB000`` file errors as dicts with ruff's JSON field names (plus
    ``name``, the rule's name, and ``kind``: ``finding``, ``hint`` or ``error``), sorted by file
    and position.

    A file error has the same fields as a finding: ``end_location`` is its ``location``, and
    ``name``, ``noqa_row`` (it cannot be silenced) and ``url`` are null.
    """
    rows: list[tuple[tuple[str, int, int, str], dict[str, Any]]] = [
        (
            (f.filename, f.row, f.column, f.code),
            {
                "code": f.code,
                "name": RULES_BY_CODE[f.code].name,
                "message": f.message,
                "filename": f.filename,
                "location": {"row": f.row, "column": f.column},
                "end_location": {"row": f.end_row, "column": f.end_column},
                "noqa_row": f.row,
                "fix": _fix_dict(f),
                "url": f.url,
                "kind": f.kind,
            },
        )
        for f in (*result.findings, *result.hints)
    ]
    rows.extend(
        (
            (e.filename, e.row, e.column, e.code),
            {
                "code": e.code,
                "name": None,
                "message": e.description,
                "filename": e.filename,
                "location": {"row": e.row, "column": e.column},
                "end_location": {"row": e.row, "column": e.column},
                "noqa_row": None,
                "fix": None,
                "url": None,
                "kind": "error",
            },
        )
        for e in result.errors
    )
    rows.sort(key=lambda row: row[0])
    return [row for _, row in rows]


def _fix_dict(finding: Finding) -> dict[str, Any] | None:
    fix = finding.fix
    if fix is None:
        return None
    return {
        "applicability": fix.applicability,
        "message": fix.message,
        "edits": [
            {
                "content": e.content,
                "location": {"row": e.row, "column": e.column},
                "end_location": {"row": e.end_row, "column": e.end_column},
            }
            for e in fix.edits
        ],
    }


def render_json(result: LintResult) -> str:
    """A JSON list of findings and file errors (ruff's ``--output-format json`` shape)."""
    return json.dumps(to_dicts(result), indent=2) + "\n"


def _escape_data(text: str) -> str:
    # GitHub workflow command escaping (actions/toolkit ``escapeData`` / ``escapeProperty``).
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(result: LintResult) -> str:
    """GitHub Actions annotations: ``::warning file=…,line=…,col=…,title=MB201::message``
    (hints as ``::notice``)."""
    out = []
    for f in result.findings:
        props = (
            f"file={_escape_property(f.filename)},line={f.row},col={f.column},"
            f"endLine={f.end_row},endColumn={f.end_column},title={f.code}"
        )
        out.append(f"::warning {props}::{_escape_data(f'{f.code} {f.message}')}")
    for f in result.hints:
        props = (
            f"file={_escape_property(f.filename)},line={f.row},col={f.column},"
            f"endLine={f.end_row},endColumn={f.end_column},title={f.code} (hint)"
        )
        out.append(f"::notice {props}::{_escape_data(f'{f.code} hint: {f.message}')}")
    for e in result.errors:
        props = f"file={_escape_property(e.filename)},line={e.row},col={e.column},title=MB000"
        out.append(f"::error {props}::{_escape_data(e.message)}")
    return "".join(line + "\n" for line in out)


def _artifact(filename: str) -> dict[str, str]:
    """A SARIF artifactLocation: relative to ``%SRCROOT%`` (the working directory) when the
    file is under it, else an absolute ``file://`` URI (which takes no base)."""
    path = Path(filename)
    if path.is_absolute():
        try:
            path = path.relative_to(Path.cwd())
        except ValueError:
            return {"uri": path.as_uri()}
    return {"uri": path.as_posix().removeprefix("./"), "uriBaseId": "%SRCROOT%"}


def _rule_markdown(code: str) -> str:
    rule = RULES_BY_CODE[code]
    return (
        f"## {rule.code} {rule.name}\n\n{rule.summary}\n\n"
        f"**Why:** {rule.why}\n\n**Fix:** {rule.fix}\n"
    )


def _sarif_rules() -> list[dict[str, Any]]:
    """Every rule as a SARIF ``reportingDescriptor``, with its help as Markdown."""
    return [
        {
            "id": rule.code,
            "name": rule.name,
            "shortDescription": {"text": rule.summary},
            "fullDescription": {"text": f"{rule.summary} {rule.why}"},
            "help": {"text": f"{rule.why} Fix: {rule.fix}", "markdown": _rule_markdown(rule.code)},
            "defaultConfiguration": {"level": "warning"},
            "properties": {"tags": ["memory", "performance"]},
        }
        for rule in RULES
    ]


def _sarif_location(filename: str, region: dict[str, int]) -> dict[str, Any]:
    """A SARIF ``location`` of ``region`` in ``filename``."""
    return {"physicalLocation": {"artifactLocation": _artifact(filename), "region": region}}


def render_sarif(result: LintResult, version: str = "0") -> str:
    """A SARIF 2.1.0 log that GitHub code scanning accepts.

    Every rule is listed in the driver (with its help text as Markdown, which GitHub shows);
    results point at files by paths relative to the current directory, with ``%SRCROOT%`` as the
    base, which is how GitHub maps them to the repository.

    Args:
        result: The lint result.
        version: The membound version to report as the tool's version.
    """
    index = {rule.code: i for i, rule in enumerate(RULES)}
    results = [
        {
            "ruleId": f.code,
            "ruleIndex": index[f.code],
            # A hint asks for a person's look (SARIF's "review"), at no level: not a failure.
            "kind": "review" if f.hint else "fail",
            "level": "none" if f.hint else "warning",
            "message": {"text": f.message},
            "properties": {"kind": f.kind},
            "locations": [
                _sarif_location(
                    f.filename,
                    {
                        "startLine": f.row,
                        "startColumn": f.column,
                        "endLine": f.end_row,
                        "endColumn": f.end_column,
                    },
                )
            ],
        }
        for f in (*result.findings, *result.hints)
    ]
    notifications = [
        {
            "level": "error",
            "message": {"text": e.message},
            "descriptor": {"id": "MB000"},
            "locations": [
                _sarif_location(e.filename, {"startLine": e.row, "startColumn": e.column})
            ],
        }
        for e in result.errors
    ]
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "membound",
                        "version": version,
                        "semanticVersion": version,
                        "rules": _sarif_rules(),
                    }
                },
                "invocations": [
                    {
                        "executionSuccessful": not result.all_failed,
                        "toolExecutionNotifications": notifications,
                    }
                ],
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"


def render_statistics(result: LintResult) -> str:
    """Findings counted per rule, most frequent first (ruff's ``--statistics``); then the
    hints so counted, when they are shown, and the line that counts them."""
    out = _counted(Counter(f.code for f in result.findings), "")
    if result.hints:
        out += _counted(Counter(f.code for f in result.hints), " (hints)")
    said = hints_line(result)
    return out + (f"{said}\n" if said else "")


def _counted(counts: Counter[str], what: str) -> str:
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return "".join(
        f"{count:>5}\t{code}\t{RULES_BY_CODE[code].name}{what}\n" for code, count in rows
    )


FORMATS: dict[str, Callable[[LintResult], str]] = {
    "text": render_text,
    "json": render_json,
    "sarif": render_sarif,
    "github": render_github,
}


def render(result: LintResult, fmt: str) -> str:
    """Render ``result`` in one of :data:`FORMATS`."""
    return FORMATS[fmt](result)
