"""Shared predicates: is this a Django queryset, an SQLAlchemy query, a streaming source?

Several rules ask the same questions (MB101 and MB501 both need "an unbounded queryset"), so the
answers live here once. Every predicate is conservative: when a chain cannot be followed (a
parameter, a name assigned two unrelated values), it answers "no" and the rules stay quiet.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator

from membound.lint.context import DBAPI_ROOTS, SQLALCHEMY_ROOTS, Link, ModuleContext, sql_is_bounded

__all__ = [
    "QS_METHODS",
    "batch_job",
    "bounded_variant",
    "column_status",
    "database_source",
    "django_queryset",
    "is_one_column_comprehension",
    "literal_pieces",
    "model_name",
    "sa_query",
    "statement_bounded",
    "streaming_source",
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
_MANAGERS = frozenset({"objects", "_default_manager", "_base_manager"})

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
    }
)

#: Methods whose result is consumed piece by piece (a streaming source for MB201).
_STREAM_METHODS = frozenset(
    {
        "iterator",
        "yield_per",
        "partitions",
        "find_each",
        "in_batches",
        "read_chunks",
        "read_lines",
        "lmdb_batches",
        "iter_lines",
        "iter_content",
        "iter_bytes",
        "iter_text",
    }
)
#: Functions, by qualified name, that return a streaming iterator.
_STREAM_FUNCS = frozenset(
    {
        "itertools.batched",
        "more_itertools.chunked",
        "more_itertools.ichunked",
        "csv.reader",
        "csv.DictReader",
        "io.open",
        "gzip.open",
        "bz2.open",
        "lzma.open",
        "codecs.open",
        "fileinput.input",
        "sys.stdin",
    }
)
#: Bare function names (imported from anywhere, membound included) that stream.
_STREAM_NAMES = frozenset(
    {"find_each", "in_batches", "batched", "read_chunks", "read_lines", "lmdb_batches", "chunked"}
)


#: Django lookups: a keyword ending in one of these compares, it does not follow a relation.
_LOOKUPS = frozenset(
    {
        "exact", "iexact", "contains", "icontains", "in", "gt", "gte", "lt", "lte",
        "startswith", "istartswith", "endswith", "iendswith", "range", "date", "year",
        "iso_year", "month", "day", "week", "week_day", "iso_week_day", "quarter", "time",
        "hour", "minute", "second", "isnull", "regex", "iregex", "search", "contained_by",
        "overlap", "has_key", "has_keys", "has_any_keys", "len", "trigram_similar", "unaccent",
    }
)  # fmt: skip
#: Keyword or column names that name an owner: rows filtered to one of these belong to one owner.
_OWNERS = frozenset(
    {
        "user", "owner", "author", "creator", "account", "customer", "organization",
        "organisation", "organiser", "organizer", "tenant", "team", "project", "event",
        "parent", "member", "person", "profile", "group", "workspace", "company", "site",
        "object", "content_object", "instance",
    }
)  # fmt: skip


_KEY_NAMES = frozenset({"id", "pk", "uuid", "uid", "key"})


def _last_name(expr: ast.AST) -> str | None:
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        return expr.attr
    return None


def _is_value_in_hand(expr: ast.AST) -> bool:
    """A variable, attribute or item (an object or key already in memory), not a literal, not a
    column of another table (``Other.id``, ``t.c.id``: that is a join, not a filter)."""
    if isinstance(expr, ast.Call):
        return False
    root = expr
    while isinstance(root, (ast.Attribute, ast.Subscript)):
        if isinstance(root, ast.Attribute) and root.attr == "c":
            return False
        root = root.value
    if not isinstance(root, ast.Name) or root.id[:1].isupper():
        return False
    return isinstance(expr, (ast.Name, ast.Attribute, ast.Subscript))


_KEY_SUFFIXES = ("id", "uuid", "pk", "key")


def _is_key_column(field: str) -> bool:
    """``run_uuid``, ``queue_id``, ``buildsetid``: a column holding the key of another row."""
    return field.lower().endswith(_KEY_SUFFIXES)


def _strip_key(name: str) -> str:
    lowered = name.lower()
    for suffix in ("_id", "_uuid", "_pk", "_key", "id", "uuid"):
        if lowered.endswith(suffix) and len(lowered) > len(suffix):
            return lowered[: -len(suffix)].rstrip("_")
    return lowered


#: Column names that hold a value shared by many rows (a state, a kind, a date), not an owner:
#: ``filter(state=state)`` is no bound even though the names match.
_NOT_OWNERS = frozenset(
    {
        "state", "status", "type", "kind", "category", "name", "slug", "email", "language",
        "locale", "mode", "level", "priority", "source", "format", "version", "date", "day",
        "month", "year", "time", "active", "enabled", "public", "deleted", "visible", "value",
        "tag", "label", "flag", "country", "currency", "role", "action", "result", "code",
    }
)  # fmt: skip


def _owner_match(field: str, value: ast.AST) -> bool:
    """``field == value`` selects the rows of one owner: a value in hand, and a field that names
    an owner (``event=self.event``) or is named like that value (``build_id == build_id``,
    ``submission=self.submission``), unless the field is a shared attribute (``state=state``)."""
    if not _is_value_in_hand(value):
        return False
    base = _strip_key(field)
    if base in _OWNERS or base.rsplit("_", 1)[-1] in _OWNERS:
        return True
    named = _last_name(value)
    if named is None or not base:
        return False
    # A key column (``role_id``) names a row of another table even when that table is a shared
    # attribute elsewhere (``role``); a plain column named like a shared attribute does not.
    if base in _NOT_OWNERS and base == field.lower():
        return False
    if named.lower() in _KEY_NAMES and field.lower() != base:
        return True  # ``buildsetid == row.id``: a key column equal to the id of a row in hand
    other = _strip_key(named)
    return other.endswith(base) or (len(other) >= 3 and base.endswith(other))


def owner_filter(ctx: ModuleContext, link: Link) -> bool:
    """A ``filter``/``filter_by``/``where`` step keeping the rows of one owner's foreign key:
    ``filter(event=self.event)``, ``filter(review__submission=s)``, ``filter_by(user_id=uid)``,
    ``where(T.c.buildid == buildid)``, ``filter(Metric.run_uuid == run_uuid)``."""
    if link.kind != "method" or link.name not in ("filter", "where", "filter_by"):
        return False
    call = link.node
    if not isinstance(call, ast.Call):
        return False
    keywords = list(call.keywords)
    args = [_resolved(ctx, a) for a in call.args]
    for arg in args:
        # ``Q(speaker__user=user) | Q(...)``: the keywords of the Q objects filter too.
        keywords.extend(
            kw
            for node in ast.walk(arg)
            if isinstance(node, ast.Call) and _last_name(node.func) == "Q"
            for kw in node.keywords
        )
    for kw in keywords:
        if kw.arg is None:
            continue
        parts = kw.arg.split("__")
        if parts[-1] == "in" and len(parts) > 1:
            # ``submission_id__in=ids`` / ``event__in=events``: the rows of owners in hand.
            if _in_memory_list(ctx, kw.value) and (
                _is_key_column(parts[-2]) or _strip_key(parts[-2]) in _OWNERS
            ):
                return True
            continue
        if parts[-1] in _LOOKUPS:
            continue
        if _owner_match(parts[-1], kw.value):
            return True
    if any(_owner_match(column, value) for column, value, _ in _equalities(args)):
        return True
    for arg in args:
        for node in ast.walk(arg):
            if (
                # ``Trace.request_id.in_(trace_ids)``: the rows of a list of owners in hand.
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "in_"
                and isinstance(node.func.value, ast.Attribute)
                and _is_key_column(node.func.value.attr)
                and len(node.args) == 1
                and _in_memory_list(ctx, node.args[0])
            ):
                return True
    return False


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


def bounded_variant(ctx: ModuleContext, chain: list[Link], code: str, model: str | None) -> bool:
    """Bounds the rules accept for a query that has no LIMIT: the user's ``small-models``, an
    aggregate, or (unless the model is in ``large-models``, or ``code``'s preview variants run)
    the rows of one owner."""
    size = ctx.model_size(model)
    if size == "small":
        return True
    if _values_then_aggregate(chain):
        return True
    if size == "large" or code in ctx.preview:
        return False
    return any(owner_filter(ctx, link) for link in chain) or any(
        link.kind == "attr" and link.name.endswith("_set") for link in chain[1:]
    )


#: Decorators that make a function a background job: Celery, RQ, Dramatiq, Huey, APScheduler,
#: Django-Q, arq; matched on the last name of the decorator (``@app.task``, ``@shared_task``).
_JOB_DECORATORS = frozenset(
    {"task", "shared_task", "periodic_task", "job", "actor", "db_task", "db_periodic_task",
     "scheduled_job", "cron", "crontab"}
)  # fmt: skip


def batch_job(ctx: ModuleContext, node: ast.AST) -> str | None:
    """Describe the batch job ``node`` runs in, or None for other code (a request, a library).

    A batch job runs unattended over all the data: a migration (Django, Alembic), a Django
    management command, a function decorated as a background task, a script (a module with
    ``if __name__ == "__main__":``), code at module level (it runs once, over whatever it
    reads). That is where whole-table loops run and get OOM-killed; in request code the same
    query is usually bounded by pagination, permissions or ownership that a linter cannot see
    (in the real-code suite, whole-table findings in migrations were nearly all risks, and most
    of those elsewhere were not).
    """
    # Only the folders the file is directly in: a project that happens to live under a folder
    # called "migrations" does not make every module a migration.
    parts = tuple(part.lower() for part in ctx.filename.replace("\\", "/").split("/")[:-1])
    if parts[-2:] == ("management", "commands"):
        return "a management command"
    if parts[-1:] == ("migrations",) or (
        parts[-1:] == ("versions",) and "alembic" in ctx.imported_roots
    ):
        return "a migration"
    for ancestor in ctx.ancestors(node):
        if isinstance(ancestor, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for deco in ancestor.decorator_list:
                target = deco.func if isinstance(deco, ast.Call) else deco
                if _last_name(target) in _JOB_DECORATORS:
                    return f"the task `{ancestor.name}`"
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
    return "a script" if ctx.memo["is_script"] else None


def _known_model(ctx: ModuleContext, chain: list[Link]) -> bool:
    """A chain that starts at a model the run's sizes map to a table: a module that uses
    models imported from elsewhere need not import django itself."""
    evidence = ctx.evidence
    if evidence is None or not chain or chain[0].kind != "name":
        return False
    name = chain[0].name
    return evidence.tables.table_of(ctx.qualify(ast.Name(id=name)), name) is not None


def django_queryset(ctx: ModuleContext, expr: ast.AST, code: str = "MB101") -> list[Link] | None:
    """Return the chain of ``expr`` if it is an unbounded Django QuerySet, else None.

    A queryset starts at a manager (``Model.objects``, ``obj.thing_set``) followed only by
    methods that return QuerySets. A slice, ``.iterator()`` or any other step (``.get()``,
    ``.count()``) makes it something else.
    """
    chain = ctx.expand(expr)
    if "django" not in ctx.imported_roots and not _known_model(ctx, chain):
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
    if start is None:
        return None
    rest = chain[start + 1 :]
    if not rest:
        return None
    if all(link.kind == "method" and link.name in QS_METHODS for link in rest) and not any(
        key_in_list(ctx, link) for link in rest
    ):
        model = chain[0].name if start == 1 and chain[0].kind == "name" else None
        if bounded_variant(ctx, chain, code, model):
            return None
        return chain
    return None


_QUERY_STEPS = frozenset(
    {"select", "query", "subquery", "scalar_subquery", "values_list", "values", "objects", "all"}
)
_PK_NAMES = frozenset({"id", "pk"})


def _in_memory_list(ctx: ModuleContext, expr: ast.AST) -> bool:
    """An argument of ``in_``/``pk__in`` that is a list in hand, not a subquery."""
    if isinstance(expr, (ast.List, ast.Tuple, ast.Set, ast.ListComp, ast.SetComp)):
        return True
    return not any(
        link.name in _QUERY_STEPS
        for link in ctx.expand(expr)
        if link.kind in ("method", "attr", "func")
    )


def _equalities(args: Iterable[ast.expr]) -> Iterator[tuple[str, ast.expr, ast.Compare]]:
    """``(column, value, node)`` for each ``X.column == value`` inside ``args``."""
    for arg in args:
        for node in ast.walk(arg):
            if (
                isinstance(node, ast.Compare)
                and len(node.ops) == 1
                and isinstance(node.ops[0], ast.Eq)
                and isinstance(node.left, ast.Attribute)
            ):
                yield node.left.attr, node.comparators[0], node


def _resolved(ctx: ModuleContext, expr: ast.expr) -> ast.expr:
    """``whereclause`` in ``.where(whereclause)``: the one value it was assigned, if one."""
    if isinstance(expr, ast.Name):
        values = ctx.assigned_values(expr.id, expr)
        if len(values) == 1:
            return values[0]
    return expr


def key_in_list(ctx: ModuleContext, link: Link) -> bool:
    """A ``filter``/``where`` step keeping rows whose primary key is in a list already in memory,
    or equal to one value in hand.

    ``.filter(Model.id.in_(ids))`` or ``.filter(pk__in=ids)`` returns at most ``len(ids)`` rows:
    memory the caller already pays for. A subquery in place of the list gives no such bound.
    """
    if link.kind != "method" or link.name not in ("filter", "where", "filter_by"):
        return False
    call = link.node
    if not isinstance(call, ast.Call):
        return False
    for kw in call.keywords:
        if kw.arg in ("pk__in", "id__in") and _in_memory_list(ctx, kw.value):
            return True
        if kw.arg in ("pk", "id") and _is_value_in_hand(kw.value):
            return True  # one row
    for column, value, node in _equalities(_resolved(ctx, a) for a in call.args):
        if (
            column in _PK_NAMES
            and _is_value_in_hand(value)
            and not isinstance(ctx.parent(node), ast.BoolOp)
        ):
            return True  # ``tbl.c.id == masterid``: one row
    for arg in call.args:
        if (
            isinstance(arg, ast.Call)
            and isinstance(arg.func, ast.Attribute)
            and arg.func.attr == "in_"
            and isinstance(arg.func.value, ast.Attribute)
            and arg.func.value.attr in _PK_NAMES
            and len(arg.args) == 1
            and _in_memory_list(ctx, arg.args[0])
        ):
            return True
    return False


def literal_pieces(ctx: ModuleContext, stmt: ast.AST) -> list[str]:
    """The string constants that build ``stmt``: in the expression, and for a name in its one
    assigned value and the text appended to it (``sql += " LIMIT 10"``) in its scope. (A name
    with several alternative values is bounded only when each is: see ``statement_bounded``.)"""
    exprs: list[ast.AST] = [stmt]
    if isinstance(stmt, ast.Name):
        values = ctx.assigned_values(stmt.id, stmt)
        if len(values) == 1:
            exprs.extend(values)
        scope = ctx.scope_of(stmt)
        exprs.extend(
            aug.value
            for aug in ctx.of_type(ast.AugAssign)
            if isinstance(aug.target, ast.Name)
            and aug.target.id == stmt.id
            and ctx.scope_of(aug) is scope
            and aug.lineno <= stmt.lineno
        )
    pieces: list[str] = []
    for expr in exprs:
        for node in ast.walk(expr):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                pieces.append(node.value)
            elif isinstance(node, ast.JoinedStr):
                text = ctx.string_value(node)
                if text is not None:
                    pieces.append(text)
    return pieces


def statement_bounded(ctx: ModuleContext, call: ast.Call) -> bool:
    """Tell whether the statement passed to ``execute``/``scalars`` visibly returns few rows."""
    if not call.args:
        return False
    stmt = call.args[0]
    sql = ctx.string_value(stmt)
    if sql is not None and sql_is_bounded(sql):
        return True
    if isinstance(stmt, ast.Name):
        # ``query = "..."`` in each branch of an ``if``: bounded when every branch is.
        texts = [ctx.string_value(v) for v in ctx.assigned_values(stmt.id, stmt)]
        if texts and all(t is not None and sql_is_bounded(t) for t in texts):
            return True
    # SQL assembled from pieces (``base + " LIMIT 10"``, ``sql += f" LIMIT {n}"``): a bounding
    # clause in any literal piece bounds the statement.
    if any(sql_is_bounded(piece) for piece in literal_pieces(ctx, stmt)):
        return True
    return any(
        (link.kind == "method" and link.name in ("limit", "fetch", "slice", "group_by"))
        or key_in_list(ctx, link)
        or aggregate_select(ctx, link)
        for link in ctx.expand(stmt)
    )


_AGGREGATES = frozenset({"count", "sum", "avg", "min", "max"})


def aggregate_select(ctx: ModuleContext, link: Link) -> bool:
    """``select(func.count(...))`` / ``query(func.max(...))``: every column an aggregate, so one
    row comes back (with ``group_by``, one per group, which ``group_by`` itself bounds)."""
    if link.kind not in ("method", "func") or link.name not in ("select", "query"):
        return False
    call = link.node
    if not isinstance(call, ast.Call) or not call.args:
        return False
    return all(
        isinstance(arg, ast.Call)
        and isinstance(arg.func, ast.Attribute)
        and arg.func.attr.lower() in _AGGREGATES
        and isinstance(arg.func.value, ast.Name)
        and arg.func.value.id == "func"
        for arg in call.args
    )


def sa_query(ctx: ModuleContext, expr: ast.AST, code: str = "MB102") -> list[Link] | None:
    """Return the chain of ``expr`` if it is an unbounded SQLAlchemy query or result, else None.

    Recognised sources: ``session.query(...)``, ``Model.query`` (Flask-SQLAlchemy),
    ``.execute(stmt)``, ``.scalars(stmt)``, ``.exec(stmt)`` (SQLModel). Bounded when a step such
    as ``.limit()``, ``.first()``, ``.one()`` or a slice appears, or the statement is bounded.
    """
    if not ctx.imports_any(SQLALCHEMY_ROOTS):
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
    if not source:
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


def model_name(ctx: ModuleContext, chain: list[Link]) -> str | None:
    """The class name of the model a query chain loads, when it is written there."""
    if (
        chain
        and chain[0].kind == "name"
        and any(link.kind == "attr" and link.name in _MANAGERS for link in chain[1:2])
    ):
        return chain[0].name
    for link in chain:
        if link.kind == "method" and link.name == "query" and isinstance(link.node, ast.Call):
            args = link.node.args
            if len(args) == 1 and isinstance(args[0], ast.Name):
                return args[0].id
        if (
            link.kind == "method"
            and link.name in ("execute", "scalars")
            and isinstance(link.node, ast.Call)
            and link.node.args
        ):
            for step in ctx.expand(link.node.args[0]):
                if step.name == "select" and isinstance(step.node, ast.Call):
                    args = step.node.args
                    if len(args) == 1 and isinstance(args[0], ast.Name):
                        return args[0].id
    if (
        chain
        and chain[0].kind == "name"
        and any(link.kind == "attr" and link.name == "query" for link in chain[1:2])
    ):
        return chain[0].name
    return None


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


def _configured(ctx: ModuleContext, link: Link) -> bool:
    if not ctx.streaming_calls or link.kind not in ("func", "method", "call"):
        return False
    if link.name in ctx.streaming_calls:
        return True
    if isinstance(link.node, ast.Call):
        qualified = ctx.qualify(link.node.func)
        return qualified is not None and qualified in ctx.streaming_calls
    return False


_CHUNKED_READS = frozenset({"fetchmany", "readline", "recv", "iter_content", "iter_lines"})


_DATABASE_SOURCES = (
    "iterator",
    "yield_per",
    "partitions",
    "find_each",
    "in_batches",
    "lmdb_batches",
    "stream_results",
    "database cursor",
)


def database_source(ctx: ModuleContext, source: str) -> bool:
    """Whether a ``streaming_source`` description names rows of a database: a queryset
    iterator, ``yield_per``, a cursor, key batches, a generator that streams one of these, or a
    helper the user listed in ``extend-streaming-calls``."""
    if any(name in source for name in _DATABASE_SOURCES):
        return True
    if source.startswith("the generator `"):
        name = source[len("the generator `") :].split("(", 1)[0]
        return name in _streaming_generators(ctx).get("database", set())
    return any(
        source in (f"`{tail}()`", f"`{name}`")
        for name in ctx.streaming_calls
        for tail in (name.rsplit(".", 1)[-1],)
    )


def _streaming_generators(ctx: ModuleContext) -> dict[str, set[str]]:
    """Generator functions of this module that themselves stream from somewhere, by kind:
    ``"all"`` of them, and those that stream rows of a ``"database"``.

    A generator over data already in memory (walking a list, parsing a string) streams nothing;
    one that loops over a file, a cursor or ``.iterator()``, or reads in chunks, does.
    """
    cached = ctx.memo.get("streaming_generators")
    if isinstance(cached, dict):
        return cached
    found: dict[str, set[str]] = {"all": set(), "database": set()}
    for func in ctx.functions():
        if func.name not in ctx.generator_functions:
            continue
        for node in ast.walk(func):
            if isinstance(node, (ast.For, ast.AsyncFor)):
                inner = streaming_source(ctx, node.iter, generators=False)
                if inner:
                    found["all"].add(func.name)
                    if database_source(ctx, inner):
                        found["database"].add(func.name)
                    break
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and (
                    node.func.attr in _CHUNKED_READS
                    or (node.func.attr == "read" and bool(node.args))
                )
            ):
                found["all"].add(func.name)
                if node.func.attr == "fetchmany":
                    found["database"].add(func.name)
                break
    ctx.memo["streaming_generators"] = found
    return found


def streaming_source(ctx: ModuleContext, expr: ast.AST, *, generators: bool = True) -> str | None:
    """Describe ``expr`` if iterating it streams (one item at a time), else None.

    Streaming sources: ``.iterator()``, ``yield_per``, ``partitions``, ``find_each``,
    ``in_batches``, ``batched``, ``read_chunks``, an open file, ``csv.reader``, a DB cursor, a
    generator, ``execution_options(stream_results=True | yield_per=N)`` and any name listed in
    the ``extend-streaming-calls`` setting. A generator function counts when it streams from
    one of these itself (``generators=False`` leaves generators out, to decide that). A generator
    *expression* is not one: it almost always walks data that is already in memory.
    """
    for link in ctx.expand(expr):
        if _configured(ctx, link):
            return f"`{link.name}()`"
        if link.kind == "method":
            if link.name in _STREAM_METHODS:
                return f"`.{link.name}()`"
            if (
                link.name == "execution_options"
                and isinstance(link.node, ast.Call)
                and any(kw.arg in ("yield_per", "stream_results") for kw in link.node.keywords)
            ):
                return "`execution_options(stream_results)`"
            if link.name == "cursor" and ctx.imports_any(DBAPI_ROOTS):
                return "a database cursor"
        if link.kind in ("func", "name", "attr", "method") and isinstance(
            link.node, (ast.Call, ast.Name, ast.Attribute)
        ):
            target = link.node.func if isinstance(link.node, ast.Call) else link.node
            qualified = ctx.qualify(target)
            if qualified in _STREAM_FUNCS:
                return f"`{qualified}`"
            if link.kind == "func":
                if ctx.is_builtin(target, "open"):
                    return "an open file"
                if link.name in _STREAM_NAMES and link.name in ctx.aliases:
                    return f"`{link.name}()`"
                if generators and link.name in _streaming_generators(ctx)["all"]:
                    return f"the generator `{link.name}()`"
            if link.kind == "method" and link.name in _STREAM_NAMES and qualified is not None:
                return f"`{link.name}()`"
    return None
