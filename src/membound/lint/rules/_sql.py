"""Statements as text: the literal pieces a SQL statement is built from, and whether they bound
it (a LIMIT, an aggregate, keys in a list, the rows of one key or owner given as a parameter)."""

from __future__ import annotations

import ast
import re

from membound.lint.context import ModuleContext
from membound.lint.expression_chains import Link
from membound.lint.rules._owners import key_in_list, names_a_row

__all__ = [
    "aggregate_select",
    "literal_pieces",
    "scoped_by_key",
    "sql_is_bounded",
    "statement_bounded",
]

#: A bind parameter: ``%s``, ``?``, ``:name``, ``$1``, ``%(name)s``.
_PARAM = r"(?:%s|\?|:\w+|\$\d+|%\(\w+\)s)"
#: A value put in by Python before the statement runs: ``%d``/``%s`` (``sql % event.id``), a
#: ``str.format`` field, an f-string's ``{}``.
_FORMATTED = r"(?:%[dis]|\{\w*\})"
#: ``WHERE t.event_id = %s`` / ``AND user_id IN %s`` / ``= ANY(%s)``: a column given a parameter
#: (or one value formatted in: ``WHERE event_id=%d``).
_COLUMN_GIVEN = re.compile(
    rf"\b(?:WHERE|AND)\s+(?:\w+\.)?\"?(\w+)\"?\s*"
    rf"(?:=\s*(?:{_PARAM}|{_FORMATTED})|IN\s*\(?\s*{_PARAM}|=\s*ANY\s*\(\s*{_PARAM})",
    re.IGNORECASE,
)
_WHERE_WORD = re.compile(r"\bWHERE\b", re.IGNORECASE)
_OR = re.compile(r"\bOR\b", re.IGNORECASE)

# A LIMIT (or its dialect spellings) in literal SQL bounds the rows a statement returns. The bound
# may be a number, a driver placeholder (?, %s, %(n)s, :n, $1, @n), a ``str.format`` field ({},
# {n}), or (in the text of an f-string, whose values are shown as {}) anything interpolated.
_BOUND_VALUE = r"(?:\d+|\?|%s|%d|%\(\w+\)[sd]|:\w+|\$\d+|@\w+|\{[^}]*\})"
_LIMIT_RE = re.compile(
    rf"\bLIMIT\s+{_BOUND_VALUE}|\bFETCH\s+(?:APPROX(?:IMATE)?\s+|EXACT\s+)?(?:FIRST|NEXT)\b"
    rf"|\bSELECT\s+(?:DISTINCT\s+)?TOP\b"
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


def scoped_by_key(sql: str) -> bool:
    """``SELECT ... WHERE event_id = %s``: the rows of one key or owner given as a parameter
    (or a list of them), with no ``OR`` that could widen it. A shared attribute
    (``WHERE state = %s``) is no such bound.

    Read on the statement's own ``WHERE`` clause, by parentheses: the key's condition must be
    one of its conditions joined by ``AND`` at the top (``WHERE c.workout_id = :workout_id AND
    (c.user_id = :user_id OR …)`` keeps one workout's rows, whatever the parenthesised ``OR``
    picks among them), not a condition inside a subquery or a group, and an ``OR`` at the top
    could widen it to other rows."""
    clause = _top_where(sql)
    if clause is None:
        return False
    text, depths = clause
    if any(depths[m.start()] == 0 for m in _OR.finditer(text)):
        return False
    return any(
        depths[m.start()] == 0 and names_a_row(m.group(1)) for m in _COLUMN_GIVEN.finditer(text)
    )


#: Where a statement's ``WHERE`` clause ends: its next clause at the same depth.
_AFTER_WHERE = re.compile(
    r"\b(?:GROUP\s+BY|ORDER\s+BY|HAVING|LIMIT|UNION|EXCEPT|INTERSECT|WINDOW|FOR\s+UPDATE)\b",
    re.IGNORECASE,
)


def _top_where(sql: str) -> tuple[str, list[int]] | None:
    """The text of the first ``WHERE`` clause at the statement's own level (outside every
    parenthesis), from ``WHERE`` to its next clause at that level, with the parenthesis depth
    at each of its characters (0 at the top); None when there is none."""
    depth, depths = 0, []
    for char in sql:
        if char == ")":
            depth = max(0, depth - 1)
        depths.append(depth)
        if char == "(":
            depth += 1
    where = next((m for m in _WHERE_WORD.finditer(sql) if depths[m.start()] == 0), None)
    if where is None:
        return None
    end = next(
        (m.start() for m in _AFTER_WHERE.finditer(sql, where.end()) if depths[m.start()] == 0),
        len(sql),
    )
    return sql[where.start() : end], depths[where.start() : end]


def literal_pieces(ctx: ModuleContext, stmt: ast.AST) -> list[str]:
    """The string constants that build ``stmt``: in the expression, and for a name in its one
    assigned value and the text appended to it (``sql += " LIMIT 10"``) in its scope. (A name
    with several alternative values is bounded only when each is: see ``statement_bounded``.)"""
    exprs: list[ast.AST] = [stmt]
    if isinstance(stmt, ast.Name):
        values = ctx.assigned_values(stmt.id, stmt)
        if len(values) == 1:
            exprs.extend(values)
        scope = ctx.scope_of(stmt)
        exprs.extend(
            aug.value
            for aug in ctx.of_type(ast.AugAssign)
            if isinstance(aug.target, ast.Name)
            and aug.target.id == stmt.id
            and ctx.scope_of(aug) is scope
            and aug.lineno <= stmt.lineno
        )
    pieces: list[str] = []
    for expr in exprs:
        for node in ast.walk(expr):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                pieces.append(node.value)
            elif isinstance(node, ast.JoinedStr):
                text = ctx.string_value(node)
                if text is not None:
                    pieces.append(text)
    return pieces


def statement_bounded(ctx: ModuleContext, call: ast.Call) -> bool:
    """Tell whether the statement passed to ``execute``/``scalars`` visibly returns few rows."""
    if not call.args:
        return False
    stmt = call.args[0]
    sql = ctx.string_value(stmt)
    if sql is not None and sql_is_bounded(sql):
        return True
    # SQL assembled from pieces (``base + " LIMIT 10"``, ``sql += f" LIMIT {n}"``): a bounding
    # clause in any literal piece bounds the statement.
    pieces = literal_pieces(ctx, stmt)
    if any(sql_is_bounded(piece) for piece in pieces):
        return True
    if scoped_by_key(" ".join(pieces)):
        return True
    # ``query = "..."`` in each branch of an ``if`` (the statement, or text named inside it:
    # ``from_statement(text(sql))``): bounded when every branch is.
    if any(_text_bounded(ctx, name) for name in _names_in(stmt)):
        return True
    return any(
        (link.kind == "method" and link.name in ("limit", "fetch", "slice", "group_by"))
        or key_in_list(ctx, link)
        or aggregate_select(ctx, link)
        for link in ctx.expand(stmt)
    )


def _names_in(stmt: ast.AST) -> list[ast.Name]:
    """The statement when it is a name, else the names read inside it (``sql`` in
    ``select(M).from_statement(text(sql))``)."""
    return [node for node in ast.walk(stmt) if isinstance(node, ast.Name)]


def _text_bounded(ctx: ModuleContext, name: ast.Name) -> bool:
    """``name`` holds SQL text that returns few rows in each of its assigned values (one per
    branch of an ``if``): a ``LIMIT``, an aggregate, or a key given at its ``WHERE``'s top."""
    texts = [ctx.string_value(v) for v in ctx.assigned_values(name.id, name)]
    return bool(texts) and all(
        t is not None and (sql_is_bounded(t) or scoped_by_key(t)) for t in texts
    )


_AGGREGATES = frozenset({"count", "sum", "avg", "min", "max"})


def aggregate_select(ctx: ModuleContext, link: Link) -> bool:
    """``select(func.count(...))`` / ``query(func.max(...))``: every column an aggregate, so one
    row comes back (with ``group_by``, one per group, which ``group_by`` itself bounds)."""
    if link.kind not in ("method", "func") or link.name not in ("select", "query"):
        return False
    call = link.node
    if not isinstance(call, ast.Call) or not call.args:
        return False
    return all(
        isinstance(arg, ast.Call)
        and isinstance(arg.func, ast.Attribute)
        and arg.func.attr.lower() in _AGGREGATES
        and isinstance(arg.func.value, ast.Name)
        and arg.func.value.id == "func"
        for arg in call.args
    )
