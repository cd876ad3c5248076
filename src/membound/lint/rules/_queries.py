"""Shared predicates: is this a Django queryset, an SQLAlchemy query, in a batch job?

Several rules ask the same questions (MB101 and MB501 both need "an unbounded queryset"), so the
answers live here once; bounds from owners and keys are in ``_owners.py``, statements as text
in ``_sql.py``, streaming sources in ``_streams.py``. Every predicate is conservative: when a
chain cannot be followed (a parameter, a name assigned two unrelated values), it answers "no"
and the rules stay quiet.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from membound.lint.context import SQLALCHEMY_ROOTS, ModuleContext
from membound.lint.expression_chains import Link
from membound.lint.rules._drained import drained_queue
from membound.lint.rules._models import (
    MANAGERS,
    MODEL_GETTERS,
    foreign_key_bound,
    lookup_table,
    model_name,
    named_for_its_model,
    south_model,
    unique_bound,
)
from membound.lint.rules._owners import (
    key_in_list,
    last_name,
    owner_filter,
    privileged_only,
    shared_attribute,
)
from membound.lint.rules._sql import aggregate_select, statement_bounded
from membound.lint.rules._windows import own_span, time_window

__all__ = [
    "QS_METHODS",
    "batch_job",
    "bounded_variant",
    "column_status",
    "configured",
    "defers_to_mb501",
    "django_queryset",
    "feeds_choices",
    "is_one_column_comprehension",
    "model_name",
    "sa_query",
]

#: QuerySet methods that return another lazy, still unbounded, QuerySet.
QS_METHODS = frozenset(
    {
        "all",
        "filter",
        "exclude",
        "order_by",
        "select_related",
        "prefetch_related",
        "annotate",
        "alias",
        "distinct",
        "only",
        "defer",
        "using",
        "reverse",
        "values",
        "values_list",
        "union",
        "intersection",
        "difference",
        "select_for_update",
        "extra",
        "complex_filter",
    }
)
_MANAGERS = MANAGERS

#: SQLAlchemy steps that produce rows from a statement.
_SA_SOURCES = frozenset({"query", "execute", "scalars", "exec", "exec_driver_sql"})
#: SQLAlchemy steps after which at most a bounded number of rows come back.
_SA_BOUNDS = frozenset(
    {
        "limit",
        "group_by",
        "first",
        "one",
        "one_or_none",
        "scalar",
        "scalar_one",
        "scalar_one_or_none",
        "fetch",
        "slice",
        "get",
        "fetchmany",
        "fetchone",
        "count",
        "exists",
        "yield_per",
        "partitions",
        "paginate",  # Flask-SQLAlchemy: one page
    }
)


def _values_then_aggregate(chain: list[Link]) -> bool:
    """``.values("state").annotate(n=Count("id"))``: a GROUP BY, one row per group."""
    seen_values = False
    for link in chain:
        if link.kind != "method":
            continue
        if link.name in ("values", "values_list"):
            seen_values = True
        elif link.name in ("annotate", "aggregate") and seen_values:
            return True
    return False


def _distinct_shared_values(chain: list[Link]) -> bool:
    """``.values_list("language", flat=True).distinct()``, ``query(Page.status).distinct()``,
    ``with_entities(distinct(Event.name))``: the distinct values of columns that hold shared
    attributes, a small domain (as a GROUP BY over it would be)."""
    if not any(link.kind == "method" and link.name == "distinct" for link in chain):
        return _distinct_function_of_shared(chain)
    for link in chain:
        call = link.node
        if link.kind == "method" and link.name == "distinct" and isinstance(call, ast.Call):
            # ``.distinct("pulp_type")`` (PostgreSQL's DISTINCT ON): a row per value
            words = [a.value for a in call.args if isinstance(a, ast.Constant)]
            if call.args and len(words) == len(call.args):
                return all(isinstance(w, str) and shared_attribute(w) for w in words)
    for link in chain:
        call = link.node
        if link.kind != "method" or not isinstance(call, ast.Call) or not call.args:
            continue
        if link.name in ("values", "values_list"):
            words = [a.value for a in call.args if isinstance(a, ast.Constant)]
        elif link.name in ("query", "select"):
            words = [a.attr for a in call.args if isinstance(a, ast.Attribute)]
        else:
            continue
        return len(words) == len(call.args) and all(
            isinstance(w, str) and shared_attribute(w) for w in words
        )
    return False


def _distinct_function_of_shared(chain: list[Link]) -> bool:
    """``query(distinct(T.kind))`` / ``select(distinct(T.kind))`` /
    ``with_entities(distinct(T.name))``: every column selected is ``distinct()`` of a shared
    attribute (the last of them: ``with_entities`` replaces what ``query`` selected)."""
    for link in reversed(chain):
        call = link.node
        if link.kind not in ("method", "func") or not isinstance(call, ast.Call):
            continue
        if link.name not in ("query", "select", "with_entities") or not call.args:
            continue
        return all(
            isinstance(arg, ast.Call)
            and last_name(arg.func) == "distinct"
            and len(arg.args) == 1
            and isinstance(arg.args[0], ast.Attribute)
            and shared_attribute(arg.args[0].attr)
            for arg in call.args
        )
    return False


def _ranked(chain: list[Link]) -> bool:
    """``.annotate(rank=Window(Rank(), …)).filter(rank__lte=5)``: the first few rows of each
    partition, a top-N per group, not the table."""
    windows: set[str] = set()
    for link in chain:
        call = link.node
        if link.kind != "method" or not isinstance(call, ast.Call):
            continue
        if link.name == "annotate":
            for kw in call.keywords:
                value = kw.value
                if kw.arg and isinstance(value, ast.Call) and last_name(value.func) == "Window":
                    windows.add(kw.arg)
        elif link.name == "filter" and windows:
            for kw in call.keywords:
                name, _, lookup = (kw.arg or "").partition("__")
                small = isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, int)
                if name in windows and lookup in ("lte", "lt", "exact", "") and small:
                    return True
    return False


def _window_labels(ctx: ModuleContext) -> frozenset[str]:
    """The names the module gives window functions: ``rn`` of
    ``func.row_number().over(partition_by=…).label("rn")``."""
    found = ctx.memo.get("window_labels")
    if found is None:
        names = set()
        for call in ctx.of_type(ast.Call):
            func = call.func
            if (
                isinstance(func, ast.Attribute)
                and func.attr == "label"
                and call.args
                and isinstance(call.args[0], ast.Constant)
                and isinstance(call.args[0].value, str)
                and isinstance(func.value, ast.Call)
                and last_name(func.value.func) == "over"
            ):
                names.add(call.args[0].value)
        found = ctx.memo["window_labels"] = frozenset(names)
    assert isinstance(found, frozenset)
    return found


def _ranked_by_a_window(ctx: ModuleContext, chain: list[Link]) -> bool:
    """``.where(subquery.c.rn == 1)`` (or ``<= 5``) with ``rn`` a window function's label
    (``func.row_number().over(partition_by=…)``): the first few rows of each partition, as
    :func:`_ranked` reads Django's ``Window``."""
    labels = _window_labels(ctx)
    if not labels:
        return False
    for link in chain:
        if (
            link.kind != "method"
            or link.name not in ("where", "filter")
            or not isinstance(link.node, ast.Call)
        ):
            continue
        for node in _conjoined(link.node.args):
            left = node.left if isinstance(node, ast.Compare) else None
            if (
                isinstance(node, ast.Compare)
                and len(node.ops) == 1
                and isinstance(node.ops[0], (ast.Eq, ast.Lt, ast.LtE))
                and isinstance(left, ast.Attribute)
                and left.attr in labels
                and isinstance(left.value, ast.Attribute)
                and left.value.attr in ("c", "columns")  # ``ranked.c.rn``: the subquery's
                and isinstance(node.comparators[0], ast.Constant)
                and isinstance(node.comparators[0].value, int)
            ):
                return True
    return False


def _conjoined(args: list[ast.expr]) -> Iterator[ast.expr]:
    """The conditions every row must meet: the arguments, and those of ``and_(...)`` in them
    (not the branches of an ``or_``)."""
    for arg in args:
        if isinstance(arg, ast.Call) and last_name(arg.func) == "and_":
            yield from _conjoined(arg.args)
        else:
            yield arg


def bounded_variant(ctx: ModuleContext, chain: list[Link], code: str, model: str | None) -> bool:
    """Bounds the rules accept for a query that has no LIMIT: the user's ``small-models``, a
    lookup table (``lint/model_shape.py``), an aggregate, or (unless the model is in
    ``large-models``, or ``code``'s preview variants run) the rows of one owner (named so, or
    a foreign key of the model's definition fixed to a value in hand), the accounts flagged
    superuser, staff or administrator, a work queue the loop drains
    (``lint/rules/_drained.py``), a time window or one object's own span
    (``lint/rules/_windows.py``)."""
    size = ctx.model_size(model)
    if size == "small" or (size is None and lookup_table(ctx, chain)):
        return True
    if (
        _values_then_aggregate(chain)
        or _distinct_shared_values(chain)
        or _ranked(chain)
        or _ranked_by_a_window(ctx, chain)
    ):
        return True
    if size == "large" or code in ctx.preview:
        return False
    return (
        any(owner_filter(ctx, link) or privileged_only(ctx, link) for link in chain)
        or foreign_key_bound(ctx, chain)
        or named_for_its_model(ctx, chain)
        or drained_queue(ctx, chain)
        or time_window(ctx, chain)
        or own_span(ctx, chain)
        or any(link.kind == "attr" and link.name.endswith("_set") for link in chain[1:])
    )


#: Decorators that make a function a background job: Celery, RQ, Dramatiq, Huey, APScheduler,
#: Django-Q, arq; matched on the last name of the decorator (``@app.task``, ``@shared_task``).
_JOB_DECORATORS = frozenset(
    {"task", "shared_task", "periodic_task", "job", "actor", "db_task", "db_periodic_task",
     "scheduled_job", "cron", "crontab"}
)  # fmt: skip


#: Libraries whose ``@<x>.command`` makes a command-line command (click, Flask's CLI, typer).
_CLI_ROOTS = frozenset({"click", "typer", "flask"})


def batch_job(ctx: ModuleContext, node: ast.AST) -> str | None:
    """Describe the batch job ``node`` runs in, or None for other code (a request, a library).

    A batch job runs unattended over all the data: a migration (Django, Alembic), a Django
    management command, a click/typer/Flask CLI command, a function decorated as a background
    task, a script (a module with
    ``if __name__ == "__main__":``), code at module level (it runs once, over whatever it
    reads). That is where whole-table loops run and get OOM-killed; in request code the same
    query is usually bounded by pagination, permissions or ownership that a linter cannot see
    (in the real-code suite, whole-table findings in migrations were nearly all risks, and most
    of those elsewhere were not).
    """
    # Only the folders the file is directly in: a project that happens to live under a folder
    # called "migrations" does not make every module a migration.
    parts = tuple(part.lower() for part in ctx.filename.replace("\\", "/").split("/")[:-1])
    if any(parts[i : i + 2] == ("management", "commands") for i in range(len(parts) - 1)):
        return "a management command"  # its own module, or a subcommand's in a package below
    if parts[-1:] == ("migrations",) or (
        parts[-1:] == ("versions",) and "alembic" in ctx.imported_roots
    ):
        return "a migration"
    for ancestor in ctx.ancestors(node):
        if isinstance(ancestor, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for deco in ancestor.decorator_list:
                target = deco.func if isinstance(deco, ast.Call) else deco
                if last_name(target) in _JOB_DECORATORS:
                    return f"the task `{ancestor.name}`"
                if (
                    isinstance(deco, ast.Call)
                    and deco.args
                    and (last_name(target) or "").lower().endswith("migration")
                ):
                    # ``@RegisterMigration(9, MIGRATIONS)``: a migration a project registers
                    return "a migration"
                if last_name(target) == "command" and ctx.imports_any(_CLI_ROOTS):
                    return f"the command `{ancestor.name}`"
    scopes = [
        a.name
        for a in ctx.ancestors(node)
        if isinstance(a, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    ]
    if not any(isinstance(a, (ast.FunctionDef, ast.AsyncFunctionDef)) for a in ctx.ancestors(node)):
        return "module-level code"
    if "is_script" not in ctx.memo:
        ctx.memo["is_script"] = any(
            isinstance(stmt, ast.If)
            and isinstance(stmt.test, ast.Compare)
            and isinstance(stmt.test.left, ast.Name)
            and stmt.test.left.id == "__name__"
            for stmt in ctx.tree.body
        )
    if ctx.memo["is_script"]:
        return "a script"
    calls = ctx.evidence.calls if ctx.evidence is not None else None
    if calls is not None:
        # A plain function that a command, a task or a script calls (``lint/call_graph.py``).
        reached = calls.reached(ctx.filename, ".".join(reversed(scopes)))
        if reached is not None:
            return f"code that {reached} runs"
    return None


def feeds_choices(ctx: ModuleContext, node: ast.AST, name: str | None = None) -> bool:
    """What ``node`` builds (or the container ``name``) becomes the ``choices=`` of a call: an
    argparse option, a form field. A person picks from that list, so it is small by design."""
    names = {name} if name else set()
    for ancestor in ctx.ancestors(node):
        if isinstance(ancestor, ast.keyword):
            return ancestor.arg == "choices"
        if isinstance(ancestor, ast.stmt):
            if isinstance(ancestor, ast.Assign):
                names |= {t.id for t in ancestor.targets if isinstance(t, ast.Name)}
            break
    if not names:
        return False
    scope = ctx.scope_of(node)
    return any(
        kw.arg == "choices"
        and isinstance(kw.value, ast.Name)
        and kw.value.id in names
        and ctx.scope_of(call) is scope
        for call in ctx.of_type(ast.Call)
        for kw in call.keywords
    )


def _known_model(ctx: ModuleContext, chain: list[Link]) -> bool:
    """A chain that starts at a model the run maps to a table (a model of the linted tree): a
    module that uses models imported from elsewhere need not import django itself."""
    evidence = ctx.evidence
    if evidence is None or not chain or chain[0].kind != "name":
        return False
    name = chain[0].name
    return evidence.tables.table_of(ctx.qualify(ast.Name(id=name)), name) is not None


#: Calls that give a model class (a migration's ``apps.get_model``, the user model).
_MODEL_CALLS = MODEL_GETTERS | {"get_user_model"}


def _a_model_class(ctx: ModuleContext, link: Link) -> bool:
    """The step before ``.objects`` can be a model class: a class name (capitalised), a model
    the run knows, ``self.model``/``cls``/``model``, or ``get_model(...)``. A call's result or a
    lower-case object (``s3.Bucket(name).objects``, ``bucket.objects``: a boto3 collection) is
    not a Django manager."""
    if link.kind in ("method", "func"):
        return link.name in _MODEL_CALLS
    if link.kind not in ("name", "attr"):
        return False
    if link.name[:1].isupper() or link.name in ("model", "cls", "Model"):
        return True
    evidence = ctx.evidence
    return evidence is not None and evidence.tables.table_of(None, link.name) is not None


def django_queryset(
    ctx: ModuleContext, expr: ast.AST, code: str = "MB101", *, manager: bool = False
) -> list[Link] | None:
    """Return the chain of ``expr`` if it is an unbounded Django QuerySet, else None.

    A queryset starts at a manager (``Model.objects``, ``obj.thing_set``) followed only by
    methods that return QuerySets. A slice, ``.iterator()`` or any other step (``.get()``,
    ``.count()``) makes it something else. With ``manager``, the manager itself counts as its
    queryset of every row (``Model.objects.in_bulk()``).
    """
    chain = ctx.expand(expr)
    if (
        "django" not in ctx.imported_roots
        and "south" not in ctx.imported_roots  # South's frozen ``orm`` models
        and not _known_model(ctx, chain)
    ):
        return None
    start = None
    for index, link in enumerate(chain):
        if (
            index > 0
            and link.kind == "attr"
            and (link.name in _MANAGERS or link.name.endswith("_set"))
        ):
            start = index
            break
    if start is None or (
        chain[start].name in _MANAGERS
        and not _a_model_class(ctx, chain[start - 1])
        and south_model(ctx, chain[:start]) is None  # South's ``orm["discovery.device"]``
    ):
        return None
    rest = chain[start + 1 :]
    if not rest and not manager:
        return None
    if (
        all(link.kind == "method" and link.name in QS_METHODS for link in rest)
        and not any(key_in_list(ctx, link) for link in rest)
        and not unique_bound(ctx, chain)
    ):
        model = chain[0].name if start == 1 and chain[0].kind == "name" else None
        if bounded_variant(ctx, chain, code, model):
            return None
        return chain
    return None


def sa_query(ctx: ModuleContext, expr: ast.AST, code: str = "MB102") -> list[Link] | None:
    """Return the chain of ``expr`` if it is an unbounded SQLAlchemy query or result, else None.

    Recognised sources: ``session.query(...)``, ``Model.query`` (Flask-SQLAlchemy),
    ``.execute(stmt)``, ``.scalars(stmt)``, ``.exec(stmt)`` (SQLModel). Bounded when a step such
    as ``.limit()``, ``.first()``, ``.one()`` or a slice appears, or the statement is bounded.
    """
    if not ctx.imports_any(SQLALCHEMY_ROOTS) and not ctx.imports_project_model():
        return None
    chain = ctx.expand(expr)
    source = False
    for link in chain:
        if link.kind == "sub":
            return None
        if link.kind == "method":
            if link.name in _SA_BOUNDS or key_in_list(ctx, link) or aggregate_select(ctx, link):
                return None
            if link.name in _SA_SOURCES:
                source = True
                if (
                    link.name != "query"
                    and isinstance(link.node, ast.Call)
                    and statement_bounded(ctx, link.node)
                ):
                    return None
        elif link.kind == "attr" and link.name == "query":
            source = True
    if not source or unique_bound(ctx, chain):
        return None
    statement: list[Link] = []
    for link in chain:
        if link.kind == "method" and link.name in ("execute", "scalars", "exec"):
            if isinstance(link.node, ast.Call) and link.node.args:
                statement = ctx.expand(link.node.args[0])
            break
    if bounded_variant(ctx, chain + statement, code, model_name(ctx, chain)):
        return None
    return chain


def _entity(arg: ast.AST) -> bool:
    # ``User`` or ``models.User``: a mapped class (whole rows); ``User.email`` is one column.
    if isinstance(arg, ast.Name):
        return arg.id[:1].isupper()
    return isinstance(arg, ast.Attribute) and arg.attr[:1].isupper()


def _selects_entities(ctx: ModuleContext, chain: list[Link]) -> bool:
    for link in chain:
        if link.kind != "method" or not isinstance(link.node, ast.Call):
            continue
        call = link.node
        if link.name == "query":
            return bool(call.args) and all(_entity(a) for a in call.args)
        if link.name in ("execute", "scalars", "exec") and call.args:
            for step in ctx.expand(call.args[0]):
                if step.name == "select" and isinstance(step.node, ast.Call):
                    args = step.node.args
                    return bool(args) and all(_entity(a) for a in args)
            return False
    # Flask-SQLAlchemy ``Model.query`` always loads whole instances.
    return any(link.kind == "attr" and link.name == "query" for link in chain)


#: Field constructors that are relations, not columns: their attribute is another row (Django
#: runs one more query per row for it), and ``values_list`` of the name returns a key instead.
_RELATIONS = frozenset(
    {"ForeignKey", "OneToOneField", "ManyToManyField", "relationship", "GenericForeignKey"}
)
_ALWAYS_COLUMNS = frozenset({"id", "pk"})


def column_status(ctx: ModuleContext, chain: list[Link], attr: str) -> str:
    """Whether ``attr`` of the rows of ``chain`` is a ``"column"``, ``"computed"`` (a property,
    method or relation: asking the database for it is not possible or not the same) or
    ``"unknown"`` (the model is not defined in this module, or the name is inherited)."""
    if attr in _ALWAYS_COLUMNS and "django" in ctx.imported_roots:
        return "column"
    name = model_name(ctx, chain)
    if name is None:
        return "unknown"
    for cls in ctx.of_type(ast.ClassDef):
        if cls.name != name:
            continue
        for stmt in cls.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name == attr:
                return "computed"
            value: ast.expr | None = None
            if (
                isinstance(stmt, ast.Assign)
                and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)
                and stmt.targets[0].id == attr
            ):
                value = stmt.value
            elif (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and stmt.target.id == attr
            ):
                if stmt.value is None:
                    return "column"  # ``email: Mapped[str]``
                value = stmt.value
            if value is None:
                continue
            if isinstance(value, ast.Call):
                called = (
                    value.func.attr
                    if isinstance(value.func, ast.Attribute)
                    else getattr(value.func, "id", "")
                )
                if called in _RELATIONS:
                    return "computed"
                if called in ("property", "cached_property", "hybrid_property"):
                    return "computed"
                return "column"
            return "computed"
        return "unknown"
    return "unknown"


def is_one_column_comprehension(ctx: ModuleContext, comp: ast.AST) -> bool:
    """Tell whether ``comp`` keeps one attribute of each row of an unbounded query (MB501)."""
    if not isinstance(comp, (ast.ListComp, ast.SetComp, ast.GeneratorExp)):
        return False
    if len(comp.generators) != 1:
        return False
    gen = comp.generators[0]
    elt = comp.elt
    if not (
        isinstance(gen.target, ast.Name)
        and isinstance(elt, ast.Attribute)
        and isinstance(elt.value, ast.Name)
        and elt.value.id == gen.target.id
    ):
        return False
    chain = django_queryset(ctx, gen.iter)
    if chain is not None:
        return (
            not any(
                link.name in ("values", "values_list", "only")
                for link in chain
                if link.kind == "method"
            )
            and column_status(ctx, chain, elt.attr) != "computed"
        )
    chain = sa_query(ctx, gen.iter)
    return (
        chain is not None
        and _selects_entities(ctx, chain)
        and column_status(ctx, chain, elt.attr) != "computed"
    )


def defers_to_mb501(ctx: ModuleContext, node: ast.AST) -> bool:
    """Tell whether ``node`` is the iterable of a comprehension that MB501 reports.

    A comprehension that keeps one column of a whole query is one problem with one fix (ask for
    the column); reporting it again as MB101/MB102 would only add noise. When MB501 is not
    selected, the general rules report it as usual.
    """
    if "MB501" not in ctx.selected:
        return False
    parent = ctx.parent(node)
    if not isinstance(parent, ast.comprehension) or parent.iter is not node:
        return False
    return is_one_column_comprehension(ctx, ctx.parent(parent) or parent)


def configured(ctx: ModuleContext, link: Link) -> bool:
    if not ctx.streaming_calls or link.kind not in ("func", "method", "call"):
        return False
    if link.name in ctx.streaming_calls:
        return True
    if isinstance(link.node, ast.Call):
        qualified = ctx.qualify(link.node.func)
        return qualified is not None and qualified in ctx.streaming_calls
    return False
