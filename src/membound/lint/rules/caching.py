"""MB3xx: caches and memoized attributes that keep growing or hold a whole result."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from membound.lint.context import DBAPI_ROOTS, SQLALCHEMY_ROOTS, ModuleContext
from membound.lint.expression_chains import Link, links
from membound.lint.findings import Finding, Rule
from membound.lint.rules._loads import judge_load
from membound.lint.rules._queries import django_queryset, sa_query
from membound.lint.rules._sizes import executed_before

__all__ = ["RULES"]


def _unbounded_lru(ctx: ModuleContext, call: ast.Call) -> bool:
    if ctx.qualify(call.func) != "functools.lru_cache":
        return False
    for kw in call.keywords:
        if kw.arg == "maxsize":
            return isinstance(kw.value, ast.Constant) and kw.value.value is None
    return bool(call.args) and isinstance(call.args[0], ast.Constant) and call.args[0].value is None


def _single_entry(ctx: ModuleContext, node: ast.AST) -> bool:
    """A decorated function without parameters (or only ``cls``) caches one entry per class.

    ``self`` does not count: a cache on a method keeps one entry, and the instance, per object.
    """
    func = ctx.parent(node)
    if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    if node not in func.decorator_list:
        return False
    args = func.args
    params = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    return not args.vararg and not args.kwarg and params in ([], ["cls"])


def check_unbounded_cache(ctx: ModuleContext) -> Iterator[Finding]:
    """MB301: ``functools.cache`` / ``lru_cache(maxsize=None)`` at any scope."""
    if "functools" not in ctx.imported_roots:
        return
    for call in ctx.of_type(ast.Call):
        if _single_entry(ctx, call):
            continue
        if _unbounded_lru(ctx, call):
            yield ctx.finding(
                "MB301",
                call,
                "`lru_cache(maxsize=None)` never evicts: one entry per distinct argument, "
                "forever. Give it a `maxsize`",
            )
        elif ctx.qualify(call.func) == "functools.cache":
            yield _cache_finding(ctx, call.func)
    for func in ctx.functions():
        for deco in func.decorator_list:
            if (
                not isinstance(deco, ast.Call)
                and ctx.qualify(deco) == "functools.cache"
                and not _single_entry(ctx, deco)
            ):
                yield _cache_finding(ctx, deco)


def _cache_finding(ctx: ModuleContext, node: ast.AST) -> Finding:
    return ctx.finding(
        "MB301",
        node,
        "`functools.cache` never evicts: one entry per distinct argument, forever. Use "
        "`functools.lru_cache(maxsize=N)`",
    )


def _whole_result(ctx: ModuleContext, expr: ast.AST | None) -> list[Link] | None:
    """The query chain of a whole query result (``.all()`` / ``.fetchall()`` of a query,
    ``list(queryset)``), or None."""
    if expr is None:
        return None
    if isinstance(expr, ast.Call):
        func = expr.func
        if ctx.is_builtin(func, "list", "tuple", "set") and len(expr.args) == 1:
            arg = expr.args[0]
            return django_queryset(ctx, arg, "MB302") or sa_query(ctx, arg, "MB302")
        if isinstance(func, ast.Attribute) and not expr.args:
            if func.attr == "all":
                # Django's ``.all()`` returns another lazy QuerySet: caching it keeps a query,
                # not rows. SQLAlchemy's returns the list of every row.
                return sa_query(ctx, expr, "MB302")
            if func.attr == "fetchall" and not any(
                link.name in ("limit", "fetch") for link in links(expr) if link.kind == "method"
            ):
                return ctx.expand(expr)
    return None


def _self_attr(expr: ast.AST) -> str | None:
    if (
        isinstance(expr, ast.Attribute)
        and isinstance(expr.value, ast.Name)
        and expr.value.id == "self"
    ):
        return expr.attr
    return None


def _memo_test(test: ast.AST) -> str | None:
    """The attribute guarded by ``self.x is None`` / ``not self.x`` / ``not hasattr(self, "x")``."""
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        if isinstance(test.ops[0], (ast.Is, ast.Eq)):
            right = test.comparators[0]
            if isinstance(right, ast.Constant) and right.value is None:
                return _self_attr(test.left)
        return None
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        operand = test.operand
        if (
            isinstance(operand, ast.Call)
            and isinstance(operand.func, ast.Name)
            and operand.func.id == "hasattr"
            and len(operand.args) == 2
            and isinstance(operand.args[0], ast.Name)
            and operand.args[0].id == "self"
            and isinstance(operand.args[1], ast.Constant)
            and isinstance(operand.args[1].value, str)
        ):
            return operand.args[1].value
        return _self_attr(operand)
    return None


def _is_cached_property(ctx: ModuleContext, deco: ast.AST) -> bool:
    qualified = ctx.qualify(deco)
    if qualified is not None:
        return qualified.endswith(".cached_property")
    return isinstance(deco, ast.Name) and deco.id == "cached_property"


def check_memoized_result(ctx: ModuleContext) -> Iterator[Finding]:
    """MB302: an attribute that memoizes a whole query result."""
    if not ctx.imports_any(DBAPI_ROOTS | SQLALCHEMY_ROOTS):
        return
    for node in ctx.of_type(ast.If):
        attr = _memo_test(node.test)
        if attr is None:
            continue
        for stmt in node.body:
            if isinstance(stmt, ast.Assign) and any(_self_attr(t) == attr for t in stmt.targets):
                yield from _memo_finding(ctx, stmt, f"`self.{attr}`", stmt.value)
    for assign in ctx.of_type(ast.Assign):
        value = assign.value
        if not (isinstance(value, ast.BoolOp) and isinstance(value.op, ast.Or)):
            continue
        first = _self_attr(value.values[0])
        if first is not None and any(_self_attr(t) == first for t in assign.targets):
            for later in value.values[1:]:
                yield from _memo_finding(ctx, assign, f"`self.{first}`", later)
    for func in ctx.functions():
        if not any(_is_cached_property(ctx, d) for d in func.decorator_list):
            continue
        for ret in ast.walk(func):
            if isinstance(ret, ast.Return):
                yield from _memo_finding(ctx, ret, f"`@cached_property {func.name}`", ret.value)


def _executed_before(ctx: ModuleContext, value: ast.AST | None) -> ast.Call | None:
    """For ``cur.fetchall()``, the last ``cur.execute(sql)`` before it in its scope: the
    statement whose tables decide its size."""
    if not (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and value.func.attr == "fetchall"
        and isinstance(value.func.value, ast.Name)
    ):
        return None
    cursor, scope = value.func.value.id, ctx.scope_of(value)
    executes: dict[tuple[ast.AST, str], list[ast.Call]] = {
        (scope, cursor): [
            call
            for call in ctx.of_type(ast.Call)
            if isinstance(call.func, ast.Attribute)
            and call.func.attr == "execute"
            and isinstance(call.func.value, ast.Name)
            and call.func.value.id == cursor
            and ctx.scope_of(call) is scope
        ]
    }
    return executed_before(ctx, value, executes)


def _memo_finding(
    ctx: ModuleContext, node: ast.AST, what: str, value: ast.AST | None
) -> Iterator[Finding]:
    """MB302 at ``node`` when ``value`` is a whole query result, judged as every whole-table
    load is (``rules/_loads.py``): a finding only with evidence that its table is big."""
    chain = _whole_result(ctx, value)
    execute = _executed_before(ctx, value) if chain is not None else None
    judged = judge_load(ctx, node, "MB302", chain, execute) if chain is not None else None
    if judged is None:
        return
    yield ctx.finding(
        "MB302",
        node,
        f"{what} memoizes a whole query result{judged.where} for the object's lifetime: keep "
        "the query and iterate it in batches, or memoize only what you need (ids, a count, one "
        "page)",
        kind=judged.kind,
    )


RULES = (
    Rule(
        code="MB301",
        name="unbounded-cache",
        summary="`functools.cache`, `lru_cache(maxsize=None)` or `lru_cache(None)`, at any scope.",
        why=(
            "An unbounded cache keeps one entry per distinct argument for the life of the "
            "process; with open-ended inputs (ids, paths, requests) memory only grows."
        ),
        fix="Use `functools.lru_cache(maxsize=N)` with a size you can afford.",
        check=check_unbounded_cache,
        preview=True,
    ),
    Rule(
        code="MB302",
        name="memoized-query-result",
        summary="An attribute memoizes a whole query result.",
        why=(
            "`self._rows = query.all()` behind `if self._rows is None`, or a `@cached_property` "
            "returning `list(queryset)`, pins every row for as long as the object lives."
        ),
        fix=(
            "Keep the query and iterate it in batches when needed, or memoize something "
            "bounded: ids, a count, one page."
        ),
        check=check_memoized_result,
    ),
)
