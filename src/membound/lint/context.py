"""What the rules know about one module: imports, assignments per scope, parents, and the
expression chain a local name stands for (its links: ``expression_chains.py``).

Every existing linter rule for these patterns matches one expression. The rules here need a little
more: which libraries the module imports (a rule fires only where its library is in play), what a
local name was assigned (``qs = Model.objects.filter(...)`` then ``for x in qs``), and which loop
or function encloses a node. One walk over the tree collects all of it; the rules then look only
at the node types they care about.
"""

from __future__ import annotations

import ast
import os
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar

from membound.lint.expression_chains import Link, dotted, links
from membound.lint.findings import Edit, Finding, Fix
from membound.lint.syntax_walk import LEAF_SINGLETONS, child_fields

if TYPE_CHECKING:
    from membound.lint.evidence import Evidence

__all__ = [
    "COMPREHENSIONS",
    "DBAPI_ROOTS",
    "FUNCTIONS",
    "MODEL_GETTERS",
    "SQLALCHEMY_ROOTS",
    "ModuleContext",
]

N = TypeVar("N", bound=ast.AST)

#: Top-level packages whose presence marks a module as one that talks to a database through a
#: DB-API cursor (``.fetchall()``). ``django`` is here because ``connection.cursor()`` is DB-API.
DBAPI_ROOTS = frozenset(
    {
        "sqlite3",
        "psycopg",
        "psycopg2",
        "pymysql",
        "MySQLdb",
        "mysql",
        "cx_Oracle",
        "oracledb",
        "pyodbc",
        "aiosqlite",
        "duckdb",
        "snowflake",
        "sqlalchemy",
        "django",
    }
)
SQLALCHEMY_ROOTS = frozenset({"sqlalchemy", "flask_sqlalchemy", "sqlmodel"})

SCOPES = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
LOOPS = (ast.For, ast.AsyncFor, ast.While)
COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)
#: Statements whose blocks run on some runs only: a value given there reaches a later use as
#: one of several.
_BRANCHING = (ast.If, ast.Try, ast.ExceptHandler, ast.Match, ast.match_case)
#: Query steps that narrow the rows: a filter, a page, a single row.
_NARROWING = frozenset(
    {"filter", "filter_by", "where", "exclude", "get", "limit", "first", "one", "one_or_none",
     "scalar", "paginate", "slice", "fetch", "none", "in_bulk", "count", "exists", "aggregate",
     "with_parent", "get_or_none", "latest", "earliest", "last"}
)  # fmt: skip
#: Statements that end a block: what follows them in it never runs.
_LEAVES = (ast.Return, ast.Raise, ast.Continue, ast.Break)


def _same_block(ctx: ModuleContext, first: ast.AST, second: ast.AST) -> bool:
    """``first`` and ``second`` sit in statements of the same block."""
    block = ctx.block_of(first)[1]
    return bool(block) and block is ctx.block_of(second)[1]


def _leaves_its_block(ctx: ModuleContext, value: ast.AST) -> bool:
    """The statement of ``value`` is followed in its block by a ``return``, ``raise``,
    ``continue`` or ``break``: the value never reaches a use after the block."""
    statement, block = ctx.block_of(value)
    after = False
    for stmt in block:
        if stmt is statement:
            after = True
        elif after and isinstance(stmt, _LEAVES):
            return True
    return False


#: Calls that give a model class by its app label and name: a migration's ``apps.get_model``,
#: swapper's ``load_model``, helpers built on them (``get_swapped_model(apps, app, name)``).
MODEL_GETTERS = frozenset({"get_model", "load_model", "get_swapped_model", "swapper_load_model"})


class ModuleContext:
    """Facts about one parsed module, gathered in one walk, shared by every rule.

    Args:
        tree: The parsed module.
        filename: The path reported in findings.
        lines: The source split into lines (for character columns and ``noqa``).
        selected: The rule codes that run; lets a general rule defer to a more specific one.
        streaming_calls: Extra names of project-specific streaming helpers (configuration).
        preview: Codes whose preview variants run (``preview = true`` or selected by full code).
        small_models: Models the user declared small (``small-models``).
        large_models: Models the user declared unbounded (``large-models``).
        evidence: Table sizes and the model → table map of the run (``--db``/``--sizes``).
    """

    def __init__(
        self,
        tree: ast.Module,
        filename: str,
        lines: Sequence[str],
        *,
        selected: frozenset[str] = frozenset(),
        streaming_calls: frozenset[str] = frozenset(),
        preview: frozenset[str] = frozenset(),
        small_models: frozenset[str] = frozenset(),
        large_models: frozenset[str] = frozenset(),
        evidence: Evidence | None = None,
    ) -> None:
        self.tree = tree
        self.evidence = evidence
        #: The file's dotted module path, where the run knows it (a project linted whole).
        self.module: str | None = (
            evidence.calls.modules.get(filename)
            if evidence is not None and evidence.calls is not None
            else None
        )
        self.filename = filename
        self.lines = lines
        self.selected = selected
        self.streaming_calls = streaming_calls
        self.preview = preview
        self.small_models = small_models
        self.large_models = large_models
        self.parents: dict[ast.AST, ast.AST] = {}
        self._by_type: dict[type[ast.AST], list[ast.AST]] = defaultdict(list)
        #: local name -> fully qualified name it was imported as (``pd`` -> ``pandas``).
        self.aliases: dict[str, str] = {}
        #: first component of every absolute import (``django``, ``sqlalchemy``, ...).
        self.imported_roots: set[str] = set()
        #: names bound at module level by ``def``/``class``/assignment (they shadow builtins).
        self.module_names: set[str] = set()
        #: names of functions in this module whose body contains ``yield`` (generators).
        self.generator_functions: set[str] = set()
        #: per-module results that rules compute once and share (keyed by the rule's own name).
        self.memo: dict[str, object] = {}
        #: Calls of a helper rebuilt with a caller's arguments (:meth:`_rebuilt`).
        self._rebuilt_calls: dict[tuple[int, tuple[tuple[str, int], ...]], ast.Call] = {}
        self._assignments: dict[ast.AST, dict[str, list[ast.expr]]] = defaultdict(
            lambda: defaultdict(list)
        )
        self._walk()

    # -- collection -------------------------------------------------------------------------

    def _walk(self) -> None:
        parents = self.parents
        by_type = self._by_type
        # One pre-order walk in source order that records parents as it goes: ast.walk plus
        # iter_child_nodes would visit every child twice (this walk is most of the lint time).
        # Load/Store contexts are shared singletons, not part of the tree's shape: skipped.
        skip = LEAF_SINGLETONS
        node_type = ast.AST
        stack: list[ast.AST] = [self.tree]
        pop, push = stack.pop, stack.append
        while stack:
            node = pop()
            kind = type(node)
            by_type[kind].append(node)
            fields = child_fields(kind)
            # Fields and list items are pushed last-first, so that nodes pop in source order.
            for field in fields:
                value = getattr(node, field, None)
                if type(value) is list:
                    for child in reversed(value):
                        if isinstance(child, node_type) and not isinstance(child, skip):
                            parents[child] = node
                            push(child)
                elif isinstance(value, node_type) and not isinstance(value, skip):
                    parents[value] = node
                    push(value)
        for imp in self.of_type(ast.Import):
            for alias in imp.names:
                root = alias.name.partition(".")[0]
                self.imported_roots.add(root)
                if alias.asname:
                    self.aliases[alias.asname] = alias.name
                else:
                    self.aliases[root] = root
        for imp_from in self.of_type(ast.ImportFrom):
            if imp_from.level:
                self._relative_import(imp_from)
                continue
            if not imp_from.module:
                continue
            self.imported_roots.add(imp_from.module.partition(".")[0])
            for alias in imp_from.names:
                if alias.name != "*":
                    self.aliases[alias.asname or alias.name] = f"{imp_from.module}.{alias.name}"
        for stmt in self.tree.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.module_names.add(stmt.name)
            elif isinstance(stmt, ast.Assign):
                for target in stmt.targets:
                    if isinstance(target, ast.Name):
                        self.module_names.add(target.id)
        for kind in (ast.Yield, ast.YieldFrom):
            for node in self.of_type(kind):
                func = self.enclosing_function(node)
                if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    self.generator_functions.add(func.name)
        for assign in self.of_type(ast.Assign):
            for target in assign.targets:
                if isinstance(target, ast.Name):
                    self._record(target, assign.value)
        for ann in self.of_type(ast.AnnAssign):
            if isinstance(ann.target, ast.Name) and ann.value is not None:
                self._record(ann.target, ann.value)
        for walrus in self.of_type(ast.NamedExpr):
            self._record(walrus.target, walrus.value)
        for item in self.of_type(ast.withitem):
            if isinstance(item.optional_vars, ast.Name):
                self._record(item.optional_vars, item.context_expr)

    def _record(self, target: ast.Name, value: ast.expr) -> None:
        self._assignments[self.scope_of(target)][target.id].append(value)

    def _relative_import(self, node: ast.ImportFrom) -> None:
        """``from ..models import Notice``: the names it binds, qualified from this file's own
        module path when the run knows it (two apps' ``Notice`` are two models)."""
        if self.module is None:
            return
        parts = self.module.split(".") if self.module else []
        if os.path.basename(self.filename) == "__init__.py":
            parts.append("__init__")  # a package's ``.`` is the package itself
        if node.level > len(parts):
            return
        above = parts[: len(parts) - node.level]
        base = ".".join([*above, node.module] if node.module else above)
        if not base:
            return
        for alias in node.names:
            if alias.name != "*":
                self.aliases[alias.asname or alias.name] = f"{base}.{alias.name}"

    # -- queries ----------------------------------------------------------------------------

    def of_type(self, kind: type[N]) -> list[N]:
        """Every node of exactly this type in the module, in walk order."""
        return self._by_type.get(kind, [])  # type: ignore[return-value]

    def functions(self) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
        """Every ``def`` and ``async def`` in the module."""
        return [*self.of_type(ast.FunctionDef), *self.of_type(ast.AsyncFunctionDef)]

    def for_loops(self) -> list[ast.For | ast.AsyncFor]:
        """Every ``for`` and ``async for`` loop in the module."""
        return [*self.of_type(ast.For), *self.of_type(ast.AsyncFor)]

    def imports_any(self, roots: frozenset[str] | set[str]) -> bool:
        """Tell whether the module imports any of these top-level packages."""
        return not self.imported_roots.isdisjoint(roots)

    def imports_project_model(self) -> bool:
        """Whether the module imports one of the linted project's models: a module that
        queries through them (``Model.query``, ``store.query(Model)``) need not import
        SQLAlchemy itself."""
        if self.evidence is None:
            return False
        known = self.memo.get("imports_project_model")
        if known is None:
            tables = self.evidence.tables
            known = any(tables.known(target) for target in self.aliases.values())
            self.memo["imports_project_model"] = known
        return bool(known)

    def parent(self, node: ast.AST) -> ast.AST | None:
        """The node's parent, or None for the module."""
        return self.parents.get(node)

    def ancestors(self, node: ast.AST) -> Iterator[ast.AST]:
        """The node's ancestors, nearest first."""
        current = self.parents.get(node)
        while current is not None:
            yield current
            current = self.parents.get(current)

    def scope_of(self, node: ast.AST) -> ast.AST:
        """The innermost module, function, lambda or class that contains ``node``."""
        for anc in self.ancestors(node):
            if isinstance(anc, SCOPES):
                return anc
        return self.tree

    def enclosing_function(self, node: ast.AST) -> ast.AST | None:
        """The innermost function or lambda containing ``node``, or None at module level."""
        for anc in self.ancestors(node):
            if isinstance(anc, FUNCTIONS):
                return anc
        return None

    def enclosing_loop(self, node: ast.AST) -> ast.AST | None:
        """The innermost loop whose body (not its header) repeats ``node``, within its function.

        Comprehensions count as loops for their element and conditions. The search stops at a
        function boundary: a function defined in a loop runs when it is called, not per turn.
        """
        child = node
        once: ast.AST | None = None
        for anc in self.ancestors(node):
            if isinstance(anc, (*FUNCTIONS, ast.ClassDef)):
                return None
            if isinstance(anc, (ast.For, ast.AsyncFor)) and any(s is child for s in anc.body):
                return anc
            if isinstance(anc, ast.While) and (
                child is anc.test or any(s is child for s in anc.body)
            ):
                return anc
            if isinstance(anc, ast.comprehension) and child is anc.iter:
                comp = self.parents.get(anc)
                # The first generator's iterable is evaluated once, outside the loop.
                if isinstance(comp, COMPREHENSIONS) and comp.generators[0] is anc:
                    once = comp
            if isinstance(anc, COMPREHENSIONS) and anc is not once:
                return anc
            child = anc
        return None

    def is_within(self, node: ast.AST, container: ast.AST) -> bool:
        """Tell whether ``node`` is ``container`` or one of its descendants."""
        if node is container:
            return True
        return any(anc is container for anc in self.ancestors(node))

    def assigned_values(self, name: str, at: ast.AST) -> list[ast.expr]:
        """Values assigned to ``name`` in the scope that contains ``at`` (module scope as fallback).

        Only plain ``name = value``, annotated assignments, walrus and ``with ... as name`` count;
        a name that is a parameter, a loop target or unpacked has no values here.
        """
        scope = self.scope_of(at)
        values = self._assignments.get(scope, {}).get(name)
        if values:
            return values
        if scope is not self.tree and not self._is_local(name, scope):
            return self._assignments.get(self.tree, {}).get(name, [])
        return []

    def _is_local(self, name: str, scope: ast.AST) -> bool:
        if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            args = scope.args
            every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
            every += [a for a in (args.vararg, args.kwarg) if a is not None]
            return any(a.arg == name for a in every)
        return False

    def expand(self, expr: ast.AST, depth: int = 0) -> list[Link]:
        """Return the chain of ``expr`` with a root local name replaced by what it was assigned.

        ``qs = Model.objects.filter(x=1)`` then ``qs.order_by("y")`` expands to the links of
        ``Model.objects.filter(x=1).order_by("y")``. Re-assignments that extend the name
        (``qs = qs[:10]``) add their steps too, so a bound applied anywhere is seen. A name
        given values in the branches of an ``if``/``try`` before the use expands to the branch
        that narrows nothing (the use sees it on some runs); a name assigned two unrelated
        values otherwise is left unexpanded: the rules then stay quiet.
        """
        return self._through_filtersets(self._expanded(expr, depth), depth)

    def _expanded(self, expr: ast.AST, depth: int) -> list[Link]:
        chain = links(expr)
        root = chain[0]
        if depth > 4:
            return chain
        returned = self._returned_by(chain, expr)
        if returned is not None:
            value, rest = returned
            inner = self.expand(value, depth + 1)
            bound = self._arguments_of(chain[rest - 1].node, value)
            if bound:
                inner = self._bind(inner, bound, depth)
            return inner + chain[rest:]
        if root.kind != "name":
            return chain
        values = self.assigned_values(root.name, expr)
        if not values:
            return chain
        base = [v for v in values if not _rooted_at(v, root.name)]
        extensions = [v for v in values if _rooted_at(v, root.name)]
        if not base:
            # a parameter narrowed in place (``query = query.limit(n)`` in a helper handed the
            # query): its steps, on the name, which the caller's argument may then replace
            row = getattr(expr, "lineno", 0)
            steps = [v for v in extensions if v.lineno <= row and self._kept(v, root.name, expr)]
            return [chain[0], *(s for v in steps for s in links(v)[1:]), *chain[1:]]
        if len(base) > 1:
            # ``q = a.select()`` ... ``q = b.select()`` then ``conn.execute(q)``: the value that
            # reaches the use is the last one assigned before it at its own level or an outer
            # one (an assignment in a branch the use is not in may not have run).
            latest = self._reaching_value(base, expr)
            branches_end = None
            if latest is None:
                latest = self._unnarrowed_branch(base, expr)
                if latest is None:
                    return chain
                branches_end = self._branches_end(latest, expr)
            base = [latest]
            row = getattr(expr, "lineno", 0)
            extensions = [
                v
                for v in extensions
                if latest.lineno <= v.lineno <= row
                # after the branches, or in the branch of the value: not another branch's
                and (
                    branches_end is None or v.lineno > branches_end or _same_block(self, v, latest)
                )
            ]
        if len(base) != 1 or self._assigned_later(base[0], expr):
            return chain
        # ``if uid: qs = qs.filter(owner=uid)`` bounds only the path through the branch: the
        # use also sees the query without it, so a filter that may not have run adds nothing.
        # A page (``if limit: qs = qs[:limit]``) is kept: the size of a page is the caller's
        # to give, and callers that page rarely ask for every row.
        extensions = [v for v in extensions if self._kept(v, root.name, expr)]
        expanded = self.expand(base[0], depth + 1)
        for ext in extensions:
            expanded = expanded + links(ext)[1:]
        return expanded + chain[1:]

    def _through_filtersets(self, chain: list[Link], depth: int) -> list[Link]:
        """``chain`` with a django-filter ``FilterSet(request.GET, queryset=qs).qs`` replaced by
        ``qs``: the filters the request may give are optional, so the rows are those of ``qs``
        (a filter that may not run bounds nothing, as for ``if x: qs = qs.filter(...)``)."""
        for i in range(1, len(chain)):
            call = chain[i - 1].node
            if chain[i].kind != "attr" or chain[i].name != "qs" or not isinstance(call, ast.Call):
                continue
            named = chain[i - 1].name
            if "Filter" not in named:
                continue  # ``StudyFilter``, ``MGSummaryListFilter``: django-filter's classes
            given = next((k.value for k in call.keywords if k.arg == "queryset"), None)
            if given is None and len(call.args) >= 2:
                given = call.args[1]  # ``FilterSet(data, queryset)``
            if given is not None and depth <= 4:
                return self.expand(given, depth + 1) + chain[i + 1 :]
        return chain

    def _returned_by(self, chain: list[Link], use: ast.AST) -> tuple[ast.expr, int] | None:
        """What a call at the root of ``chain`` returns, when the module defines it with one
        ``return``: ``get_users()`` (a function of the module) or ``self.get_queryset()`` (a
        method of the class around ``use``); and where the rest of the chain starts. A query
        built in one function and iterated in another is the same query."""
        if chain[0].kind == "func":
            func = self._defined_once(self.tree.body, chain[0].name)
            rest = 1
        elif (
            chain[0].kind == "name"
            and chain[0].name == "self"
            and len(chain) > 1
            and chain[1].kind == "method"
        ):
            cls = next((a for a in self.ancestors(use) if isinstance(a, ast.ClassDef)), None)
            func = self._defined_once(cls.body, chain[1].name) if cls is not None else None
            rest = 2
        else:
            return None
        if func is None or self.is_within(use, func):
            return None  # none, several, or itself (recursion)
        if chain[0].name in MODEL_GETTERS:
            return None  # ``get_swapped_model(apps, "radius", "Nas")``: its strings name the model
        returns = [
            node
            for node in ast.walk(func)
            if isinstance(node, ast.Return)
            and node.value is not None
            and self.enclosing_function(node) is func
        ]
        return (returns[0].value, rest) if len(returns) == 1 and returns[0].value else None

    def _arguments_of(self, call: ast.AST, value: ast.expr) -> dict[str, ast.expr]:
        """The parameters of the function that returns ``value``, bound to the arguments
        ``call`` passes (positional after ``self``/``cls`` for a method, and keywords):
        ``model_query(context, models.Volume)`` binds ``model`` to ``models.Volume``."""
        func = self.enclosing_function(value)
        if not isinstance(call, ast.Call) or not isinstance(
            func, (ast.FunctionDef, ast.AsyncFunctionDef)
        ):
            return {}
        params = [a.arg for a in (*func.args.posonlyargs, *func.args.args)]
        if isinstance(call.func, ast.Attribute) and params[:1] in (["self"], ["cls"]):
            params = params[1:]
        bound: dict[str, ast.expr] = {}
        for name, arg in zip(params, call.args, strict=False):
            if isinstance(arg, ast.Starred):
                break
            bound[name] = arg
        vararg = func.args.vararg
        if vararg is not None and len(call.args) <= len(params):
            # ``query(model, *args)`` called with no extra argument: ``*args`` is empty
            bound["*" + vararg.arg] = _NO_ARGUMENTS
        named = {a.arg for a in (*func.args.args, *func.args.kwonlyargs)}
        for kw in call.keywords:
            if kw.arg in named:
                bound[kw.arg] = kw.value
        return bound

    def _bind(self, chain: list[Link], bound: dict[str, ast.expr], depth: int) -> list[Link]:
        """``chain`` (read in a helper) with the helper's parameters replaced by the caller's
        arguments: a root parameter by the argument's own chain (``def active(q): return
        q.filter(…)``), a parameter among a call's arguments by the argument
        (``session.query(model)`` → ``session.query(models.Volume)``). The calls rebuilt
        for it keep their place in the tree (their parent is the original's)."""
        if chain and chain[0].kind == "name" and chain[0].name in bound:
            chain = self.expand(bound[chain[0].name], depth + 1) + chain[1:]
        out: list[Link] = []
        for link in chain:
            node = link.node
            if isinstance(node, ast.Call) and any(_bound_in(a, bound) for a in node.args):
                out.append(Link(link.kind, link.name, self._rebuilt(node, bound)))
            else:
                out.append(link)
        return out

    def _rebuilt(self, node: ast.Call, bound: dict[str, ast.expr]) -> ast.Call:
        """``node`` with the arguments ``bound`` gives; one copy per call and binding, however
        often the rules expand the same use (each copy is also a parent entry)."""
        key = (id(node), tuple((name, id(arg)) for name, arg in bound.items()))
        rebuilt = self._rebuilt_calls.get(key)
        if rebuilt is None:
            args = [
                bound[a.id] if isinstance(a, ast.Name) and a.id in bound else a
                for a in node.args
                if not (isinstance(a, ast.Starred) and _bound_in(a, bound))
            ]
            rebuilt = ast.copy_location(
                ast.Call(func=node.func, args=args, keywords=node.keywords), node
            )
            parent = self.parents.get(node)
            if parent is not None:
                self.parents[rebuilt] = parent
            self._rebuilt_calls[key] = rebuilt
        return rebuilt

    @staticmethod
    def _defined_once(
        body: list[ast.stmt], name: str
    ) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        """The one function ``name`` defined directly in ``body``; None when none or several."""
        found = [
            s
            for s in body
            if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) and s.name == name
        ]
        return found[0] if len(found) == 1 else None

    def _assigned_later(self, value: ast.expr, use: ast.AST) -> bool:
        """``value`` is assigned after ``use`` in the same scope, outside any loop around the
        use: it cannot reach it (``items = cached(); for x in items: ...; items = qs``)."""
        if getattr(value, "lineno", 0) <= getattr(use, "lineno", 0):
            return False
        if self.scope_of(value) is not self.scope_of(use):
            return False  # a module global used in a function: it runs later
        loops = {id(a) for a in self.ancestors(use) if isinstance(a, (ast.For, ast.While))}
        return not any(id(a) in loops for a in self.ancestors(value))

    def _kept(self, step: ast.expr, name: str, use: ast.AST) -> bool:
        """A step ``name = name.…`` bounds the query at ``use``: it runs on every path to the
        use, or it cuts a page (the size of a page is the caller's to give) — unless the page
        is cut only under a test of a parameter that has no page by default (``def
        list_runs(limit=None): … if limit: qs = qs[:limit]``: a call that leaves it out reads
        every row)."""
        if self._runs_on_every_path(step, name, use):
            return True
        return _pages(step) and not self._left_out_by_default(step)

    def _left_out_by_default(self, step: ast.expr) -> bool:
        """``step`` sits in the body of an ``if`` that tests a parameter of the function
        around it for having a value (``if limit:``, ``if limit is not None:``, ``if limit >
        0:``), the parameter's default is ``None``, ``0``, ``False`` or empty, and the function
        never assigns it (``limit = limit or 25`` gives it one)."""
        function = next(
            (
                a
                for a in self.ancestors(step)
                if isinstance(a, (ast.FunctionDef, ast.AsyncFunctionDef))
            ),
            None,
        )
        if function is None:
            return False
        empty = set(_parameters_without_a_value(function.args))
        empty -= {
            node.id
            for node in ast.walk(function)
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)
        }
        node: ast.AST = step
        for branch in self.ancestors(step):
            if branch is function:
                break
            if (
                isinstance(branch, ast.If)
                and any(s is node for s in branch.body)
                and any(_tests_for_a_value(t, empty) for t in _conjoined(branch.test))
            ):
                return True
            node = branch
        return False

    def _runs_on_every_path(self, value: ast.expr, name: str, use: ast.AST) -> bool:
        """The assignment of ``value`` to ``name`` runs on every path to ``use``: each block
        between it and the scope encloses the use too, or is a ``with``/``try`` body, or is a
        branch of an ``if`` whose other branch assigns ``name`` on every path of its own
        (``if a: qs = qs.filter(x=a)`` / ``else: qs = qs.filter(y=b)``). A loop body, an
        ``except`` handler or a ``match`` case may not run."""
        enclosing = set(map(id, self.ancestors(use)))
        scope = self.scope_of(value)
        node: ast.AST = value
        while True:
            parent = self.parent(node)
            if parent is None or parent is scope or id(parent) in enclosing:
                return True
            if isinstance(parent, ast.If) and isinstance(node, ast.stmt):
                other = parent.orelse if node in parent.body else parent.body
                if not _assigns_on_every_path(other, name):
                    return False
            elif isinstance(
                parent, ast.For | ast.AsyncFor | ast.While | ast.ExceptHandler | ast.match_case
            ):
                return False
            node = parent

    def _unnarrowed_branch(self, values: list[ast.expr], use: ast.AST) -> ast.expr | None:
        """Of the values a name is given in the branches of an ``if``/``try``/``match`` before
        ``use`` (``if name: qs = X.objects.filter(name=name)`` ``else: qs = X.objects.all()``),
        the first that narrows nothing (no filter, slice, limit or single-row step): the use
        sees it on some runs, so the load is judged as that one. None when a value is given
        elsewhere (in a loop, a nested function, after the use) or every branch narrows."""
        row = getattr(use, "lineno", None)
        if row is None:
            return None
        enclosing = set(map(id, self.ancestors(use)))
        unnarrowed: ast.expr | None = None
        for value in values:
            if value.lineno >= row or not self._in_a_branch_before(value, enclosing):
                return None
            steps = links(value)
            if steps[0].kind == "other" or _leaves_its_block(self, value):
                continue  # ``items = []``, ``None``; or a branch that raises or returns
            narrows = any(
                link.kind == "sub" or (link.kind == "method" and link.name in _NARROWING)
                for link in steps[1:]
            )
            if not narrows and unnarrowed is None:
                unnarrowed = value
        return unnarrowed

    def _branches_end(self, value: ast.expr, use: ast.AST) -> int | None:
        """The last line of the outermost ``if``/``try``/``match`` around ``value`` below the
        block that holds ``use``."""
        enclosing = set(map(id, self.ancestors(use)))
        outermost: ast.AST | None = None
        for ancestor in self.ancestors(value):
            if id(ancestor) in enclosing:
                break
            if isinstance(ancestor, _BRANCHING):
                outermost = ancestor
        return getattr(outermost, "end_lineno", None)

    def _in_a_branch_before(self, value: ast.expr, enclosing: set[int]) -> bool:
        """``value`` is assigned by a statement whose ``if``/``try``/``match`` branches lead,
        through branching statements only, to a block around the use (ids ``enclosing``)."""
        statement = self.parent(value)
        branched = False
        for ancestor in self.ancestors(statement) if statement is not None else ():
            if id(ancestor) in enclosing:
                return branched
            if not isinstance(ancestor, _BRANCHING):
                return False
            branched = True
        return False

    def block_of(self, node: ast.AST) -> tuple[ast.AST | None, list[ast.stmt]]:
        """The statement around ``node`` (itself if a statement) and the block, the list of
        statements of its parent, that holds it (empty at a module's top without a parent)."""
        statement: ast.AST | None = node
        while statement is not None and not isinstance(statement, ast.stmt):
            statement = self.parent(statement)
        parent = self.parent(statement) if statement is not None else None
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            block = getattr(parent, field, None)
            if isinstance(block, list) and any(s is statement for s in block):
                return statement, block
        return statement, []

    def _reaching_value(self, values: list[ast.expr], use: ast.AST) -> ast.expr | None:
        """The last of ``values`` assigned before ``use`` by a statement that runs whenever the
        use does (its block encloses the use); None when there is no such value."""
        row = getattr(use, "lineno", None)
        if row is None:
            return None
        enclosing = set(map(id, self.ancestors(use)))
        before = [v for v in values if v.lineno < row]
        if not before:
            return None
        latest = max(before, key=lambda v: (v.lineno, v.col_offset))
        statement = self.parent(latest)
        block = self.parent(statement) if statement is not None else None
        if block is None or id(block) not in enclosing:
            return None
        return latest

    def is_builtin(self, expr: ast.AST, *names: str) -> bool:
        """Tell whether ``expr`` is a bare name of a builtin not shadowed at module level."""
        return (
            isinstance(expr, ast.Name)
            and expr.id in names
            and expr.id not in self.aliases
            and expr.id not in self.module_names
        )

    def qualify(self, expr: ast.AST) -> str | None:
        """The fully qualified name of ``expr`` through this module's imports, or None.

        ``pd.read_csv`` with ``import pandas as pd`` gives ``pandas.read_csv``; a name that was not
        imported gives None.
        """
        name = dotted(expr)
        if name is None:
            return None
        root, _, rest = name.partition(".")
        target = self.aliases.get(root)
        if target is None:
            return None
        return f"{target}.{rest}" if rest else target

    def string_value(self, expr: ast.AST, depth: int = 0) -> str | None:
        """The literal text of a string expression: a constant, an f-string's constant parts,
        ``text("...")``, ``"a" + "b"`` or a name assigned one of these. None when not literal.
        """
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            return expr.value
        if isinstance(expr, ast.JoinedStr):
            # Interpolated values are shown as ``{}``, as ``str.format`` would write them.
            return "".join(
                v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else "{}"
                for v in expr.values
            )
        if (
            isinstance(expr, ast.Call)
            and isinstance(expr.func, ast.Attribute)
            and expr.func.attr == "format"
        ):
            return self.string_value(expr.func.value, depth)
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, (ast.Add, ast.Mod)):
            left = self.string_value(expr.left, depth)
            if isinstance(expr.op, ast.Mod):
                return left
            right = self.string_value(expr.right, depth)
            return None if left is None or right is None else left + right
        if isinstance(expr, ast.Call) and expr.args and _func_name(expr.func) == "text":
            return self.string_value(expr.args[0], depth)
        if isinstance(expr, ast.Name) and depth < 3:
            values = self.assigned_values(expr.id, expr)
            if len(values) == 1:
                return self.string_value(values[0], depth + 1)
        return None

    def model_size(self, name: str | None) -> str | None:
        """``"small"`` or ``"large"`` when the user declared the model ``name`` so, else None.

        A setting matches the class name or any dotted tail of the qualified name
        (``Site`` and ``django.contrib.sites.models.Site`` both match ``Site``).
        """
        if not name or not (self.small_models or self.large_models):
            return None
        qualified = self.qualify(ast.Name(id=name)) if "." not in name else name
        candidates = {name, name.rsplit(".", 1)[-1]}
        if qualified:
            parts = qualified.split(".")
            candidates.update(".".join(parts[i:]) for i in range(len(parts)))
        if candidates & self.small_models:
            return "small"
        if candidates & self.large_models:
            return "large"
        return None

    def finding(
        self, code: str, node: ast.AST, message: str, fix: Fix | None = None, kind: str = "finding"
    ) -> Finding:
        """Build a finding (or, with ``kind="hint"``, a hint) located at ``node`` (columns
        converted from bytes to characters)."""
        row = getattr(node, "lineno", 1)
        col = getattr(node, "col_offset", 0)
        end_row = getattr(node, "end_lineno", None) or row
        end_col = getattr(node, "end_col_offset", None)
        if end_col is None:
            end_col = col
        return Finding(
            filename=self.filename,
            row=row,
            column=self._char_col(row, col) + 1,
            code=code,
            message=message,
            end_row=end_row,
            end_column=self._char_col(end_row, end_col) + 1,
            fix=fix,
            kind=kind,
        )

    def edit(self, node: ast.AST, content: str) -> Edit:
        """An edit replacing the source text of ``node`` with ``content``."""
        row = getattr(node, "lineno", 1)
        end_row = getattr(node, "end_lineno", None) or row
        return Edit(
            row=row,
            column=self._char_col(row, getattr(node, "col_offset", 0)) + 1,
            end_row=end_row,
            end_column=self._char_col(end_row, getattr(node, "end_col_offset", 0) or 0) + 1,
            content=content,
        )

    def source_of(self, node: ast.AST) -> str | None:
        """The exact source text of ``node`` (None when it has no position)."""
        edit = self.edit(node, "")
        if not (0 < edit.row <= edit.end_row <= len(self.lines)):
            return None
        if edit.row == edit.end_row:
            return self.lines[edit.row - 1][edit.column - 1 : edit.end_column - 1]
        parts = [self.lines[edit.row - 1][edit.column - 1 :]]
        parts.extend(self.lines[edit.row : edit.end_row - 1])
        parts.append(self.lines[edit.end_row - 1][: edit.end_column - 1])
        return "\n".join(parts)

    def _char_col(self, row: int, byte_col: int) -> int:
        # ast offsets are UTF-8 byte offsets; users (and ruff) count characters.
        if not 0 < row <= len(self.lines):
            return byte_col
        line = self.lines[row - 1]
        if line.isascii():
            return byte_col
        return len(line.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))


#: What a ``*args`` the call passes nothing to is bound to.
_NO_ARGUMENTS = ast.Tuple(elts=[], ctx=ast.Load())


def _bound_in(arg: ast.expr, bound: dict[str, ast.expr]) -> bool:
    """``arg`` is a parameter the call binds (``model``), or ``*args`` bound to nothing."""
    if isinstance(arg, ast.Starred):
        return isinstance(arg.value, ast.Name) and "*" + arg.value.id in bound
    return isinstance(arg, ast.Name) and arg.id in bound


def _parameters_without_a_value(args: ast.arguments) -> Iterator[str]:
    """The parameters whose default is ``None``, ``0``, ``False`` or an empty string."""
    positional = [*args.posonlyargs, *args.args]
    pairs = list(
        zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True)
    )
    pairs += [
        (a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None
    ]
    for arg, default in pairs:
        if isinstance(default, ast.Constant) and not default.value:
            yield arg.arg


def _conjoined(test: ast.expr) -> list[ast.expr]:
    """``test`` and, through ``and``, the tests it joins."""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        return [t for value in test.values for t in _conjoined(value)]
    return [test]


def _tests_for_a_value(test: ast.expr, names: set[str]) -> bool:
    """``test`` holds only when one of ``names`` has a value: ``p``, ``p is not None``,
    ``p > 0``, ``p >= 1``, ``p != 0``."""
    if isinstance(test, ast.Name):
        return test.id in names
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id in names
        and len(test.ops) == 1
        and isinstance(test.ops[0], (ast.IsNot, ast.Gt, ast.GtE, ast.NotEq))
    )


#: Steps that cut a query to a page of rows.
_PAGE_STEPS = frozenset({"limit", "slice", "fetch", "paginate"})


def _pages(value: ast.expr) -> bool:
    """``qs[:n]``, ``q.limit(n)``, ``q.paginate(…)``: a step that cuts the query to a page."""
    if isinstance(value, ast.Subscript):
        return isinstance(value.slice, ast.Slice)
    return (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and value.func.attr in _PAGE_STEPS
    )


def _assigns_on_every_path(block: list[ast.stmt], name: str) -> bool:
    """Some statement of ``block`` assigns ``name`` whichever way the block runs: a plain
    assignment at its level, an ``if`` that does in both branches, a ``with`` or ``try`` body
    that does."""
    for stmt in block:
        if isinstance(stmt, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in stmt.targets
        ):
            return True
        if isinstance(stmt, ast.AnnAssign | ast.AugAssign) and (
            isinstance(stmt.target, ast.Name) and stmt.target.id == name
        ):
            return True
        if isinstance(stmt, ast.If) and (
            _assigns_on_every_path(stmt.body, name) and _assigns_on_every_path(stmt.orelse, name)
        ):
            return True
        if isinstance(stmt, ast.With | ast.AsyncWith | ast.Try) and _assigns_on_every_path(
            stmt.body, name
        ):
            return True
    return False


def _rooted_at(expr: ast.AST, name: str) -> bool:
    root = links(expr)[0]
    return root.kind == "name" and root.name == name


def _func_name(func: ast.AST) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""
