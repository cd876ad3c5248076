"""MB4xx: heavy objects built again on every call, request or loop turn."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from membound.lint.context import COMPREHENSIONS, FUNCTIONS, ModuleContext
from membound.lint.expression_chains import dotted
from membound.lint.findings import Finding, Rule

__all__ = ["RULES"]

#: Constructors of pooled or connection-holding objects, by qualified name.
_RESOURCES = frozenset(
    {
        "sqlalchemy.create_engine",
        "sqlalchemy.engine.create_engine",
        "sqlalchemy.ext.asyncio.create_async_engine",
        "sqlalchemy.orm.sessionmaker",
        "sqlalchemy.orm.session.sessionmaker",
        "sqlalchemy.ext.asyncio.async_sessionmaker",
        "httpx.Client",
        "httpx.AsyncClient",
        "requests.Session",
        "requests.session",
        "requests.sessions.Session",
        "boto3.client",
        "boto3.resource",
        "boto3.Session",
        "boto3.session.Session",
        "redis.Redis",
        "redis.StrictRedis",
        "redis.from_url",
        "redis.Redis.from_url",
        "redis.ConnectionPool",
        "redis.asyncio.Redis",
        "redis.asyncio.from_url",
        "aiohttp.ClientSession",
        "pymongo.MongoClient",
        "motor.motor_asyncio.AsyncIOMotorClient",
        "elasticsearch.Elasticsearch",
        "urllib3.PoolManager",
        "psycopg_pool.ConnectionPool",
        "psycopg2.pool.SimpleConnectionPool",
        "psycopg2.pool.ThreadedConnectionPool",
        "google.cloud.storage.Client",
        "google.cloud.bigquery.Client",
        "openai.OpenAI",
        "openai.AsyncOpenAI",
    }
)
_ROUTE_ATTRS = frozenset(
    {
        "route",
        "get",
        "post",
        "put",
        "patch",
        "delete",
        "head",
        "options",
        "websocket",
        "api_route",
    }
)
_WEB_ROOTS = frozenset({"flask", "fastapi", "starlette", "quart", "sanic", "litestar"})
_DJANGO_ROOTS = frozenset({"django", "rest_framework", "ninja"})


def _params(func: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    args = func.args
    return [a.arg for a in (*args.posonlyargs, *args.args)]


def _per_call_context(ctx: ModuleContext, func: ast.AST | None) -> str | None:
    """Describe ``func`` if it runs once per request or event, else None."""
    if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None
    params = _params(func)
    if ctx.imports_any(_WEB_ROOTS):
        for deco in func.decorator_list:
            if (
                isinstance(deco, ast.Call)
                and isinstance(deco.func, ast.Attribute)
                and deco.func.attr in _ROUTE_ATTRS
            ):
                return f"the route `{func.name}`"
    if ctx.imports_any(_DJANGO_ROOTS):
        first = params[1:2] if params[:1] in (["self"], ["cls"]) else params[:1]
        if first == ["request"]:
            return f"the view `{func.name}`"
    if params[-2:] == ["event", "context"]:
        return f"the handler `{func.name}`"
    if func.name == "__call__":
        owner = ctx.parent(func)
        if isinstance(owner, ast.ClassDef) and _is_middleware(owner):
            return f"the middleware `{owner.name}.__call__`"
    return None


def _is_middleware(cls: ast.ClassDef) -> bool:
    if "middleware" in cls.name.lower():
        return True
    for stmt in cls.body:
        if isinstance(stmt, ast.FunctionDef) and stmt.name == "__init__":
            return bool({"get_response", "app"} & set(_params(stmt)))
    return False


def check_resource_per_call(ctx: ModuleContext) -> Iterator[Finding]:
    """MB401: an engine, session factory or client built per request, event or loop turn."""
    for call in ctx.of_type(ast.Call):
        qualified = ctx.qualify(call.func)
        if qualified not in _RESOURCES:
            continue
        where: str | None
        if ctx.enclosing_loop(call) is not None:
            where = "a loop"
        else:
            where = _per_call_context(ctx, ctx.enclosing_function(call))
        if where is None or _closed_in_call(ctx, call):
            continue
        yield ctx.finding(
            "MB401",
            call,
            f"`{qualified}(...)` is built inside {where}, so every call gets its own pool and "
            "buffers: build it once (module level or app start-up) and reuse it",
        )


#: Methods that give a client's pool and buffers back.
_CLOSERS = frozenset({"close", "aclose", "dispose", "shutdown"})
#: Context managers that close what they are given.
_CLOSING = frozenset({"contextlib.closing", "contextlib.aclosing"})


def _closed_in_call(ctx: ModuleContext, call: ast.Call) -> bool:
    """The resource built by ``call`` is closed before the call or loop turn that built it
    ends: built in a ``with``/``async with``, handed to ``contextlib.closing`` or to the
    ``enter_context`` of an exit stack the function enters in a ``with``, or bound to a name
    that the same function (for one built in a loop, the same loop body) closes
    (``client.close()``, ``await session.aclose()``, ``engine.dispose()``) or enters in a
    ``with``, outside an ``except`` handler and any function nested in it. It then holds its
    pool and buffers only while it is used: a cost per call in time, not memory that
    stays."""
    parent = ctx.parent(call)
    if isinstance(parent, ast.withitem):
        return True
    if isinstance(parent, ast.Call) and call in parent.args:
        if ctx.qualify(parent.func) in _CLOSING:
            return True
        if (
            isinstance(parent.func, ast.Attribute)
            and parent.func.attr in ("enter_context", "enter_async_context")
            and isinstance(parent.func.value, ast.Name)
        ):
            # the stack closes it when its own ``with`` ends; a stack kept elsewhere does not
            scope = ctx.enclosing_function(call) or ctx.tree
            stack = parent.func.value.id
            return any(
                isinstance(node, ast.withitem)
                and isinstance(node.optional_vars, ast.Name)
                and node.optional_vars.id == stack
                for node in _own_nodes(scope)
            )
    if isinstance(parent, ast.Await):
        parent = ctx.parent(parent)
    if not isinstance(parent, (ast.Assign, ast.AnnAssign)):
        return False
    targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
    if len(targets) != 1 or not isinstance(targets[0], ast.Name):
        return False
    name = targets[0].id
    scope = ctx.enclosing_loop(call) or ctx.enclosing_function(call) or ctx.tree
    for node in _own_nodes(scope):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _CLOSERS
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == name
        ):
            return True
        if (
            isinstance(node, ast.withitem)
            and isinstance(node.context_expr, ast.Name)
            and node.context_expr.id == name
        ):
            return True
    return False


def _own_nodes(scope: ast.AST) -> Iterator[ast.AST]:
    """The nodes of ``scope`` outside the functions and classes defined in it and outside its
    ``except`` handlers (a close there runs only when something failed)."""
    pending = list(ast.iter_child_nodes(scope))
    while pending:
        node = pending.pop()
        if isinstance(node, (*FUNCTIONS, ast.ClassDef, ast.ExceptHandler)):
            continue
        yield node
        pending.extend(ast.iter_child_nodes(node))


def _names(expr: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(expr) if isinstance(n, ast.Name)}


def _varying(ctx: ModuleContext, loop: ast.AST) -> tuple[set[str], set[str]]:
    """Names and dotted attributes (re)bound on each turn of ``loop``."""
    names: set[str] = set()
    attrs: set[str] = set()
    if isinstance(loop, COMPREHENSIONS):
        for gen in loop.generators:
            names |= _names(gen.target)
        roots: list[ast.AST] = [loop]
    elif isinstance(loop, (ast.For, ast.AsyncFor)):
        names |= _names(loop.target)
        roots = list(loop.body)
    else:
        roots = [loop]
    for root in roots:
        for node in ast.walk(root):
            if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                path = dotted(node)
                if path:
                    attrs.add(path)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
    return names, attrs


def check_loop_invariant_deepcopy(ctx: ModuleContext) -> Iterator[Finding]:
    """MB402: ``copy.deepcopy(x)`` in a loop where ``x`` does not change per turn."""
    if "copy" not in ctx.imported_roots:
        return
    for call in ctx.of_type(ast.Call):
        if len(call.args) != 1 or ctx.qualify(call.func) != "copy.deepcopy":
            continue
        loop = ctx.enclosing_loop(call)
        if loop is None:
            continue
        arg = call.args[0]
        # A call or await in the argument may return something new each time: not invariant.
        if any(isinstance(n, (ast.Call, ast.Await, ast.Yield, *FUNCTIONS)) for n in ast.walk(arg)):
            continue
        names, attrs = _varying(ctx, loop)
        if _names(arg) & names:
            continue
        path = dotted(arg)
        if path and any(path == a or path.startswith(a + ".") for a in attrs):
            continue
        shown = ast.unparse(arg)
        if len(shown) > 40:
            shown = shown[:37] + "..."
        use = _copy_use(ctx, call, loop)
        if use == "mutated":
            continue  # a fresh copy per turn that the turn changes: the copy is the point
        if use == "read":
            advice = "copy once before the loop, or share it read-only"
        else:
            advice = (
                "if no copy is changed later, one copy made before the loop (or the object "
                "shared read-only) would do; if they are, each copy is needed"
            )
        yield ctx.finding(
            "MB402",
            call,
            f"`copy.deepcopy({shown})` copies the same object on every turn of the loop: {advice}",
        )


#: Methods that change a list, dict or set in place (and attribute/item stores, checked apart).
_MUTATORS = frozenset(
    {
        "append",
        "extend",
        "insert",
        "pop",
        "popitem",
        "remove",
        "clear",
        "sort",
        "reverse",
        "update",
        "setdefault",
        "add",
        "discard",
        "difference_update",
        "intersection_update",
        "symmetric_difference_update",
        "__setitem__",
        "__delitem__",
    }
)


def _rooted(expr: ast.AST, name: str) -> bool:
    """``expr`` is ``name`` or reaches into it (``name[k]``, ``name.a.b``)."""
    while isinstance(expr, (ast.Attribute, ast.Subscript)):
        expr = expr.value
    return isinstance(expr, ast.Name) and expr.id == name


_READERS = frozenset({"len", "str", "repr", "print", "bool", "isinstance", "id", "hash", "type"})


def _read_only_use(ctx: ModuleContext, node: ast.Name) -> bool:
    """A use of the copy that only reads it (an item, an attribute, a test, a printout)."""
    parent = ctx.parent(node)
    if isinstance(parent, ast.Subscript) and parent.value is node:
        return True
    if isinstance(parent, ast.Attribute) and parent.value is node:
        grand = ctx.parent(parent)
        return not (isinstance(grand, ast.Call) and grand.func is parent)
    if isinstance(parent, (ast.Compare, ast.FormattedValue, ast.BoolOp, ast.UnaryOp)):
        return True
    if isinstance(parent, (ast.If, ast.While, ast.IfExp, ast.Assert)) and parent.test is node:
        return True
    return (
        isinstance(parent, ast.Call)
        and isinstance(parent.func, ast.Name)
        and parent.func.id in _READERS
    )


def _copy_use(ctx: ModuleContext, call: ast.Call, loop: ast.AST) -> str:
    """How the loop uses the copy: ``"mutated"`` (changed in place), ``"read"`` (bound to a name
    that is only read), or ``"unknown"`` (kept, passed on or returned: it may be changed later).
    """
    parent = ctx.parent(call)
    if not (
        isinstance(parent, ast.Assign)
        and len(parent.targets) == 1
        and isinstance(parent.targets[0], ast.Name)
    ):
        return "unknown"
    name = parent.targets[0].id
    use = "read"
    for node in ast.walk(loop):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            for target in targets:
                if not isinstance(target, ast.Name) and _rooted(target, name):
                    return "mutated"
                if (
                    isinstance(node, ast.AugAssign)
                    and isinstance(target, ast.Name)
                    and target.id == name
                ):
                    return "mutated"
        elif isinstance(node, ast.Call):
            func = node.func
            if (
                isinstance(func, ast.Attribute)
                and _rooted(func.value, name)
                and func.attr in _MUTATORS
            ) or (
                isinstance(func, ast.Name)
                and func.id == "setattr"
                and bool(node.args)
                and _rooted(node.args[0], name)
            ):
                return "mutated"
        elif (
            use == "read"
            and isinstance(node, ast.Name)
            and node.id == name
            and isinstance(node.ctx, ast.Load)
            and not _read_only_use(ctx, node)
        ):
            use = "unknown"
    return use


RULES = (
    Rule(
        code="MB401",
        name="resource-per-call",
        summary=(
            "An engine, session factory, HTTP or cloud client is built inside a loop, a web "
            "route or view, a Lambda-style handler or a middleware `__call__`."
        ),
        why=(
            "These objects own connection pools, TLS contexts and buffers meant to be shared. "
            "One per request or per item multiplies that memory (and leaks it when a pool "
            "is never disposed)."
        ),
        fix="Build it once at module level or at application start-up and reuse it.",
        check=check_resource_per_call,
    ),
    Rule(
        code="MB402",
        name="loop-invariant-deepcopy",
        summary="`copy.deepcopy(x)` inside a loop where `x` does not depend on the loop.",
        why=(
            "Every turn makes a full private copy of the same object (the per-subscriber clone "
            "in a fan-out): n copies where one, or none, would do."
        ),
        fix=(
            "When the copies are only read: copy once before the loop, or share the object "
            "read-only (e.g. a frozen mapping). A copy that each turn changes is not reported."
        ),
        check=check_loop_invariant_deepcopy,
        preview=True,
    ),
)
