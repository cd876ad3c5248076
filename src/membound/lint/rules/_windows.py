"""Time windows: a query keeping the rows whose date or time lies between two bounds, or after
a moment read from the clock.

``filter(renew_dt__gte=timezone.now() - timedelta(days=30))`` (the last month's renewals),
``filter(eve_time__gte=timezone.now())`` (the timers still to come), ``filter(created__gte=start,
created__lt=end)`` (one month's rows), ``where(Log.ts >= start, Log.ts <= end)`` (a sliding lock
window), ``(Q(start__gte=a, start__lte=b) | Q(end__gte=a, end__lte=b))`` (one week's reports):
a share of the table that grows with the window's length, not with the table's age. Reviewers
of held-out applications labelled such loads "rows of a date window", not whole-table loads.

What stays a load: a bound on one side only, from a value not read from the clock
(``last_login__lt=since``, ``created__gte=since`` with ``since`` a parameter: every row older, or
newer, than a date a caller picks, possibly all of them); a bound inside one branch of an OR
whose other branch has none; ``exclude`` (it keeps the rows outside the window). Conservative, like
every bound the rules read: a value that cannot be followed is no window.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Sequence

from membound.lint.context import ModuleContext
from membound.lint.expression_chains import Link
from membound.lint.rules._owners import conjuncts, last_name

__all__ = ["own_span", "time_window"]

#: Django lookups of a bound, and the side they bound.
_SIDES = {"gt": "lower", "gte": "lower", "lt": "upper", "lte": "upper"}
#: Django transforms between a date column and its lookup (``created__date__gte``).
_TRANSFORMS = frozenset({"date", "time", "year", "month", "day", "week", "quarter", "hour"})
#: Calls and names that read the clock or step from it.
_CLOCK = frozenset(
    {"now", "utcnow", "today", "utc_now", "localtime", "localdate", "timedelta", "relativedelta",
     "time", "monotonic"}
)  # fmt: skip
#: Words of a column or value name that hold a date or a time.
_TIME_WORDS = frozenset(
    {"date", "time", "timestamp", "datetime", "dt", "at", "on", "day", "days", "week", "month",
     "year", "created", "modified", "updated", "expires", "expiry", "expiration", "since",
     "until", "start", "end", "begin", "when", "period", "ts"}
)  # fmt: skip
_FILTERS = frozenset({"filter", "where", "filter_by"})

Bound = tuple[str, str, ast.expr]  # (column, side or "range", value)


def time_window(ctx: ModuleContext, chain: Sequence[Link]) -> bool:
    """The filters of ``chain`` (joined by AND, across its ``filter``/``where`` steps) keep a
    time window: some date or time column is bounded from below and above (``__range``,
    ``between``, or a lower and an upper bound), or from below by a moment read from the clock."""
    bounds: list[Bound] = []
    for call, nodes in _filter_steps(ctx, chain):
        if any(_or_of_windows(ctx, node) for node in nodes):
            return True
        bounds.extend(_step_bounds(call, nodes))
    return _windowed(ctx, bounds)


def _filter_steps(
    ctx: ModuleContext, chain: Sequence[Link]
) -> Iterator[tuple[ast.Call, list[ast.expr]]]:
    """Each ``filter``/``where``/``filter_by`` call of ``chain`` and the conditions it joins by
    AND (its arguments, ``*conditions`` spread)."""
    for link in chain:
        call = link.node
        if link.kind != "method" or link.name not in _FILTERS or not isinstance(call, ast.Call):
            continue
        yield call, [node for arg in _arguments(ctx, call.args) for node in _conditions(ctx, arg)]


def _step_bounds(call: ast.Call, nodes: Iterable[ast.expr]) -> Iterator[Bound]:
    """The bounds one filter step puts on columns: its keywords' and its conditions'."""
    yield from _keyword_bounds(call.keywords)
    for node in nodes:
        yield from _bounds_of(node)


def own_span(ctx: ModuleContext, chain: Sequence[Link]) -> bool:
    """The filters of ``chain`` keep the rows inside one object's own span: a column bounded
    from below and above by two attributes of the same object in hand (``number__gte=
    self.min_ip, number__lte=self.max_ip``: one network's addresses; ``lft__gte=node.lft,
    rght__lte=node.rght`` is a tree's subtree, two columns, and no span here). Not two values
    of a request, a form or the command's options (``options["min"]``): a caller picks them."""
    bounds = [b for call, nodes in _filter_steps(ctx, chain) for b in _step_bounds(call, nodes)]
    lowers: dict[str, set[str]] = {}
    uppers: dict[str, set[str]] = {}
    for column, side, value in bounds:
        if side == "range" and isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == 2:
            pairs = [("lower", value.elts[0]), ("upper", value.elts[1])]
        else:
            pairs = [(side, value)]
        for which, bound in pairs:
            owner = _owner_of_attribute(bound)
            if owner is not None and which in ("lower", "upper"):
                (lowers if which == "lower" else uppers).setdefault(column, set()).add(owner)
    return any(lowers[column] & uppers.get(column, set()) for column in lowers)


#: Roots of values a request, a form or a command's options hand over.
_REQUEST_ROOTS = frozenset(
    {"request", "form", "cleaned_data", "data", "options", "args", "kwargs", "params", "query",
     "GET", "POST"}
)  # fmt: skip


def _owner_of_attribute(value: ast.expr) -> str | None:
    """``self.min_ip`` → ``"self"``, ``net.range.low`` → ``"net.range"``: the object whose
    attribute ``value`` reads; None for anything else or a request's value."""
    if not isinstance(value, ast.Attribute):
        return None
    base = value.value
    parts: list[str] = []
    while isinstance(base, ast.Attribute):
        parts.append(base.attr)
        base = base.value
    if not isinstance(base, ast.Name) or base.id in _REQUEST_ROOTS:
        return None
    if any(part in _REQUEST_ROOTS for part in parts):
        return None
    return ".".join([base.id, *reversed(parts)])


def _windowed(ctx: ModuleContext, bounds: Iterable[Bound]) -> bool:
    lowers: dict[str, list[ast.expr]] = {}
    uppers: dict[str, list[ast.expr]] = {}
    for column, side, value in bounds:
        if side == "lower" and _from_clock(ctx, value):
            return True
        if side == "range" and isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == 2:
            lower, upper = value.elts
            lowers.setdefault(column, []).append(lower)
            uppers.setdefault(column, []).append(upper)
        elif side == "range":
            if _from_clock(ctx, value):
                return True  # ``created__date=timezone.now().date()``: one day
        elif side == "lower":
            lowers.setdefault(column, []).append(value)
        else:
            uppers.setdefault(column, []).append(value)
    return any(
        _one_window(ctx, column, lower, upper)
        for column, found in lowers.items()
        for lower in found
        for upper in uppers.get(column, ())
    )


def _one_window(ctx: ModuleContext, column: str, lower: ast.expr, upper: ast.expr) -> bool:
    """``lower`` and ``upper`` bound a date or time column with a width the code fixes: both
    derive from one value (``first_day_of_month(y, m)`` and ``first_day_of_next_month(y, m)``,
    ``week[0]`` and ``week[1]``), one from the other (``start = end - timedelta(…)``), or from
    the clock. Two values a caller picks (``start_dt``, ``end_dt`` parameters of an export) can
    span the whole table."""
    if not (_time_like(column) or _time_like_value(lower) or _time_like_value(upper)):
        return False
    if _from_clock(ctx, upper) and _from_clock(ctx, lower):
        return True
    low, high = _sources(ctx, lower), _sources(ctx, upper)
    return bool(low & high)


#: Roots of values a request or a caller hands over: sharing one of them is no shared point.
_CALLER_ROOTS = _REQUEST_ROOTS | {"self", "cls"}


def _sources(ctx: ModuleContext, value: ast.expr) -> set[str]:
    """The names a bound is computed from: those of its expression and, for a name assigned
    one value, of that value too."""
    names: set[str] = set()
    for node in ast.walk(value):
        if isinstance(node, ast.Name):
            assigned = ctx.assigned_values(node.id, node)
            if len(assigned) == 1:
                names.update(
                    inner.id for inner in ast.walk(assigned[0]) if isinstance(inner, ast.Name)
                )
            names.add(node.id)
    return names - _CALLER_ROOTS - _CLOCK


def _arguments(ctx: ModuleContext, args: Iterable[ast.expr]) -> Iterator[ast.expr]:
    """The filter's conditions; ``*conditions`` with ``conditions`` one list literal gives its
    items, a name assigned once gives its value."""
    for arg in args:
        if isinstance(arg, ast.Starred) and isinstance(arg.value, ast.Name):
            values = ctx.assigned_values(arg.value.id, arg)
            if len(values) == 1 and isinstance(values[0], (ast.List, ast.Tuple)):
                yield from (v for v in values[0].elts if not isinstance(v, ast.Starred))
        elif isinstance(arg, ast.Name):
            values = ctx.assigned_values(arg.id, arg)
            yield values[0] if len(values) == 1 else arg
        else:
            yield arg


def _conditions(ctx: ModuleContext, expr: ast.expr, depth: int = 0) -> Iterator[ast.expr]:
    """The conditions ``expr`` joins by AND (``conjuncts``), a name assigned one value read
    as that value (``either = Q(…) | Q(…)`` then ``filter(either & Q(kind=k))``)."""
    for node in conjuncts(expr):
        if isinstance(node, ast.Name) and depth < 3:
            values = ctx.assigned_values(node.id, node)
            if len(values) == 1:
                yield from _conditions(ctx, values[0], depth + 1)
                continue
        yield node


def _or_of_windows(ctx: ModuleContext, expr: ast.expr) -> bool:
    """``Q(a…) | Q(b…)`` / ``or_(…)``: every branch keeps a window of its own."""
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.BitOr):
        branches: list[ast.expr] = [expr.left, expr.right]
    elif isinstance(expr, ast.BoolOp) and isinstance(expr.op, ast.Or):
        branches = list(expr.values)
    elif isinstance(expr, ast.Call) and last_name(expr.func) == "or_":
        branches = list(expr.args)
    else:
        return False
    return all(_branch_window(ctx, branch) for branch in branches)


def _branch_window(ctx: ModuleContext, branch: ast.expr) -> bool:
    if _or_of_windows(ctx, branch):
        return True
    bounds: list[Bound] = []
    for node in _conditions(ctx, branch):
        bounds.extend(_bounds_of(node))
    return _windowed(ctx, bounds)


def _bounds_of(node: ast.expr) -> Iterator[Bound]:
    """The bounds one condition sets: a ``Q(…)``'s keywords, ``X.col >= v`` (either way round),
    ``X.col.between(a, b)``."""
    if isinstance(node, ast.Call) and last_name(node.func) == "Q" and not node.args:
        yield from _keyword_bounds(node.keywords)
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if node.func.attr == "between" and len(node.args) == 2:
            column = last_name(node.func.value)
            if column:
                yield column, "lower", node.args[0]
                yield column, "upper", node.args[1]
    elif isinstance(node, ast.Compare) and len(node.ops) == 1:
        left, op, right = node.left, node.ops[0], node.comparators[0]
        if isinstance(right, ast.Attribute) and not isinstance(left, ast.Attribute):
            left, right = right, left
            op = {ast.Gt: ast.Lt(), ast.GtE: ast.LtE(), ast.Lt: ast.Gt(), ast.LtE: ast.GtE()}.get(
                type(op), op
            )
        if isinstance(left, ast.Attribute):
            if isinstance(op, (ast.Gt, ast.GtE)):
                yield left.attr, "lower", right
            elif isinstance(op, (ast.Lt, ast.LtE)):
                yield left.attr, "upper", right


def _keyword_bounds(keywords: Iterable[ast.keyword]) -> Iterator[Bound]:
    for kw in keywords:
        if not kw.arg:
            continue
        parts = kw.arg.split("__")
        lookup = parts[-1]
        columns = [p for p in parts[:-1] if p not in _TRANSFORMS]
        if len(parts) < 2 or not columns:
            continue
        column = "__".join(columns)
        if lookup == "range":
            yield column, "range", kw.value
        elif lookup in _SIDES:
            yield column, _SIDES[lookup], kw.value
        elif lookup == "date":
            yield column, "range", kw.value  # one day, when it is read from the clock


def _from_clock(ctx: ModuleContext, value: ast.expr, depth: int = 0) -> bool:
    """``value`` is read from the clock: ``timezone.now()``, ``now() - timedelta(days=30)``,
    ``date.today()``, or a name assigned only such values."""
    for node in ast.walk(value):
        if isinstance(node, ast.Call) and last_name(node.func) in _CLOCK:
            return True
    if isinstance(value, ast.Name) and depth < 2:
        values = ctx.assigned_values(value.id, value)
        return bool(values) and all(_from_clock(ctx, v, depth + 1) for v in values)
    return False


def _time_like(column: str) -> bool:
    last = column.rsplit("__", maxsplit=1)[-1]
    return any(word in _TIME_WORDS for word in last.lower().split("_"))


def _time_like_value(value: ast.expr) -> bool:
    """A value named for a date or a time (``start_of_month``, ``daterange[0]``)."""
    if isinstance(value, ast.Subscript):
        return _time_like_value(value.value)
    name = last_name(value)
    return bool(name) and any(word in _TIME_WORDS for word in str(name).lower().split("_"))
