"""Expression chains (``User.objects.filter(a=1)[:10]`` as links) and bounds visible in
literal SQL: the vocabulary the rules and :class:`~membound.lint.context.ModuleContext` share."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

__all__ = ["Link", "dotted", "links", "sql_is_bounded"]

# A LIMIT (or its dialect spellings) in literal SQL bounds the rows a statement returns. The bound
# may be a number, a driver placeholder (?, %s, %(n)s, :n, $1, @n), a ``str.format`` field ({},
# {n}), or (in the text of an f-string, whose values are shown as {}) anything interpolated.
_BOUND_VALUE = r"(?:\d+|\?|%s|%d|%\(\w+\)[sd]|:\w+|\$\d+|@\w+|\{[^}]*\})"
_LIMIT_RE = re.compile(
    rf"\bLIMIT\s+{_BOUND_VALUE}|\bFETCH\s+(FIRST|NEXT)\b|\bSELECT\s+(?:DISTINCT\s+)?TOP\b"
    rf"|\bROWNUM\s*<=?\s*{_BOUND_VALUE}",
    re.IGNORECASE,
)
# A SELECT whose list starts with an aggregate returns one row; with GROUP BY, one row per group:
# a summary, a fraction of the rows it reads (duplicate checks, counts per state or per day).
_AGGREGATE_RE = re.compile(r"^\s*SELECT\s+(COUNT|MAX|MIN|SUM|AVG)\s*\(", re.IGNORECASE)
_GROUP_BY_RE = re.compile(r"\bGROUP\s+BY\b", re.IGNORECASE)
# Catalog queries (PRAGMA, SHOW, information_schema, pg_catalog, sqlite_master, SQL Server's
# sys.*, Oracle's data dictionary) return one row per table, column or index: bounded by the
# schema, not the data.
_DICTIONARY = (
    r"(?:tables|tab_\w+|views|mviews|constraints|cons_columns|indexes|ind_\w+|sequences|"
    r"triggers|objects|synonyms|col_comments|lobs|identity_cols)"
)
_CATALOG_RE = re.compile(
    r"^\s*(?:PRAGMA|SHOW|DESCRIBE|DESC|EXPLAIN)\b|\b(?:FROM|JOIN)\s+sys\.\w+"
    r"|\b(?:FROM|JOIN)\s+(?:\w+\.)?"
    rf"(?:information_schema\b|pg_\w+|sqlite_master\b|sqlite_schema\b|"
    rf"(?:user|all|dba)_{_DICTIONARY}\b)",
    re.IGNORECASE,
)


def sql_is_bounded(sql: str) -> bool:
    """Tell whether literal SQL visibly returns a bounded number of rows.

    Args:
        sql: The statement text.

    Returns:
        True for a ``LIMIT``/``FETCH FIRST``/``TOP``/``ROWNUM`` clause, an aggregate (one row,
        or one per group), or a catalog query (bounded by the schema's size, not the data's).
    """
    if _LIMIT_RE.search(sql) or _CATALOG_RE.search(sql):
        return True
    return bool(_AGGREGATE_RE.search(sql) or _GROUP_BY_RE.search(sql))


@dataclass(frozen=True)
class Link:
    """One step of an expression chain such as ``User.objects.filter(a=1)[:10]``.

    ``kind`` is ``"name"`` (the root name), ``"attr"`` (attribute access), ``"method"`` (a call
    of an attribute: ``.filter(...)``), ``"func"`` (a call of a bare name: ``list(...)``),
    ``"call"`` (a call of anything else), ``"sub"`` (subscript or slice) or ``"other"`` (any
    other root).
    """

    kind: str
    """The step's kind (see the class docstring)."""
    name: str
    """The attribute, method or function name; empty for other kinds."""
    node: ast.AST
    """The AST node of this step (the ``Call`` for calls)."""


def links(expr: ast.AST) -> list[Link]:
    """Split an expression chain into its steps, root first.

    Args:
        expr: The outermost expression, e.g. the iterable of a ``for``.

    Returns:
        The steps from the root (a name or other expression) to ``expr`` itself.
    """
    out: list[Link] = []
    node: ast.AST = expr
    while True:
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute):
                out.append(Link("method", func.attr, node))
                node = func.value
                continue
            if isinstance(func, ast.Name):
                out.append(Link("func", func.id, node))
                break
            out.append(Link("call", "", node))
            node = func
            continue
        if isinstance(node, ast.Attribute):
            out.append(Link("attr", node.attr, node))
            node = node.value
            continue
        if isinstance(node, ast.Subscript):
            out.append(Link("sub", "", node))
            node = node.value
            continue
        if isinstance(node, ast.Await):
            node = node.value
            continue
        if isinstance(node, ast.Name):
            out.append(Link("name", node.id, node))
        else:
            out.append(Link("other", "", node))
        break
    out.reverse()
    return out


def dotted(expr: ast.AST) -> str | None:
    """Return ``a.b.c`` for a chain of attributes on a name, else None."""
    parts: list[str] = []
    node = expr
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))
