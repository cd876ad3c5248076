"""Code that never runs: a load there loads nothing.

Two kinds, both read from the code, never guessed:

* a statement after ``return``, ``raise``, ``continue`` or ``break`` in the same block;
* a function nothing calls: its name occurs nowhere else in the project linted (not in code,
  a string, a URL conf, a schedule or a template; tests do not count, they run no production
  job); its module is one the project uses (named outside tests, or holding an entry point:
  a module only another project imports has its callers there); no decorator may register
  it (routes, tasks, receivers; ``@transaction.atomic`` or ``@property`` register nothing);
  it is no entry point of a batch job; and, for a method, its class is plain (models,
  managers, plain classes: ``lint/call_graph.py``) and the name is no hook a framework calls.
  Only a run over a whole project (a folder with its ``pyproject.toml``, ``setup.py``,
  ``manage.py``…) knows every caller; other runs judge no function uncalled.

On the tuning rounds this took out five false findings (a command's helper no command
calls, a manager method the application stopped using, a function only tests call). On
round 10 it first took out ten true ones too: the functions of an API module that another
project calls and nothing in the tree imports, hence the module's own use.
"""

from __future__ import annotations

import ast

from membound.lint.context import ModuleContext
from membound.lint.rules._owners import last_name

__all__ = ["never_runs"]

_ENDS_BLOCK = (ast.Return, ast.Raise, ast.Continue, ast.Break)
#: Decorators that wrap a function and register it nowhere (by their last name): a function
#: with only these is called by name or not at all.
_WRAPPING_DECORATORS = frozenset(
    {"staticmethod", "classmethod", "property", "cached_property", "atomic", "lru_cache",
     "cache", "wraps", "abstractmethod", "override", "contextmanager", "asynccontextmanager",
     "setter", "getter", "deleter", "reify", "non_atomic_requests"}
)  # fmt: skip


def _registers(decorator: ast.expr) -> bool:
    """A decorator that may register its function somewhere (a route, a task, a signal's
    receiver, a plugin hook): anything but :data:`_WRAPPING_DECORATORS`."""
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return last_name(target) not in _WRAPPING_DECORATORS


def _after_block_end(ctx: ModuleContext, node: ast.AST) -> bool:
    """``node`` is in a statement that follows a ``return``/``raise``/``continue``/``break``
    of its own block."""
    for stmt in [node, *ctx.ancestors(node)]:
        if not isinstance(stmt, ast.stmt):
            continue
        parent = ctx.parent(stmt)
        if parent is None:
            return False
        for field in ("body", "orelse", "finalbody", "handlers"):
            block = getattr(parent, field, None)
            if isinstance(block, list) and any(s is stmt for s in block):
                before = block[: next(i for i, s in enumerate(block) if s is stmt)]
                if any(isinstance(s, _ENDS_BLOCK) for s in before):
                    return True
                break
    return False


def _uncalled_function(ctx: ModuleContext, node: ast.AST) -> str | None:
    """The name of a function around ``node`` that nothing calls, or None."""
    calls = ctx.evidence.calls if ctx.evidence is not None else None
    if calls is None or not calls.unreferenced:
        return None
    scopes = [
        a
        for a in ctx.ancestors(node)
        if isinstance(a, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    ]
    qualified = ".".join(a.name for a in reversed(scopes))
    in_function = any(isinstance(a, (ast.FunctionDef, ast.AsyncFunctionDef)) for a in scopes)
    if in_function and calls.reached(ctx.filename, qualified) is not None:
        return None  # batch code an entry point reaches: it runs
    for scope in scopes:
        if not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if any(_registers(d) for d in scope.decorator_list):
            continue
        owner = ctx.parent(scope)
        cls = owner.name if isinstance(owner, ast.ClassDef) else None
        if calls.never_called(ctx.filename, scope.name, cls):
            return scope.name
    return None


def never_runs(ctx: ModuleContext, node: ast.AST) -> bool:
    """``node`` is in code that never runs (see the module docstring)."""
    return _after_block_end(ctx, node) or _uncalled_function(ctx, node) is not None
