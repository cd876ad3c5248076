"""Which model a query chain reads, and what its definition bounds (``lint/model_shape.py``):
a filter on a unique key, one on a foreign key (one owner's rows), and a lookup table of named
values."""

from __future__ import annotations

import ast
from collections.abc import Sequence

from membound.lint.context import MODEL_GETTERS, ModuleContext
from membound.lint.expression_chains import Link, dotted
from membound.lint.model_shape import FRAMEWORK_LOOKUP_LABELS, ModelShape
from membound.lint.rules._owners import equalities, last_name, memberships, shared_attribute
from membound.lint.tables import snake_case

__all__ = [
    "MANAGERS",
    "MODEL_GETTERS",
    "foreign_key_bound",
    "get_model_call",
    "lookup_table",
    "model_name",
    "named_model_call",
    "query_shape",
    "south_model",
    "unique_bound",
]

MANAGERS = frozenset({"objects", "_default_manager", "_base_manager"})


#: Calls that give the project's user model (Django's swappable ``AUTH_USER_MODEL``).
_USER_MODEL_CALLS = frozenset({"get_user_model"})
_DEFAULT_USER = "django.contrib.auth.models.User"


def model_name(ctx: ModuleContext, chain: Sequence[Link]) -> str | None:
    """The class name of the model a query chain loads, when it is written there: ``Invoice``
    (``Invoice.objects``), a dotted path when reached through a module (``models.Domain.objects``
    with ``from pulpcore.app import models``: ``pulpcore.app.models.Domain``), Django's user
    model for ``get_user_model().objects``."""
    if (
        chain
        and chain[0].kind == "name"
        and any(link.kind == "attr" and link.name in MANAGERS for link in chain[1:2])
    ):
        if chain[0].name == "cls":
            # ``cls.objects.all()`` in a classmethod of the model: the model itself
            return next(
                (a.name for a in ctx.ancestors(chain[0].node) if isinstance(a, ast.ClassDef)),
                None,
            )
        return chain[0].name
    for i in range(1, len(chain) - 1):
        if chain[i + 1].kind == "attr" and chain[i + 1].name in MANAGERS:
            if chain[i].kind == "attr" and all(c.kind in ("name", "attr") for c in chain[:i]):
                return ctx.qualify(chain[i].node) or dotted(chain[i].node)
            if chain[i].kind == "func" and chain[i].name in _USER_MODEL_CALLS:
                return _DEFAULT_USER
            break
    if (
        len(chain) > 1
        and chain[0].kind == "func"
        and chain[0].name in _USER_MODEL_CALLS
        and chain[1].kind == "attr"
        and chain[1].name in MANAGERS
    ):
        return _DEFAULT_USER
    for link in chain:
        if link.kind == "method" and link.name == "query" and isinstance(link.node, ast.Call):
            named = _entity_named(ctx, link.node.args)
            if named is not None:
                return named
        if (
            link.kind == "method"
            and link.name in ("execute", "scalars")
            and isinstance(link.node, ast.Call)
            and link.node.args
        ):
            for step in ctx.expand(link.node.args[0]):
                if step.name == "select" and isinstance(step.node, ast.Call):
                    named = _entity_named(ctx, step.node.args)
                    if named is not None:
                        return named
    if (
        chain
        and chain[0].kind == "name"
        and any(link.kind == "attr" and link.name == "query" for link in chain[1:2])
    ):
        return chain[0].name
    return None


def _entity_named(ctx: ModuleContext, args: Sequence[ast.expr]) -> str | None:
    """The one entity of ``query(...)``/``select(...)``: ``Entry``, or ``db.Entry`` (a model
    reached through its module, qualified through this module's imports when it can be)."""
    if len(args) != 1:
        return None
    if isinstance(args[0], ast.Name):
        return args[0].id
    if isinstance(args[0], ast.Attribute) and args[0].attr[:1].isupper():
        return ctx.qualify(args[0]) or dotted(args[0])
    return None


def south_model(ctx: ModuleContext, chain: Sequence[Link]) -> tuple[str, str] | None:
    """``orm["discovery.device"]`` or ``orm.Network`` at the head of a chain in a module that
    imports South (its migrations get the models of their time as ``orm``, by
    ``"app.model"``, or by name for the migration's own app: the folder above
    ``migrations/``): (app, model)."""
    if len(chain) < 2 or chain[0].kind != "name" or chain[0].name != "orm":
        return None
    if "south" not in ctx.imported_roots:
        return None
    if chain[1].kind == "attr" and chain[1].name[:1].isupper():
        parts = ctx.filename.replace("\\", "/").split("/")
        if len(parts) > 2 and parts[-2] == "migrations":
            return parts[-3], chain[1].name
        return None
    if chain[1].kind != "sub":
        return None
    sub = chain[1].node
    if not isinstance(sub, ast.Subscript):
        return None
    key = ctx.string_value(sub.slice)
    if key is None or key.count(".") != 1:
        return None
    app, model = key.split(".")
    return (app, model) if app and model else None


def get_model_call(ctx: ModuleContext, chain: Sequence[Link]) -> tuple[str, str] | None:
    """``apps.get_model("order", "Line")`` (migrations), ``get_model("catalogue", "Product")``
    (django-oscar), ``apps.get_model("order.Line")``, ``swapper.load_model("radius", "Nas")`` or
    a project's ``get_swapped_model(apps, "radius", "Nas")`` at the head of a chain: (app,
    model), from the last two strings of its arguments; or a South migration's frozen
    ``orm["discovery.device"]``."""
    south = south_model(ctx, chain)
    if south is not None:
        return south
    for link in chain[:2]:
        call = link.node
        if link.name not in MODEL_GETTERS or not isinstance(call, ast.Call):
            continue
        words = [ctx.string_value(arg) for arg in call.args]
        while words and words[0] is None and len(words) > 1:
            words.pop(0)  # ``apps`` before the strings of a helper's call
        named = {kw.arg: ctx.string_value(kw.value) for kw in call.keywords if kw.arg}
        if len(words) < 2 and named.get("model_name"):  # get_model(app_label=…, model_name=…)
            app = words[0] if words else named.get("app_label")
            words = [app, named.get("model_name")]
        if len(words) == 2 and words[0] and words[1]:
            return words[0], words[1]
        if len(words) == 1 and words[0] and words[0].count(".") == 1:
            app, model = words[0].split(".")
            return app, model
    return None


def looped_models(ctx: ModuleContext, chain: Sequence[Link]) -> list[tuple[str, str]]:
    """``for name in ["Nas", "RadiusPostAuth"]: Model = apps.get_model("radius", name)`` at
    the head of a chain: (app, model) for each name the loop gives (a list or tuple of strings,
    written there or assigned once to the name it walks); the loop loads each table whole. The
    same for a parameter of a function around the call that the module passes only strings
    (``def migrate(model_name): …`` with ``migrate("Product")``, ``migrate("ProductVariant")``)."""
    for link in chain[:2]:
        call = link.node
        if link.name not in MODEL_GETTERS or not isinstance(call, ast.Call) or len(call.args) < 2:
            continue
        app, last = ctx.string_value(call.args[-2]), call.args[-1]
        if not app or not isinstance(last, ast.Name):
            continue
        given = alternatives(ctx, last)
        words = [ctx.string_value(value) for value in given]
        if given and all(words):
            return [(app, word) for word in words if word]
    return []


def alternatives(ctx: ModuleContext, name: ast.Name) -> list[ast.expr]:
    """The values ``name`` takes in turn, when the code lists them all: the items of the loop
    that binds it (``for model in (Analysis, Event):``, over a literal list or tuple written
    there or assigned once to the name it walks), or, for a parameter of a function around it,
    what every call of that function in the module passes (``check(Analysis, …)``,
    ``migrate(model_name="Product")``). Empty when a value cannot be followed."""
    for loop in ctx.ancestors(name):
        if (
            isinstance(loop, ast.For)
            and isinstance(loop.target, ast.Name)
            and loop.target.id == name.id
        ):
            return _literal_items(ctx, loop.iter)
    return _passed_values(ctx, name, name.id)


def _passed_values(ctx: ModuleContext, node: ast.AST, parameter: str) -> list[ast.expr]:
    """What every call in the module of the function around ``node`` passes for its
    ``parameter``; empty when some call passes nothing for it (its default) or there is none."""
    for function in ctx.ancestors(node):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        names = [a.arg for a in (*function.args.posonlyargs, *function.args.args)]
        if parameter not in names and parameter not in [a.arg for a in function.args.kwonlyargs]:
            continue
        position = names.index(parameter) if parameter in names else None
        given: list[ast.expr | None] = []
        for call in ctx.of_type(ast.Call):
            if not (isinstance(call.func, ast.Name) and call.func.id == function.name):
                continue
            value = next((k.value for k in call.keywords if k.arg == parameter), None)
            if (
                value is None
                and position is not None
                and position < len(call.args)
                and not any(isinstance(a, ast.Starred) for a in call.args[: position + 1])
            ):
                value = call.args[position]
            given.append(value)
        return [v for v in given if v is not None] if given and all(given) else []
    return []


def _literal_items(ctx: ModuleContext, expr: ast.expr) -> list[ast.expr]:
    if isinstance(expr, ast.Name):
        values = ctx.assigned_values(expr.id, expr)
        expr = values[0] if len(values) == 1 else expr
    if not isinstance(expr, (ast.List, ast.Tuple)):
        return []
    return [] if any(isinstance(item, ast.Starred) for item in expr.elts) else list(expr.elts)


def named_model_call(ctx: ModuleContext, chain: Sequence[Link]) -> str | None:
    """``load_model("RadiusAccounting")`` at the head of a chain: a project helper that gives
    one of its app's models by name alone."""
    for link in chain[:2]:
        call = link.node
        if link.name in MODEL_GETTERS and isinstance(call, ast.Call) and len(call.args) == 1:
            word = ctx.string_value(call.args[0])
            if word and "." not in word and word[:1].isupper():
                return word
    return None


def query_shape(ctx: ModuleContext, chain: Sequence[Link]) -> ModelShape | None:
    """The shape of the model ``chain`` reads, when the run's models define it (or it is one
    of the frameworks' reference models)."""
    evidence = ctx.evidence
    if evidence is None:
        return None
    found = get_model_call(ctx, chain)
    if found is not None:
        if found in FRAMEWORK_LOOKUP_LABELS:
            return ModelShape(plain=True, identified=True)
        return evidence.tables.shape_of(None, found[1])
    name = model_name(ctx, chain)
    if name is None:
        return None
    return evidence.tables.shape_of(model_path(ctx, name), name)


def model_path(ctx: ModuleContext, name: str) -> str | None:
    """The dotted path of the model written ``name``: where it is imported from (a module's
    attribute, ``db.Entry`` after ``from . import db``, through that import), or this file's
    own class of that name."""
    if "." in name:
        root, _, rest = name.partition(".")
        target = ctx.qualify(ast.Name(id=root))
        return f"{target}.{rest}" if target is not None else name
    qualified = ctx.qualify(ast.Name(id=name))
    if qualified is None and ctx.evidence is not None:
        qualified = ctx.evidence.tables.local(ctx.filename, name)
    return qualified


def lookup_table(ctx: ModuleContext, chain: Sequence[Link]) -> bool:
    """``chain`` reads a lookup table of named values, and no table size says otherwise."""
    shape = query_shape(ctx, chain)
    if shape is None or not shape.lookup:
        return False
    evidence = ctx.evidence
    if evidence is None or not evidence.sizes:
        return True
    name = model_name(ctx, chain)
    return name is None or evidence.of_model(model_path(ctx, name), name) is None


def _in_hand(expr: ast.AST) -> bool:
    """A value or list already in memory: a name, attribute, item or literal, not a query."""
    if isinstance(expr, (ast.List, ast.Tuple, ast.Set, ast.Constant, ast.JoinedStr)):
        return True
    root = expr
    while isinstance(root, (ast.Attribute, ast.Subscript)):
        root = root.value
    return isinstance(root, ast.Name) and not root.id[:1].isupper()


def _fixed_fields(ctx: ModuleContext, call: ast.Call) -> tuple[set[str], set[str]]:
    """The fields a ``filter``/``filter_by``/``where`` call fixes to one value in hand, and
    those it puts in a list in hand (``name__in=names``, ``Model.code.in_(codes)``)."""
    equal = {field for field, _ in _fixed_values(ctx, call)}
    listed = {
        parts[0]
        for kw in call.keywords
        if kw.arg is not None
        and _in_hand(kw.value)
        and len(parts := kw.arg.split("__")) == 2
        and parts[1] == "in"
    }
    listed.update(column for column, values in memberships(call.args) if _in_hand(values))
    return equal, listed


def _fixed_values(ctx: ModuleContext, call: ast.Call) -> list[tuple[str, ast.expr]]:
    """Each field a ``filter``/``filter_by``/``where`` call fixes to one value in hand, with
    that value (``field=value``, ``field__exact=value``, ``Model.field == value``)."""
    found: list[tuple[str, ast.expr]] = []
    for kw in call.keywords:
        if kw.arg is None or not _in_hand(kw.value):
            continue
        parts = kw.arg.split("__")
        if len(parts) == 1 or (len(parts) == 2 and parts[1] == "exact"):
            found.append((parts[0], kw.value))
    for column, value, compare in equalities(call.args):
        if _in_hand(value) and not isinstance(ctx.parent(compare), ast.BoolOp):
            found.append((column, value))
    return found


#: Columns that name a row (a keyword's ``name``, a tag's ``slug``).
_NAMING_FIELDS = frozenset({"name", "slug", "title", "label", "code", "identifier", "key"})
#: What a value's name ends with when it names one row of a model: ``dataset_name``.
_ROW_NAMES = frozenset({"name", "slug", "code", "key", "identifier", "id", "uuid", "pk"})


def named_for_its_model(ctx: ModuleContext, chain: Sequence[Link]) -> bool:
    """A filter step fixes a column of the queried model to one value named for one of its
    rows: the model's name for its naming column
    (``HierarchicalKeyword.objects.filter(name__iexact=keyword)``, ``Tag.name == tag``), or
    the model's name and a word that identifies (``Dataset.objects.filter(alternate=
    dataset_name)``, ``Project.slug == project_slug``) for any column that is no shared
    attribute: the rows of that one value. Not a column the model itself declares without
    ``unique`` (a metric's ``name``, an event's ``name``: one value on many rows)."""
    model = model_name(ctx, chain)
    shape = query_shape(ctx, chain)
    # a field the model declares without ``unique`` may hold one value on many rows (a
    # metric's name on every sample): only a field declared elsewhere (a tag's name on
    # django-taggit's base) or unique is read as naming one row
    declared = (
        shape.names - {next(iter(k)) for k in shape.unique if len(k) == 1} if shape else set()
    )
    for link in chain:
        if link.kind != "method" or link.name not in ("filter", "filter_by", "where"):
            continue
        if not isinstance(link.node, ast.Call):
            continue
        pairs: list[tuple[str, ast.expr, str | None]] = []
        for kw in link.node.keywords:
            parts = (kw.arg or "").split("__")
            if len(parts) == 1 or (len(parts) == 2 and parts[1] in ("exact", "iexact")):
                pairs.append((parts[0], kw.value, model))
        for column, value, compare in equalities(link.node.args):
            owner = compare.left.value if isinstance(compare.left, ast.Attribute) else None
            pairs.append((column, value, dotted(owner) if owner is not None else model))
        if any(
            _names_a_row_of(field, value, of) and field not in declared
            for field, value, of in pairs
        ):
            return True
    return False


def _names_a_row_of(field: str, value: ast.expr, model: str | None) -> bool:
    """``field == value`` picks the rows of one row's name of ``model`` (see
    :func:`named_for_its_model`)."""
    named = (last_name(value) or "").lower()
    if not model or not named or not _in_hand(value) or field.startswith("_"):
        return False
    words = snake_case(model.rsplit(".", 1)[-1])
    names = {words, words.rsplit("_", 1)[-1]}
    names = {n for n in names if len(n) >= 3}
    if named in names:
        return field.lower() in _NAMING_FIELDS
    head, _, tail = named.rpartition("_")
    return head in names and tail in _ROW_NAMES and not shared_attribute(field)


def unique_bound(ctx: ModuleContext, chain: Sequence[Link]) -> bool:
    """A filter step of ``chain`` fixes every field of one of the model's unique keys
    (``filter(name=name)`` on a ``unique=True`` name: one row), or puts a unique field in a list
    in hand (``upc__in=upcs``: at most that many rows)."""
    filters = [
        link.node
        for link in chain
        if link.kind == "method"
        and link.name in ("filter", "filter_by", "where")
        and isinstance(link.node, ast.Call)
    ]
    if not filters:
        return False
    shape = query_shape(ctx, chain)
    if shape is None or not shape.unique:
        return False
    equal: set[str] = set()
    for call in filters:
        fixed, listed = _fixed_fields(ctx, call)
        equal |= fixed
        if any(len(key) == 1 and key <= listed for key in shape.unique):
            return True
    return any(key <= equal for key in shape.unique)


def foreign_key_bound(ctx: ModuleContext, chain: Sequence[Link]) -> bool:
    """A filter step of ``chain`` fixes a foreign key of the model to one value in hand, a name
    or attribute, not a constant (``filter(mailinglist=mlist)`` on an ``Email`` whose
    ``mailinglist`` is a ``ForeignKey``, or ``mailinglist_id=…``): the rows of one owner,
    whatever the names say. A key to a shared attribute (``status``, ``language``,
    ``content_type``) keeps a share of the table, not an owner's rows; ``None`` keeps every row
    without one."""
    shape = query_shape(ctx, chain)
    if shape is None or not shape.foreign_keys:
        return False
    for link in chain:
        if link.kind != "method" or link.name not in ("filter", "filter_by", "where"):
            continue
        if not isinstance(link.node, ast.Call):
            continue
        for field, value in _fixed_values(ctx, link.node):
            key = field.removesuffix("_id") if field not in shape.foreign_keys else field
            if (
                key in shape.foreign_keys
                and not shared_attribute(key)
                and not isinstance(value, ast.Constant)
            ):
                return True
    return False
