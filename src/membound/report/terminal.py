"""Results in a terminal: the sections of ``report/sections.py`` as rich tables on a terminal;
on a pipe or in a file, plain lines with Markdown-style tables (a table wrapped at a guessed
width splits words); and aligned text where rich markup has no place (pytest's summary,
failure messages).

The one terminal renderer: the CLI, the pytest plugin and the demo print through it, so a figure
reads the same wherever it is shown.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table as RichTable
from rich.text import Text

from membound.report.markdown import table_lines
from membound.report.sections import (
    Result,
    Section,
    Table,
    Where,
    describe,
    where_tables,
)

__all__ = [
    "labelled_lines",
    "plain_lines",
    "renderable",
    "result_text",
    "rich_table",
    "section_renderable",
    "section_text",
]

_MOOD_STYLE = {"good": "green", "bad": "red bold", "": "bold"}


def rich_table(table: Table, *, title: str | None = None, caption: str | None = None) -> RichTable:
    """``table`` as a rich table (figures right-aligned, text left-aligned); long cells wrap
    instead of being cut to ``…``."""
    out = RichTable(title=title, caption=caption)
    for head, right in zip(table.head, _right_aligned(table), strict=True):
        out.add_column(head, justify="right" if right else "left", overflow="fold")
    for row in table.rows:
        out.add_row(*(Text(cell) for cell in row))
    return out


def section_renderable(section: Section) -> RenderableType:
    """A section: its title and verdict, its lines, each table, its notes."""
    style = _MOOD_STYLE.get(section.mood, "bold")
    parts: list[RenderableType] = [
        Text.assemble((section.title, "bold"), ": ", (section.verdict, style))
    ]
    parts += [Text(line) for line in section.lines]
    for where in section.wheres:
        parts += _where_renderables(where)
    parts += [rich_table(t) for t in section.tables]
    parts += [Text(note, style="dim") for note in section.notes]
    return Group(*parts)


def _where_renderables(where: Where) -> list[RenderableType]:
    """The sites under the verdict: a titled table at the peak (and at the end), then how they
    were captured, dimmed."""
    parts: list[RenderableType] = []
    for title, table in where_tables(where):
        shown = rich_table(table, title=title)
        shown.title_justify = "left"
        parts.append(shown)
    parts += [Text(line, style="dim") for line in where.lines]
    return parts


def renderable(result: Result) -> RenderableType:
    """What the CLI prints for ``result``."""
    return section_renderable(describe(result))


def _numeric(cells: tuple[str, ...]) -> bool:
    """True when every cell of a column is a figure (starts with a digit or a sign; "-" is
    an empty figure)."""
    return all(c.lstrip("+-−")[:1].isdigit() for c in cells if c not in ("", "-"))


def _right_aligned(table: Table) -> list[bool]:
    """Which columns hold figures (right-aligned); the first column is always a name."""
    columns = list(zip(*table.rows, strict=True)) if table.rows else [()] * len(table.head)
    return [i > 0 and bool(col) and _numeric(col) for i, col in enumerate(columns)]


def section_text(section: Section) -> str:
    """A section as plain text for a pipe or a file: lines stay whole (no wrapping at a guessed
    width), tables are Markdown-style rows."""
    lines = [f"{section.title}: {section.verdict}", *section.lines]
    for where in section.wheres:
        for title, table in where_tables(where):
            lines += ["", title, *table_lines(table)]
        if where.lines:
            lines += ["", *where.lines]
    for table in section.tables:
        lines += ["", *table_lines(table)]
    if section.notes:
        lines += ["", *section.notes]
    return "\n".join(lines) + "\n"


def result_text(result: Result) -> str:
    """What the CLI prints for ``result`` when stdout is not a terminal."""
    return section_text(describe(result))


def plain_lines(table: Table, *, indent: str = "") -> list[str]:
    """``table`` as aligned plain text, headings first: columns two spaces apart, figures
    right-aligned, text left-aligned."""
    rows = [table.head, *table.rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(table.head))]
    right = _right_aligned(table)
    return [
        indent
        + "  ".join(
            cell.rjust(w) if r else cell.ljust(w)
            for cell, w, r in zip(row, widths, right, strict=True)
        ).rstrip()
        for row in rows
    ]


def labelled_lines(label: str, table: Table, *, indent: str = "  ") -> list[str]:
    """One line per row of ``table``: ``label``, the first cell, then each other cell followed
    by its column's heading as its unit (``site  app.py:12  56 B/call  1.00 blocks/call``)."""
    return [
        f"{indent}{label}  {row[0]}  "
        + "  ".join(f"{cell} {head}" for cell, head in zip(row[1:], table.head[1:], strict=True))
        for row in table.rows
    ]
