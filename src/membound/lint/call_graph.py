"""Which functions of the project run as batch jobs: the entry points and what they call.

A whole-table load in a batch job is where memory grows unattended (``rules/_queries.py``,
``batch_job``). A job is rarely one function: a click command calls a plain function that
loads every certificate (lemur), a task is started through a dispatcher (``dispatch(func, …)``,
pulpcore), a project decorates its tasks with a decorator of its own built on Celery's
(``@galaxy_task``). So the linted tree is read once for its functions and the calls between
them, and every function reachable from an entry point within the project counts as batch code:

* **entry points**: functions decorated as background tasks (Celery, RQ, Dramatiq, Huey,
  APScheduler… by the decorator's last name), or with a decorator the project builds on one
  of those (a function whose body calls ``….task(…)``/``shared_task(…)``); click, typer and
  Flask commands (``@….command``, ``@….group``); a management command's ``handle``; ``execute``
  of a job class (a base named ``…Job``: django-extensions' cron jobs) and ``run`` of a task
  class (a base named ``…Task``: Celery's, Luigi's, a project's worker tasks); functions
  in migrations; what a script's ``if __name__ == "__main__":`` block calls; a function handed
  to a dispatcher (``dispatch(func, …)``, ``enqueue(func, …)``, ``defer``) or to a
  ``concurrent.futures``/``multiprocessing`` pool (``submit``, ``map``, ``apply_async``);
* **calls**: a call of a name bound to a project function — defined in the module, imported
  from another module of the tree (``from .tasks import sync``, ``import app.jobs as jobs`` …
  ``jobs.sync()``) — or of ``self.method()`` within its class; followed :data:`MAX_DEPTH` calls
  deep.

Names are read, not types: a call through a variable holding a function, or a method of
another object, is not followed (a missed caller leaves its loads as they were: a hint or
nothing, never a finding made up).
"""

from __future__ import annotations

import ast
import os
import re
import warnings
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from membound.lint.expression_chains import dotted
from membound.lint.syntax_walk import children

__all__ = [
    "MAX_DEPTH",
    "TEMPLATE_SUFFIXES",
    "CallGraph",
    "CallIndex",
    "ModuleCalls",
    "index_calls",
    "is_test_path",
    "named_in_templates",
    "read_calls",
]

#: Calls followed from an entry point.
MAX_DEPTH = 8
#: Decorators that make a function a background job, by their last name.
JOB_DECORATORS = frozenset(
    {"task", "shared_task", "periodic_task", "job", "actor", "db_task", "db_periodic_task",
     "scheduled_job", "cron", "crontab"}
)  # fmt: skip
#: Decorators that make a command-line command (click, typer, Flask's CLI).
_COMMAND_DECORATORS = frozenset({"command", "group"})
_CLI_ROOTS = ("click", "typer", "flask")
#: Calls whose first argument is a function run later as a job.
_DISPATCHERS = frozenset(
    {"dispatch", "enqueue", "enqueue_call", "enqueue_in", "enqueue_at", "defer"}
)  # fmt: skip
#: Calls that iterate their first argument whole.
_WHOLE_WRAPPERS = frozenset({"enumerate", "sorted", "list", "tuple", "reversed"})
#: Query steps that keep every row of the query they are called on.
_EVERY_ROW_STEPS = frozenset(
    {"all", "select_related", "prefetch_related", "order_by", "only", "defer", "using",
     "annotate", "values", "values_list"}
)  # fmt: skip
#: What identifies a word of a file's text.
_WORD = re.compile(r"[^\W\d]\w*")  # identifiers, Unicode ones too (``def purgé``)
#: ``from .x import a, b`` / ``from x.y import (a, b)``: the level, the module, the names.
_FROM_IMPORT = re.compile(
    r"^[ \t]*from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]*(?:\(([^)]*)\)|([\w \t,]+))", re.M
)
#: ``import x.y, z as w``
_IMPORT = re.compile(r"^[ \t]*import[ \t]+([\w., \t]+)", re.M)
#: A dotted path in a string: ``"app.tasks.cleanup"`` (a schedule, a setting, a URL conf).
_DOTTED_STRING = re.compile(r"[\"']([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)[\"']")
#: Bases (by last name) whose subclasses' own methods only the project calls: ``object``,
#: models, managers, querysets, SQLAlchemy's declarative bases.
_PLAIN_BASES = frozenset(
    {"object", "Model", "Manager", "BaseManager", "QuerySet", "Base", "DeclarativeBase",
     "MappedAsDataclass", "NamedTuple", "Enum", "IntEnum", "StrEnum"}
)  # fmt: skip
#: Methods of models and managers that Django or SQLAlchemy call by name.
_MODEL_HOOKS = frozenset(
    {"save", "delete", "clean", "clean_fields", "full_clean", "validate_unique",
     "validate_constraints", "get_absolute_url", "natural_key", "get_by_natural_key",
     "get_queryset", "get_query_set", "contribute_to_class", "from_db", "refresh_from_db",
     "check", "get_deferred_fields", "serializable_value"}
)  # fmt: skip
#: Builtins that iterate each argument whole (``len`` of a queryset fetches it whole too).
_WHOLE_BUILTINS = frozenset({"list", "tuple", "set", "sorted", "enumerate", "len", "zip"})
#: Methods of a pool or executor whose first argument is a function run in a worker (only
#: as methods: the builtin ``map`` runs nothing later).
_POOL_METHODS = frozenset(
    {"submit", "apply_async", "map", "imap", "imap_unordered", "starmap", "run_in_executor"}
)


@dataclass
class ModuleCalls:
    """What one file defines and calls (picklable: a worker process reads files for the
    index, :meth:`CallIndex.add_read`)."""

    name: str
    aliases: dict[str, str] = field(default_factory=dict)
    """Local name → the dotted name it is imported as."""
    functions: dict[str, list[ast.expr]] = field(default_factory=dict)
    """Qualified function → its decorators."""
    calls: dict[str, set[str]] = field(default_factory=dict)
    """Qualified function → the qualified names it calls (resolved as far as names go)."""
    entries: dict[str, str] = field(default_factory=dict)
    """Qualified function → why it is an entry point."""
    dispatched: set[str] = field(default_factory=set)
    """Qualified names handed to a dispatcher or a pool."""
    imports_cli: bool = False
    words: list[str] = field(default_factory=list)
    """The identifier-like words of the file's text (code, strings, comments; none for a test
    file: what only tests call never runs in production)."""
    doc_words: list[str] = field(default_factory=list)
    """The words of its docstrings (naming a function there calls nothing)."""
    references: list[str] = field(default_factory=list)
    """The modules it imports or names in a string, dotted (relative imports resolved)."""
    iterates: dict[str, tuple[tuple[str, ...], frozenset[str]]] = field(default_factory=dict)
    """Qualified function → its positional parameters, in order, and those of its parameters
    it iterates whole (``for row in rows``, ``list(rows)``, a comprehension over ``rows``)."""
    defined: Counter[str] = field(default_factory=Counter)
    """How often each function name is defined here (a test file's count none)."""
    class_bases: dict[str, list[str]] = field(default_factory=dict)
    """Class name → the last names of its bases."""


@dataclass(frozen=True)
class CallGraph:
    """The batch code of a project: the functions entry points reach, and why."""

    batch: dict[str, str] = field(default_factory=dict)
    """Qualified function (``app.jobs.sync``, ``app.jobs.Syncer.run``) → the entry point that
    reaches it, in words (``the task `sync```)."""
    modules: dict[str, str] = field(default_factory=dict)
    """File path → its dotted module path."""
    unreferenced: frozenset[str] = frozenset()
    """Function names that occur nowhere in the tree's code (outside tests) but where they are
    defined: not called, not named in a string, a URL conf or a schedule, and no word of the
    code ending in ``_`` starts them (``"api_public_%s" % method`` names a family)."""
    plain_classes: frozenset[str] = frozenset()
    """Classes whose every base is ``object``, a model, a manager or a queryset, as far as the
    tree shows: nothing outside the project calls their methods by a name of its own."""
    used_modules: frozenset[str] = frozenset()
    """Modules the project's own code uses: imported or named in a string outside tests, or
    holding an entry point. The functions of any other module (an API another project calls)
    are never judged uncalled."""

    iterates: dict[str, tuple[tuple[str, ...], frozenset[str]]] = field(default_factory=dict)
    """Qualified function → its positional parameters and those it iterates whole: a query
    handed to it there is loaded whole by the call."""
    iterates_by_name: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """The keys of :attr:`iterates` by their last name."""

    def iterating(self, function: str) -> tuple[tuple[str, ...], frozenset[str]] | None:
        """What :attr:`iterates` says of ``function`` (the folders above the import root may
        be left out of its name: one function ends so), or None."""
        found = self.iterates.get(function)
        if found is not None:
            return found
        last = function.rsplit(".", 1)[-1]
        tails = [k for k in self.iterates_by_name.get(last, ()) if k.endswith("." + function)]
        return self.iterates[tails[0]] if len(tails) == 1 else None

    def iterated_parameter(self, function: str, position: int | None, keyword: str | None) -> bool:
        """The function ``function`` (qualified; the folders above the import root may be left
        out) iterates whole the argument at ``position`` (counted among its positional
        parameters) or passed as ``keyword``."""
        found = self.iterating(function)
        if found is None:
            return False
        positional, iterated = found
        if keyword is not None:
            return keyword in iterated
        if position is None or not 0 <= position < len(positional):
            return False
        return positional[position] in iterated

    def never_called(self, filename: str, name: str, class_name: str | None) -> bool:
        """The function ``name`` of ``filename`` (a method of ``class_name`` when given) is
        called by nothing: its module is used by the project, its name occurs nowhere else in
        the tree, and, for a method, its class is plain (no framework base that calls hooks by
        name) and the name is no hook of a model or a manager."""
        if name not in self.unreferenced or (name.startswith("__") and name.endswith("__")):
            return False
        if self.modules.get(filename) not in self.used_modules:
            return False
        if class_name is None:
            return True
        return class_name in self.plain_classes and name not in _MODEL_HOOKS

    def reached(self, filename: str, scope: str) -> str | None:
        """Why the function ``scope`` (``Class.method`` or ``func``) of ``filename`` is batch
        code, or None."""
        module = self.modules.get(filename)
        if module is None:
            return None
        return self.batch.get(f"{module}.{scope}")


def _last(expr: ast.expr) -> str:
    target = expr.func if isinstance(expr, ast.Call) else expr
    if isinstance(target, ast.Attribute):
        return target.attr
    return target.id if isinstance(target, ast.Name) else ""


def _resolve_import(module: str, node: ast.ImportFrom) -> str:
    base = node.module or ""
    if node.level:
        parts = module.split(".")
        up = parts[: max(0, len(parts) - node.level)]
        base = ".".join([*up, base] if base else up)
    return base


class _Reader(ast.NodeVisitor):
    """Functions, calls and entry points of one module.

    Visits as ``ast.NodeVisitor`` does (depth first, fields in order), with the method of each
    node type looked up in a table instead of by name: the call graph reads every file of a
    project, and the by-name lookup took 0.4 s of its 1.45 s on mlflow's 1,099 files."""

    def __init__(self, mod: ModuleCalls, path: str) -> None:
        self.mod = mod
        self.path = path.replace(os.sep, "/")
        self.scope: list[str] = []
        self.classes: list[str] = []
        #: the last names of the bases of each class in ``classes``
        self.bases: list[list[str]] = []
        #: the docstrings of the classes and functions read
        self.docstrings: list[ast.Constant] = []
        #: the function being read (qualified) and its parameters' names, innermost last
        self.params: list[tuple[str, set[str]]] = []
        #: function → the parameters it iterates whole
        self.iterated: dict[str, set[str]] = {}
        #: function → the parameters it assigns (``rows = rows[:10]``: no longer the argument)
        self.reassigned: dict[str, set[str]] = {}

    def visit(self, node: ast.AST) -> None:
        """Visit ``node`` with its method, or its children when it has none."""
        method = _VISITS.get(type(node))
        if method is not None:
            method(self, node)
        else:
            for child in children(node):
                self.visit(child)

    def generic_visit(self, node: ast.AST) -> None:
        """Visit the children of ``node``."""
        for child in children(node):
            self.visit(child)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.mod.aliases[(alias.asname or alias.name).split(".")[0]] = (
                alias.name if alias.asname else alias.name.split(".")[0]
            )
            if alias.name.split(".")[0] in _CLI_ROOTS:
                self.mod.imports_cli = True

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = _resolve_import(self.mod.name, node)
        if base.split(".")[0] in _CLI_ROOTS:
            self.mod.imports_cli = True
        for alias in node.names:
            if alias.name != "*":
                self.mod.aliases[alias.asname or alias.name] = f"{base}.{alias.name}"

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.scope.append(node.name)
        self.classes.append(node.name)
        doc = _docstring(node)
        if doc is not None:
            self.docstrings.append(doc)
        self.bases.append([b for b in (_last(base) for base in node.bases) if b])
        self.mod.class_bases.setdefault(node.name, []).extend(self.bases[-1] or ["object"])
        self.generic_visit(node)
        self.bases.pop()
        self.classes.pop()
        self.scope.pop()

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scope.append(node.name)
        qualified = f"{self.mod.name}.{'.'.join(self.scope)}"
        self.mod.functions[qualified] = list(node.decorator_list)
        doc = _docstring(node)
        if doc is not None:
            self.docstrings.append(doc)
        if self.mod.words:  # not a test file
            self.mod.defined[node.name] += 1
        if "/migrations/" in f"/{self.path}" or "/versions/" in f"/{self.path}":
            self.mod.entries.setdefault(qualified, "a migration")
        if node.name == "handle" and self.classes and "/management/commands/" in f"/{self.path}":
            self.mod.entries[qualified] = "a management command"
        job = self._job_method(node.name)
        if job is not None:
            self.mod.entries.setdefault(qualified, job)
        self.mod.calls.setdefault(qualified, set())
        args = node.args
        positional = tuple(a.arg for a in (*args.posonlyargs, *args.args))
        static = any(_last(d) == "staticmethod" for d in node.decorator_list)
        if self.classes and len(self.scope) == len(self.classes) + 1 and not static:
            positional = positional[1:]  # ``self``/``cls``: a call's arguments come after it
        self.params.append((qualified, {*positional, *(a.arg for a in args.kwonlyargs)}))
        self.generic_visit(node)
        self.params.pop()
        found = self.iterated.pop(qualified, None)
        if found:
            found -= self.reassigned.pop(qualified, set())
        if found:
            self.mod.iterates[qualified] = (positional, frozenset(found))
        self.scope.pop()

    def _iterated_whole(self, expr: ast.expr) -> None:
        """``expr`` is iterated whole: when it is a parameter of the function being read, the
        function iterates that parameter. So is ``enumerate(rows)``, ``sorted(rows)``, and a
        step that keeps every row (``rows.select_related("model")``, ``rows.all()``)."""
        while True:
            if isinstance(expr, ast.Call) and expr.args and not expr.keywords:
                func = expr.func
                if isinstance(func, ast.Name) and func.id in _WHOLE_WRAPPERS:
                    expr = expr.args[0]
                    continue
            if (
                isinstance(expr, ast.Call)
                and isinstance(expr.func, ast.Attribute)
                and expr.func.attr in _EVERY_ROW_STEPS
            ):
                expr = expr.func.value
                continue
            break
        if isinstance(expr, ast.Name) and self.params:
            function, names = self.params[-1]
            if expr.id in names:
                self.iterated.setdefault(function, set()).add(expr.id)

    def visit_Assign(self, node: ast.Assign | ast.AugAssign | ast.AnnAssign) -> None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        value = node.value
        if self.params and value is not None:
            # ``rows = rows[:10]``, ``rows = rows.filter(...)``: the parameter is cut or
            # narrowed before it is iterated (``rows = (rows,)`` wraps one object: still it)
            root = value
            while isinstance(root, (ast.Subscript, ast.Attribute, ast.Call)):
                root = root.func if isinstance(root, ast.Call) else root.value
            function, names = self.params[-1]
            for target in targets:
                if (
                    isinstance(target, ast.Name)
                    and target.id in names
                    and root is not value
                    and isinstance(root, ast.Name)
                    and root.id == target.id
                ):
                    self.reassigned.setdefault(function, set()).add(target.id)
        self.generic_visit(node)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self._iterated_whole(node.iter)
        self.generic_visit(node)

    def visit_comprehension(self, node: ast.comprehension) -> None:
        self._iterated_whole(node.iter)
        self.generic_visit(node)

    def _job_method(self, name: str) -> str | None:
        """What runs the method ``name`` of the class being read, when it is a job's body:
        ``execute`` of a job class (a base named ``…Job``: django-extensions' ``BaseJob``,
        ``HourlyJob``…, run by cron), ``run`` of a task class (a base named ``…Task``:
        Celery's ``Task``, Luigi's, a project's own worker task such as ``CalibreTask``)."""
        if not self.bases or len(self.scope) != len(self.classes) + 1:
            return None  # not a method of the innermost class
        bases = self.bases[-1]
        named = f"`{self.mod.name.rsplit('.', 1)[-1]}.{self.classes[-1]}`"
        if name == "execute" and any(b.endswith("Job") for b in bases):
            return f"the job {named}"
        if name == "run" and any(b.endswith("Task") for b in bases):
            return f"the task {named}"
        return None

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if (
            not self.scope
            and isinstance(test, ast.Compare)
            and isinstance(test.left, ast.Name)
            and test.left.id == "__name__"
        ):
            for inner in ast.walk(ast.Module(body=node.body, type_ignores=[])):
                if isinstance(inner, ast.Call):
                    name = self._name_of(inner.func)
                    if name is not None:
                        self.mod.entries.setdefault(name, "a script")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = self._name_of(node.func)
        if self.scope and name is not None:
            caller = f"{self.mod.name}.{'.'.join(self.scope)}"
            self.mod.calls.setdefault(caller, set()).add(name)
        method = isinstance(node.func, ast.Attribute)
        last = _last(node.func)
        if not method and last in _WHOLE_BUILTINS:
            for arg in node.args:
                self._iterated_whole(arg)
        if node.args and (last in _DISPATCHERS or (method and last in _POOL_METHODS)):
            handed = self._name_of(node.args[0])
            if handed is not None:
                self.mod.dispatched.add(handed)
        self.generic_visit(node)

    def _name_of(self, expr: ast.expr) -> str | None:
        """The qualified name a called expression refers to, as far as names go."""
        if isinstance(expr, ast.Name):
            if expr.id in self.mod.aliases:
                return self.mod.aliases[expr.id]
            return f"{self.mod.name}.{expr.id}"
        if (
            isinstance(expr, ast.Attribute)
            and isinstance(expr.value, ast.Name)
            and expr.value.id in ("self", "cls")
            and self.classes
        ):
            owner = self.scope[: self.scope.index(self.classes[-1]) + 1]
            return f"{self.mod.name}.{'.'.join(owner)}.{expr.attr}"
        name = dotted(expr)
        if name is None:
            return None
        root, _, rest = name.partition(".")
        target = self.mod.aliases.get(root)
        return f"{target}.{rest}" if target and rest else None


#: The node types :class:`_Reader` has a method for, and the method.
_VISITS: dict[type[ast.AST], Callable[[_Reader, Any], None]] = {
    ast.Import: _Reader.visit_Import,
    ast.ImportFrom: _Reader.visit_ImportFrom,
    ast.ClassDef: _Reader.visit_ClassDef,
    ast.FunctionDef: _Reader._function,
    ast.AsyncFunctionDef: _Reader._function,
    ast.If: _Reader.visit_If,
    ast.Call: _Reader.visit_Call,
    ast.For: _Reader.visit_For,
    ast.Assign: _Reader.visit_Assign,
    ast.AugAssign: _Reader.visit_Assign,
    ast.AnnAssign: _Reader.visit_Assign,
    ast.AsyncFor: _Reader.visit_For,
    ast.comprehension: _Reader.visit_comprehension,
}


def _task_decorators(modules: Iterable[ModuleCalls]) -> set[str]:
    """Project functions that wrap a task decorator (``def galaxy_task(...): return
    app.task(...)``), by qualified name."""
    found: set[str] = set()
    for mod in modules:
        for function, calls in mod.calls.items():
            if any(call.rsplit(".", 1)[-1] in ("task", "shared_task") for call in calls):
                found.add(function)
    return found


def _entries(modules: list[ModuleCalls]) -> dict[str, str]:
    wrappers = _task_decorators(modules)
    entries: dict[str, str] = {}
    for mod in modules:
        for function, decorators in mod.functions.items():
            short = function.rsplit(".", 1)[-1]
            for deco in decorators:
                last = _last(deco)
                target = deco.func if isinstance(deco, ast.Call) else deco
                qualified = _Reader(mod, "")._name_of(target)
                if last in JOB_DECORATORS or (qualified is not None and qualified in wrappers):
                    entries.setdefault(function, f"the task `{short}`")
                elif last in _COMMAND_DECORATORS and mod.imports_cli:
                    entries.setdefault(function, f"the command `{short}`")
        for function, why in mod.entries.items():
            short = function.rsplit(".", 1)[-1]
            entries.setdefault(function, f"the script's `{short}`" if why == "a script" else why)
        for function in mod.dispatched:
            entries.setdefault(function, f"the job `{function.rsplit('.', 1)[-1]}`")
    return entries


class CallIndex:
    """The call graph of a project, built one file at a time (:meth:`add`); :meth:`graph`
    gives the batch code. What it keeps per file is its functions, their decorators and the
    names they call: not the file's text or tree."""

    def __init__(self, *, words: bool = True) -> None:
        #: whether files are read for their words (what names functions): only a run over a
        #: whole project can tell a function nothing calls
        self.words = words
        self._modules: list[ModuleCalls] = []
        self._paths: dict[str, str] = {}
        self._words: Counter[str] = Counter()
        self._doc_words: Counter[str] = Counter()
        self._references: set[str] = set()
        self._iterates: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {}
        self._defined: Counter[str] = Counter()
        self._bases: dict[str, list[str]] = {}

    def add(self, path: str, module: str, text: str) -> ast.Module | None:
        """Read one file (``module`` its dotted path); a file that does not parse is skipped
        (the lint run reports it). Returns the tree it parsed (None when it parsed none), for
        the next reader of the same file in the evidence pass."""
        read, tree = read_calls(path, module, text, words=self.words)
        self.add_read(path, module, read)
        return tree

    def add_read(self, path: str, module: str, read: ModuleCalls | None) -> None:
        """Add one file read already (by :func:`read_calls`, maybe in another process)."""
        self._paths[path] = module  # every file: a relative import is read from it
        if read is not None:
            # Words and names are summed here, not kept per file: the tree's vocabulary.
            self._words.update(read.words)  # a list: counted in C
            self._doc_words.update(read.doc_words)
            self._references.update(read.references)
            self._iterates.update(read.iterates)
            self._defined.update(read.defined)
            for cls, its in read.class_bases.items():
                self._bases.setdefault(cls, []).extend(its)
            read.words, read.doc_words, read.references = [], [], []
            read.defined, read.class_bases = Counter(), {}
            if read.functions or read.entries or read.dispatched:
                self._modules.append(read)

    def graph(self) -> CallGraph:
        """The functions the entry points reach (at most :data:`MAX_DEPTH` calls deep)."""
        calls: dict[str, set[str]] = {}
        defined: set[str] = set()
        for mod in self._modules:
            defined.update(mod.functions)
            for function, callees in mod.calls.items():
                calls.setdefault(function, set()).update(callees)
        batch: dict[str, str] = {}
        entries = _entries(self._modules)
        queue: deque[tuple[str, str, int]] = deque(
            (function, why, 0) for function, why in entries.items() if function in defined
        )
        while queue:
            function, why, depth = queue.popleft()
            if function in batch:
                continue
            batch[function] = why
            if depth >= MAX_DEPTH:
                continue
            for called in calls.get(function, ()):
                if called in defined and called not in batch:
                    queue.append((called, why, depth + 1))
        words, docs = self._words, self._doc_words
        unreferenced = frozenset(
            n
            for n, defs in self._defined.items()
            if words[n] - docs[n] <= defs and not _built_from_a_part(n, words)
        )
        # A module no production code names (an API another project imports, a plugin) and
        # with no entry point of its own: its functions' callers are not in the tree.
        entry_modules = {m.name for m in self._modules if any(f in entries for f in m.functions)}
        references = self._references
        for reference in list(references):  # ``app.api.get`` names ``app.api`` and ``app``
            parts = reference.split(".")
            references.update(".".join(parts[:i]) for i in range(1, len(parts)))
        used = frozenset(
            module
            for module in self._paths.values()
            if module in entry_modules or _used(module, references)
        )
        return CallGraph(
            batch,
            dict(self._paths),
            unreferenced,
            _plain_classes(self._bases),
            used,
            dict(self._iterates),
            _by_last_name(self._iterates),
        )


def _built_from_a_part(name: str, words: Counter[str]) -> bool:
    """A word of the code is a part of ``name`` cut at an underscore: a prefix
    (``getattr(api, "api_public_%s" % method)``, ``f"clean_{field}"``) or a suffix
    (``getattr(self, kind + "_report")``): a name built from it may call the function.
    Linear in the name's length (a lookup per underscore)."""
    for i, char in enumerate(name):
        if char != "_" or i == 0:
            continue
        prefix, suffix = name[: i + 1], name[i:]
        if len(prefix.strip("_")) >= 2 and words[prefix] > 0:
            return True
        if len(suffix.strip("_")) >= 2 and words[suffix] > 0:
            return True
    return False


def _by_last_name(names: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """``names`` grouped by their last dotted part."""
    grouped: dict[str, list[str]] = {}
    for name in names:
        grouped.setdefault(name.rsplit(".", 1)[-1], []).append(name)
    return {last: tuple(found) for last, found in grouped.items()}


def _module_references(module: str, text: str) -> list[str]:
    """The modules the text of ``module`` imports or names in a string, dotted: ``from .api
    import get`` in ``app.views`` gives ``app.api`` and ``app.api.get``."""
    found: list[str] = []
    parts = module.split(".")
    for dots, written, grouped, listed in _FROM_IMPORT.findall(text):
        names = grouped or listed
        base = written
        if dots:
            up = parts[: max(0, len(parts) - len(dots))]
            base = ".".join([*up, written] if written else up)
        if base:
            found.append(base)
        for name in names.replace("\n", " ").split(","):
            word = name.split()[0] if name.split() else ""
            if word.isidentifier():
                found.append(f"{base}.{word}" if base else word)
    for clause in _IMPORT.findall(text):
        found += [piece.split()[0] for piece in clause.split(",") if piece.split()]
    found += _DOTTED_STRING.findall(text)
    return found


def _used(module: str, references: set[str]) -> bool:
    """Some reference names ``module``, or a module in it (a reference to ``app.api.get``
    uses ``app.api``); a reference may leave out the folders above the import root
    (``ralph.util.api`` for the module ``src.ralph.util.api``)."""
    parts = module.split(".")
    return any(".".join(parts[i:]) in references for i in range(len(parts)))


def _plain_classes(bases: dict[str, list[str]]) -> frozenset[str]:
    """The classes of ``bases`` (class → its bases' last names, over the tree) whose every
    base is plain (:data:`_PLAIN_BASES`) or a plain class of the tree."""
    plain: dict[str, bool] = {}

    def is_plain(cls: str, seen: frozenset[str]) -> bool:
        if cls in plain:
            return plain[cls]
        if cls not in bases:
            return cls in _PLAIN_BASES
        if cls in seen:
            return False  # a cycle of names (two classes of one name): say nothing
        # ``class Manager(models.Manager)``: a base named as the class is the library's
        answer = all(
            b in _PLAIN_BASES if b == cls else is_plain(b, seen | {cls}) for b in bases[cls]
        )
        plain[cls] = answer
        return answer

    found = {c for c in bases if is_plain(c, frozenset())}
    # A plain class mixed into a framework's (``class StatsView(StatsMixin, TemplateView)``)
    # has its methods called through that class: not plain, nor its own bases.
    changed = True
    while changed:
        changed = False
        for cls, its in bases.items():
            if cls in found:
                continue
            for base in its:
                if base in found:
                    found.discard(base)
                    changed = True
    return frozenset(found)


#: Files besides Python that call a project's functions by name: templates (Django, Jinja),
#: and the configuration that names entry points (``[project.scripts]``, setup.cfg, YAML).
TEMPLATE_SUFFIXES = (".html", ".htm", ".jinja", ".jinja2", ".j2", ".txt", ".xml")
_CONFIG_SUFFIXES = (".toml", ".cfg", ".ini", ".yaml", ".yml", ".json", ".conf", ".sh")


def named_in_templates(
    names: frozenset[str], folders: Iterable[str], max_bytes: int
) -> frozenset[str] | None:
    """Those of ``names`` that a file under ``folders`` besides Python names: a template
    (``{{ post.summary }}`` calls ``Post.summary``), a configuration file (an entry point in
    ``pyproject.toml``, a YAML ``operationId``), a script without a suffix (``#!`` first). Read
    line by line; hidden folders, ``node_modules`` and virtual environments are not read. None
    when such a file is over ``max_bytes`` or cannot be read: what it names is unknown."""
    found: set[str] = set()
    left = set(names)
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            dirs[:] = [
                d
                for d in dirs
                if not d.startswith(".")
                and d != "node_modules"
                and not os.path.exists(os.path.join(root, d, "pyvenv.cfg"))
            ]
            for name in files:
                if not left:
                    return frozenset(found)
                path = os.path.join(root, name)
                if not _may_name_code(path, name):
                    continue
                try:
                    if os.path.getsize(path) > max_bytes:
                        return None
                    with open(path, encoding="utf-8", errors="replace") as f:
                        for line in f:
                            hits = left.intersection(_WORD.findall(line))
                            if hits:
                                found |= hits
                                left -= hits
                except OSError:
                    return None
    return frozenset(found)


def _may_name_code(path: str, name: str) -> bool:
    """A file besides Python that may name the project's functions (see
    :func:`named_in_templates`)."""
    if name.endswith((*TEMPLATE_SUFFIXES, *_CONFIG_SUFFIXES)) or name in ("Procfile", "crontab"):
        return True
    if "." in name:
        return False
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"#!"
    except OSError:
        return False


def _docstring(
    node: ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef,
) -> ast.Constant | None:
    """The docstring of ``node`` as a node, or None."""
    body = node.body
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        return body[0].value
    return None


def _docstring_words(docs: list[ast.Constant], text: str) -> list[str]:
    """The words of the docstrings ``docs`` as written in ``text``: a docstring that names a
    function (``:func:`get_logs```) does not call it."""
    found: list[str] = []
    if not docs:
        return found
    data = text.encode("utf-8", "surrogatepass")  # offsets are in UTF-8 bytes
    starts = [0]
    for line in data.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    for doc in docs:
        if doc.end_lineno is None or doc.end_col_offset is None:
            continue
        begin = starts[doc.lineno - 1] + doc.col_offset
        end = starts[doc.end_lineno - 1] + doc.end_col_offset
        found += _WORD.findall(data[begin:end].decode("utf-8", "replace"))
    return found


def is_test_path(path: str) -> bool:
    """``path`` is a test module (``tests/…``, ``test_*.py``, ``tests_*.py``, ``*_test.py``,
    ``conftest.py``)."""
    parts = path.replace(os.sep, "/").split("/")
    name = parts[-1]
    return (
        any(p in ("tests", "test", "testing") for p in parts[:-1])
        or name.startswith(("test_", "tests_"))
        or name.endswith("_test.py")
        or name in ("conftest.py", "tests.py")
    )


def read_calls(
    path: str, module: str, text: str, *, words: bool = True
) -> tuple[ModuleCalls | None, ast.Module | None]:
    """What the file at ``path`` (``module`` its dotted path, ``text`` its source) defines and
    calls, and the tree read (None for a file with no function or that does not parse: the
    lint run reports it); ``(None, None)`` for a test file with no function."""
    said = [] if not words or is_test_path(path) else _WORD.findall(text)
    named = _module_references(module, text) if said else []
    if "def " not in text and not (said and "class " in text):
        # no function; a class's bases matter only when words are read (a mixin's use)
        return (ModuleCalls(module, words=said, references=named) if said else None), None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(text, filename=path)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return (ModuleCalls(module, words=said, references=named) if said else None), None
    read = ModuleCalls(module, words=said, references=named)
    reader = _Reader(read, path)
    reader.visit(tree)
    if said:
        module_doc = _docstring(tree)
        docs = [module_doc, *reader.docstrings] if module_doc else reader.docstrings
        read.doc_words = _docstring_words(docs, text)
    return read, tree


def index_calls(files: Iterable[tuple[str, str, str]]) -> CallGraph:
    """The call graph of ``files`` (``(path, module, text)``) and the batch code it shows."""
    index = CallIndex()
    for path, module, text in files:
        index.add(path, module, text)
    return index.graph()
