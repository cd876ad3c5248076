"""Which table a query reads: models mapped to their tables, and table names in raw SQL.

Read once per run, and only when sizes are given (``--db``, ``--sizes``): the files that can
define models (a ``models.py``, a ``models/`` package, or a file whose text names
``__tablename__``, ``db_table`` or ``Table(``) are parsed and every model class is mapped:

* **Django**: ``Meta.db_table``, else ``app_label_modelname`` in lower case (``Meta.app_label``,
  else the label of the app's ``AppConfig`` in its ``apps.py`` or ``__init__.py`` —
  ``label = "core"`` for the package ``pulpcore/app`` —, else the app's package:
  ``billing/models.py`` → ``billing``).
  Abstract models have no table; a proxy model reads its parent's (in its module, or the one
  model of that name). The frameworks' own models map to their tables
  (:data:`FRAMEWORK_TABLES`: ``auth_user``, ``django_session``...). Classes in
  ``if``/``try`` blocks at module level count (django-oscar defines its models so), and in a
  models file any class with a base is taken for a model: one that is not maps to a table
  no sizes file names.
* **SQLAlchemy** declarative models: ``__tablename__``, or ``__table__ = Table("name", ...)``;
  Core tables: ``invoices = Table("invoices", metadata, ...)`` maps the name ``invoices``.

Each model's shape comes with it (``lint/model_shape.py``): its unique keys, whether its
table is a lookup of named values, and the relations a model form renders as a choice of
every related row. From the project's settings (not a test suite's, an example's or the
documentation's): the swappable user model (``AUTH_USER_MODEL``) and whether the Django admin
is installed at all.

The map's keys are the dotted paths of the files' modules (``billing.models.Invoice``, from
the path below the folder linted), matched against the path the code imports a model from by
its dotted tail, and bare class names where only one model has that name. A model imported
from a module that imports it itself (``from app.models import Audit as LogEntry`` in
``app/audit.py``, ``from .audit import Audit`` in ``app/models/__init__.py``) is followed back
to its class through those module-level imports, read with a regular expression from every
file (parsing every file once more would cost as much as the lint itself).

Raw SQL names its tables after ``FROM`` and ``JOIN``: :func:`sql_tables`.
"""

from __future__ import annotations

import ast
import functools
import os
import re
import warnings
from collections.abc import Callable, Collection, Iterable, Mapping

from membound.lint.model_shape import FRAMEWORK_LOOKUPS, ModelShape, shape_of

__all__ = [
    "FRAMEWORK_TABLES",
    "ModelTables",
    "index_models",
    "joined",
    "module_path",
    "sql_tables",
]

_MARKERS = ("__tablename__", "db_table", "Table(", "models.Model", "Model)")
_SQL_NAME = r'(?:"[^"]+"|`[^`]+`|\[[^\]]+\]|[A-Za-z_][\w$]*)'
_FROM_JOIN = re.compile(rf"\b(?:FROM|JOIN)\s+({_SQL_NAME}(?:\s*\.\s*{_SQL_NAME})?)", re.IGNORECASE)
#: A module-level ``from X import A, B as C`` (parenthesised over lines, or on one line).
_FROM_IMPORT = re.compile(r"^from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]*(\([^)]*\)|[^\n]*)", re.M)
#: A settings file's ``AUTH_USER_MODEL = "users.User"`` (Django's swappable user model).
_USER_MODEL_SETTING = re.compile(
    r"""^AUTH_USER_MODEL\s*(?::\s*\w+\s*)?=\s*["'](\w+\.\w+)["']""", re.M
)
#: A settings module's own ``INSTALLED_APPS = [...]`` (not code that reads
#: ``settings.INSTALLED_APPS``).
_INSTALLED_APPS_SET = re.compile(r"^INSTALLED_APPS\s*=", re.M)
#: A test suite's, an example's or the documentation's file (``tests/settings.py``,
#: ``test_settings.py``, ``settings_test.py``, ``example/settings.py``, ``docs/conf.py``): the
#: settings there are not the application's.
_TEST_PATH = re.compile(r"(?:^|/)(?:tests?|examples?|demo|docs|sandbox)(?:/|_)|_tests?\.py$")
#: ``"django.contrib.admin"`` (or its ``SimpleAdminConfig``, or a project's dotted
#: ``"site.apps.MyAdminConfig"``; not a model's name, ``'GymAdminConfig'``) quoted on a line that
#: is no comment: the admin installed.
_ADMIN_APP = re.compile(
    r"""^[^#\n]*["'](?:django\.contrib\.admin(?:\.apps\.\w+)?|\w+(?:\.\w+)*\.\w*AdminConfig)["']""",
    re.M,
)
#: ``"DEFAULT_PAGINATION_CLASS"`` on a line that is no comment: Django REST framework's list
#: endpoints answer by pages unless a view says otherwise.
_PAGINATION_DEFAULT = re.compile(r"^[^#\n]*DEFAULT_PAGINATION_CLASS", re.M)
#: ``"PAGE_SIZE"`` on a line that is no comment: the default paginator's page (without one,
#: DRF's paginators answer whole).
_PAGE_SIZE = re.compile(r"^[^#\n]*\bPAGE_SIZE\b", re.M)
#: ``DEFAULT_FILTER_BACKENDS`` and what it lists, up to the closing bracket.
_FILTER_DEFAULTS = re.compile(r"DEFAULT_FILTER_BACKENDS[\"']?\s*[:=]\s*[\[(]([^\])]*)")
#: DRF's and django-filter's backends: they filter only when the request names a filter.
_REQUESTED_FILTERS = re.compile(
    r"""["'](?:rest_framework\.filters|django_filters(?:\.rest_framework)?)\.[\w.]*["']"""
)
#: A quoted dotted name (``"askbot.deps.django_authopenid"``): an app a settings file installs.
_DOTTED_STRING = re.compile(r"""["']([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)["']""")
#: How many imports a re-export is followed through.
_REEXPORT_STEPS = 5
#: Words that follow FROM without naming a table (``FROM (SELECT ...)`` is skipped by the regex).
_NOT_TABLES = frozenset({"select", "lateral", "unnest", "generate_series", "only", "json_table"})


def sql_tables(sql: str) -> list[str]:
    """Table names a SQL text reads (after ``FROM``/``JOIN``), in order, quotes dropped."""
    found = []
    for match in _FROM_JOIN.finditer(sql):
        name = re.sub(r'["`\[\]\s]', "", match.group(1))
        if name.lower() not in _NOT_TABLES:
            found.append(name)
    return found


class ModelTables:
    """Model (and Core table variable) → table name, for one run."""

    def __init__(
        self,
        by_path: Mapping[str, str],
        shapes: Mapping[str, ModelShape] | None = None,
        modules: Mapping[str, str] | None = None,
        reexports: Mapping[str, str] | None = None,
        user_model: str | None = None,
        admin_installed: bool | None = None,
        api_pages_by_default: bool | None = None,
        api_filters_of_its_own: bool = False,
    ) -> None:
        self.by_path = dict(by_path)
        #: False when the project's settings install apps and ``django.contrib.admin`` is
        #: named nowhere outside comments (its admin modules never run); None: no settings
        self.admin_installed = admin_installed
        #: True when the project names Django REST framework's ``DEFAULT_PAGINATION_CLASS``
        #: outside comments and tests (its list endpoints may answer by pages), False when
        #: its settings install apps and name none (every list endpoint answers whole unless
        #: the view sets a ``pagination_class``); None: no settings
        self.api_pages_by_default = api_pages_by_default
        #: The settings' ``DEFAULT_FILTER_BACKENDS`` list a backend that is not DRF's or
        #: django-filter's (it may filter every request)
        self.api_filters_of_its_own = api_filters_of_its_own
        #: ``AUTH_USER_MODEL`` as the project's settings set it (``"users.User"``), where
        #: they set one value
        self.user_model = user_model
        #: ``module.Name`` a module binds by importing it → where it imports it from
        self.given_reexports = dict(reexports or {})
        #: the same under
        #: every dotted tail of at least ``module.Name`` (a tree linted from above its import
        #: root, ``src/``, imports by a tail), where one binding has that tail
        self.reexports: dict[str, str] = {}
        clashes: set[str] = set()
        for bound, source in (reexports or {}).items():
            parts = bound.split(".")
            for i in range(len(parts) - 1):
                tail = ".".join(parts[i:])
                if self.reexports.setdefault(tail, source) != source:
                    clashes.add(tail)
        for tail in clashes:
            del self.reexports[tail]
        self.shapes = dict(shapes or {})
        #: file path → dotted module path, for the files that define models
        self.modules = dict(modules or {})
        shape_names: dict[str, list[ModelShape]] = {}
        for path, shape in self.shapes.items():
            shape_names.setdefault(path.rsplit(".", 1)[-1], []).append(shape)
        #: bare class name → shape, where one class has that name
        self._shape_by_name = {n: s[0] for n, s in shape_names.items() if len(s) == 1}
        names: dict[str, set[str]] = {}
        for path, table in self.by_path.items():
            names.setdefault(path.rsplit(".", 1)[-1], set()).add(table)
        #: bare class name → table, where every class of that name has the same table
        self.by_name = {name: next(iter(t)) for name, t in names.items() if len(t) == 1}
        classes: dict[str, int] = {}
        for path in self.by_path:
            last = path.rsplit(".", 1)[-1]
            classes[last] = classes.get(last, 0) + 1
        #: bare class names that several models of the project share
        self.shared_names = frozenset(name for name, count in classes.items() if count > 1)
        #: every dotted tail of at least ``module.Class`` of the models' paths: a project
        #: linted from above its import root (``src/``) imports them by a tail
        self._tails = frozenset(
            ".".join(parts[i:])
            for parts in (path.split(".") for path in self.by_path)
            for i in range(len(parts) - 1)
        )
        #: the same for the project's modules that define models and their packages
        #: (``from . import db``, ``from app import models`` for ``app/models/audit.py``)
        self._module_tails = frozenset(
            ".".join(parts[i:j])
            for parts in (module.split(".") for module in self.modules.values())
            for j in (len(parts), len(parts) - 1)
            for i in range(j - 1)
        )

    def defined(self, qualified: str) -> str:
        """Where the class imported as ``qualified`` is defined: followed back through the
        modules that import it in turn (``qualified`` itself when none does)."""
        for _ in range(_REEXPORT_STEPS):
            if qualified in self.by_path:
                break
            source = self.reexports.get(qualified)
            if source is None:
                break
            qualified = source
        return qualified

    def known(self, qualified: str) -> bool:
        """Whether ``qualified`` (as an import names it) is one of the models mapped, or one
        of the project's modules that define them."""
        return self.defined(qualified) in self._tails or qualified in self._module_tails

    def table_of(self, qualified: str | None, name: str) -> str | None:
        """The table of the model imported as ``qualified`` (or defined here as ``name``)."""
        if qualified:
            qualified = self.defined(qualified)
            if qualified in self.by_path:
                return self.by_path[qualified]
            matches = {t for p, t in self.by_path.items() if _same_tail(p, qualified)}
            if len(matches) == 1:
                return matches.pop()
        return self.by_name.get(name)

    def local(self, filename: str, name: str) -> str | None:
        """The dotted path of the class ``name`` when the file ``filename`` defines a model so
        named (migrations define their own copies of the models they change)."""
        module = self.modules.get(filename)
        path = f"{module}.{name}" if module is not None else None
        return path if path in self.by_path else None

    def shape_of(self, qualified: str | None, name: str) -> ModelShape | None:
        """The shape of the model imported as ``qualified`` (or defined here as ``name``); the
        frameworks' own reference models (``ContentType``, ``Permission``...) are lookups."""
        if qualified:
            qualified = self.defined(qualified)
            if qualified in FRAMEWORK_LOOKUPS:
                return ModelShape(plain=True, identified=True)
            if qualified in self.shapes:
                return self.shapes[qualified]
            matches = [s for p, s in self.shapes.items() if _same_tail(p, qualified)]
            if len(matches) == 1:
                return matches[0]
        return self._shape_by_name.get(name)


def _same_tail(path: str, qualified: str) -> bool:
    """``path`` (counted from the folder linted) and ``qualified`` (as an import names it)
    are one class: one ends with the other. A tree linted from above its import root
    (``src/``) has longer paths than its imports; a package linted by its own folder
    (``membound lint proj``) has shorter ones (``db.models.Volume`` for
    ``proj.db.models.Volume``)."""
    return path.endswith("." + qualified) or qualified.endswith("." + path)


def module_path(path: str, root: str) -> str:
    """The dotted module path of the file ``path``, counted from the folder ``root``."""
    rel = os.path.relpath(path, root) if root else path
    words = os.path.splitext(rel)[0].replace(os.sep, "/").split("/")
    parts = [p for p in words if p not in ("", ".")]
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _string(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _table_call(node: ast.AST | None) -> str | None:
    """``Table("name", ...)`` / ``sa.Table("name", ...)``: the name."""
    if isinstance(node, ast.Call) and node.args:
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if called == "Table":
            return _string(node.args[0])
    return None


def _assigned(body: Iterable[ast.stmt]) -> dict[str, ast.AST]:
    found: dict[str, ast.AST] = {}
    for stmt in body:
        if isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = stmt.value
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value:
            found[stmt.target.id] = stmt.value
    return found


def _meta(cls: ast.ClassDef) -> dict[str, ast.AST]:
    for stmt in cls.body:
        if isinstance(stmt, ast.ClassDef) and stmt.name == "Meta":
            return _assigned(stmt.body)
    return {}


def _app_label(module: str) -> str:
    parts = module.split(".")
    if "models" in parts:
        index = len(parts) - 1 - parts[::-1].index("models")
        if index > 0:
            return parts[index - 1]
    return parts[-2] if len(parts) > 1 else parts[0]


def _django_base(cls: ast.ClassDef, models_here: set[str]) -> bool:
    for base in cls.bases:
        name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
        subclass = name.endswith("Model") and name != "BaseModel"  # not pydantic's
        if name == "Model" or name in models_here or subclass:
            return True
    return False


#: The frameworks' own models and the tables they live in (what ``get_user_model()`` gives
#: unless the project swaps it, and what a sizes file written from a database names).
FRAMEWORK_TABLES = {
    "django.contrib.auth.models.User": "auth_user",
    "django.contrib.auth.models.Group": "auth_group",
    "django.contrib.auth.models.Permission": "auth_permission",
    "django.contrib.contenttypes.models.ContentType": "django_content_type",
    "django.contrib.sessions.models.Session": "django_session",
    "django.contrib.admin.models.LogEntry": "django_admin_log",
    "django.contrib.sites.models.Site": "django_site",
}


def _app_configs(tree: ast.Module, package: str) -> dict[str, str]:
    """``AppConfig`` subclasses in an ``apps.py``: the package they configure → its label
    (``label = "core"``, else the last part of ``name``). The package is the file's own
    (``pulpcore/app/apps.py`` configures ``pulpcore.app``), which is where its models are
    found, whatever dotted ``name`` it gives."""
    found: dict[str, str] = {}
    for cls in _module_classes(tree.body):
        bases = {
            b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "") for b in cls.bases
        }
        if not any(name.endswith("AppConfig") for name in bases):
            continue
        own = _assigned(cls.body)
        label = _string(own.get("label"))
        name = _string(own.get("name"))
        if label is None and name is not None:
            label = name.rsplit(".", 1)[-1]
        if label:
            found[package] = label
    return found


def _label_of(
    module: str, labels: Mapping[str, str], path: str = "", installed: Collection[str] = ()
) -> str:
    """The app label of a models module: its package's ``AppConfig`` label (the longest such
    package first; only the models' own package when that package is an app of its own: a
    settings file's ``INSTALLED_APPS`` names it, or it has migrations: ``installed``), else
    Django's default, the app package's own name: the folder that holds ``models.py`` or the
    ``models/`` package (read from ``path``, so that linting the app's folder itself keeps
    it), else the package before ``models`` in the module path."""
    parts = module.split(".")
    if "models" in parts[1:]:
        # A package holding ``models`` that a settings file installs, or that has migrations of
        # its own, is an app of its own (Django gives a model the label of the longest
        # installed app around its module): an ``AppConfig`` of a package above it
        # (``askbot``'s, over ``askbot.deps.django_authopenid``) is not its.
        app = ".".join(parts[: len(parts) - 1 - parts[::-1].index("models")])
        own_app = any(app == name or app.endswith("." + name) for name in installed)
        parts = [] if own_app and app not in labels else parts
    for end in range(len(parts) - 1, 0, -1):
        label = labels.get(".".join(parts[:end]))
        if label is not None:
            return label
    folders = os.path.abspath(path).replace(os.sep, "/").split("/")[:-1] if path else []
    if "models" in folders[1:]:
        return folders[len(folders) - 1 - folders[::-1].index("models") - 1]
    if folders and path.endswith("models.py"):
        return folders[-1]
    return _app_label(module)


def _tables_in(
    tree: ast.Module,
    module: str,
    django: bool,
    models_file: bool,
    labels: Mapping[str, str] | None = None,
    proxies: dict[str, str] | None = None,
    path: str = "",
    inherited: Callable[[ast.ClassDef], str | None] | None = None,
    installed: Collection[str] = (),
    elsewhere: Mapping[str, ModelShape] | None = None,
) -> tuple[dict[str, str], dict[str, ModelShape]]:
    found: dict[str, str] = {}
    shapes: dict[str, ModelShape] = {}
    by_class: dict[str, ModelShape] = {}
    django_classes: set[str] = set()
    imported = imported_from_elsewhere(tree, elsewhere or {})
    top = _assigned(tree.body)
    for name, value in top.items():
        table = _table_call(value)
        if table:
            found[f"{module}.{name}"] = table
    for cls in _module_classes(tree.body):
        own = _assigned(cls.body)
        meta = _meta(cls)
        shape = shape_of(cls, own, meta, by_class, imported)
        by_class[cls.name] = shape
        named = own.get("__tablename__")
        if isinstance(named, ast.Name):  # ``__tablename__ = AUDIT_TABLE``, a module constant
            named = top.get(named.id)
        table = _string(named) or _table_call(own.get("__table__"))
        if (
            not table
            and inherited is not None
            and not {"__tablename__", "__table__"} & own.keys()
            and not _constant_true(own.get("__abstract__"))
        ):
            table = inherited(cls)
        if table:
            found[f"{module}.{cls.name}"] = table
            shapes[f"{module}.{cls.name}"] = shape
            continue
        # In a models file every class with a base may be a model (``Product(AbstractProduct)``
        # inherits from a class of another module): a class that is none maps to a table name
        # no sizes file holds, which changes nothing.
        candidate = models_file and bool(cls.bases)
        if not django or not (candidate or _django_base(cls, django_classes) or "db_table" in meta):
            continue
        django_classes.add(cls.name)
        if _constant_true(meta.get("abstract")):
            continue
        if _constant_true(meta.get("proxy")):
            # A proxy reads its parent's table: resolved once every model is known.
            parent = next((_base_name(b) for b in cls.bases if _base_name(b)), None)
            if parent is not None and proxies is not None:
                proxies[f"{module}.{cls.name}"] = parent
            continue
        table = _string(meta.get("db_table"))
        if table is None:
            label = _string(meta.get("app_label")) or _label_of(
                module, labels or {}, path, installed
            )
            table = f"{label}_{cls.name}".lower()
        found[f"{module}.{cls.name}"] = table
        shapes[f"{module}.{cls.name}"] = shape
    return found, shapes


#: How many modules apart a model's fields are followed up its bases (``Order`` of
#: ``models.py`` → ``AbstractOrder`` of ``abstract_models.py`` → a mixin of a third module).
_SHAPE_PASSES = 2


def _shapes_by_name(
    trees: Iterable[ast.Module], elsewhere: Mapping[str, ModelShape]
) -> dict[str, ModelShape]:
    """The shape of every class of the model files ``trees`` by its name, its bases resolved
    in its module and, by name, in ``elsewhere``; a name two classes share has none (which
    class a model extends is then unknown)."""
    out: dict[str, ModelShape] = {}
    clashes: set[str] = set()
    for tree in trees:
        here: dict[str, ModelShape] = {}
        imported = imported_from_elsewhere(tree, elsewhere)
        for cls in _module_classes(tree.body):
            shape = shape_of(cls, _assigned(cls.body), _meta(cls), here, imported)
            here[cls.name] = shape
            if cls.name in out:
                clashes.add(cls.name)
            out[cls.name] = shape
    for name in clashes:
        del out[name]
    return out


#: Where no project's model class comes from: the frameworks' own modules.
_FRAMEWORK_ROOTS = frozenset(
    {"django", "sqlalchemy", "flask_sqlalchemy", "sqlmodel", "peewee", "tortoise", "pydantic"}
)


def imported_from_elsewhere(
    tree: ast.Module, elsewhere: Mapping[str, ModelShape]
) -> Callable[[ast.expr], ModelShape | None]:
    """How the module ``tree`` finds the shape of a base class among ``elsewhere`` (the
    project's classes by name): a name it imports from a module of the project by its own
    name (``from shop.abstract_models import AbstractOrder``) or with ``*``, or an attribute
    of a project module it imports (``abstract_models.AbstractTransaction`` after ``from .
    import abstract_models``); never a framework's (``models.Model``, ``db.Model``)."""
    names: set[str] = set()
    modules: set[str] = set()
    starred = False
    for stmt in tree.body:
        if isinstance(stmt, ast.ImportFrom):
            if stmt.level == 0 and (stmt.module or "").split(".")[0] in _FRAMEWORK_ROOTS:
                continue
            for alias in stmt.names:
                if alias.name == "*":
                    starred = True
                elif alias.asname in (None, alias.name):
                    names.add(alias.name)
                    modules.add(alias.name)  # ``from . import abstract_models``
        elif isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if alias.name.split(".")[0] not in _FRAMEWORK_ROOTS:
                    modules.add(alias.asname or alias.name)

    def resolve(base: ast.expr) -> ModelShape | None:
        if isinstance(base, ast.Name) and (base.id in names or starred):
            return elsewhere.get(base.id)
        if isinstance(base, ast.Attribute) and ast.unparse(base.value) in modules:
            return elsewhere.get(base.attr)
        return None

    return resolve


def snake_case(name: str) -> str:
    """``SearchIndex`` → ``search_index``, ``HTTPRequest`` → ``http_request``: how
    Flask-SQLAlchemy names the table of a model that names none."""
    return re.sub(r"((?<=[a-z0-9])[A-Z]|(?!^)[A-Z](?=[a-z]))", r"_\1", name).lower().lstrip("_")


#: How many bases up a table's naming rule is looked for.
_NAMING_DEPTH = 6


class _InheritedNames:
    """Table names a model takes from its bases, not from its own body: a base's
    ``@declared_attr def __tablename__(cls): return cls.__name__.lower()`` (SQLAlchemy's
    idiom for naming every table after its class), or Flask-SQLAlchemy's ``db.Model``, which
    names the table of a model with a primary key of its own after its class in snake case.

    A base's rule is read from its ``return``: the class's name, lowered or put in snake case
    (a function whose name says ``snake`` or ``underscore``), with constant text around it;
    any other rule names no table. Bases are matched by their class name among the model files
    read: a name that two classes with a rule share names no table."""

    def __init__(self, trees: Iterable[ast.Module]) -> None:
        self._rules: dict[str, _Rule | None] = {}
        self._bases: dict[str, list[str]] = {}
        for tree in trees:
            for cls in _module_classes(tree.body):
                bases = [n for n in (_simple_name(b) for b in cls.bases) if n]
                self._bases.setdefault(cls.name, bases)
                for stmt in cls.body:
                    if (
                        isinstance(stmt, ast.FunctionDef)
                        and stmt.name == "__tablename__"
                        and stmt.args.args
                    ):
                        rule = _naming_rule(stmt)
                        if cls.name in self._rules:
                            rule = None  # two classes of that name: which rule is unknown
                        self._rules[cls.name] = rule

    def table_of(self, cls: ast.ClassDef, django: bool) -> str | None:
        """The table ``cls`` inherits a name for, or None; ``django``: its file names Django
        (whose ``models.Model`` names tables its own way)."""
        seen: set[str] = set()
        todo = [cls.name]  # its own rule first, then its bases'
        for _ in range(_NAMING_DEPTH):
            later: list[str] = []
            for base in todo:
                if base in seen:
                    continue
                seen.add(base)
                if base in self._rules:
                    rule = self._rules[base]
                    return _apply_rule(rule, cls.name) if rule is not None else None
                later.extend(self._bases.get(base, ()))
            todo = later
        if not django and _flask_model(cls) and _own_primary_key(cls):
            return snake_case(cls.name)
        return None


def _simple_name(node: ast.expr) -> str | None:
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)
    return name if isinstance(name, str) else None


_Rule = tuple[str, ast.expr]
"""A ``__tablename__`` rule: the name of its class parameter and the expression it returns."""


def _naming_rule(func: ast.FunctionDef) -> _Rule | None:
    """The rule of a ``__tablename__`` function that is one ``return`` of a name it can tell."""
    returns = [s for s in func.body if isinstance(s, ast.Return)]
    if len(returns) != 1 or returns[0].value is None:
        return None
    rule = (func.args.args[0].arg, returns[0].value)
    return rule if _apply_rule(rule, "Probe") is not None else None


def _apply_rule(rule: _Rule, name: str) -> str | None:
    """The table ``rule`` names for the class ``name``, or None."""
    return _apply_rule_to(rule[1], rule[0], name)


def _apply_rule_to(expr: ast.expr, param: str, name: str) -> str | None:
    """``expr`` (a ``__tablename__`` rule of parameter ``param``) for the class ``name``."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return expr.value
    if (
        isinstance(expr, ast.Attribute)
        and expr.attr == "__name__"
        and isinstance(expr.value, ast.Name)
        and expr.value.id == param
    ):
        return name
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
        left = _apply_rule_to(expr.left, param, name)
        right = _apply_rule_to(expr.right, param, name)
        return left + right if left is not None and right is not None else None
    if isinstance(expr, ast.JoinedStr):
        parts = []
        for value in expr.values:
            inner = value.value if isinstance(value, ast.FormattedValue) else value
            part = _apply_rule_to(inner, param, name) if isinstance(inner, ast.expr) else None
            if part is None:
                return None
            parts.append(part)
        return "".join(parts)
    if isinstance(expr, ast.Call) and not expr.keywords:
        func = expr.func
        if isinstance(func, ast.Attribute) and func.attr == "lower" and not expr.args:
            lowered = _apply_rule_to(func.value, param, name)
            return lowered.lower() if lowered is not None else None
        called = _simple_name(func) or ""
        if len(expr.args) == 1 and ("snake" in called.lower() or "underscore" in called.lower()):
            word = _apply_rule_to(expr.args[0], param, name)
            return snake_case(word) if word is not None else None
    return None


def _flask_model(cls: ast.ClassDef) -> bool:
    """A base written ``db.Model`` (Flask-SQLAlchemy's, on its extension object)."""
    return any(
        isinstance(b, ast.Attribute)
        and b.attr == "Model"
        and isinstance(b.value, ast.Name)
        and b.value.id != "models"
        for b in cls.bases
    )


def _own_primary_key(cls: ast.ClassDef) -> bool:
    """A column of its own body has ``primary_key=True`` (without one a subclass shares its
    parent's table)."""
    return any(
        isinstance(node, ast.keyword) and node.arg == "primary_key" and _constant_true(node.value)
        for stmt in cls.body
        if isinstance(stmt, (ast.Assign, ast.AnnAssign))
        for node in ast.walk(stmt)
    )


def _base_name(base: ast.expr) -> str | None:
    name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", None)
    return name if isinstance(name, str) and name not in ("Model", "object") else None


def _module_classes(body: list[ast.stmt]) -> list[ast.ClassDef]:
    """Classes defined at module level, also inside ``if``/``try``/``with`` blocks (django-oscar
    defines each model under ``if not is_model_registered(...)``), in source order."""
    found: list[ast.ClassDef] = []
    for stmt in body:
        if isinstance(stmt, ast.ClassDef):
            found.append(stmt)
        elif isinstance(stmt, (ast.If, ast.With)):
            found += _module_classes(stmt.body) + _module_classes(getattr(stmt, "orelse", []))
        elif isinstance(stmt, ast.Try):
            for part in (stmt.body, stmt.orelse, stmt.finalbody):
                found += _module_classes(part)
            for handler in stmt.handlers:
                found += _module_classes(handler.body)
    return found


def _constant_true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def index_models(
    files: Iterable[tuple[str, str]],
    root: str,
    tree_of: Callable[[str], ast.Module | None] | None = None,
) -> ModelTables:
    """Map the models defined in ``files`` (``(path, text)`` pairs) to their tables; ``root``
    is the folder module paths are counted from. App labels come from the ``AppConfig``
    classes of ``apps.py`` files (or a package's ``__init__.py``); a proxy model reads its
    parent's table. ``tree_of`` gives the tree of a file already parsed (None: parse it
    here)."""
    parsed: list[tuple[str, str, ast.Module, bool, bool]] = []
    labels: dict[str, str] = {}
    installed: set[str] = set()
    reexports: dict[str, str] = {}
    user_models: set[str] = set()
    settings_seen = admin_named = pages_named = sized_pages = own_filters = False
    for path, text in files:
        if "INSTALLED_APPS" in text:
            installed.update(_DOTTED_STRING.findall(text))
        # a test suite's settings often install less than the application does
        a_settings_file = ("AUTH_USER_MODEL" in text or "INSTALLED_APPS" in text) and (
            _TEST_PATH.search(_relative(path, root)) is None
        )
        if a_settings_file and "AUTH_USER_MODEL" in text:
            user_models.update(_USER_MODEL_SETTING.findall(text))
        settings_seen = settings_seen or (
            a_settings_file and _INSTALLED_APPS_SET.search(text) is not None
        )
        admin_named = admin_named or (
            ("django.contrib.admin" in text or "AdminConfig" in text)
            and _ADMIN_APP.search(text) is not None
        )
        if "DEFAULT_" in text and _TEST_PATH.search(_relative(path, root)) is None:
            pages_named = pages_named or _PAGINATION_DEFAULT.search(text) is not None
            sized_pages = sized_pages or _PAGE_SIZE.search(text) is not None
            # anything listed but DRF's and django-filter's own backends (a name, a string)
            own_filters = own_filters or any(
                re.search(r"[A-Za-z_]", _REQUESTED_FILTERS.sub("", listed)) is not None
                for listed in _FILTER_DEFAULTS.findall(text)
            )
        migrations = module_path(path, root).rpartition(".migrations.")[0]
        if migrations:
            installed.add(migrations)  # migrations of its own: an app of its own
        if "import" in text:
            reexports.update(_class_imports(text, module_path(path, root), path))
        norm = path.replace(os.sep, "/")
        models_file = norm.endswith("/models.py") or "/models/" in norm or norm == "models.py"
        # An app's ``AppConfig`` lives in its ``apps.py``, or (before Django 3.2's automatic
        # discovery, with ``default_app_config``) in the package's ``__init__.py``.
        package_init = norm.endswith("/__init__.py") or norm == "__init__.py"
        config_file = (norm.endswith("/apps.py") or package_init) and "AppConfig" in text
        if not models_file and not config_file and not any(m in text for m in _MARKERS):
            continue
        tree = tree_of(path) if tree_of is not None else None
        if tree is None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    tree = ast.parse(text, filename=path)
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                continue  # the lint run itself reports the file
        module = module_path(path, root)
        if config_file:
            package = module if package_init else module.rpartition(".")[0]
            labels.update(_app_configs(tree, package))
        parsed.append((path, module, tree, "django" in text, models_file))
    by_path: dict[str, str] = dict(FRAMEWORK_TABLES)
    shapes: dict[str, ModelShape] = {}
    modules: dict[str, str] = {}
    proxies: dict[str, str] = {}
    inherited = _InheritedNames(tree for _, _, tree, _, _ in parsed)
    elsewhere: dict[str, ModelShape] = {}
    for _ in range(_SHAPE_PASSES):
        elsewhere = _shapes_by_name((tree for _, _, tree, _, _ in parsed), elsewhere)
    for path, module, tree, django, models_file in parsed:
        tables, found = _tables_in(
            tree,
            module,
            django or models_file,
            models_file,
            labels,
            proxies,
            path,
            functools.partial(inherited.table_of, django=django),
            installed,
            elsewhere,
        )
        if tables:
            modules[path] = module
        by_path.update(tables)
        shapes.update(found)
    for proxy, parent in proxies.items():
        module = proxy.rsplit(".", 1)[0]
        table = by_path.get(f"{module}.{parent}")
        if table is None:
            same = {t for p, t in by_path.items() if p.rsplit(".", 1)[-1] == parent}
            table = same.pop() if len(same) == 1 else None
        if table is not None:
            by_path[proxy] = table
    user_model = user_models.pop() if len(user_models) == 1 else None
    admin = admin_named if settings_seen else None
    pages = pages_named and sized_pages if settings_seen else None
    return ModelTables(by_path, shapes, modules, reexports, user_model, admin, pages, own_filters)


def _relative(path: str, root: str) -> str:
    """``path`` below the folder linted, with ``/`` (the folders above it name no test)."""
    return (os.path.relpath(path, root) if root else path).replace(os.sep, "/")


def joined(first: ModelTables, second: ModelTables) -> ModelTables:
    """The two maps as one (``second`` wins where both map a path): the tree's models and an
    installed distribution's (``lint/installed_models.py``)."""
    return ModelTables(
        {**first.by_path, **second.by_path},
        {**first.shapes, **second.shapes},
        {**first.modules, **second.modules},
        {**first.given_reexports, **second.given_reexports},
        first.user_model or second.user_model,
        first.admin_installed,
        first.api_pages_by_default,
        first.api_filters_of_its_own,
    )


def _class_imports(text: str, module: str, path: str) -> dict[str, str]:
    """The capitalised names the module-level ``from … import`` lines of ``text`` bind
    (``module.Name`` → the dotted path imported), relative imports resolved from ``module``."""
    found: dict[str, str] = {}
    package = module.split(".") if module else []
    if os.path.basename(path) != "__init__.py" and package:
        package.pop()  # a module's ``.`` is its package; a package's ``.`` is itself
    for match in _FROM_IMPORT.finditer(text):
        dots, source, names = match.group(1), match.group(2), match.group(3)
        if dots:
            up = len(dots) - 1
            if up > len(package):
                continue
            base = ".".join([*package[: len(package) - up], *([source] if source else [])])
        else:
            base = source
        if not base:
            continue
        for piece in names.strip("()").split(","):
            words = piece.split("#", 1)[0].replace("\\", " ").split()
            if len(words) not in (1, 3) or (len(words) == 3 and words[1] != "as"):
                continue
            name, bound = words[0], words[-1]
            if name[:1].isupper() and name.isidentifier() and bound.isidentifier():
                found[f"{module}.{bound}" if module else bound] = f"{base}.{name}"
    return found
