"""MB1xx: loading a whole data set into memory where it could be streamed."""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator

from membound.lint.context import DBAPI_ROOTS, SQLALCHEMY_ROOTS, ModuleContext
from membound.lint.evidence import TableSize
from membound.lint.expression_chains import Link
from membound.lint.findings import Finding, Fix, Rule
from membound.lint.rules._admin_forms import admin_choices, admin_filters
from membound.lint.rules._api_lists import unpaged_lists
from membound.lint.rules._loads import judge_load
from membound.lint.rules._models import unique_bound
from membound.lint.rules._owners import owner_filter
from membound.lint.rules._queries import (
    bounded_variant,
    defers_to_mb501,
    django_queryset,
    sa_query,
)
from membound.lint.rules._sizes import executed_before
from membound.lint.rules._sql import statement_bounded
from membound.lint.rules._streams import streaming_source
from membound.lint.rules._widgets import lists_no_options

__all__ = ["RULES"]

_MATERIALIZERS = ("list", "tuple", "set", "frozenset", "dict", "len", "sorted", "max", "min")
#: What to do instead, by the builtin that materialised the queryset.
_MATERIALIZER_ADVICE = {
    "len": "use `.count()`",
    "max": "let the database pick it (`.order_by(…).last()`, `.aggregate(Max(…))`)",
    "min": "let the database pick it (`.order_by(…).first()`, `.aggregate(Min(…))`)",
}
#: Calls that serialize every object of the queryset they are given, in one string.
_SERIALIZERS = frozenset({"django.core.serializers.serialize"})


#: Builtins that iterate each argument whole: ``for i, u in enumerate(users)`` loads ``users``.
_ITERATING_WRAPPERS = ("enumerate", "zip", "sorted", "reversed")


def _iterated_exprs(ctx: ModuleContext) -> Iterator[tuple[ast.expr, str]]:
    """Every expression that is iterated whole, with how (``for``, ``list()``...): the loop's
    iterable, or each argument of ``enumerate``/``zip``/``sorted``/``reversed`` there."""
    iterables: list[tuple[ast.expr, str]] = []
    iterables += [(loop.iter, "`for`") for loop in ctx.of_type(ast.For)]
    iterables += [(aloop.iter, "`async for`") for aloop in ctx.of_type(ast.AsyncFor)]
    iterables += [(gen.iter, "a comprehension") for gen in ctx.of_type(ast.comprehension)]
    for expr, how in iterables:
        yield expr, how
        if isinstance(expr, ast.Call) and ctx.is_builtin(expr.func, *_ITERATING_WRAPPERS):
            name = expr.func.id  # type: ignore[attr-defined]
            for arg in expr.args:
                yield arg, f"{how} over `{name}()`"


def _truth_tested(ctx: ModuleContext) -> Iterator[ast.Name]:
    """Names tested for truth (``if rows:``, ``if not rows:``, ``while rows:``, ``a if rows
    else b``): a queryset's truth test fetches every row."""
    tests = [n.test for n in ctx.of_type(ast.If)] + [n.test for n in ctx.of_type(ast.While)]
    tests += [n.test for n in ctx.of_type(ast.IfExp)]
    for test in tests:
        tested = test
        while isinstance(tested, ast.UnaryOp) and isinstance(tested.op, ast.Not):
            tested = tested.operand
        if isinstance(tested, ast.Name):
            yield tested


def _used_whole_elsewhere(ctx: ModuleContext, tested: ast.Name) -> bool:
    """The scope of ``tested`` also subscripts the name (``if qs: obj = qs[0]``, a lookup then
    its first row) or iterates it (the loop is the load, reported once)."""
    iterated = ctx.memo.get("iterated")
    if not isinstance(iterated, set):
        iterated = {id(expr) for expr, _ in _iterated_exprs(ctx)}
        ctx.memo["iterated"] = iterated
    return any(
        _subscripted_or_iterated(ctx, n, iterated)
        for n in ast.walk(ctx.scope_of(tested))
        if isinstance(n, ast.Name) and n.id == tested.id and n is not tested
    )


def _subscripted_or_iterated(ctx: ModuleContext, name: ast.Name, iterated: set[int]) -> bool:
    """``name`` is subscripted (``qs[0]``), iterated (by ``for``, a comprehension,
    ``enumerate``…: ``iterated`` holds their ids) or materialised (``list(qs)``)."""
    parent = ctx.parent(name)
    if isinstance(parent, ast.Subscript):
        # ``qs[0]``: a lookup then its first row; a slice (``qs[:10]``) is no lookup
        return parent.value is name and not isinstance(parent.slice, ast.Slice)
    if id(name) in iterated:
        return True
    return isinstance(parent, ast.Call) and ctx.is_builtin(parent.func, *_MATERIALIZERS)


def _callee(ctx: ModuleContext, call: ast.Call) -> tuple[str, int] | None:
    """The qualified name of the project function ``call`` calls, and how many of its
    positional parameters come before the call's arguments (1 for ``self.method(...)``):
    an imported name or module's function, a function of this module, a method of the class
    around the call."""
    func = call.func
    if isinstance(func, ast.Name):
        nested = _nested_function(ctx, call, func.id)
        if nested is not None:
            return nested, 0
        imported = ctx.qualify(func)
        if imported is not None:
            return imported, 0
        defined = ctx.memo.get("module_functions")
        if not isinstance(defined, frozenset):
            defined = frozenset(
                s.name
                for s in ctx.tree.body
                if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))
            )
            ctx.memo["module_functions"] = defined
        return (f"{ctx.module}.{func.id}", 0) if func.id in defined and ctx.module else None
    if isinstance(func, ast.Attribute):
        if isinstance(func.value, ast.Name) and func.value.id == "self" and ctx.module:
            # the call graph counts a method's parameters after ``self``/``cls``
            cls = next((a for a in ctx.ancestors(call) if isinstance(a, ast.ClassDef)), None)
            return (f"{ctx.module}.{cls.name}.{func.attr}", 0) if cls is not None else None
        imported = ctx.qualify(func)
        return (imported, 0) if imported is not None else None
    return None


def _nested_function(ctx: ModuleContext, call: ast.Call, name: str) -> str | None:
    """The qualified name of a function ``name`` defined in a function around ``call``
    (``def get_rows(query): …`` inside ``handle``, then ``get_rows(qs)``), or None."""
    if not ctx.module:
        return None
    scopes = [
        a
        for a in ctx.ancestors(call)
        if isinstance(a, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    ]
    for i, scope in enumerate(scopes):
        if not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if any(
            isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) and s.name == name
            for s in scope.body
        ):
            path = [a.name for a in reversed(scopes[i:])]
            return ".".join([ctx.module, *path, name])
    return None


def _handed_to_iterating_functions(ctx: ModuleContext) -> Iterator[Finding]:
    """MB101 at a call that hands an unbounded queryset to a project function that iterates
    that parameter whole (``set_null_to_blank(Value.objects.all())`` with ``for v in
    values:`` in its body): the call is the load (``lint/call_graph.py`` reads the functions)."""
    calls = ctx.evidence.calls if ctx.evidence is not None else None
    if calls is None or not calls.iterates:
        return
    for call in ctx.of_type(ast.Call):
        if not call.args and not call.keywords:
            continue
        func = call.func
        last = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if last not in calls.iterates_by_name:
            continue  # no function of that name iterates a parameter
        callee = _callee(ctx, call)
        if callee is None or calls.iterating(callee[0]) is None:
            continue
        name, skipped = callee
        handed: list[tuple[int | None, str | None, ast.expr]] = [
            (i, None, a) for i, a in enumerate(call.args) if not isinstance(a, ast.Starred)
        ]
        handed += [(None, k.arg, k.value) for k in call.keywords if k.arg is not None]
        for position, keyword, arg in handed:
            at = None if position is None else position + skipped
            if not calls.iterated_parameter(name, at, keyword):
                continue
            yield from _load_finding(
                ctx,
                arg,
                django_queryset(ctx, arg),
                f"handed to `{name.rsplit('.', 1)[-1]}()`, which iterates it whole",
                "hand it `.iterator(chunk_size=2000)` or batches by primary key",
            )


def _load_finding(
    ctx: ModuleContext,
    node: ast.AST,
    chain: list[Link] | None,
    what: str,
    advice: str,
    *,
    rendered: bool = False,
) -> Iterator[Finding]:
    """MB101 at ``node`` when the load of ``chain`` is judged a finding or a hint: "Django
    queryset {what}{where}: {advice}" (``rendered``: see :func:`judge_load`)."""
    judged = judge_load(ctx, node, "MB101", chain, rendered=rendered) if chain else None
    if judged is not None:
        yield ctx.finding(
            "MB101",
            node,
            f"Django queryset {what}{judged.where}: {advice}",
            kind=judged.kind,
        )


def check_unbounded_queryset(ctx: ModuleContext) -> Iterator[Finding]:
    """MB101: a Django queryset iterated or materialised without a bound."""
    if "django" not in ctx.imported_roots and ctx.evidence is None:
        return
    for expr, how in _iterated_exprs(ctx):
        chain = django_queryset(ctx, expr)
        judged = judge_load(ctx, expr, "MB101", chain) if chain is not None else None
        if judged is not None and not defers_to_mb501(ctx, expr):
            yield ctx.finding(
                "MB101",
                expr,
                f"Django queryset loaded whole by {how}{judged.where}: iterate "
                "`.iterator(chunk_size=2000)`, batch by primary key, or slice it",
                kind=judged.kind,
            )
    for name_node in _truth_tested(ctx):
        chain = django_queryset(ctx, name_node)
        if chain is None or _used_whole_elsewhere(ctx, name_node):
            continue
        judged = judge_load(ctx, name_node, "MB101", chain)
        if judged is not None:
            yield ctx.finding(
                "MB101",
                name_node,
                f"Django queryset loaded whole by a truth test (`if {name_node.id}:` fetches every "
                f"row){judged.where}: test `.exists()`, or iterate `.iterator(chunk_size=2000)`",
                kind=judged.kind,
            )
    yield from _handed_to_iterating_functions(ctx)
    yield from _field_querysets(ctx)
    yield from _admin_option_lists(ctx)
    yield from _unpaged_api_lists(ctx)
    yield from _streamed_then_kept(ctx)
    for call in ctx.of_type(ast.Call):
        yield from _whole_by_call(ctx, call)
        if len(call.args) == 1 and ctx.is_builtin(call.func, *_MATERIALIZERS):
            name = call.func.id  # type: ignore[attr-defined]
            if name in _ITERATING_WRAPPERS and _is_iterable_of_a_loop(ctx, call):
                continue  # ``for x in sorted(qs)``: reported as the loop's
            if _read_from_the_cache(ctx, call.args[0]):
                continue
            chain = django_queryset(ctx, call.args[0])
            judged = judge_load(ctx, call, "MB101", chain) if chain is not None else None
            if judged is None:
                continue
            advice = _MATERIALIZER_ADVICE.get(
                name, "iterate `.iterator(chunk_size=2000)` or slice the queryset"
            )
            yield ctx.finding(
                "MB101",
                call,
                f"Django queryset loaded whole by `{name}()`{judged.where}: {advice}",
                kind=judged.kind,
            )


def _read_from_the_cache(ctx: ModuleContext, arg: ast.expr) -> bool:
    """``len(users)`` after ``for user in users:`` in the same scope, with ``users`` not
    assigned in between: the loop filled the queryset's result cache (and is reported as the
    load); ``len()`` reads that cache, not the table again."""
    if not isinstance(arg, ast.Name):
        return False
    scope = ctx.scope_of(arg)
    row = arg.lineno
    assigned = [v.lineno for v in ctx.assigned_values(arg.id, arg) if ctx.scope_of(v) is scope]
    loops: list[ast.For | ast.AsyncFor] = [*ctx.of_type(ast.For), *ctx.of_type(ast.AsyncFor)]
    for loop in loops:
        it = loop.iter
        if not (isinstance(it, ast.Name) and it.id == arg.id) or ctx.scope_of(loop) is not scope:
            continue
        end = getattr(loop, "end_lineno", None) or loop.lineno
        if end < row and not any(loop.lineno <= a <= row for a in assigned):
            return True
    return False


def _is_iterable_of_a_loop(ctx: ModuleContext, call: ast.Call) -> bool:
    """``call`` is what a ``for`` or a comprehension iterates."""
    parent = ctx.parent(call)
    if isinstance(parent, (ast.For, ast.AsyncFor)):
        return parent.iter is call
    return isinstance(parent, ast.comprehension) and parent.iter is call


def _whole_by_call(ctx: ModuleContext, call: ast.Call) -> Iterator[Finding]:
    """``qs.in_bulk()`` with no ids (every row, in a dict) and ``serializers.serialize("json",
    qs)`` (every object, in one string): Django methods that load a whole queryset; and a
    choice field's queryset, rendered whole as options (:func:`_rendered_options`)."""
    func = call.func
    rendered = False
    if isinstance(func, ast.Attribute) and func.attr == "in_bulk":
        ids = call.args[0] if call.args else None
        ids = next((k.value for k in call.keywords if k.arg == "id_list"), ids)
        if ids is not None and not (isinstance(ids, ast.Constant) and ids.value is None):
            return
        target: ast.expr = func.value
        how, advice = "`in_bulk()` with no ids", "pass the ids it needs, or iterate in batches"
    elif ctx.qualify(func) in _SERIALIZERS and len(call.args) >= 2:
        target = call.args[1]
        how = "`serializers.serialize()`"
        advice = "serialize `.iterator(chunk_size=2000)` to a `stream=` file, or in batches"
    elif (options := _rendered_options(ctx, call)) is not None:
        target, rendered = options, True
        field = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "field")
        how = f"`{field}`, which renders every row as an option"
        advice = "use an autocomplete widget or a raw id field"
    else:
        return
    chain = django_queryset(ctx, target, manager=True)
    yield from _load_finding(ctx, call, chain, f"loaded whole by {how}", advice, rendered=rendered)


#: What keeps one item per streamed row, by the node that builds it.
_KEEPERS: dict[type[ast.AST], str] = {
    ast.ListComp: "a list comprehension",
    ast.SetComp: "a set comprehension",
    ast.DictComp: "a dict comprehension",
}
#: Builtins that keep every item of what they are given.
_KEEPING_BUILTINS = ("list", "tuple", "set", "frozenset", "dict", "sorted")


def _streamed_then_kept(ctx: ModuleContext) -> Iterator[Finding]:
    """MB101 where ``.iterator()`` streams a whole queryset but every row is kept anyway:
    ``[Stock(variant=v) for v in variants.iterator()]``, ``list(qs.iterator())`` — one item
    per row, all in memory at the end (a generator expression or a loop keeps nothing)."""
    streamed: list[tuple[ast.AST, ast.expr, str]] = []
    for kind, words in _KEEPERS.items():
        for comp in ctx.of_type(kind):
            for gen in comp.generators:  # type: ignore[attr-defined]
                streamed.append((comp, gen.iter, words))
    for call in ctx.of_type(ast.Call):
        if len(call.args) == 1 and ctx.is_builtin(call.func, *_KEEPING_BUILTINS):
            streamed.append((call, call.args[0], f"`{call.func.id}()`"))  # type: ignore[attr-defined]
    for node, it, words in streamed:
        if not (
            isinstance(it, ast.Call)
            and isinstance(it.func, ast.Attribute)
            and it.func.attr == "iterator"
        ):
            continue
        yield from _load_finding(
            ctx,
            node,
            django_queryset(ctx, it.func.value, manager=True),
            f"streamed by `.iterator()` but every row kept by {words}",
            "handle each row in the loop, or write in batches (`bulk_create(batch_size=…)` per "
            "chunk)",
        )


def _field_querysets(ctx: ModuleContext) -> Iterator[Finding]:
    """MB101 at ``self.fields["owner"].queryset = User.objects.all()``: a form's choice field
    given its queryset in ``__init__`` renders every row of it as an option (unless the form
    gives that field a widget that lists none: :func:`lists_no_options`)."""
    for assign in ctx.of_type(ast.Assign):
        for target in assign.targets:
            field = _field_of_queryset_set(target)
            if field is None or (field and _widget_lists_no_options(ctx, assign, field)):
                continue
            shown = f"the form field `{field}`" if field else "a form's choice field"
            yield from _load_finding(
                ctx,
                assign.value,
                django_queryset(ctx, assign.value, manager=True),
                f"given to {shown}, which renders every row as an option",
                "use an autocomplete widget or a raw id field",
                rendered=True,
            )


def _sized_fields(fields: tuple[tuple[str, TableSize | None], ...]) -> str:
    """Each field with its table's size, for a message: "`owner`, ≈40k rows of …; …"."""
    return "; ".join(
        f"`{field}`, {size.words() if size is not None else 'a model declared large'}"
        for field, size in fields
    )


def _admin_option_lists(ctx: ModuleContext) -> Iterator[Finding]:
    """MB101 at a Django admin whose add and change forms list every row of a big table as
    options, and at a ``list_filter`` whose sidebar lists every row of one
    (``rules/_admin_forms.py``)."""
    for found in admin_choices(ctx):
        fields = _sized_fields(found.fields)
        yield ctx.finding(
            "MB101",
            found.node,
            f"Django admin form of `{found.model}` renders every related row as an option "
            f"({fields}): add {'them' if len(found.fields) > 1 else 'it'} to "
            "`raw_id_fields` or `autocomplete_fields`",
        )
    for filtered in admin_filters(ctx):
        fields = _sized_fields(filtered.fields)
        yield ctx.finding(
            "MB101",
            filtered.node,
            f"Django admin change list of `{filtered.model}` filters by a relation whose "
            f"filter lists every related row ({fields}): use a `SimpleListFilter` of a few "
            "choices or a filter that searches",
        )


def _unpaged_api_lists(ctx: ModuleContext) -> Iterator[Finding]:
    """MB101 at the ``queryset`` of a Django REST framework list endpoint that answers with
    all of it in one response (``rules/_api_lists.py``)."""
    for found in unpaged_lists(ctx):
        why = (
            "`pagination_class = None`"
            if found.paged_off
            else "no `pagination_class`, no `DEFAULT_PAGINATION_CLASS`"
        )
        yield from _load_finding(
            ctx,
            found.queryset,
            django_queryset(ctx, found.queryset, manager=True),
            f"answered whole by the list endpoint of `{found.view}` ({why})",
            "give the view a `pagination_class`, or set `DEFAULT_PAGINATION_CLASS` and "
            "`PAGE_SIZE` in `REST_FRAMEWORK`",
            rendered=True,
        )


def _widget_lists_no_options(
    ctx: ModuleContext, node: ast.AST, field: str, *, declared: bool = False
) -> bool:
    """The form class around ``node`` gives ``field`` a widget that lists no options: in its
    ``Meta`` (``widgets = {"owner": autocomplete.ModelSelect2(url=…)}``), where it declares
    the field (``owner = ModelChoiceField(…, widget=HiddenInput)``), or in a method
    (``self.fields["owner"].widget = TextInput()``, on every call). A field the form
    ``declared`` takes no widget from ``Meta.widgets`` (Django applies those to the fields it
    makes from the model only)."""
    form = next((a for a in ctx.ancestors(node) if isinstance(a, ast.ClassDef)), None)
    if form is None:
        return False
    widgets: list[ast.expr] = []
    for node_in_form in ast.walk(form):
        if (
            not declared
            and isinstance(node_in_form, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "widgets" for t in node_in_form.targets)
            and isinstance(node_in_form.value, ast.Dict)
        ):
            mapping = node_in_form.value
            widgets += [
                value
                for key, value in zip(mapping.keys, mapping.values, strict=True)
                if isinstance(key, ast.Constant) and key.value == field
            ]
        elif (
            isinstance(node_in_form, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == field for t in node_in_form.targets)
            and isinstance(node_in_form.value, ast.Call)
        ):
            widgets += [k.value for k in node_in_form.value.keywords if k.arg == "widget"]
        elif (
            isinstance(node_in_form, ast.Assign)
            and any(_widget_of(target) == field for target in node_in_form.targets)
            and _on_every_call(ctx, node_in_form)
            and _a_widget_class(node_in_form.value)
        ):
            widgets.append(node_in_form.value)  # ``self.fields["user"].widget = TextInput()``
    return any(lists_no_options(widget) for widget in widgets)


def _on_every_call(ctx: ModuleContext, node: ast.AST) -> bool:
    """``node`` runs whenever the method around it does: under no ``if``, loop or ``try``."""
    for ancestor in ctx.ancestors(node):
        if isinstance(ancestor, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return True
        if isinstance(ancestor, (ast.If, ast.IfExp, ast.For, ast.While, ast.Try, ast.Match)):
            return False
    return True


def _a_widget_class(value: ast.expr) -> bool:
    """``TextInput(...)``, ``forms.HiddenInput``, ``cx_text_input(...)``: a widget named where
    it is set; not a variable (``widget``) or a choice (``a if ro else b``), which may be any."""
    target = value.func if isinstance(value, ast.Call) else value
    if isinstance(target, ast.Attribute):
        return True
    return isinstance(target, ast.Name) and (isinstance(value, ast.Call) or target.id[:1].isupper())


def _widget_of(target: ast.expr) -> str | None:
    """``user`` for ``self.fields["user"].widget``; None for any other target."""
    return _field_set(target, "widget")


def _rendered_options(ctx: ModuleContext, call: ast.Call) -> ast.expr | None:
    """The queryset of a Django choice field built on one (``ModelChoiceField(queryset=…)``,
    ``ModelMultipleChoiceField(qs)``, a project's ``UserModelChoiceField``, django-mptt's
    ``TreeNodeChoiceField``) whose widget lists its choices: the form renders one option per
    row, every row of the queryset on every page that shows the form. None for any other call,
    a widget that lists no options (:func:`lists_no_options`), or a field whose queryset the
    form's ``__init__`` replaces (``self.fields["owner"].queryset = …``: judged there)."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    if not name.endswith("ChoiceField"):
        return None
    keywords = {k.arg: k.value for k in call.keywords if k.arg is not None}
    queryset = keywords.get("queryset")
    if queryset is None and "Model" in name and call.args:
        queryset = call.args[0]  # ``ModelChoiceField(queryset, …)``: its first parameter
    widget = keywords.get("widget")
    if queryset is None or isinstance(queryset, ast.Starred):
        return None
    if widget is not None and lists_no_options(widget):
        return None
    declared = ctx.parent(call)
    form = ctx.parent(declared) if isinstance(declared, ast.Assign) else None
    if isinstance(declared, ast.Assign) and isinstance(form, ast.ClassDef):
        names = {t.id for t in declared.targets if isinstance(t, ast.Name)}
        if any(_field_of_queryset_set(target) in names for target in _stores(form)):
            return None  # replaced in ``__init__`` before any page renders it
        if any(_widget_lists_no_options(ctx, call, field, declared=True) for field in names):
            return None  # ``self.fields["user"].widget = TextInput()`` in ``__init__``
    return queryset


def _stores(tree: ast.AST) -> Iterator[ast.expr]:
    """Every target assigned in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            yield from node.targets


def _field_of_queryset_set(target: ast.expr) -> str | None:
    """``"owner"`` of the target ``self.fields["owner"].queryset``; None for any other."""
    return _field_set(target, "queryset")


def _field_set(target: ast.expr, attribute: str) -> str | None:
    """``"owner"`` of the target ``self.fields["owner"].<attribute>`` (empty when the key is
    not a literal); None for any other target."""
    if (
        isinstance(target, ast.Attribute)
        and target.attr == attribute
        and isinstance(target.value, ast.Subscript)
        and isinstance(target.value.value, ast.Attribute)
        and target.value.value.attr == "fields"
    ):
        key = target.value.slice
        return key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else ""
    return None


def _wraps_fetchall(ctx: ModuleContext, call: ast.Call) -> bool:
    """Inside a function that itself implements fetch-all (``def fetchall(self)``,
    ``_compat_fetchall``): it is the API, and whether everything is fetched is its caller's call.
    """
    func = ctx.enclosing_function(call)
    name = getattr(func, "name", "").lower()
    return "fetchall" in name or "fetch_all" in name


def check_unbounded_fetch(ctx: ModuleContext) -> Iterator[Finding]:
    """MB102: SQLAlchemy ``.all()`` or DB-API ``.fetchall()`` without a visible bound."""
    if not ctx.imports_any(DBAPI_ROOTS | SQLALCHEMY_ROOTS) and not ctx.imports_project_model():
        return
    # ``cur.execute(sql)`` calls per (scope, cursor name): a later ``cur.fetchall()`` is bounded
    # when the statement executed last before it is.
    executes: dict[tuple[ast.AST, str], list[ast.Call]] = defaultdict(list)
    candidates: list[ast.Call] = []
    for call in ctx.of_type(ast.Call):
        func = call.func
        if not isinstance(func, ast.Attribute):
            continue
        if func.attr == "execute" and isinstance(func.value, ast.Name):
            executes[(ctx.scope_of(call), func.value.id)].append(call)
        elif func.attr in ("all", "fetchall") and not call.args and not call.keywords:
            candidates.append(call)
    for call in candidates:
        execute = executed_before(ctx, call, executes)
        judged = judge_load(ctx, call, "MB102", ctx.expand(call), execute)
        if judged is None or defers_to_mb501(ctx, call) or _wraps_fetchall(ctx, call):
            continue
        where = judged.where
        func = call.func
        assert isinstance(func, ast.Attribute)
        if func.attr == "all":
            if sa_query(ctx, call) is not None:
                yield ctx.finding(
                    "MB102",
                    call,
                    f"`.all()` loads every row into a list{where}: iterate with `yield_per(1000)` "
                    "/ `partitions()`, batch by key (`membound.find_each`), or add `.limit(...)`",
                    kind=judged.kind,
                )
            continue
        if not ctx.imports_any(DBAPI_ROOTS):
            continue
        # Expanded, so that ``res = cur.execute(sql)`` then ``res.fetchall()`` sees the SQL.
        chain = ctx.expand(call)
        if any(
            link.kind == "method"
            and isinstance(link.node, ast.Call)
            and (
                link.name in ("limit", "fetch")
                or (
                    link.name in ("execute", "exec_driver_sql")
                    and statement_bounded(ctx, link.node)
                )
            )
            for link in chain
        ):
            continue
        statement: list[Link] = []
        for link in chain:
            if (
                link.kind == "method"
                and link.name in ("execute", "exec_driver_sql")
                and isinstance(link.node, ast.Call)
                and link.node.args
            ):
                statement = ctx.expand(link.node.args[0])
        if statement and bounded_variant(ctx, statement, "MB102", None):
            continue
        if isinstance(func.value, ast.Name):
            before = sorted(
                (
                    c
                    for c in executes.get((ctx.scope_of(call), func.value.id), [])
                    if c.lineno <= call.lineno
                ),
                key=lambda c: (c.lineno, c.col_offset),
            )
            if before and (
                statement_bounded(ctx, before[-1])
                or (
                    bool(before[-1].args)
                    and bounded_variant(ctx, ctx.expand(before[-1].args[0]), "MB102", None)
                )
            ):
                continue
        yield ctx.finding(
            "MB102",
            call,
            f"`.fetchall()` loads every row into a list{where}: loop over `.fetchmany(1000)` or "
            "iterate the cursor, or add a `LIMIT`",
            kind=judged.kind,
        )
    yield from _buffered_iterations(ctx)


#: Steps that fetch a result's rows into a list: iterating what they return is reported at them.
_FETCHING = frozenset({"all", "fetchall", "fetchmany", "partitions"})


#: Roots of :data:`DBAPI_ROOTS` that are no driver: their results are SQLAlchemy's or Django's.
_NOT_DRIVERS = frozenset({"sqlalchemy", "django"})


def _streamed(ctx: ModuleContext, chain: list[Link]) -> bool:
    """The statement a chain executes asks to stream: ``select(M).execution_options(
    yield_per=500)``, or ``execute(stmt, execution_options={"stream_results": True})``."""
    for link in chain:
        call = link.node
        if link.kind != "method" or link.name not in ("execute", "scalars"):
            continue
        if not isinstance(call, ast.Call):
            continue
        for kw in call.keywords:
            if kw.arg == "execution_options" and isinstance(kw.value, ast.Dict):
                keys = [k.value for k in kw.value.keys if isinstance(k, ast.Constant)]
                if {"yield_per", "stream_results"} & set(keys):
                    return True
        if call.args and streaming_source(ctx, call.args[0]) is not None:
            return True
    return False


def _buffered_iterations(ctx: ModuleContext) -> Iterator[Finding]:
    """MB102: a loop (or comprehension) over a SQLAlchemy query or result. The ORM buffers every
    row of a query before the first comes back unless asked to stream (``yield_per``), and the
    usual PostgreSQL and MySQL drivers read a whole result into the client before the first row
    unless the connection streams (``stream_results``): a ``for`` over one holds the whole
    result, as ``.all()`` does."""
    for expr, how in _iterated_exprs(ctx):
        chain = sa_query(ctx, expr)
        if chain is None or any(link.kind == "method" and link.name in _FETCHING for link in chain):
            continue
        if streaming_source(ctx, expr) is not None or _streamed(ctx, chain):
            continue
        root = ctx.qualify(chain[0].node) if chain[0].kind == "name" else None
        if root is not None and root.split(".")[0] in DBAPI_ROOTS - _NOT_DRIVERS:
            continue  # ``sqlite3.connect(p).execute(sql)``: a driver's cursor, not SQLAlchemy
        judged = judge_load(ctx, expr, "MB102", chain)
        if judged is None or defers_to_mb501(ctx, expr):
            continue
        yield ctx.finding(
            "MB102",
            expr,
            f"{how} over a SQLAlchemy query or result reads every row first (the ORM and the "
            f"usual drivers buffer the whole result){judged.where}: iterate with "
            "`yield_per(1000)` or `execution_options(stream_results=True)`, batch by key "
            "(`membound.find_each`), or add `.limit(...)`",
            kind=judged.kind,
        )


_OPENERS = frozenset({"io.open", "gzip.open", "bz2.open", "lzma.open", "codecs.open"})
_SPLITTERS = frozenset({"split", "splitlines", "rsplit", "count"})


def _is_file(ctx: ModuleContext, expr: ast.AST, depth: int = 0) -> bool:
    """An ``open(...)`` call (or a gzip/bz2/lzma/codecs one), or a name bound to one."""
    if isinstance(expr, ast.Name):
        if depth > 3:
            return False
        # Bound to an opened file by every assignment in scope (``with open(a) as f`` twice).
        values = ctx.assigned_values(expr.id, expr)
        return bool(values) and all(_is_file(ctx, v, depth + 1) for v in values)
    if isinstance(expr, ast.Call):
        return ctx.is_builtin(expr.func, "open") or ctx.qualify(expr.func) in _OPENERS
    return ctx.qualify(expr) == "sys.stdin"


def _iterated_as(ctx: ModuleContext, node: ast.AST) -> str | None:
    parent = ctx.parent(node)
    if isinstance(parent, (ast.For, ast.AsyncFor)) and parent.iter is node:
        return "`for`"
    if isinstance(parent, ast.comprehension) and parent.iter is node:
        return "a comprehension"
    return None


def _is_newline(expr: ast.AST) -> bool:
    return isinstance(expr, ast.Constant) and expr.value in ("\n", "\r\n", b"\n", b"\r\n")


def _handed_on(ctx: ModuleContext, call: ast.AST) -> bool:
    """The whole result of ``call`` goes on to another call, a ``return`` or a ``yield``."""
    parent = ctx.parent(call)
    if isinstance(parent, ast.Call) and call in parent.args:
        return True
    return isinstance(parent, (ast.Return, ast.Yield, ast.YieldFrom))


def _whole_use(ctx: ModuleContext, node: ast.AST) -> str | None:
    """How the whole text at ``node`` is then split, iterated or counted, if it is."""
    parent = ctx.parent(node)
    if isinstance(parent, ast.Attribute) and parent.value is node and parent.attr in _SPLITTERS:
        call = ctx.parent(parent)
        if parent.attr in ("split", "rsplit") and isinstance(call, ast.Call):
            newline = bool(call.args) and _is_newline(call.args[0])
            # ``int(f.read().split()[1])`` or ``a, b = f.read().split()`` picks fields of a
            # one-record file (/proc, a config value): no loop that iterating the file would
            # replace. Lines, a split that is iterated, or one handed whole to another call
            # (``Counter(f.read().split())``) are.
            if not newline and _iterated_as(ctx, call) is None and not _handed_on(ctx, call):
                return None
        return f"`.{parent.attr}()`"
    iterated = _iterated_as(ctx, node)
    if iterated is not None:
        return iterated
    if (
        isinstance(parent, ast.Call)
        and node in parent.args
        and ctx.is_builtin(parent.func, "len", "list", "enumerate", "set", "tuple")
    ):
        return f"`{parent.func.id}()`"  # type: ignore[attr-defined]
    return None


def check_whole_file(ctx: ModuleContext) -> Iterator[Finding]:
    """MB103: ``readlines()`` iterated, or ``read()`` of a whole file then split/iterated."""
    names_read: dict[tuple[ast.AST, str], ast.Call] = {}
    for call in ctx.of_type(ast.Call):
        func = call.func
        if not isinstance(func, ast.Attribute) or call.keywords:
            continue
        if func.attr == "readlines" and not call.args:
            parent = ctx.parent(call)
            if (isinstance(parent, (ast.For, ast.AsyncFor)) and parent.iter is call) or (
                isinstance(parent, ast.comprehension) and parent.iter is call
            ):
                receiver = ctx.source_of(func.value)
                fix = None
                if receiver is not None:
                    # Iterating a file object yields exactly the lines readlines() returns; for
                    # an object not seen to come from open() that is only likely: unsafe.
                    fix = Fix(
                        "iterate the file object",
                        (ctx.edit(call, receiver),),
                        "safe" if _is_file(ctx, func.value) else "unsafe",
                    )
                yield ctx.finding(
                    "MB103",
                    call,
                    "`readlines()` reads the whole file into a list first: iterate the file "
                    "object itself (`for line in f`)",
                    fix,
                )
            continue
        whole = (func.attr == "read" and not call.args and _is_file(ctx, func.value)) or (
            func.attr == "read_text" and not call.args
        )
        if not whole:
            continue
        use = _whole_use(ctx, call)
        if use is not None:
            yield _read_finding(ctx, call, use)
            continue
        parent = ctx.parent(call)
        if isinstance(parent, ast.Assign) and len(parent.targets) == 1:
            target = parent.targets[0]
            if isinstance(target, ast.Name):
                names_read[(ctx.scope_of(call), target.id)] = call
    if not names_read:
        return
    reported: set[ast.Call] = set()
    for name in ctx.of_type(ast.Name):
        if not isinstance(name.ctx, ast.Load):
            continue
        read_call = names_read.get((ctx.scope_of(name), name.id))
        if read_call is None or read_call in reported or name.lineno < read_call.lineno:
            continue
        use = _whole_use(ctx, name)
        if use is not None:
            reported.add(read_call)
            yield _read_finding(ctx, read_call, use)


def _read_finding(ctx: ModuleContext, call: ast.Call, use: str) -> Finding:
    return ctx.finding(
        "MB103",
        call,
        f"the whole file is read into memory and then used by {use}: iterate the file object "
        "line by line or read fixed-size chunks (`f.read(65536)`, `membound.read_chunks`)",
    )


_READ_SQL = frozenset({"pandas.read_sql", "pandas.read_sql_query", "pandas.read_sql_table"})
_READ_TEXT = frozenset(
    {"pandas.read_csv", "pandas.read_table", "pandas.read_fwf", "pandas.read_json"}
)
_ROW_BY_ROW = frozenset({"iterrows", "itertuples"})


def _keywords(call: ast.Call) -> dict[str | None, ast.expr]:
    return {kw.arg: kw.value for kw in call.keywords}


def _is_none(expr: ast.AST | None) -> bool:
    return isinstance(expr, ast.Constant) and expr.value is None


def check_dataframe(ctx: ModuleContext) -> Iterator[Finding]:
    """MB104: pandas readers that load everything, where chunks were possible."""
    if "pandas" not in ctx.imported_roots:
        return
    frames: dict[tuple[ast.AST, str], ast.Call] = {}
    for call in ctx.of_type(ast.Call):
        qualified = ctx.qualify(call.func)
        if qualified is None or not qualified.startswith("pandas."):
            continue
        kws = _keywords(call)
        if None in kws:  # ``**options``: the chunk size may be in there
            continue
        if qualified in _READ_SQL:
            if "chunksize" in kws and not _is_none(kws["chunksize"]):
                continue
            stmt = call.args[0] if call.args else kws.get("sql")
            chain = ctx.expand(stmt) if stmt else None
            judged = judge_load(ctx, call, "MB104", chain, call if call.args else None)
            if judged is not None and not _query_bounded(ctx, stmt):
                yield ctx.finding(
                    "MB104",
                    call,
                    f"`{qualified}` without `chunksize` loads the whole result into one "
                    f"DataFrame{judged.where}: pass `chunksize=` and process each chunk",
                    kind=judged.kind,
                )
            continue
        if qualified not in _READ_TEXT:
            continue
        if qualified == "pandas.read_json":
            lines = kws.get("lines")
            if not (isinstance(lines, ast.Constant) and lines.value is True):
                continue
        if any(k in kws and not _is_none(kws[k]) for k in ("chunksize", "nrows", "iterator")):
            continue
        parent = ctx.parent(call)
        if isinstance(parent, ast.Attribute) and parent.attr in _ROW_BY_ROW:
            yield _frame_finding(ctx, call, qualified)
        elif (
            isinstance(parent, ast.Assign)
            and len(parent.targets) == 1
            and isinstance(parent.targets[0], ast.Name)
        ):
            frames[(ctx.scope_of(call), parent.targets[0].id)] = call
    if not frames:
        return
    reported: set[ast.Call] = set()
    for attr in ctx.of_type(ast.Attribute):
        if attr.attr not in _ROW_BY_ROW or not isinstance(attr.value, ast.Name):
            continue
        read = frames.get((ctx.scope_of(attr), attr.value.id))
        if read is not None and read not in reported:
            reported.add(read)
            yield _frame_finding(ctx, read, ctx.qualify(read.func) or "pandas")


def _query_bounded(ctx: ModuleContext, stmt: ast.expr | None) -> bool:
    """The query given to ``read_sql`` visibly returns few rows: a LIMIT, an aggregate, keys
    in a list, one unique key, or the rows of one owner."""
    if stmt is None:
        return False
    if statement_bounded(ctx, ast.Call(func=ast.Name(id="read_sql"), args=[stmt], keywords=[])):
        return True
    chain = ctx.expand(stmt)
    return unique_bound(ctx, chain) or any(owner_filter(ctx, link) for link in chain)


def _frame_finding(ctx: ModuleContext, call: ast.Call, qualified: str) -> Finding:
    return ctx.finding(
        "MB104",
        call,
        f"`{qualified}` loads the whole file into one DataFrame that is then walked row by row: "
        "pass `chunksize=` and iterate the chunks",
    )


RULES = (
    Rule(
        code="MB101",
        name="unbounded-queryset",
        summary="A Django queryset is iterated or materialised without a bound.",
        why=(
            "Iterating a QuerySet fetches every matching row and keeps every model instance in "
            "the queryset's result cache until the loop ends: memory grows with the table."
        ),
        fix=(
            "Iterate `.iterator(chunk_size=2000)`, walk the table in primary-key batches "
            "(`membound.find_each`), slice it, or use `.count()` instead of `len()`."
        ),
        check=check_unbounded_queryset,
    ),
    Rule(
        code="MB102",
        name="unbounded-fetch",
        summary=(
            "SQLAlchemy `.all()`, DB-API `.fetchall()`, or a loop over a SQLAlchemy query or "
            "result, on a statement with no visible bound."
        ),
        why=(
            "`.all()` and `.fetchall()` build a list of every row before the first one is used: "
            "memory grows with the result, not with the batch you process. A `for` over a "
            "SQLAlchemy query does the same: the ORM buffers every row of a result unless told "
            "to stream, and PostgreSQL's and MySQL's usual drivers read a whole result into the "
            "client at `execute` unless the connection streams (`stream_results`)."
        ),
        fix=(
            "Iterate the result with `yield_per(1000)` or `partitions()`, loop over "
            "`fetchmany(1000)`, batch by key (`membound.find_each`), or add `.limit(...)`."
        ),
        check=check_unbounded_fetch,
    ),
    Rule(
        code="MB103",
        name="whole-file-then-iterate",
        summary="A whole file is read into memory and then split or iterated.",
        why=(
            "`f.readlines()` and `f.read().splitlines()` hold the entire file (and then a list of "
            "its lines) in memory, where iterating the file object holds one line."
        ),
        fix="Iterate the file object (`for line in f`) or read fixed-size chunks.",
        check=check_whole_file,
        preview=True,
    ),
    Rule(
        code="MB104",
        name="dataframe-without-chunks",
        summary="pandas reads a whole SQL result or file into one DataFrame that could be chunked.",
        why=(
            "A DataFrame of the whole result costs several times the raw data; with `chunksize` "
            "pandas yields bounded frames instead."
        ),
        fix="Pass `chunksize=` (or `nrows=`) and process each chunk.",
        check=check_dataframe,
    ),
)
