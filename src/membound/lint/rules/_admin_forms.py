"""Django admin forms that render every row of a related table as options.

A ``ModelAdmin``'s add and change pages render each foreign key and many-to-many field of its
model as a ``<select>`` with one ``<option>`` per row of the related model: every row, read on
each view of the page (Django builds a ``ModelChoiceField`` over the related model's default
manager). An inline renders one such select per inline row. No query in the project names
that load; the admin's declaration is the only place it shows. A field renders no such list
when the admin lists it in ``raw_id_fields`` or ``autocomplete_fields`` (a text input, or a
page of choices fetched as the user types), shows it read-only (``readonly_fields``), leaves it
out (``exclude``, or ``fields``/``fieldsets`` that do not name it), or when the model field is
not editable or limits its choices (``limit_choices_to``).

Judged only where the rules can read every setting that decides it, so as never to report a
field the admin handles some other way:

* the admin's settings are literal, on the class or on bases in the same module, and its
  other bases are Django's ``ModelAdmin`` and inlines (:data:`_DJANGO_BASES`) or a known admin
  library's mixins (:data:`_ADMIN_LIBRARIES`); a base from the project's other modules, or
  Django's ``UserAdmin``, may set any of them;
* no method decides the fields in code (``get_form``, ``get_fields``, ``get_readonly_fields``
  …); ``formfield_for_foreignkey`` and ``formfield_for_manytomany`` leave out the fields of
  their kind; ``formfield_overrides`` leaves out the admin;
* a ``form`` is a class of the same module: the fields it declares are its own (a declared
  choice field is judged where it is declared), and its ``Meta.fields``, ``Meta.exclude`` and
  ``Meta.widgets`` count; a form from another module leaves out the admin;
* an inline's link to its parent's row (``fk_name``, or the relation to the model of the admin
  that lists it) is hidden; an inline no admin of the module lists is left out;
* an admin that refuses both adding and changing (``has_add_permission`` and
  ``has_change_permission`` return ``False``) renders no form;
* only Django's ``@admin.register`` and a ``…site.register(…)`` call register: a project's own
  ``register`` decorator may set anything;
* a project whose settings install apps but never ``django.contrib.admin`` (outside comments)
  serves no admin page. (An app the settings never name may still be installed by the
  deployment's own settings, which a package's base settings leave to it: its admin is judged.)

Like every whole-table load in request code, only a size makes it a finding: the related
table's rows in the sizes file (``--sizes``, ``--db``) or ``large-models``. The model index
that gives each model's fields is read only when sizes are given (``lint/tables.py``).
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from membound.lint.context import ModuleContext
from membound.lint.evidence import TableSize
from membound.lint.expression_chains import dotted
from membound.lint.model_shape import ModelShape, Relation
from membound.lint.rules._models import model_path
from membound.lint.rules._widgets import lists_no_options

__all__ = ["AdminChoices", "AdminFilters", "admin_choices", "admin_filters"]

#: Where admin base classes come from that set none of the settings read here (Django's own
#: and the common admin libraries: versions, history, import/export, permissions, trees,
#: translations, nested inlines, sorting, themes).
_ADMIN_LIBRARIES = frozenset(
    {"django", "reversion", "simple_history", "import_export", "guardian", "mptt", "treebeard",
     "modeltranslation", "nested_admin", "polymorphic", "adminsortable2", "adminsortable",
     "ordered_model", "unfold", "jazzmin", "grappelli", "parler", "django_object_actions",
     "leaflet", "solo", "rangefilter"}
)  # fmt: skip
#: Django's admin classes that set none of them (``UserAdmin`` and ``GroupAdmin`` set
#: ``fieldsets`` and more).
_DJANGO_BASES = frozenset(
    {"ModelAdmin", "BaseModelAdmin", "InlineModelAdmin", "TabularInline", "StackedInline",
     "GenericTabularInline", "GenericStackedInline", "GenericInlineModelAdmin", "GISModelAdmin",
     "GeoModelAdmin", "OSMGeoAdmin"}
)  # fmt: skip
#: Settings that take fields out of the form's option lists.
_HIDING = ("raw_id_fields", "autocomplete_fields", "readonly_fields", "exclude")
#: Settings read here: any other form of them (not a literal) leaves out the admin.
_SETTINGS = (
    *_HIDING, "fields", "fieldsets", "form", "fk_name", "model", "inlines", "list_filter"
)  # fmt: skip
#: Django's list filter that lists every row of the related model (the default for a relation).
_EVERY_ROW_FILTERS = frozenset(
    {"django.contrib.admin.RelatedFieldListFilter",
     "django.contrib.admin.filters.RelatedFieldListFilter"}
)  # fmt: skip
#: Methods that decide the form's fields in code.
_DYNAMIC = frozenset(
    {"get_form", "get_formset", "get_fields", "get_fieldsets", "get_exclude",
     "get_readonly_fields", "get_autocomplete_fields", "get_raw_id_fields",
     "formfield_for_dbfield", "formfield_overrides"}
)  # fmt: skip
#: The user model as a relation names it.
_USER_TARGETS = frozenset({"settings.AUTH_USER_MODEL", "get_user_model()"})
_DEFAULT_USER = "django.contrib.auth.models.User"


@dataclass(frozen=True)
class AdminChoices:
    """One admin form whose option lists hold every row of a big table."""

    node: ast.AST
    """Where to report: the admin class, or the ``register`` call of a default admin."""
    model: str
    fields: tuple[tuple[str, TableSize | None], ...]
    """The fields that list a big table's rows, in declaration order, each with its table's
    size (None: a model the user declared large)."""


@dataclass(frozen=True)
class AdminFilters:
    """One admin change list whose filter sidebar lists every row of a big table."""

    node: ast.AST
    """Where to report: the ``list_filter`` setting."""
    model: str
    fields: tuple[tuple[str, TableSize | None], ...]
    """The filtered relations whose table is big, each with its size (None: declared large)."""


@dataclass
class _Admin:
    """The settings of one admin class, its bases' included."""

    settings: dict[str, ast.expr]
    methods: set[str]


def _admin_classes(ctx: ModuleContext) -> dict[str, ast.ClassDef] | None:
    """The module's classes by name, where its admins are judged: with sizes, in a module
    that imports Django, in a project that may serve the admin; else None."""
    if (
        ctx.evidence is None
        or "django" not in ctx.imported_roots
        or ctx.evidence.tables.admin_installed is False
    ):
        return None
    return {node.name: node for node in ctx.tree.body if isinstance(node, ast.ClassDef)}


def admin_choices(ctx: ModuleContext) -> Iterator[AdminChoices]:
    """Every admin form of this module that renders all rows of a big table as options."""
    classes = _admin_classes(ctx)
    if classes is None:
        return
    for model, admin, node in _registrations(ctx, classes):
        settings = _settings(ctx, admin, classes) if admin is not None else _Admin({}, set())
        if settings is None:
            continue  # a base of the project's other modules may set anything
        yield from _judged(ctx, classes, model, admin, settings, node, parent=None)
        for name in _class_names(settings.settings.get("inlines")):
            inline = classes.get(name)
            inline_settings = _settings(ctx, inline, classes) if inline is not None else None
            inline_model = inline_settings.settings.get("model") if inline_settings else None
            if inline is not None and inline_settings is not None and inline_model is not None:
                yield from _judged(
                    ctx, classes, inline_model, inline, inline_settings, inline, parent=model
                )


def admin_filters(ctx: ModuleContext) -> Iterator[AdminFilters]:
    """Every admin change list of this module whose ``list_filter`` names a relation to a big
    table. Django's ``RelatedFieldListFilter`` (the filter of a foreign key or many-to-many
    field named by its name) lists one link per row of the related model, every row, on each
    view of the change list, whoever may view it (a read-only admin too). A filter class of
    the project's, ``RelatedOnlyFieldListFilter`` (only the rows the listed objects use), a
    lookup through a relation (``author__team``) and a ``get_list_filter`` method are not
    judged."""
    classes = _admin_classes(ctx)
    if classes is None:
        return
    for model, admin, _node in _registrations(ctx, classes):
        settings = _settings(ctx, admin, classes) if admin is not None else None
        if settings is None or "get_list_filter" in settings.methods:
            continue
        setting = settings.settings.get("list_filter")
        if not isinstance(setting, (ast.List, ast.Tuple)):
            continue
        named = [_filtered_field(ctx, element) for element in setting.elts]
        fields = frozenset(name for name in named if name is not None)
        found = _big_relations(ctx, model, functools.partial(_named_relations, fields))
        # (every relation whose choices are not limited: a filter of one not editable too)
        if found is not None and found[1]:
            yield AdminFilters(setting, found[0], found[1])


def _named_relations(fields: frozenset[str], shape: ModelShape) -> list[Relation]:
    return [relation for relation in shape.relations if relation.field in fields]


def _filtered_field(ctx: ModuleContext, element: ast.expr) -> str | None:
    """The relation field a ``list_filter`` entry filters with a list of every related row:
    ``"author"`` or ``("author", admin.RelatedFieldListFilter)``; None for any other entry."""
    if isinstance(element, ast.Tuple) and len(element.elts) == 2:
        if ctx.qualify(element.elts[1]) not in _EVERY_ROW_FILTERS:
            return None
        element = element.elts[0]
    if isinstance(element, ast.Constant) and isinstance(element.value, str):
        return element.value if "__" not in element.value else None
    return None


def _registrations(
    ctx: ModuleContext, classes: dict[str, ast.ClassDef]
) -> Iterator[tuple[ast.expr, ast.ClassDef | None, ast.AST]]:
    """(model, admin class or None for Django's default admin, where to report) for each
    ``@admin.register(A, B)`` and ``admin.site.register(A, AAdmin)`` of the module."""
    for cls in classes.values():
        for decorator in cls.decorator_list:
            if isinstance(decorator, ast.Call) and (ctx.qualify(decorator.func) or "").startswith(
                "django.contrib.admin."
            ):
                # Django's ``@admin.register(A, B)``; not a project's own ``register``, which
                # may set anything (funkwhale's makes every foreign key a raw id)
                for model in decorator.args:
                    yield model, cls, cls
    for call in ctx.of_type(ast.Call):
        func = call.func
        if (
            not isinstance(func, ast.Attribute)
            or func.attr != "register"
            or "site" not in (dotted(func.value) or "").rsplit(".", 1)[-1]
            or not call.args
        ):
            continue
        if any(k.arg != "admin_class" for k in call.keywords):
            continue  # ``register(M, raw_id_fields=[…])``, ``**options``: settings of its own
        admin_arg = call.args[1] if len(call.args) > 1 else None
        admin_arg = next((k.value for k in call.keywords if k.arg == "admin_class"), admin_arg)
        admin = None
        if admin_arg is not None and ctx.qualify(admin_arg) != "django.contrib.admin.ModelAdmin":
            admin = classes.get(admin_arg.id) if isinstance(admin_arg, ast.Name) else None
            if admin is None:
                continue  # an admin class from elsewhere: its settings are unknown
        first = call.args[0]
        models = first.elts if isinstance(first, (ast.List, ast.Tuple)) else [first]
        for model in models:
            yield model, admin, admin if admin is not None else call


def _judged(
    ctx: ModuleContext,
    classes: dict[str, ast.ClassDef],
    model: ast.expr,
    admin: ast.ClassDef | None,
    settings: _Admin,
    node: ast.AST,
    parent: ast.expr | None,
) -> Iterator[AdminChoices]:
    """The admin form (``admin`` with its ``settings``; None: Django's default) of ``model``,
    reported at ``node`` when it lists every row of a big table; ``parent``: the model of the
    admin that lists this inline."""
    if settings.methods & _DYNAMIC or _read_only(admin, classes):
        return
    found = _big_relations(
        ctx,
        model,
        lambda shape: _shown(ctx, settings, classes, shape.choices),
        parent=parent,
        fk_name=settings.settings.get("fk_name"),
    )
    if found is not None and found[1]:
        yield AdminChoices(node, found[0], found[1])


def _big_relations(
    ctx: ModuleContext,
    model: ast.expr,
    pick: Callable[[ModelShape], list[Relation] | None],
    *,
    parent: ast.expr | None = None,
    fk_name: ast.expr | None = None,
) -> tuple[str, tuple[tuple[str, TableSize | None], ...]] | None:
    """(the model's class name, the relations ``pick`` keeps of the model's that point at a
    big table, each with its size or None for a model the user declared large); None when the
    model's shape is unknown or ``pick`` cannot tell. An inline's link to its ``parent`` (its
    ``fk_name``, else the relation to the parent's model) is left out: a hidden input."""
    evidence = ctx.evidence
    name = dotted(model)
    if evidence is None or name is None:
        return None
    qualified = model_path(ctx, name)
    last = _real_name(ctx, model)
    shape = evidence.tables.shape_of(qualified, last)
    if shape is None:
        return None
    picked = pick(shape)
    if picked is None:
        return None
    home = evidence.tables.defined(qualified) if qualified else None
    parent_name = _real_name(ctx, parent) if parent is not None else None
    hidden_link = fk_name.value if isinstance(fk_name, ast.Constant) else None
    big: list[tuple[str, TableSize | None]] = []
    for relation in picked:
        target = relation.target.rsplit(".", 1)[-1]
        if relation.target == "self":
            target = last
        if relation.field == hidden_link or (
            hidden_link is None and parent_name is not None and target == parent_name
        ):
            continue  # the inline's link to its parent's row: a hidden input
        user = _user_model(ctx, relation)
        declared = ctx.model_size(user[1] if user is not None else target)
        if declared == "small":
            continue
        size = _target_size(ctx, relation, user, target, home)
        if declared == "large":
            big.append((relation.field, None))  # the user's word, whatever a size says
        elif size is not None and not size.small:
            big.append((relation.field, size))
    return last, tuple(big)


def _real_name(ctx: ModuleContext, model: ast.expr) -> str:
    """The class name of ``model`` as its module defines it: ``Article`` for ``Art`` after
    ``from .models import Article as Art``."""
    qualified = ctx.qualify(model)
    return (qualified or dotted(model) or "").rsplit(".", 1)[-1]


def _target_size(
    ctx: ModuleContext,
    relation: Relation,
    user: tuple[str, str] | None,
    target: str,
    home: str | None,
) -> TableSize | None:
    """The size of the table a relation's options come from: the user model ``user`` names
    (the settings' ``AUTH_USER_MODEL``, else Django's ``auth_user``), ``"app.Model"`` by its
    app, a bare name as the model of the
    related model's own module (else the project's one model of that name)."""
    evidence = ctx.evidence
    if evidence is None:
        return None
    if user is not None:  # :func:`_user_model`'s
        app, model = user
        if app == "auth":
            return evidence.of_model(_DEFAULT_USER, "User")
        return evidence.of_app_model(app, model)
    if relation.quoted and relation.target.count(".") == 1:
        app, _, model = relation.target.partition(".")
        # ``"taggit.Tag"`` is that app's table: not the project's own ``Tag``
        return evidence.of_app_model(app, model)
    if home is not None:
        beside = f"{home.rsplit('.', 1)[0]}.{target}"
        if beside in evidence.tables.by_path:
            return evidence.of_model(beside, target)
    return evidence.of_model(None, target)


def _user_model(ctx: ModuleContext, relation: Relation) -> tuple[str, str] | None:
    """(app label, model) of the user model a relation names: the settings'
    ``AUTH_USER_MODEL`` for ``settings.AUTH_USER_MODEL`` and ``get_user_model()``, Django's
    ``auth.User`` for ``"auth.User"`` (any case); None for any other relation."""
    written = relation.target
    if written.lower() == "auth.user":
        return ("auth", "User")
    if written not in _USER_TARGETS and not written.endswith("AUTH_USER_MODEL"):
        return None
    swapped = ctx.evidence.tables.user_model if ctx.evidence is not None else None
    app, _, model = (swapped or "auth.User").partition(".")
    return app, model


def _shown(
    ctx: ModuleContext,
    settings: _Admin,
    classes: dict[str, ast.ClassDef],
    relations: tuple[Relation, ...],
) -> list[Relation] | None:
    """The relations the admin's form shows as option lists; None when a setting or the form
    cannot be read."""
    hidden: set[str] = set()
    for key in _HIDING:
        if key in settings.settings:
            names = _names(settings.settings[key])
            if names is None:
                return None
            hidden.update(names)
    listed: set[str] | None = None
    if "fields" in settings.settings:
        listed = _names(settings.settings["fields"], nested=True)
        if listed is None:
            return None
    elif "fieldsets" in settings.settings:
        listed = _fieldset_names(settings.settings["fieldsets"])
        if listed is None:
            return None
    form = settings.settings.get("form")
    if form is not None:
        form_class = classes.get(form.id) if isinstance(form, ast.Name) else None
        if form_class is None:
            return None
        mine = _form_fields(ctx, form_class, classes)
        if mine is None:
            return None
        declared, meta_fields, meta_widgets, meta_excluded = mine
        hidden |= declared | meta_widgets
        if "exclude" not in settings.settings:
            hidden |= meta_excluded  # an admin's ``exclude`` replaces the form's
        if listed is None and meta_fields is not None:
            listed = meta_fields
    if "formfield_for_foreignkey" in settings.methods:
        relations = tuple(r for r in relations if r.many)
    if "formfield_for_manytomany" in settings.methods:
        relations = tuple(r for r in relations if not r.many)
    return [r for r in relations if r.field not in hidden and (listed is None or r.field in listed)]


def _form_fields(
    ctx: ModuleContext, form: ast.ClassDef, classes: dict[str, ast.ClassDef], depth: int = 0
) -> tuple[set[str], set[str] | None, set[str], set[str]] | None:
    """(fields the form and its bases declare, ``Meta.fields`` or None for all, fields
    ``Meta.widgets`` gives a widget that lists no options, ``Meta.exclude``), the form's own
    ``Meta`` winning over its bases'; None when the form may change its fields unseen: an
    ``__init__`` of its own, a base that is no Django form class nor a form of this module, a
    ``Meta`` with a base or with settings that are not literal."""
    if depth > 8 or any(isinstance(s, ast.FunctionDef) and s.name == "__init__" for s in form.body):
        return None
    declared: set[str] = set()
    fields: set[str] | None = None
    widgets: set[str] = set()
    excluded: set[str] = set()
    for base in form.bases:
        if isinstance(base, ast.Name) and base.id in classes and base.id != form.name:
            inherited = _form_fields(ctx, classes[base.id], classes, depth + 1)
            if inherited is None:
                return None
            declared |= inherited[0]
            fields = inherited[1] if inherited[1] is not None else fields
            widgets |= inherited[2]
            excluded |= inherited[3]
        elif not (ctx.qualify(base) or "").startswith("django."):
            return None
    declared |= {
        target.id
        for stmt in form.body
        if isinstance(stmt, (ast.Assign, ast.AnnAssign))
        for target in (stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target])
        if isinstance(target, ast.Name) and target.id != "Meta"
    }
    meta = next((s for s in form.body if isinstance(s, ast.ClassDef) and s.name == "Meta"), None)
    if meta is None:
        return declared, fields, widgets, excluded
    if meta.bases:
        return None  # ``class Meta(ArticleMeta)``: settings from elsewhere
    fields, widgets, excluded = None, set(), set()  # a ``Meta`` of its own replaces its bases'
    for stmt in meta.body:
        if not isinstance(stmt, ast.Assign) or len(stmt.targets) != 1:
            continue
        key = getattr(stmt.targets[0], "id", "")
        if key == "fields":
            if isinstance(stmt.value, ast.Constant) and stmt.value.value == "__all__":
                continue
            fields = _names(stmt.value)
            if fields is None:
                return None
        elif key == "exclude":
            names = _names(stmt.value)
            if names is None:
                return None
            excluded |= names
        elif key == "widgets":
            if not isinstance(stmt.value, ast.Dict) or None in stmt.value.keys:
                return None  # not literal, or ``{**WIDGETS}``
            widgets |= {
                k.value
                for k, widget in zip(stmt.value.keys, stmt.value.values, strict=True)
                if isinstance(k, ast.Constant)
                and isinstance(k.value, str)
                and lists_no_options(widget)
            }
    return declared, fields, widgets, excluded


def _settings(
    ctx: ModuleContext, cls: ast.ClassDef, classes: dict[str, ast.ClassDef], depth: int = 0
) -> _Admin | None:
    """The settings and methods of ``cls`` with its bases' (the class's own win); None when a
    base may set them unseen (a class of another of the project's modules)."""
    merged = _Admin({}, set())
    for base in reversed(cls.bases):  # the first base wins, as in Python's method order
        name = base.id if isinstance(base, ast.Name) else None
        if name is not None and name in classes and name != cls.name and depth < 8:
            inherited = _settings(ctx, classes[name], classes, depth + 1)
            if inherited is None:
                return None
            merged.settings.update(inherited.settings)
            merged.methods |= inherited.methods
            continue
        qualified = ctx.qualify(base) or ""
        root, last = qualified.partition(".")[0], qualified.rsplit(".", 1)[-1]
        if root not in _ADMIN_LIBRARIES or (root == "django" and last not in _DJANGO_BASES):
            return None
    for stmt in cls.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            merged.methods.add(stmt.name)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                if not isinstance(target, ast.Name):
                    continue
                if target.id == "exclude" and _is_none(stmt.value):
                    merged.settings.pop("exclude", None)  # Django's default: nothing excluded
                elif target.id in _SETTINGS:
                    merged.settings[target.id] = stmt.value
                elif target.id in _DYNAMIC:
                    merged.methods.add(target.id)
    return merged


def _is_none(value: ast.expr) -> bool:
    return isinstance(value, ast.Constant) and value.value is None


def _read_only(
    admin: ast.ClassDef | None, classes: dict[str, ast.ClassDef], depth: int = 0
) -> bool:
    """The admin (or a base of this module) refuses both adding and changing: its
    ``has_add_permission`` and ``has_change_permission`` return ``False`` on every path (a
    method whose every ``return`` says so, or a ``lambda`` that does), so no page renders a
    form."""
    if admin is None or depth > 8:
        return False
    refusing: set[str] = set()
    for stmt in admin.body:
        if isinstance(stmt, ast.FunctionDef) and _returns_false(stmt):
            refusing.add(stmt.name)
        elif isinstance(stmt, ast.Assign) and _false_lambda(stmt.value):
            refusing.update(t.id for t in stmt.targets if isinstance(t, ast.Name))
    if {"has_add_permission", "has_change_permission"} <= refusing:
        return True
    return any(
        _read_only(classes[base.id], classes, depth + 1)
        for base in admin.bases
        if isinstance(base, ast.Name) and base.id in classes
    )


def _false_lambda(value: ast.expr) -> bool:
    return (
        isinstance(value, ast.Lambda)
        and isinstance(value.body, ast.Constant)
        and value.body.value is False
    )


def _returns_false(method: ast.FunctionDef) -> bool:
    """Every ``return`` of ``method`` itself (not of a function inside it) is ``False``."""
    returns: list[ast.Return] = []
    pending: list[ast.AST] = list(method.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Return):
            returns.append(node)
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            pending.extend(ast.iter_child_nodes(node))
    return bool(returns) and all(
        isinstance(r.value, ast.Constant) and r.value.value is False for r in returns
    )


def _class_names(node: ast.expr | None) -> list[str]:
    """The class names a literal ``inlines = [CommentInline, …]`` lists."""
    if not isinstance(node, (ast.List, ast.Tuple)):
        return []
    return [element.id for element in node.elts if isinstance(element, ast.Name)]


def _names(node: ast.expr | None, nested: bool = False) -> set[str] | None:
    """The strings of a literal list or tuple (with ``nested``, of tuples in it too: ``fields
    = (("a", "b"), "c")``); None when not literal."""
    if not isinstance(node, (ast.List, ast.Tuple)):
        return None
    out: set[str] = set()
    for element in node.elts:
        if isinstance(element, ast.Constant) and isinstance(element.value, str):
            out.add(element.value)
        elif nested and isinstance(element, (ast.List, ast.Tuple)):
            inner = _names(element, nested=True)
            if inner is None:
                return None
            out |= inner
        elif isinstance(element, ast.Name) and element.id[:1].isupper():
            return None  # a class of an inline list, not a field: no field names here
        else:
            return None
    return out


def _fieldset_names(node: ast.expr) -> set[str] | None:
    """The fields of a literal ``fieldsets`` (``(("Title", {"fields": (...)}), ...)``)."""
    if not isinstance(node, (ast.List, ast.Tuple)):
        return None
    out: set[str] = set()
    for fieldset in node.elts:
        if not isinstance(fieldset, (ast.List, ast.Tuple)) or len(fieldset.elts) != 2:
            return None
        options = fieldset.elts[1]
        if not isinstance(options, ast.Dict):
            return None
        fields = next(
            (
                value
                for key, value in zip(options.keys, options.values, strict=True)
                if isinstance(key, ast.Constant) and key.value == "fields"
            ),
            None,
        )
        names = _names(fields, nested=True)
        if names is None:
            return None
        out |= names
    return out
