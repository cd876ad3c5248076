"""One self-contained HTML page of one or more results: verdicts, tables and embedded charts.

Each result gets a section with its title, its verdict and explanation, its tables (the cells and
sections of ``report/sections.py``, shared with the Markdown and terminal renderers) and its PNG
chart embedded as a base64 ``data:`` URI. A measurement with sites also gets an icicle graph of
its peak: nested ``<div>`` blocks, each as wide as the memory held beneath it, laid out by the
inline style (flex rows) with no script at all. The page needs no network: no external CSS,
scripts or fonts, only a small inline style. Without matplotlib (extra ``plot``) the charts are
left out with a note; the rest of the page is still written.

Written with the standard library (``string.Template`` for the page skeleton in
``templates/page.html``, ``html.escape`` for every piece of text) rather than jinja2, because:
jinja2 is not a dependency of membound and one fixed page does not justify adding one; the only
logic (which tables a result has, which rows) is Python that already exists for the Markdown
report; and every text reaches the markup through one function, :func:`_text`, which escapes it,
so safety does not depend on an autoescape setting.
"""

from __future__ import annotations

import base64
import functools
import io
import os
from collections.abc import Iterable
from html import escape
from string import Template
from typing import IO

from membound._files import write_atomic
from membound._units import format_size
from membound.report.sections import Result, Section, Table, Where, describe, where_tables
from membound.report.sites import PEAK_TITLE, Block, icicle, share_text
from membound.report.text import displayable

__all__ = ["HtmlReporter", "fragment", "html"]

#: Default ``<title>`` and heading of the page.
TITLE = "membound report"


def _text(value: str) -> str:
    """Every text enters the page through here: escaped for element content and attributes,
    with bytes that are not UTF-8 (lone surrogates) shown as U+FFFD, so the page is UTF-8."""
    return escape(displayable(value), quote=True)


def _table_html(t: Table) -> str:
    head = "".join(f"<th>{_text(h)}</th>" for h in t.head)
    body = "\n".join(
        "<tr>" + "".join(f"<td>{_text(c)}</td>" for c in row) + "</tr>" for row in t.rows
    )
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def _chart_html(result: Result, title: str) -> str:
    """The chart as an ``<img>`` with a ``data:`` URI, or a note when matplotlib is missing."""
    from membound.report.chart import chart

    png = io.BytesIO()
    try:
        chart(result, png)
    except ImportError as exc:
        return f'<p class="note">Chart left out: {_text(str(exc))}.</p>'
    data = base64.b64encode(png.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_text("chart: " + title)}">'


#: The icicle graph's look: blocks laid out by the page's own CSS (flex rows), no script. Each
#: block's width is its share of the block above it, set in its ``style`` attribute.
ICICLE_STYLE = (
    ".mb-icicle{margin:.6em 0;font-size:.8em;line-height:1.35;border:1px solid #ccc;padding:1px}"
    ".mb-row{display:flex;flex-direction:row;width:100%}"
    ".mb-node{flex:none;min-width:0;overflow:hidden;box-sizing:border-box}"
    ".mb-block{box-sizing:border-box;overflow:hidden;white-space:nowrap;text-overflow:ellipsis;"
    "padding:.1em .3em;border:1px solid #fff;background:#f3dcb5;color:#222}"
    ".mb-node.python>.mb-block{background:#f0a860}"
    ".mb-node.native>.mb-block{background:#8ec3e6}"
    ".mb-node.other>.mb-block{background:#ddd;color:#555}"
    ".mb-legend{color:#555;font-size:.85em;margin:.2em 0}"
    ".mb-legend span{display:inline-block;width:.9em;height:.9em;margin:0 .25em 0 .8em;"
    "vertical-align:middle;border:1px solid #ccc}"
)


def _block_html(block: Block, parent_bytes: int) -> str:
    """One block and, beneath it, the blocks it called; its width is its bytes over the bytes
    of the block above it."""
    width = 100 * block.bytes / parent_bytes
    figures = f"{format_size(block.bytes)}, {share_text(block.share)}"
    tip = f"{block.label}\n{figures} of the traced memory"
    below = "".join(_block_html(child, block.bytes) for child in block.children)
    return (
        f'<div class="mb-node {block.kind}" style="width:{width:.4f}%" '
        f'data-bytes="{block.bytes}" title="{_text(tip)}">'
        f'<div class="mb-block">{_text(f"{block.label} · {figures}")}</div>'
        + (f'<div class="mb-row">{below}</div>' if below else "")
        + "</div>"
    )


def _icicle_html(where: Where) -> str:
    """The icicle graph of the peak: the outermost user frames on top, each block as wide as the
    memory held beneath it, down to the lines that held it. Plain HTML and CSS: it draws offline,
    in a notebook and in a mail client alike."""
    top = icicle(where.peak)
    total = sum(block.bytes for block in top)
    if not total:
        return ""
    blocks = "".join(_block_html(block, total) for block in top)
    legend = (
        '<p class="mb-legend">Widths: bytes held at the peak.'
        '<span style="background:#f0a860"></span>a Python line'
        '<span style="background:#8ec3e6"></span>native code'
        '<span style="background:#f3dcb5"></span>a caller'
        '<span style="background:#ddd"></span>the rest</p>'
    )
    label = _text(f"{PEAK_TITLE}: icicle graph")
    return (
        f'<div class="mb-icicle" role="group" aria-label="{label}">'
        f'<div class="mb-row">{blocks}</div></div>\n{legend}'
    )


def _where_html(where: Where | None) -> list[str]:
    """The sites under the verdict: the icicle graph of the peak, the tables, how they were
    captured."""
    if where is None:
        return []
    parts = []
    for i, (title, table) in enumerate(where_tables(where)):
        parts.append(f"<h3>{_text(title)}</h3>")
        if i == 0 and where.peak:
            parts.append(_icicle_html(where))
        parts.append(_table_html(table))
    parts += [f'<p class="note">{_text(line)}</p>' for line in where.lines]
    return [p for p in parts if p]


def _section_html(index: int, section: Section, chart_html: str) -> str:
    mood = f" {section.mood}" if section.mood else ""
    parts = [
        f'<section id="result-{index}">',
        f'<h2>{_text(section.title)}<span class="kind">{_text(section.kind)}</span></h2>',
        f'<p class="verdict{mood}"><strong>{_text(section.verdict)}</strong></p>',
        *(f"<p>{_text(line)}</p>" for line in section.lines),
        *(part for where in section.wheres for part in _where_html(where)),
        *(_table_html(t) for t in section.tables),
        *(f'<p class="note">{_text(note)}</p>' for note in section.notes),
        chart_html,
        "</section>",
    ]
    return "\n".join(parts)


#: The page's look, scoped to one result's block for notebooks (Jupyter styles the rest).
_FRAGMENT_STYLE = (
    ".membound-result table{border-collapse:collapse;margin:.5em 0;"
    "font-variant-numeric:tabular-nums}"
    ".membound-result th,.membound-result td{border:1px solid #ccc;padding:.2em .5em;"
    "text-align:left;vertical-align:top}"
    ".membound-result .kind{color:#666;font-size:.8em;font-weight:normal;margin-left:.5em}"
    ".membound-result .verdict.bad strong{color:#900}"
    ".membound-result .verdict.good strong{color:#060}"
    ".membound-result .note{color:#555;font-size:.9em}"
    ".membound-result img{max-width:100%;height:auto}"
    ".membound-result h3{font-size:1em;margin:.8em 0 .2em}" + ICICLE_STYLE
)


def fragment(result: Result, *, chart: bool = True) -> str:
    """One result as an HTML block for a notebook (``_repr_html_``): the page's section with a
    scoped style, and its chart when matplotlib is installed (left out silently otherwise:
    a notebook output is no place for an install hint on every cell).

    Raises:
        TypeError: ``result`` is not a membound result.
    """
    (item,) = _as_results(result)
    section = describe(item)
    picture = _chart_html(item, section.title) if chart else ""
    if picture.startswith('<p class="note">'):
        picture = ""
    body = _section_html(1, section, picture).replace(
        '<section id="result-1">', '<section class="membound-result">', 1
    )
    return f"<div><style>{_FRAGMENT_STYLE}</style>\n{body}\n</div>"


@functools.cache
def _page_template() -> Template:
    # Imported when a page is made, not with the module: the CLI imports this module for
    # every command (5 ms of start-up), few of them write HTML.
    from importlib import resources

    source = resources.files("membound.report") / "templates" / "page.html"
    return Template(source.read_text(encoding="utf-8"))


def _as_results(results: Result | Iterable[Result]) -> tuple[Result, ...]:
    if isinstance(results, Result):
        return (results,)
    items = tuple(results)
    if not items:
        raise ValueError("no results to report")
    for item in items:
        # Checked at run time too: a dict loaded from JSON would otherwise fail deep inside.
        if not isinstance(item, Result):
            raise TypeError(
                "expected Measurement, Comparison, Complexity or LeakReport results, "
                f"got {type(item).__name__}"
            )
    return items


class HtmlReporter:
    """Build an HTML page from one result or several, then ``render(outfile)``.

    Args:
        results: one result or a sequence of results (``Measurement``, ``Comparison``,
            ``Complexity``, ``LeakReport``), shown in order.
        title: the page's title and heading.

    Raises:
        ValueError: ``results`` is an empty sequence.
        TypeError: an item is not a membound result.
    """

    def __init__(self, results: Result | Iterable[Result], *, title: str = TITLE) -> None:
        self.results = _as_results(results)
        self.title = title

    def render(self, outfile: IO[str]) -> None:
        """Write the page to the text stream ``outfile``."""
        from membound._version import __version__

        sections = [describe(r) for r in self.results]
        nav = ""
        if len(sections) > 1:
            items = "\n".join(
                f'<li><a href="#result-{i}">{_text(s.title)}</a> — {_text(s.verdict)}</li>'
                for i, s in enumerate(sections, 1)
            )
            nav = f"<nav>\n<ol>\n{items}\n</ol>\n</nav>"
        body = "\n".join(
            _section_html(i, s, _chart_html(r, s.title))
            for i, (r, s) in enumerate(zip(self.results, sections, strict=True), 1)
        )
        outfile.write(
            _page_template().substitute(
                title=_text(self.title),
                version=_text(__version__),
                nav=nav,
                sections=body,
                icicle_style=ICICLE_STYLE,
            )
        )


def html(
    results: Result | Iterable[Result],
    path: str | os.PathLike[str] | IO[str],
    *,
    title: str = TITLE,
) -> None:
    """Write one self-contained HTML page of ``results`` to ``path``.

    The page is built in memory first, then written whole or not at all: a failure (a full
    disk) leaves an old file of that name as it was, never a half-written one.

    Args:
        results: one result or a sequence of results (``Measurement``, ``Comparison``,
            ``Complexity``, ``LeakReport``), one section each, in order.
        path: a file name, or a text stream to write to.
        title: the page's title and heading.

    Raises:
        ValueError: ``results`` is an empty sequence.
        TypeError: an item is not a membound result.
        OSError: the file cannot be written (its ``filename`` is ``path``).
    """
    page = io.StringIO()
    HtmlReporter(results, title=title).render(page)
    if isinstance(path, str | os.PathLike):
        write_atomic(path, page.getvalue().encode("utf-8"))
    else:
        path.write(page.getvalue())
