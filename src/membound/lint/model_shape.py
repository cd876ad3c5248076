"""What a model's definition says about how many rows a query of it can read.

Two facts, read from the class body (Django models and SQLAlchemy declarative models):

* **Unique keys**: the fields declared ``unique=True`` or ``primary_key=True``, and the field sets
  of ``Meta.unique_together``, an unconditional ``UniqueConstraint`` or SQLAlchemy's
  ``UniqueConstraint`` in ``__table_args__``. A filter that fixes every field of one of them to
  one value reads at most one row; one that puts a unique field in a list in hand reads at most
  that list's length.
* **Lookup shape**: a table of named values rather than of things that happen, such as a
  language, a currency, a role, a status or a global setting. Its definition shows it: a unique
  identifying text field (``name``, ``code``, ``slug``, ``key``...), no foreign key (rows per
  owner grow with the owners), and besides that only descriptive fields (a description, an
  order, a flag, a colour, a setting's value) and at most six of them. Such tables are filled by
  an administrator or a migration, so loading all of their rows is bounded by nature. A field
  whose name or type says it holds content (``url``, ``body``, ``data``, ``email``...), a base
  class defined elsewhere (its fields are unknown) or more fields: not a lookup.

Both are conservative: a field that cannot be read makes no bound.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["FRAMEWORK_LOOKUPS", "FRAMEWORK_LOOKUP_LABELS", "ModelShape", "Relation", "shape_of"]

#: The frameworks' own reference models, by the path code imports them from: content types,
#: permissions, groups and sites (Django), roles and permissions (Flask-AppBuilder).
FRAMEWORK_LOOKUPS = frozenset(
    {"django.contrib.contenttypes.models.ContentType", "django.contrib.auth.models.Permission",
     "django.contrib.auth.models.Group", "django.contrib.sites.models.Site",
     "flask_appbuilder.security.sqla.models.Role",
     "flask_appbuilder.security.sqla.models.Permission",
     "flask_appbuilder.security.sqla.models.ViewMenu",
     "flask_appbuilder.security.sqla.models.PermissionView"}
)  # fmt: skip
#: The same Django models as a migration names them: ``apps.get_model("auth", "Group")``.
FRAMEWORK_LOOKUP_LABELS = frozenset(
    {("contenttypes", "ContentType"), ("auth", "Permission"), ("auth", "Group"), ("sites", "Site")}
)

#: Callables that declare a foreign key (Django) or a column holding one (SQLAlchemy).
_FOREIGN_KEYS = frozenset({"ForeignKey", "OneToOneField", "GenericForeignKey", "ParentalKey"})
#: Relations that add no column to this table.
_RELATIONS = frozenset(
    {"ManyToManyField", "relationship", "relation", "backref", "GenericRelation"}
)
#: SQLAlchemy column constructors.
_COLUMNS = frozenset({"Column", "mapped_column", "column_property"})
#: Base classes that add no field: the frameworks' roots, a declarative base.
_ROOT_BASES = frozenset(
    {"Model", "Base", "DeclarativeBase", "object", "BaseModel", "TimeStampedModel", "AbstractBase"}
)
#: Names of a field that identifies one named value.
_IDENTITY = frozenset(
    {"name", "slug", "code", "key", "identifier", "label", "title", "codename", "abbreviation",
     "symbol", "locale", "language", "iso", "iso_code", "shortname", "short_name", "app_label"}
)  # fmt: skip
_IDENTITY_SUFFIXES = ("_name", "_code", "_key", "_slug", "_label")
#: Names of fields that describe a named value without making it content.
_DESCRIPTIVE = frozenset(
    {"description", "help_text", "verbose_name", "name_plural", "order", "ordering", "position",
     "sort", "sort_order", "priority", "weight", "rank", "active", "enabled", "is_active",
     "is_enabled", "default", "is_default", "visible", "is_visible", "public", "is_public",
     "color", "colour", "icon", "created", "created_at", "created_on", "modified", "modified_at",
     "updated", "updated_at", "changed_on", "value", "model", "display", "hidden",
     "builtin", "system", "is_system", "locked", "notes", "comment"}
)  # fmt: skip
#: Field types that hold content, whatever the field is called.
_CONTENT_TYPES = frozenset(
    {"FileField", "ImageField", "BinaryField", "JSONField", "LargeBinary", "PickleType", "JSON",
     "JSONB", "EmailField", "URLField", "GenericIPAddressField"}
)  # fmt: skip
_MAX_LOOKUP_FIELDS = 6
#: Django relations a model form renders as a choice among the related model's rows.
_CHOICE_RELATIONS = frozenset(
    {"ForeignKey", "OneToOneField", "ManyToManyField", "TreeForeignKey", "TreeManyToManyField",
     "TreeOneToOneField", "ParentalKey", "ParentalManyToManyField"}
)  # fmt: skip
#: Keywords that, set, make the field no form field: the link to an inherited model's parent
#: row (a ``OneToOneField(primary_key=True)`` is still a select of every related row).
_NO_ROW_KEYS = ("parent_link",)


@dataclass(frozen=True)
class Relation:
    """A Django ``ForeignKey``/``OneToOneField``/``ManyToManyField`` (or django-mptt's tree
    variants) that a model form shows: editable, its choices not limited by
    ``limit_choices_to``, not the parent link of an inherited model, not a many-to-many
    ``through`` a model of its own."""

    field: str
    target: str
    """The related model as written: ``"auth.User"``, ``"self"``, ``Document``,
    ``settings.AUTH_USER_MODEL``."""
    many: bool
    """A many-to-many field (``formfield_for_manytomany`` decides it, not
    ``formfield_for_foreignkey``)."""
    quoted: bool = False
    """Written as a string (``"taggit.Tag"``: an app label and a model), not a name or an
    attribute (``other_models.Tag``: a module's)."""


@dataclass(frozen=True)
class ModelShape:
    """The facts one model's class body (and its bases in the same module) gives."""

    unique: tuple[frozenset[str], ...] = ()
    """Field sets each of which picks at most one row (one-field sets for ``unique=True``)."""
    plain: bool = False
    """Every field is known, none is a foreign key or content: identities and descriptions."""
    identified: bool = False
    """A unique identifying text field (``name``, ``code``...)."""
    fields: int = 0
    foreign_keys: frozenset[str] = frozenset()
    """Fields that hold a key of another table's row (``ForeignKey``, ``OneToOneField``, a
    ``Column(ForeignKey(…))``): a filter fixing one keeps the rows of one owner."""
    choices: tuple[Relation, ...] = ()
    """The Django relations a model form renders as a choice of every row of another model
    (:class:`Relation`), in the order the class declares them."""
    relations: tuple[Relation, ...] = ()
    """Every Django relation whose choices are not limited, form fields or not (an admin's
    list filter lists the related rows of any), in the order the class declares them."""
    names: frozenset[str] = frozenset()
    """The fields the class and its known bases declare (a field of an unknown base, or of a
    framework's own base class, is not among them)."""

    @property
    def lookup(self) -> bool:
        """The table holds named values an administrator configures (the module docstring)."""
        return self.plain and self.identified and self.fields <= _MAX_LOOKUP_FIELDS


@dataclass(frozen=True)
class _Field:
    name: str
    kind: str  # "fk", "relation" or "scalar"
    type_name: str
    unique: bool


def _called(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Attribute):
            return func.attr
        if isinstance(func, ast.Name):
            return func.id
    return None


def _true_keyword(call: ast.Call, *names: str) -> bool:
    return any(
        kw.arg in names and isinstance(kw.value, ast.Constant) and kw.value.value is True
        for kw in call.keywords
    )


def _field(name: str, value: ast.AST) -> _Field | None:
    called = _called(value)
    if called is None or not isinstance(value, ast.Call):
        return None
    if called in _FOREIGN_KEYS:
        return _Field(name, "fk", called, _true_keyword(value, "unique", "primary_key"))
    if called in _RELATIONS:
        return _Field(name, "relation", called, False)
    unique = _true_keyword(value, "unique", "primary_key")
    if called in _COLUMNS:
        kind = "scalar"
        type_name = ""
        for arg in value.args:
            inner = _called(arg) or (arg.attr if isinstance(arg, ast.Attribute) else None)
            inner = inner or (arg.id if isinstance(arg, ast.Name) else None)
            if inner == "ForeignKey":
                kind = "fk"
            elif inner and not type_name and inner[:1].isupper():
                type_name = inner
        return _Field(name, kind, type_name, unique)
    if called.endswith("Field"):
        return _Field(name, "scalar", called, unique)
    return None


def _relation(name: str, value: ast.AST, *, form: bool = True) -> Relation | None:
    """The relation a model form renders as a choice of every related row, declared by
    ``name = value``; None for any other field (see :class:`Relation`). Not ``form``: any
    relation whose choices are not limited (an admin's list filter lists every related row
    of a field that is not editable, goes ``through`` a model or links a parent row too)."""
    called = _called(value)
    if called not in _CHOICE_RELATIONS or not isinstance(value, ast.Call):
        return None
    keywords = {k.arg: k.value for k in value.keywords if k.arg is not None}
    target = keywords.get("to", value.args[0] if value.args else None)
    if target is None or "limit_choices_to" in keywords:
        return None
    if form and "through" in keywords:
        return None  # a many-to-many through a model of its own is no form field
    if form and "editable" in keywords and _constant(keywords["editable"]) is not True:
        return None
    if form and any(
        word in keywords and _constant(keywords[word]) is not False for word in _NO_ROW_KEYS
    ):
        return None
    written = target.value if isinstance(target, ast.Constant) else ast.unparse(target)
    if not isinstance(written, str):
        return None
    return Relation(name, written, "Many" in called, isinstance(target, ast.Constant))


def _constant(node: ast.AST) -> object:
    return node.value if isinstance(node, ast.Constant) else None


def _strings(node: ast.AST | None) -> list[str] | None:
    if isinstance(node, (ast.List, ast.Tuple)):
        words = [e.value for e in node.elts if isinstance(e, ast.Constant)]
        if len(words) == len(node.elts) and all(isinstance(w, str) for w in words):
            return [str(w) for w in words]
    return None


def _unique_together(node: ast.AST | None) -> list[frozenset[str]]:
    flat = _strings(node)
    if flat:
        return [frozenset(flat)]
    found: list[frozenset[str]] = []
    if isinstance(node, (ast.List, ast.Tuple)):
        for element in node.elts:
            words = _strings(element)
            if words:
                found.append(frozenset(words))
    return found


def _constraints(node: ast.AST | None) -> list[frozenset[str]]:
    """Unconditional ``UniqueConstraint(fields=[...])`` (Django) or ``UniqueConstraint("a",
    "b")`` (SQLAlchemy) in a list or tuple."""
    found: list[frozenset[str]] = []
    if not isinstance(node, (ast.List, ast.Tuple)):
        return found
    for element in node.elts:
        if _called(element) != "UniqueConstraint" or not isinstance(element, ast.Call):
            continue
        keywords = {kw.arg: kw.value for kw in element.keywords}
        if "condition" in keywords:
            continue  # unique among some rows only
        words = _strings(keywords.get("fields"))
        if words is None and element.args:
            args = [a.value for a in element.args if isinstance(a, ast.Constant)]
            if len(args) == len(element.args):
                words = [str(a) for a in args]
        if words:
            found.append(frozenset(words))
    return found


def _is_identity(name: str) -> bool:
    return name in _IDENTITY or name.endswith(_IDENTITY_SUFFIXES)


def _is_plain(field: _Field) -> bool:
    return (
        field.kind != "fk"
        and field.type_name not in _CONTENT_TYPES
        and (field.kind == "relation" or _is_identity(field.name) or field.name in _DESCRIPTIVE)
    )


def shape_of(
    cls: ast.ClassDef,
    assigned: Mapping[str, ast.AST],
    meta: Mapping[str, ast.AST],
    bases_here: Mapping[str, ModelShape],
    elsewhere: Callable[[ast.expr], ModelShape | None] | None = None,
) -> ModelShape:
    """The shape of the model ``cls``, whose body assigns ``assigned`` and whose ``Meta`` (or
    ``__table_args__``) ``meta``; ``bases_here`` are the shapes of the module's earlier
    classes; ``elsewhere`` gives the shape of a base the module imports from another of the
    project's modules (an abstract ``AbstractOrder`` of ``abstract_models.py`` that
    ``models.py``'s ``Order`` extends), or None."""
    fields = [f for name, value in assigned.items() if (f := _field(name, value)) is not None]
    unique: list[frozenset[str]] = [frozenset({f.name}) for f in fields if f.unique]
    unique += _unique_together(meta.get("unique_together"))
    unique += _constraints(meta.get("constraints"))
    unique += _constraints(assigned.get("__table_args__"))
    scalars = [f for f in fields if f.kind != "relation" and f.name not in ("id", "pk")]
    plain = all(_is_plain(f) for f in fields if f.name not in ("id", "pk"))
    identified = any(f.unique and f.kind == "scalar" and _is_identity(f.name) for f in scalars)
    count = len(scalars)
    keys = {f.name for f in fields if f.kind == "fk"}
    inherited: list[Relation] = []
    inherited_all: list[Relation] = []
    names = {f.name for f in fields}
    for base in cls.bases:
        name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
        shape = bases_here.get(name)
        if shape is None and elsewhere is not None and name != cls.name:
            shape = elsewhere(base)
        if shape is not None:  # a class of this module or another: its fields are inherited
            unique += list(shape.unique)
            plain = plain and shape.plain
            identified = identified or shape.identified
            count += shape.fields
            keys |= shape.foreign_keys
            inherited += shape.choices
            inherited_all += shape.relations
            names |= shape.names
        elif name not in _ROOT_BASES:
            plain = False  # fields defined elsewhere, or by a class not known to be a model
    own = [r for name, value in assigned.items() if (r := _relation(name, value)) is not None]
    own_all = [r for name, value in assigned.items() if (r := _relation(name, value, form=False))]
    declared = {r.field for r in own_all} | {f.name for f in fields}
    choices = tuple([r for r in inherited if r.field not in declared] + own)
    relations = tuple([r for r in inherited_all if r.field not in declared] + own_all)
    return ModelShape(
        tuple(dict.fromkeys(unique)),
        plain,
        identified,
        count,
        frozenset(keys),
        choices,
        relations,
        frozenset(names),
    )
