"""The size of what a query reads, for the loading rules: its model's table, the tables its
SQLAlchemy statement selects from, or the tables its SQL names (``lint/evidence.py``); None
without sizes, or when no size is known."""

from __future__ import annotations

import ast
from collections.abc import Sequence

from membound.lint.context import ModuleContext
from membound.lint.evidence import TableSize, deciding
from membound.lint.expression_chains import Link
from membound.lint.rules._models import (
    alternatives,
    get_model_call,
    looped_models,
    model_name,
    model_path,
    named_model_call,
)
from membound.lint.rules._owners import last_name
from membound.lint.rules._sql import literal_pieces

__all__ = ["executed_before", "query_size"]

#: SQLAlchemy's statement builders whose arguments are what the statement reads.
_SELECTING = frozenset({"select", "query", "select_from"})
#: Attributes through which a Core table's columns are reached: ``tbl.c.id``.
_COLUMN_COLLECTIONS = frozenset({"c", "columns"})
#: SQLAlchemy Core's table objects: ``sa.table("db_dbnode", ...)``, ``Table("host", meta, ...)``.
_TABLE_CALLS = frozenset({"table", "Table"})
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
    walked = deciding(looped)  # the tables the loop walks: the biggest decides
    if walked is not None:
        return walked
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
        selected = _selected_size(ctx, chain)
        if selected is not None:
            return selected
    calls: list[ast.AST] = [
        link.node
        for link in chain or ()
        if link.kind in ("method", "func") and link.name in _STATEMENT_CALLS
    ]
    if execute is not None:
        calls.append(execute)
    return evidence.of_sql(_statement_texts(ctx, calls)) if calls else None


def _selected_size(ctx: ModuleContext, chain: Sequence[Link]) -> TableSize | None:
    """The size that decides for what a SQLAlchemy statement selects from, named by its
    entities' columns (``query(Host.id)``, ``select(Host.id, Host.ip)``) or by Core tables
    (``select(node_tbl)``, ``select(node_tbl.c.id)``, ``node_tbl.select()`` with ``node_tbl =
    sa.table("db_dbnode", ...)``): the biggest when one is big, a small one when every source
    is known and small, else None. The same rows are read whichever columns are asked for."""
    evidence = ctx.evidence
    assert evidence is not None
    sources: list[ast.expr] = []
    roots: list[ast.expr] = []
    chains = [list(chain)]
    for link in chain:
        if (
            link.kind == "method"
            and link.name in ("execute", "scalars", "exec")
            and isinstance(link.node, ast.Call)
            and link.node.args
        ):
            chains.append(ctx.expand(link.node.args[0]))
    for steps in chains:
        if steps and steps[0].kind == "name" and isinstance(steps[0].node, ast.expr):
            roots.append(steps[0].node)  # ``node_tbl.select()``, ``Host.query``
        for link in steps:
            if link.kind in ("method", "func") and isinstance(link.node, ast.Call):
                if link.name in _SELECTING:
                    sources.extend(link.node.args)
                elif "table" in link.name.lower():
                    sources.append(link.node)  # ``nodes.select()``, ``nodes`` followed
    found = [_source_size(ctx, source) for source in sources]
    # a chain's root is a source only when it names a table (``db`` or ``session`` is none,
    # and no unknown source either)
    found += [size for size in (_source_size(ctx, root) for root in roots) if size is not None]
    return deciding(found)


def _source_size(ctx: ModuleContext, source: ast.expr, depth: int = 0) -> TableSize | None:
    """The size of the table ``source`` reads: a mapped class or a Core table, or a column of
    one (``Host.id``, ``node_tbl.c.uuid``); for a name that takes several in turn (a loop over
    models, a parameter every call gives a model, a loop over every table of the schema), the
    biggest."""
    evidence = ctx.evidence
    assert evidence is not None
    if isinstance(source, ast.Attribute) and not source.attr[:1].isupper():
        owner = source.value
        if isinstance(owner, ast.Attribute) and owner.attr in _COLUMN_COLLECTIONS:
            owner = owner.value
        source = owner
    if isinstance(source, ast.Attribute) and source.attr[:1].isupper():
        return evidence.of_model(ctx.qualify(source), source.attr)
    if isinstance(source, ast.Call):
        return _table_call_size(ctx, source)
    if not isinstance(source, ast.Name):
        return None
    if _walks_every_table(ctx, source):
        # ``for table in metadata.sorted_tables``: an export or a check of the whole schema,
        # judged by its biggest table (of those the code linted knows)
        return max(
            (
                evidence.sized(rows, table)
                for table, rows in evidence.sizes.tables.items()
                if table not in evidence.unmatched
            ),
            key=lambda s: s.rows,
            default=None,
        )
    values = ctx.assigned_values(source.id, source)
    for value in values:
        if isinstance(value, ast.Call) and "table" in (last_name(value.func) or "").lower():
            return _table_call_size(ctx, value)
    if not values and depth == 0:
        taken = deciding([_source_size(ctx, v, depth + 1) for v in alternatives(ctx, source)])
        if taken is not None:
            return taken
    if source.id[:1].isupper():
        return evidence.of_model(model_path(ctx, source.id), source.id)
    return None


def _table_call_size(ctx: ModuleContext, call: ast.Call) -> TableSize | None:
    """The size of the table a call names: ``sa.table("db_dbnode", ...)``, ``Table("host",
    meta)``, or a helper named for tables given the name (``inspect_table(metadata,
    "core__media_entries")``, ``get_table("jobs")``) when that string names a table of the
    sizes."""
    evidence = ctx.evidence
    assert evidence is not None
    called = (last_name(call.func) or "").lower()
    if "table" not in called:
        return None
    given = call.args[:1] if last_name(call.func) in _TABLE_CALLS else call.args[:2]
    for arg in given:
        name = ctx.string_value(arg)
        rows = evidence.sizes.table_rows(name) if name is not None else None
        if name is not None and rows is not None:
            return evidence.sized(rows, name)
    return None


def _walks_every_table(ctx: ModuleContext, name: ast.Name) -> bool:
    """``name`` is the target of a loop over every table or model of the schema: SQLAlchemy's
    ``metadata.sorted_tables`` or ``metadata.tables.values()``, Django's ``apps.get_models()``
    (also through ``reversed(...)`` or ``list(...)``)."""
    for loop in ctx.ancestors(name):
        if not (
            isinstance(loop, ast.For)
            and isinstance(loop.target, ast.Name)
            and loop.target.id == name.id
        ):
            continue
        walked = loop.iter
        for _ in range(3):
            if not isinstance(walked, ast.Call):
                break
            func = walked.func
            if (
                isinstance(func, ast.Attribute)
                and func.attr == "get_models"
                and last_name(func.value) == "apps"  # the registry, not one app's config
            ):
                return True
            if isinstance(func, ast.Name) and walked.args:
                walked = walked.args[0]  # ``reversed(metadata.sorted_tables)``
            elif isinstance(func, ast.Attribute):
                walked = func.value  # ``metadata.tables.values()``
            else:
                return False
        if not isinstance(walked, ast.Attribute):
            return False
        owner = (last_name(walked.value) or "").lower()
        return walked.attr == "sorted_tables" or (
            walked.attr == "tables" and owner.endswith(("metadata", "meta"))
        )
    return False
