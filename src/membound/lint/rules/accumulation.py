"""MB2xx: collecting everything in memory where the data arrives piece by piece."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from membound.lint.context import FUNCTIONS, ModuleContext
from membound.lint.findings import Finding, Fix, Rule
from membound.lint.rules._loads import judge_load
from membound.lint.rules._queries import feeds_choices
from membound.lint.rules._sql import statement_bounded
from membound.lint.rules._streams import database_source, streaming_source, user_streaming

__all__ = ["RULES"]

_ADDERS = frozenset(
    {"append", "extend", "add", "update", "insert", "appendleft", "extendleft", "setdefault"}
)
# Removing items keeps a container at a bounded size (a window, a dedup set that is pruned).
_DRAINERS = frozenset({"clear", "pop", "popleft", "popitem", "remove", "discard"})
_CONTAINER_CALLS = frozenset({"list", "dict", "set", "bytearray"})
_CONTAINER_QUALIFIED = frozenset(
    {
        "collections.defaultdict",
        "collections.OrderedDict",
        "collections.Counter",
        "collections.deque",
    }
)


def _container_kind(ctx: ModuleContext, value: ast.AST) -> str | None:
    """``"list"``, ``"dict"``, ``"set"`` or ``"str"`` for a new container, else None."""
    if isinstance(value, (ast.List, ast.ListComp)):
        return "list"
    if isinstance(value, (ast.Dict, ast.DictComp)):
        return "dict"
    if isinstance(value, (ast.Set, ast.SetComp)):
        return "set"
    if isinstance(value, ast.Constant) and isinstance(value.value, (str, bytes)):
        return "str"
    if isinstance(value, ast.Call):
        if ctx.is_builtin(value.func, *_CONTAINER_CALLS):
            return "set" if value.func.id == "set" else "list"  # type: ignore[attr-defined]
        qualified = ctx.qualify(value.func)
        if qualified in _CONTAINER_QUALIFIED:
            if qualified == "collections.deque" and (
                len(value.args) > 1 or any(kw.arg == "maxlen" for kw in value.keywords)
            ):
                return None  # a deque with maxlen is bounded by construction
            return "list" if qualified == "collections.deque" else "dict"
    return None


def _body_nodes(stmts: list[ast.stmt]) -> Iterator[ast.AST]:
    """Every node under ``stmts``, not descending into nested functions or classes."""
    stack: list[ast.AST] = list(reversed(stmts))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (*FUNCTIONS, ast.ClassDef)):
            continue
        stack.extend(reversed(list(ast.iter_child_nodes(node))))


def _bound_names(target: ast.AST) -> set[str]:
    """Names bound by an assignment target (not the containers of ``x[k] = ...``/``x.a = ...``)."""
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, (ast.Tuple, ast.List)):
        return {n for elt in target.elts for n in _bound_names(elt)}
    if isinstance(target, ast.Starred):
        return _bound_names(target.value)
    return set()


def _loop_targets(loop: ast.For | ast.AsyncFor) -> set[str]:
    return {n.id for n in ast.walk(loop.target) if isinstance(n, ast.Name)}


class _LoopEffects:
    """What a loop body does to names: grows them, augments them, clears or re-binds them."""

    def __init__(self, loop: ast.For | ast.AsyncFor) -> None:
        self.grown: dict[str, ast.stmt | ast.expr] = {}
        self.aug: dict[str, ast.stmt | ast.expr] = {}
        self.cleared: set[str] = set()
        self.bound_here: set[str] = _loop_targets(loop)
        grown, aug, cleared, bound_here = self.grown, self.aug, self.cleared, self.bound_here
        for node in _body_nodes(loop.body):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                if isinstance(owner, ast.Name):
                    if node.func.attr in _ADDERS:
                        grown.setdefault(owner.id, node)
                    elif node.func.attr in _DRAINERS:
                        cleared.add(owner.id)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    # A name re-bound inside the loop is a fresh container each time.
                    cleared |= _bound_names(target)
                    if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
                        if isinstance(target.slice, ast.Slice):
                            cleared.add(target.value.id)  # ``buf[:] = []``
                        else:
                            grown.setdefault(target.value.id, node)
            elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
                if isinstance(node.op, (ast.Add, ast.BitOr)):
                    aug.setdefault(node.target.id, node)
            elif isinstance(node, ast.Delete):
                for target in node.targets:
                    if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
                        cleared.add(target.value.id)
            elif isinstance(node, ast.If):
                cleared |= _flushed_when_full(node)
            elif isinstance(node, (ast.For, ast.AsyncFor)):
                bound_here |= _loop_targets(node)
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    if isinstance(item.optional_vars, ast.Name):
                        bound_here.add(item.optional_vars.id)


def _flushed_when_full(branch: ast.If) -> set[str]:
    """``if len(pending) >= BATCH: flush(pending)``: the containers whose size the test
    checks and that the branch hands to a call — a batch written and emptied every N items
    (the helper clears it; ``pending.clear()`` in the branch is seen as a drain anyway)."""
    sized: set[str] = set()
    for node in ast.walk(branch.test):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "len"
            and len(node.args) == 1
            and isinstance(node.args[0], ast.Name)
        ):
            sized.add(node.args[0].id)
    if not sized:
        return set()
    handed: set[str] = set()
    for stmt in branch.body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Call):
                handed |= {a.id for a in node.args if isinstance(a, ast.Name) and a.id in sized}
    return handed


def _bounded_cursor(ctx: ModuleContext, loop: ast.For | ast.AsyncFor) -> bool:
    """A cursor whose last ``execute`` before the loop is visibly bounded (LIMIT, catalog)."""
    cursor = loop.iter
    if not isinstance(cursor, ast.Name):
        return False
    scope = ctx.scope_of(loop)
    executes = [
        call
        for call in ctx.of_type(ast.Call)
        if isinstance(call.func, ast.Attribute)
        and call.func.attr == "execute"
        and isinstance(call.func.value, ast.Name)
        and call.func.value.id == cursor.id
        and call.lineno <= loop.lineno
        and ctx.scope_of(call) is scope
    ]
    last = max(executes, key=lambda c: (c.lineno, c.col_offset), default=None)
    return last is not None and statement_bounded(ctx, last)


def _added_keys(at: ast.AST) -> ast.expr | None:
    """What a set or dict is keyed by at ``at``: ``v`` of ``s.add(v)``, ``k`` of ``d[k] = ...``."""
    if isinstance(at, ast.Call) and isinstance(at.func, ast.Attribute):
        if at.func.attr in ("add", "setdefault") and at.args:
            return at.args[0]
        return None
    if isinstance(at, ast.Assign) and isinstance(at.targets[0], ast.Subscript):
        return at.targets[0].slice
    return None


def _keys_from_a_fixed_domain(
    ctx: ModuleContext, loop: ast.For | ast.AsyncFor, at: ast.AST
) -> bool:
    """The keys added at ``at`` range over something that does not depend on the streamed
    items: constants, or names bound by an inner ``for`` over an iterable that uses nothing the
    streaming loop binds (``for t in channel_types.values(): seen.add(t.identifier)``). A set
    or dict of such keys is bounded by that domain, however many items stream by."""
    keys = _added_keys(at)
    if keys is None:
        return False
    streamed = _loop_targets(loop) | {
        n
        for node in _body_nodes(loop.body)
        if isinstance(node, ast.Assign)
        for t in node.targets
        for n in _bound_names(t)
    }
    for name in {n.id for n in ast.walk(keys) if isinstance(n, ast.Name)}:
        binder = next(
            (
                a
                for a in ctx.ancestors(at)
                if isinstance(a, (ast.For, ast.AsyncFor))
                and a is not loop
                and ctx.is_within(a, loop)
                and name in _loop_targets(a)
            ),
            None,
        )
        if binder is None:
            return False
        used = {n.id for n in ast.walk(binder.iter) if isinstance(n, ast.Name)}
        if used & streamed or streaming_source(ctx, binder.iter) is not None:
            return False
    return True


def check_accumulator(ctx: ModuleContext) -> Iterator[Finding]:
    """MB201: a container outside a streaming loop grows on every turn of it."""
    reported: set[ast.AST] = set()
    for loop in ctx.for_loops():
        source = streaming_source(ctx, loop.iter)
        if source is None or _bounded_cursor(ctx, loop):
            continue
        kind, where = "finding", ""
        if database_source(ctx, source):
            # Streamed rows grow the container with the table: evidence of the table's size
            # decides (``_loads.py``). Outside batch jobs the rows are mostly one request's
            # (one page's permissions, one post's likes, the configured roles): in three
            # applications the rule was not tuned on, 0 of 14 such findings was a risk,
            # against 5 of 8 in migrations and commands.
            judged = judge_load(ctx, loop.iter, "MB201", ctx.expand(loop.iter))
            if judged is None:
                continue
            kind, where = judged.kind, judged.where
            if user_streaming(ctx, source):
                kind = "finding"  # the user says the helper streams: what it streams is big
        elif "MB201" not in ctx.preview:
            # Files, HTTP bodies and generic chunkers: on real code the loops that collect from
            # them mostly read small files (configuration, key lists): a preview variant.
            continue
        effects = _LoopEffects(loop)
        candidates = [(n, at, False) for n, at in effects.grown.items()]
        candidates += [(n, at, True) for n, at in effects.aug.items()]
        for name, at, is_aug in sorted(candidates, key=lambda c: (c[1].lineno, c[1].col_offset)):
            if name in effects.cleared or name in effects.bound_here or at in reported:
                continue
            values = ctx.assigned_values(name, loop)
            outside = [v for v in values if not ctx.is_within(v, loop)]
            if not outside or len(outside) != len(values):
                continue
            kinds = {_container_kind(ctx, v) for v in outside}
            if None in kinds or feeds_choices(ctx, at, name):
                continue
            if kinds <= {"set", "dict"} and _keys_from_a_fixed_domain(ctx, loop, at):
                continue
            if is_aug and kinds - {"list", "str", "set"}:
                continue
            reported.add(at)
            yield ctx.finding(
                "MB201",
                at,
                f"`{name}` grows on every item of {source}{where}, so the batching is defeated and "
                f"memory is O(n): process and drop each item, or flush and clear `{name}` in "
                "the loop",
                kind=kind,
            )


_SMALL_RANGE = 10_000


def _literal_int(ctx: ModuleContext, expr: ast.AST) -> int | None:
    if isinstance(expr, ast.Constant) and type(expr.value) is int:
        return expr.value
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, (ast.USub, ast.UAdd)):
        inner = _literal_int(ctx, expr.operand)
        if inner is None:
            return None
        return -inner if isinstance(expr.op, ast.USub) else inner
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, (ast.Add, ast.Sub, ast.Mult)):
        left, right = _literal_int(ctx, expr.left), _literal_int(ctx, expr.right)
        if left is None or right is None:
            return None
        if isinstance(expr.op, ast.Add):
            return left + right
        if isinstance(expr.op, ast.Sub):
            return left - right
        # Only small products: a literal such as 10**9 must not cost time to evaluate.
        return left * right if abs(left) < 2**31 and abs(right) < 2**31 else None
    return None


def _is_small_range(ctx: ModuleContext, call: ast.Call) -> bool:
    values = [_literal_int(ctx, a) for a in call.args]
    if call.keywords or not 1 <= len(values) <= 3 or any(v is None for v in values):
        return False
    ints = [v for v in values if v is not None]
    if len(ints) == 3 and ints[2] == 0:
        return True  # range() would raise; nothing is materialised
    return len(range(*ints)) <= _SMALL_RANGE


def _is_range(ctx: ModuleContext, expr: ast.AST) -> bool:
    return isinstance(expr, ast.Call) and ctx.is_builtin(expr.func, "range")


def check_materialized_range(ctx: ModuleContext) -> Iterator[Finding]:
    """MB202: ``list(range(n))`` and friends with a bound that is not a small literal."""
    for call in ctx.of_type(ast.Call):
        if (
            len(call.args) == 1
            and not call.keywords
            and ctx.is_builtin(call.func, "list", "tuple")
            and _is_range(ctx, call.args[0])
        ):
            rng = call.args[0]
            assert isinstance(rng, ast.Call)
            if _is_small_range(ctx, rng) or _needs_a_list(ctx, call):
                continue
            if _sized_by_data_in_hand(rng) and "MB202" not in ctx.preview:
                continue
            yield _range_finding(
                ctx,
                call,
                f"`{call.func.id}(range(...))`",  # type: ignore[attr-defined]
                _iterate_range_fix(ctx, call, rng),
            )
    for starred in ctx.of_type(ast.Starred):
        parent = ctx.parent(starred)
        if (
            isinstance(parent, (ast.List, ast.Tuple, ast.Set))
            and isinstance(starred.ctx, ast.Load)
            and _is_range(ctx, starred.value)
        ):
            rng = starred.value
            assert isinstance(rng, ast.Call)
            if not _is_small_range(ctx, rng):
                yield _range_finding(ctx, parent, "`[*range(...)]`")


#: Calls that change a list in place: ``random.shuffle(xs)``, ``xs.sort()``, ``xs.pop()``...
_LIST_MUTATORS = frozenset(
    {"append", "extend", "insert", "pop", "remove", "sort", "reverse", "clear", "shuffle"}
)


def _needs_a_list(ctx: ModuleContext, call: ast.Call) -> bool:
    """The list is bound to a name that is then changed in place (``parent[i] = j``,
    ``random.shuffle(xs)``, ``xs.pop()``): a ``range`` cannot replace it, and the list is the
    data structure the code needs (a union-find parent array, a shuffled order)."""
    parent = ctx.parent(call)
    if not (
        isinstance(parent, ast.Assign)
        and len(parent.targets) == 1
        and isinstance(parent.targets[0], ast.Name)
    ):
        return False
    name = parent.targets[0].id
    scope = ctx.scope_of(call)
    for node in ast.walk(scope):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.Delete)):
            targets = node.targets if not isinstance(node, ast.AugAssign) else [node.target]
            for target in targets:
                if (
                    isinstance(target, ast.Subscript)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == name
                ):
                    return True
        elif isinstance(node, ast.Call):
            func = node.func
            if (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id == name
                and func.attr in _LIST_MUTATORS
            ):
                return True
            if (
                isinstance(func, (ast.Attribute, ast.Name))
                and (func.attr if isinstance(func, ast.Attribute) else func.id) == "shuffle"
                and node.args
                and isinstance(node.args[0], ast.Name)
                and node.args[0].id == name
            ):
                return True
    return False


def _sized_by_data_in_hand(rng: ast.Call) -> bool:
    """``range(len(items))``: as many numbers as items already in memory, so the list at most
    doubles what is held (a preview variant: the list is O(n) but no new growth)."""
    return any(
        isinstance(arg, ast.Call) and isinstance(arg.func, ast.Name) and arg.func.id == "len"
        for arg in rng.args
    )


def _iterate_range_fix(ctx: ModuleContext, call: ast.Call, rng: ast.Call) -> Fix | None:
    """``for i in list(range(n))`` -> ``for i in range(n)``: the list is only iterated once and
    nobody else can see it, so dropping it changes nothing but the memory."""
    parent = ctx.parent(call)
    iterated = (isinstance(parent, (ast.For, ast.AsyncFor)) and parent.iter is call) or (
        isinstance(parent, ast.comprehension) and parent.iter is call
    )
    text = ctx.source_of(rng)
    if not iterated or text is None:
        return None
    return Fix("iterate the range", (ctx.edit(call, text),))


def _range_finding(ctx: ModuleContext, node: ast.AST, what: str, fix: Fix | None = None) -> Finding:
    return ctx.finding(
        "MB202",
        node,
        f"{what} builds every number in memory (about 36 bytes each): iterate the `range` "
        "itself, which is O(1)",
        fix,
    )


RULES = (
    Rule(
        code="MB201",
        name="accumulator-in-streaming-loop",
        summary=(
            "Inside a loop over a streaming source, a container created outside the loop grows "
            "on every item and is never cleared."
        ),
        why=(
            "The source streams so that memory stays O(1); appending every item to a list made "
            "before the loop brings memory back to O(n) and the batching is defeated."
        ),
        fix=(
            "Process and drop each item, or flush the container and clear it inside the loop "
            "every N items (write a batch, then `buf.clear()`)."
        ),
        check=check_accumulator,
    ),
    Rule(
        code="MB202",
        name="materialized-range",
        summary="`list(range(n))`, `tuple(range(n))` or `[*range(n)]` with a large or unknown n.",
        why=("A `range` is O(1) in memory; a list of it holds n integer objects and n pointers."),
        fix="Iterate the `range` directly, or index it (`range` supports `len`, `in` and `[i]`).",
        check=check_materialized_range,
        preview=True,
    ),
)
