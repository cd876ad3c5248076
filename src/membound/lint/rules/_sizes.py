"""The size of what a query reads, for the loading rules: its model's table, or the tables its
SQL names (``lint/evidence.py``); None without sizes, or when no size is known."""

from __future__ import annotations

import ast
from collections.abc import Sequence

from membound.lint.context import ModuleContext
from membound.lint.evidence import TableSize
from membound.lint.expression_chains import Link
from membound.lint.rules._models import (
    get_model_call,
    looped_models,
    model_name,
    model_path,
    named_model_call,
)
from membound.lint.rules._sql import literal_pieces

__all__ = ["executed_before", "query_size"]

#: Calls whose first argument is the statement a query runs.
_STATEMENT_CALLS = frozenset({"execute", "exec_driver_sql", "text", "from_statement", "raw"})


def executed_before(
    ctx: ModuleContext, call: ast.Call, executes: dict[tuple[ast.AST, str], list[ast.Call]]
) -> ast.Call | None:
    """The last ``cur.execute(...)`` before ``cur.fetchall()`` on the same cursor and scope."""
    func = call.func
    if not isinstance(func, ast.Attribute) or not isinstance(func.value, ast.Name):
        return None
    before = [
        c
        for c in executes.get((ctx.scope_of(call), func.value.id), [])
        if (c.lineno, c.col_offset) <= (call.lineno, call.col_offset)
    ]
    return max(before, key=lambda c: (c.lineno, c.col_offset)) if before else None


def _statement_texts(ctx: ModuleContext, calls: Sequence[ast.AST]) -> list[str]:
    texts: list[str] = []
    for call in calls:
        if isinstance(call, ast.Call) and call.args:
            texts.extend(literal_pieces(ctx, call.args[0]))
    return texts


def query_size(
    ctx: ModuleContext, chain: Sequence[Link] | None, execute: ast.Call | None = None
) -> TableSize | None:
    """The size that decides for the query ``chain`` (run by ``execute`` when given)."""
    evidence = ctx.evidence
    if evidence is None:
        return None
    found = get_model_call(ctx, chain) if chain else None
    if found is not None:
        app, model = found
        # The app's own model or table, never another app's model of the same name.
        size = evidence.of_app_model(app, model)
        if size is not None:
            return size
    looped = [evidence.of_app_model(app, model) for app, model in looped_models(ctx, chain or [])]
    if looped and all(size is not None for size in looped):
        # every table the loop walks is known: the biggest decides
        return max((s for s in looped if s is not None), key=lambda s: s.rows)
    big = [s for s in looped if s is not None and not s.small]
    if big:
        return max(big, key=lambda s: s.rows)
    if chain:
        named = named_model_call(ctx, chain)
        if named is not None:
            size = evidence.of_model(None, named)  # the project's model of that name
            if size is not None:
                return size
        name = model_name(ctx, list(chain))
        if name is not None:
            size = evidence.of_model(model_path(ctx, name), name)
            if size is not None:
                return size
    calls: list[ast.AST] = [
        link.node
        for link in chain or ()
        if link.kind in ("method", "func") and link.name in _STATEMENT_CALLS
    ]
    if execute is not None:
        calls.append(execute)
    return evidence.of_sql(_statement_texts(ctx, calls)) if calls else None
