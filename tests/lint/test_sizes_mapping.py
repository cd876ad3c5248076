"""Sizes that reach the code (issue 38): Django tables named as an ``AppConfig`` labels them,
proxies reading their parent's table, models reached through a module or as the user model,
short names in ``[models]``; and a sizes file whose names match nothing says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from membound.cli.main import main
from membound.lint import LintConfig, lint_paths
from membound.lint.sizes import TableSizes

MODELS = """\
from django.db import models


class Domain(models.Model):
    name = models.TextField()
    owners = models.ManyToManyField("auth.User")


class Content(models.Model):
    body = models.TextField()


class Published(Content):
    class Meta:
        proxy = True
"""

APPS = """\
from django.apps import AppConfig


class PulpAppConfig(AppConfig):
    name = "pulpcore.app"
    label = "core"
"""

JOB = """\
from django.contrib.auth import get_user_model
from pulpcore.app import models
from pulpcore.app.models import Published


def run():
    for d in models.Domain.objects.all():  # line 7
        print(d)
    for c in Published.objects.all():  # line 9
        print(c)
    for u in get_user_model().objects.all():  # line 11
        print(u)


if __name__ == "__main__":
    run()
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    app = tmp_path / "pulpcore" / "app"
    (app / "models").mkdir(parents=True)
    (tmp_path / "pulpcore" / "__init__.py").write_text("")
    (app / "__init__.py").write_text("")
    (app / "apps.py").write_text(APPS)
    (app / "models" / "__init__.py").write_text(MODELS)
    (tmp_path / "job.py").write_text(JOB)
    return tmp_path


def _kinds(root: Path, sizes: TableSizes) -> dict[int, str]:
    result = lint_paths([str(root)], LintConfig(sizes=sizes))
    return {f.row: f.kind for f in (*result.findings, *result.hints) if f.code == "MB101"}


def test_tables_are_named_by_the_app_label_and_proxies_read_their_parents(tree: Path) -> None:
    big = TableSizes(
        tables={"core_domain": 10**6, "core_content": 10**6, "auth_user": 10**6}, source="t"
    )
    assert {7: "finding", 9: "finding", 11: "finding"} == _kinds(tree, big)
    small = TableSizes(tables={"core_domain": 10, "core_content": 10, "auth_user": 10}, source="t")
    assert {} == _kinds(tree, small)  # small tables: not reported at all
    unknown = TableSizes(tables={"app_domain": 10**6}, source="t")  # not the app's label
    assert {7: "hint", 9: "hint", 11: "hint"} == _kinds(tree, unknown)


def test_an_app_config_in_the_packages_init_labels_its_tables(tree: Path) -> None:
    """Before Django 3.2 an app's ``AppConfig`` often sat in its package's ``__init__.py``
    (with ``default_app_config``): its ``label`` names the tables all the same."""
    app = tree / "pulpcore" / "app"
    (app / "apps.py").unlink()
    (app / "__init__.py").write_text(APPS)
    big = TableSizes(tables={"core_domain": 10**6, "core_content": 10**6}, source="t")
    assert {7: "finding", 9: "finding", 11: "hint"} == _kinds(tree, big)


@pytest.mark.parametrize("name", ["Domain", "app.models.Domain", "pulpcore.app.models.Domain"])
def test_models_are_named_short_or_dotted(tree: Path, name: str) -> None:
    kinds = _kinds(tree, TableSizes(models={name: 10}, source="t"))
    assert 7 not in kinds  # a small model: silent
    kinds = _kinds(tree, TableSizes(models={name: 10**6}, source="t"))
    assert "finding" == kinds[7]


def test_names_that_match_nothing_are_one_warning_line(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sizes = tmp_path / "sizes.toml"
    sizes.write_text(
        "[tables]\ncore_domain = 1000000\ncore_domian = 5\n"
        # Django's table for ``Domain.owners``, and a misspelling of it
        "core_domain_owners = 20\ncore_domain_ownres = 20\n"
        '[models]\n"Contnet" = 7\n"Published" = 1000000\n'
    )
    assert 1 == main(["lint", "--isolated", "--sizes", str(sizes), str(tree)])
    err = capsys.readouterr().err.splitlines()
    warned = [line for line in err if "match nothing" in line]
    assert 1 == len(warned), err
    assert warned[0].endswith(": Contnet, core_domain_ownres, core_domian"), warned
    assert "core_domain," not in warned[0]


NOTICES = """\
from django.db import models


class Notice(models.Model):
    body = models.TextField()
"""

CHAPTER_JOB = """\
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    def handle(self, *args, **options):
        from ...models import Notice

        for notice in Notice.objects.all():  # line 8: the chapters' own Notice
            print(notice)
"""


def test_a_relative_import_names_its_own_apps_model_not_a_namesake(tmp_path: Path) -> None:
    """Two apps define ``Notice``; the sizes file sizes the notifications one. A command of
    the chapters app importing ``from ...models import Notice`` loads the chapters table."""
    for app in ("notifications", "chapters"):
        (tmp_path / "site" / app).mkdir(parents=True)
        (tmp_path / "site" / app / "models.py").write_text(NOTICES)
    commands = tmp_path / "site" / "chapters" / "management" / "commands"
    commands.mkdir(parents=True)
    (commands / "send.py").write_text(CHAPTER_JOB)
    big = TableSizes(models={"site.notifications.models.Notice": 400_000}, source="t")
    result = lint_paths([str(tmp_path)], LintConfig(sizes=big))
    assert [] == [f.row for f in result.findings], result.findings
    chapters = TableSizes(
        models={
            "site.notifications.models.Notice": 400_000,
            "site.chapters.models.Notice": 900_000,
        },
        source="t",
    )
    result = lint_paths([str(tmp_path)], LintConfig(sizes=chapters))
    assert [8] == [f.row for f in result.findings], result.findings


FLASK_MODELS = """\
from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()


class PreviewFile(db.Model):
    __tablename__ = "preview_file"
    id = db.Column(db.Integer, primary_key=True)
"""

FLASK_COMMAND = """\
from zou.app.models.preview_file import PreviewFile


def download_all():
    for preview in PreviewFile.query.all():  # line 5
        print(preview)
"""


@pytest.mark.parametrize("layout", ["", "src"])
def test_a_module_that_queries_through_the_projects_models_needs_no_sqlalchemy_import(
    tmp_path: Path, layout: str
) -> None:
    """Flask-SQLAlchemy's ``Model.query`` in a module that imports only the model, in a tree
    linted from its import root or from above it (``src/`` layout)."""
    top = tmp_path / layout
    (top / "zou" / "app" / "models").mkdir(parents=True)
    (top / "zou" / "app" / "models" / "preview_file.py").write_text(FLASK_MODELS)
    (top / "zou" / "app" / "commands").mkdir(parents=True)
    (top / "zou" / "app" / "commands" / "sync.py").write_text(FLASK_COMMAND)
    sizes = TableSizes(tables={"preview_file": 2_000_000}, source="t")
    result = lint_paths([str(tmp_path)], LintConfig(sizes=sizes))
    assert [("sync.py", 5, "MB102")] == [
        (Path(f.filename).name, f.row, f.code) for f in result.findings
    ]


AUDIT_MODELS = """\
from sqlalchemy import Column, Integer
from sqlalchemy.orm import declarative_base

Base = declarative_base()
AUDIT_TABLE = "pi_audit"


class Audit(Base):
    __tablename__ = AUDIT_TABLE
    id = Column(Integer, primary_key=True)
"""

AUDIT_COMMANDS = """\
from sqlalchemy.orm import Session

from pi.lib.sqlaudit import LogEntry

from . import models


def rotate(engine):
    with Session(engine) as session:
        for entry in session.query(LogEntry).all():  # line 10
            print(entry)


def dump(engine):
    with Session(engine) as session:
        return session.query(models.Audit).all()  # line 16
"""


AUDIT_LISTING = """\
from pi.manager import Session

from . import models


def listing():
    return Session().query(models.Audit).all()  # line 7: no SQLAlchemy import here
"""


@pytest.mark.parametrize("sized", ["table", "model"])
def test_a_model_is_followed_through_the_modules_that_import_it(tmp_path: Path, sized: str) -> None:
    """``LogEntry`` is ``Audit`` imported under another name by a module that imports it from
    its package, which imports it from the module defining it; ``models.Audit`` is the same
    class reached through its package (in a module that does not import SQLAlchemy itself);
    its table is named by a module constant."""
    package = tmp_path / "pi"
    (package / "models").mkdir(parents=True)
    (package / "lib").mkdir()
    (package / "__init__.py").write_text("")
    (package / "models" / "audit.py").write_text(AUDIT_MODELS)
    (package / "models" / "__init__.py").write_text(
        "from .audit import Audit  # noqa: F401\nfrom .audit import (\n    AUDIT_TABLE,\n)\n"
    )
    (package / "lib" / "sqlaudit.py").write_text("from pi.models import Audit as LogEntry\n")
    (package / "commands.py").write_text(AUDIT_COMMANDS)
    (package / "listing.py").write_text(AUDIT_LISTING)
    sizes = (
        TableSizes(tables={"pi_audit": 50_000_000}, source="t")
        if sized == "table"
        else TableSizes(models={"pi.models.audit.Audit": 50_000_000}, source="t")
    )
    result = lint_paths([str(tmp_path)], LintConfig(sizes=sizes))
    found = sorted((Path(f.filename).name, f.row) for f in result.findings)
    assert [("commands.py", 10), ("commands.py", 16), ("listing.py", 7)] == found


SHOP_ORDER = """\
from sqlalchemy import Column, Integer
from sqlalchemy.orm import declarative_base

Base = declarative_base()


class Order(Base):
    __tablename__ = "shop_orders"
    id = Column(Integer, primary_key=True)
"""

SHOP_REPORT = """\
from sqlalchemy.orm import Session

from shopkit.models import Order


def report(engine):
    with Session(engine) as session:
        return session.query(Order).all()  # line 8
"""


def test_models_of_an_installed_distribution_the_code_imports_take_their_sizes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model lives in another distribution, found where Python finds it (a folder on
    ``sys.path`` here, as site-packages is); its table's size reaches the code."""
    site = tmp_path / "site"
    (site / "shopkit" / "models").mkdir(parents=True)
    (site / "shopkit" / "__init__.py").write_text("raise RuntimeError('never imported')\n")
    (site / "shopkit" / "models" / "__init__.py").write_text("from .order import Order\n")
    (site / "shopkit" / "models" / "order.py").write_text(SHOP_ORDER)
    monkeypatch.syspath_prepend(str(site))
    project = tmp_path / "app"
    project.mkdir()
    (project / "report.py").write_text(SHOP_REPORT)
    sizes = TableSizes(tables={"shop_orders": 10**6}, source="t", from_file=True)
    result = lint_paths([str(project)], LintConfig(sizes=sizes))
    assert [8] == [f.row for f in result.findings], result
    assert "1.0M rows of `shop_orders`" in result.findings[0].message


NAMED_BY_A_BASE = """\
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Column, Integer
from sqlalchemy.ext.declarative import as_declarative, declared_attr

db = SQLAlchemy()
LEGACY_NAME = "old_accounts"


@as_declarative()
class BaseModel:
    @declared_attr
    def __tablename__(cls):
        return cls.__name__.lower()

    id = Column(Integer, primary_key=True)


class LabelMixin:
    pass


class SearchIndex(LabelMixin, BaseModel):
    pass


class Sketch(BaseModel):
    __tablename__ = "sketches"


class EventTag(db.Model):
    id = db.Column(db.Integer, primary_key=True)


class SpecialTag(EventTag):
    pass


class Account(db.Model):
    @declared_attr
    def __tablename__(cls):
        return "acct_" + cls.__name__.lower()

    id = db.Column(db.Integer, primary_key=True)


class Abstract(db.Model):
    __abstract__ = True
    id = db.Column(db.Integer, primary_key=True)


class Legacy(db.Model):
    __table__ = db.Table(LEGACY_NAME, db.metadata, db.Column("id", primary_key=True))
"""

NAMED_BY_A_BASE_JOB = """\
import click

from app.models import Abstract, Account, EventTag, Legacy, SearchIndex, Sketch, SpecialTag


@click.command()
def check():
    for index in SearchIndex.query.all():  # line 8
        print(index)
    for sketch in Sketch.query.all():  # line 10
        print(sketch)
    for tag in EventTag.query.all():  # line 12
        print(tag)
    for tag in SpecialTag.query.all():  # line 14
        print(tag)
    for account in Account.query.all():  # line 16
        print(account)
    for row in Abstract.query.all():  # line 18
        print(row)
    for row in Legacy.query.all():  # line 20
        print(row)
"""


def test_a_table_named_by_a_base_or_by_flask_sqlalchemy(tmp_path: Path) -> None:
    """A base's ``@declared_attr __tablename__`` (the class name lowered) names its
    subclasses' tables, through a mixin; a table a model names itself wins; Flask-SQLAlchemy
    names a ``db.Model`` with a primary key of its own in snake case (a subclass without one
    shares its parent's table, which no name here gives)."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "models.py").write_text(NAMED_BY_A_BASE)
    (tmp_path / "app" / "cli.py").write_text(NAMED_BY_A_BASE_JOB)
    sizes = TableSizes(
        tables={
            "searchindex": 500_000,
            "sketch": 500_000,
            "sketches": 10,
            "event_tag": 500_000,
            "acct_account": 500_000,
            "account": 10,
            "abstract": 500_000,
            "legacy": 500_000,
        },
        source="t",
    )
    result = lint_paths([str(tmp_path)], LintConfig(sizes=sizes))
    # its own rule names Account's table; Abstract has none; Legacy names its own (a constant)
    assert [("cli.py", 8), ("cli.py", 12), ("cli.py", 16)] == [
        (Path(f.filename).name, f.row) for f in result.findings
    ]
    # the hints left: the subclass without a table of its own, the abstract and the legacy one
    assert [14, 18, 20] == [f.row for f in result.hints]


REMOVED_MODEL_MIGRATION = """\
def forwards(apps, schema_editor):
    Subsection = apps.get_model("questions", "Subsection")
    Entity = apps.get_model(app_label="questions", model_name="QuestionEntity")
    Old = apps.get_model("domain.Option")
    for row in Subsection.objects.all():
        row.save()
"""


def test_a_migrations_removed_model_and_djangos_own_join_tables_match(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A table only a migration names, through ``apps.get_model`` (its model since removed),
    and the many-to-many tables of Django's own models are no names that match nothing."""
    (tmp_path / "questions" / "migrations").mkdir(parents=True)
    (tmp_path / "questions" / "migrations" / "0008_x.py").write_text(REMOVED_MODEL_MIGRATION)
    sizes = tmp_path / "sizes.toml"
    sizes.write_text(
        "[tables]\nquestions_subsection = 40\nquestions_questionentity = 90\n"
        "domain_option = 30\nauth_user_user_permissions = 100\nquestions_subsectoin = 4\n"
    )
    assert 0 == main(["lint", "--isolated", "--sizes", str(sizes), str(tmp_path)])
    warned = [line for line in capsys.readouterr().err.splitlines() if "match nothing" in line]
    assert [
        "membound lint: warning: 1 name(s) of the sizes file match nothing in the code linted "
        "(a misspelling changes nothing): questions_subsectoin"
    ] == warned


def test_an_app_inside_another_apps_package_keeps_its_own_label(tmp_path: Path) -> None:
    """``forum/deps/openid/models.py`` installed apart (``INSTALLED_APPS``) is an app of its
    own: its table is ``openid_nonce``, not the ``forum`` label of the ``AppConfig`` in the
    package above; not installed apart, it is ``forum_nonce``; with migrations of its own, an
    app of its own again."""
    (tmp_path / "forum" / "deps" / "openid").mkdir(parents=True)
    (tmp_path / "forum" / "apps.py").write_text(
        "from django.apps import AppConfig\n\n\nclass ForumConfig(AppConfig):\n"
        '    name = "forum"\n    label = "forum"\n'
    )
    (tmp_path / "forum" / "models.py").write_text(
        "from django.db import models\n\n\nclass Post(models.Model):\n"
        "    text = models.TextField()\n"
    )
    (tmp_path / "forum" / "deps" / "openid" / "models.py").write_text(
        "from django.db import models\n\n\nclass Nonce(models.Model):\n"
        "    salt = models.TextField()\n"
    )
    (tmp_path / "forum" / "management" / "commands").mkdir(parents=True)
    (tmp_path / "forum" / "management" / "commands" / "clean.py").write_text(
        "from forum.deps.openid.models import Nonce\nfrom forum.models import Post\n\n\n"
        "def run():\n    for n in Nonce.objects.all():\n        print(n)\n"
        "    for p in Post.objects.all():\n        print(p)\n"
    )
    (tmp_path / "forum" / "settings.py").write_text(
        'INSTALLED_APPS = ["django.contrib.auth", "forum", "forum.deps.openid"]\n'
    )
    sizes = TableSizes(tables={"openid_nonce": 10**6, "forum_post": 10**6}, source="t")
    result = lint_paths([str(tmp_path)], LintConfig(sizes=sizes))
    assert [6, 8] == sorted(f.row for f in result.findings)
    # not installed apart, the same package's models take the label of the app around them
    (tmp_path / "forum" / "settings.py").write_text('INSTALLED_APPS = ["forum"]\n')
    sizes = TableSizes(tables={"forum_nonce": 10**6, "forum_post": 10**6}, source="t")
    result = lint_paths([str(tmp_path)], LintConfig(sizes=sizes))
    assert [6, 8] == sorted(f.row for f in result.findings)
    # with migrations of its own it is an app of its own again
    (tmp_path / "forum" / "deps" / "openid" / "migrations").mkdir()
    (tmp_path / "forum" / "deps" / "openid" / "migrations" / "0001_initial.py").write_text("")
    sizes = TableSizes(tables={"openid_nonce": 10**6, "forum_post": 10**6}, source="t")
    result = lint_paths([str(tmp_path)], LintConfig(sizes=sizes))
    assert [6, 8] == sorted(f.row for f in result.findings)


SWAPPED_MODELS = """\
import swapper
from django.db import migrations


def get_swapped_model(apps, app_name, model_name):
    return apps.get_model(app_name, model_name)


def load_model(name):
    return swapper.load_model("radius", name)


def fill(apps, schema_editor):
    PhoneToken = get_swapped_model(apps, "radius", "PhoneToken")
    for token in PhoneToken.objects.all():  # a helper's strings name the model
        token.save()
    Nas = swapper.load_model("radius", "Nas")
    for nas in Nas.objects.all():  # swapper's own
        nas.save()
    Accounting = load_model("Accounting")
    for row in Accounting.objects.all():  # the model by name alone
        row.save()
"""


def test_a_model_a_swapper_or_a_helper_gives_takes_its_tables_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Swappable models reached through ``swapper.load_model(app, name)``, a project's
    ``get_swapped_model(apps, app, name)`` (its one return is not inlined: the strings of the
    call name the model) or a helper taking the name alone are sized as their tables; the
    tables they name are no names that match nothing."""
    (tmp_path / "radius" / "migrations").mkdir(parents=True)
    (tmp_path / "radius" / "migrations" / "__init__.py").write_text(SWAPPED_MODELS)
    (tmp_path / "radius" / "models.py").write_text(
        "from django.db import models\n\n\nclass Accounting(models.Model):\n"
        "    class Meta:\n        db_table = 'radacct'\n"
    )
    sizes = tmp_path / "sizes.toml"
    sizes.write_text(
        "[tables]\nradius_phonetoken = 450000\nradius_nas = 90000\nradacct = 9000000\n"
    )
    assert 1 == main(["lint", "--isolated", "--sizes", str(sizes), str(tmp_path)])
    out, err = capsys.readouterr()
    assert "match nothing" not in err
    rows = sorted(int(line.split(":")[1]) for line in out.splitlines() if " MB101 " in line)
    assert [15, 18, 21] == rows


LOOPED_MODELS = """\
from django.db import migrations


def fill(apps, schema_editor):
    names = ["Nas", "PostAuth"]
    for name in names:
        model = apps.get_model("radius", name)
        for row in model.objects.all():  # BIG one of them is big
            row.save()
    for name in ("Nas", "Check"):
        model = apps.get_model("radius", name)
        for row in model.objects.all():  # SMALL every one is small
            row.save()
    for name in ("Nas", "Unknown"):
        model = apps.get_model("radius", name)
        for row in model.objects.all():  # UNKNOWN one is not known
            row.save()


def fill_one(model_name):
    def fill(apps, schema_editor):
        model = apps.get_model("radius", model_name)
        for row in model.objects.all():  # PASSED one of the names passed is big
            row.save()

    return fill


def check_one(apps, schema_editor, model_name="Nas"):
    for row in apps.get_model("radius", model_name).objects.all():  # PASSED_SMALL all small
        row.save()


def dynamic(apps, schema_editor, model_name):
    for row in apps.get_model("radius", model_name).objects.all():  # NOT_STRINGS not all known
        row.save()


operations = [
    migrations.RunPython(fill_one("Nas")),
    migrations.RunPython(fill_one(model_name="PostAuth")),
]
check_one(None, None, "Check")
check_one(None, None, model_name="Nas")
dynamic(None, None, "Nas")
dynamic(None, None, compute_name())
"""


def test_a_loop_over_model_names_is_judged_by_the_biggest_table(tmp_path: Path) -> None:
    """A migration that walks a list of model names loads each table whole: one big table
    makes it a finding; when every table is known and small there is nothing; a name the sizes
    do not know, beside small ones, leaves the hint. The same for a function whose parameter
    names the model, called in the module with names only."""
    (tmp_path / "radius" / "migrations").mkdir(parents=True)
    (tmp_path / "radius" / "migrations" / "0002_fill.py").write_text(LOOPED_MODELS)
    sizes = TableSizes(
        tables={"radius_nas": 50, "radius_postauth": 12_000_000, "radius_check": 300}, source="t"
    )
    result = lint_paths([str(tmp_path)], LintConfig(sizes=sizes))
    lines = LOOPED_MODELS.splitlines()
    reported = {lines[f.row - 1].split("# ")[-1]: f.kind for f in (*result.findings, *result.hints)}
    assert {
        "BIG one of them is big": "finding",
        "UNKNOWN one is not known": "hint",
        # a function's parameter that the module passes only names: the biggest decides
        "PASSED one of the names passed is big": "finding",
        "NOT_STRINGS not all known": "hint",
    } == reported
    assert "12.0M rows of `radius_postauth`" in result.findings[0].message


SOUTH_MIGRATION = """\
from django.db import models
from south.db import db
from south.v2 import DataMigration


class Migration(DataMigration):
    def forwards(self, orm):
        for device in orm["discovery.device"].objects.all():  # line 8
            device.save()
        for network in orm.Network.objects.all():  # line 10
            network.save()
        for entry in orm["dnsedit.dhcpentry"].objects.all():  # line 12
            entry.save()
"""


def test_a_south_migration_names_its_models_by_app_and_model(tmp_path: Path) -> None:
    # South hands a migration the models of its time as ``orm["app.model"]``, or ``orm.Model``
    # for its own app (the folder above ``migrations/``).
    migrations = tmp_path / "discovery" / "migrations"
    migrations.mkdir(parents=True)
    (migrations / "0013_data.py").write_text(SOUTH_MIGRATION, encoding="utf-8")
    sizes = TableSizes(
        tables={"discovery_device": 34_000, "discovery_network": 900, "dnsedit_dhcpentry": 16_000},
        source="t",
    )
    assert _kinds(tmp_path, sizes) == {8: "finding", 12: "finding"}  # the network table is small
    # A South migration need not import Django itself.
    (migrations / "0013_data.py").write_text(
        SOUTH_MIGRATION.replace("from django.db import models\n", ""), encoding="utf-8"
    )
    assert _kinds(tmp_path, sizes) == {7: "finding", 11: "finding"}
    # Without South, ``orm`` is any object: ``orm["x.y"].objects`` is no model's manager.
    (migrations / "0013_data.py").write_text(
        SOUTH_MIGRATION.replace(
            "from south.db import db\nfrom south.v2 import DataMigration\n", ""
        ).replace("(DataMigration)", ""),
        encoding="utf-8",
    )
    assert "finding" not in _kinds(tmp_path, sizes).values()


def test_cls_in_a_models_classmethod_is_that_model(tmp_path: Path) -> None:
    """``cls.objects.all()`` in a classmethod of a model reads that model's table (after
    round 11: an hourly job's ``Evaluation.update_evaluations`` stayed a hint)."""
    app = tmp_path / "evaluation"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "models.py").write_text(
        "from django.db import models\n\n\n"
        "class Evaluation(models.Model):\n"
        "    name = models.TextField()\n\n"
        "    @classmethod\n"
        "    def update_evaluations(cls):\n"
        "        for evaluation in cls.objects.all():  # line 9\n"
        "            evaluation.save()\n"
    )
    big = TableSizes(tables={"evaluation_evaluation": 90_000}, source="t")
    assert {9: "finding"} == _kinds(tmp_path, big)
    small = TableSizes(tables={"evaluation_evaluation": 90}, source="t")
    assert {} == _kinds(tmp_path, small)
