"""MB5xx: fetching more of each row than the code uses."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from membound.lint.context import SQLALCHEMY_ROOTS, ModuleContext
from membound.lint.findings import Finding, Rule
from membound.lint.rules._loads import judge_load
from membound.lint.rules._queries import (
    column_status,
    django_queryset,
    is_one_column_comprehension,
    sa_query,
)

__all__ = ["RULES"]


def _rows_used_elsewhere(ctx: ModuleContext, source: ast.expr) -> bool:
    """``plugins`` in ``[p.name for p in plugins]`` is read somewhere else in its scope too
    (``for plugin in plugins: ... plugin.enabled``): the whole rows are needed there, and
    asking the database for one column would load them twice."""
    if not isinstance(source, ast.Name):
        return False
    scope = ctx.scope_of(source)
    return any(
        node is not source
        and node.id == source.id
        and isinstance(node.ctx, ast.Load)
        and ctx.scope_of(node) is scope
        for node in ctx.of_type(ast.Name)
    )


def check_full_rows(ctx: ModuleContext) -> Iterator[Finding]:
    """MB501: a comprehension over an unbounded query that keeps one attribute per row."""
    if not ctx.imports_any(SQLALCHEMY_ROOTS | {"django"}):
        return
    comps: list[ast.ListComp | ast.SetComp | ast.GeneratorExp] = [
        *ctx.of_type(ast.ListComp),
        *ctx.of_type(ast.SetComp),
        *ctx.of_type(ast.GeneratorExp),
    ]
    for comp in comps:
        if is_one_column_comprehension(ctx, comp):
            elt = comp.elt
            assert isinstance(elt, ast.Attribute)
            column = elt.attr
            gen = comp.generators[0]
            if _rows_used_elsewhere(ctx, gen.iter):
                continue  # the rows were loaded for more than this column
            chain = django_queryset(ctx, gen.iter) or sa_query(ctx, gen.iter) or []
            # Outside batch jobs the rows are mostly a few (a page, one owner's, the configured
            # ones): on real code nearly all such findings were no risk. Evidence of the
            # table's size decides (``_loads.py``).
            judged = judge_load(ctx, comp, "MB501", chain)
            if judged is None:
                continue
            django = bool(django_queryset(ctx, gen.iter))
            ask = f"`values_list('{column}', flat=True)`" if django else f"`select(Model.{column})`"
            if column_status(ctx, chain, column) == "column":
                advice = f"ask the database for that column ({ask}), in batches if unbounded"
            else:
                # The model is not in this module: `.{column}` may be a property or a relation,
                # for which asking the database for "the column" is wrong. Say so.
                advice = (
                    f"if `{column}` is a column, ask the database for it alone ({ask}); if it "
                    "is a property or a relation, the rows are needed: load them in batches"
                )
            yield ctx.finding(
                "MB501",
                comp,
                f"whole rows are loaded to keep only `.{column}`{judged.where}: {advice}",
                kind=judged.kind,
            )


RULES = (
    Rule(
        code="MB501",
        name="full-rows-for-one-column",
        summary="A comprehension over an unbounded query keeps one attribute of each row.",
        why=(
            "Every row becomes a full model instance (all columns, plus ORM state) only to be "
            "reduced to one value; the instances dominate memory."
        ),
        fix=(
            "Select just that column: `values_list('col', flat=True)` (Django) or "
            "`select(Model.col)` (SQLAlchemy); iterate in batches if the result is unbounded."
        ),
        check=check_full_rows,
    ),
)
