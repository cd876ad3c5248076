"""What a model's definition bounds, without table sizes (issue 25): a lookup table of named
values (a language, a role, a global setting) is loaded whole without a finding, and so is a
filter on a unique key or a unique field in a list in hand; a content table is still reported,
and table sizes, when given, win over the shape."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from membound.lint import LintConfig, lint_paths
from membound.lint.sizes import TableSizes

DJANGO_MODELS = """\
from django.db import models
from elsewhere import AbstractThing


class Language(models.Model):
    code = models.CharField(max_length=8, unique=True)
    name = models.CharField(max_length=64)
    position = models.IntegerField(default=0)


class GlobalSetting(models.Model):
    key = models.CharField(max_length=64, primary_key=True)
    value = models.TextField()


class Customer(models.Model):
    name = models.CharField(max_length=64, unique=True)
    email = models.EmailField()


class Order(models.Model):
    code = models.CharField(max_length=16, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE)
    total = models.IntegerField()


class Voucher(models.Model):
    code = models.CharField(max_length=16)
    shop = models.CharField(max_length=16)
    amount = models.IntegerField()

    class Meta:
        unique_together = (("shop", "code"),)


class Subscriber(models.Model):
    name = models.CharField(max_length=64, unique=True)
    email = models.EmailField()


class Thing(AbstractThing):
    name = models.CharField(max_length=64, unique=True)
"""

COMMAND = """\
from django.core.management.base import BaseCommand
from shop.models import Customer, GlobalSetting, Language, Order, Subscriber, Thing, Voucher


class Command(BaseCommand):
    def handle(self, *args, **options):
        codes, shop, code = options["codes"], options["shop"], options["code"]
        for x in Language.objects.all():
            print(x)
        for x in GlobalSetting.objects.all():
            print(x)
        for x in Order.objects.all():  # HIT
            print(x)
        for x in Order.objects.filter(code__in=codes):
            print(x)
        for x in Order.objects.filter(total__in=codes):  # HIT
            print(x)
        for x in Voucher.objects.filter(shop=shop, code=code):
            print(x)
        for x in Voucher.objects.filter(code=code):  # one code's rows: a few, one per shop
            print(x)
        for x in Subscriber.objects.all():  # HIT
            print(x)
        for x in Thing.objects.all():  # HIT
            print(x)
"""

MIGRATION = """\
from django.db import migrations


def forwards(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    for p in Permission.objects.all():
        print(p)
    Language = apps.get_model("shop", "Language")
    for lang in Language.objects.all():
        print(lang)
    Order = apps.get_model("shop", "Order")
    for o in Order.objects.all():  # HIT
        print(o)
"""

SA_MODELS = """\
from sqlalchemy import Column, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import declarative_base

Base = declarative_base()


class Role(Base):
    __tablename__ = "roles"
    id = Column(Integer, primary_key=True)
    name = Column(String(64), unique=True)
    description = Column(Text)


class Build(Base):
    __tablename__ = "builds"
    id = Column(Integer, primary_key=True)
    number = Column(Integer)
    role_id = Column(Integer, ForeignKey("roles.id"))
    __table_args__ = (UniqueConstraint("number", "role_id"),)


class Tag(Base):
    __tablename__ = "tags"
    id = Column(Integer, primary_key=True)
    name = Column(String(64), unique=True)
    body = Column(Text)
"""

SA_SCRIPT = """\
from sqlalchemy.orm import Session

from app.models import Build, Role, Tag


def main(session: Session, names: list[str], number: int, role_id: int) -> None:
    for r in session.query(Role).all():
        print(r)
    for b in session.query(Build).all():  # HIT
        print(b)
    for b in session.query(Build).filter(Build.number == number, Build.role_id == role_id):
        print(b)
    for b in session.query(Build).filter(Build.number >= number).all():  # HIT
        print(b)
    for t in session.query(Tag).filter(Tag.name.in_(names)).all():
        print(t)
    for t in session.query(Tag).all():  # HIT
        print(t)


if __name__ == "__main__":
    main(Session(), [], 1, 1)
"""


def _tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _expected(root: Path) -> set[tuple[str, int]]:
    return {
        (str(path.relative_to(root)), row)
        for path in root.rglob("*.py")
        for row, line in enumerate(path.read_text().splitlines(), 1)
        if line.endswith("# HIT")
    }


def _found(root: Path, config: LintConfig | None = None) -> set[tuple[str, int]]:
    """The loads reported, as findings or as hints (without sizes nothing shows a table is
    big: what the shapes decide is whether a load is reported at all)."""
    result = lint_paths([str(root)], config or LintConfig())
    assert not result.errors
    return {
        (str(Path(f.filename).relative_to(root)), f.row)
        for f in (*result.findings, *result.hints)
        if f.code in ("MB101", "MB102")
    }


@pytest.fixture
def django_tree(tmp_path: Path) -> Path:
    _tree(
        tmp_path,
        {
            "shop/models.py": DJANGO_MODELS,
            "shop/management/commands/dump.py": COMMAND,
            "shop/migrations/0002_fill.py": MIGRATION,
        },
    )
    return tmp_path


def test_django_lookups_and_unique_keys_are_bounds(django_tree: Path) -> None:
    assert _found(django_tree) == _expected(django_tree)


def test_sqlalchemy_lookups_and_unique_keys_are_bounds(tmp_path: Path) -> None:
    _tree(tmp_path, {"app/models.py": SA_MODELS, "app/jobs.py": SA_SCRIPT})
    assert _found(tmp_path) == _expected(tmp_path)


def test_sizes_win_over_the_shape(django_tree: Path) -> None:
    sizes = TableSizes(tables={"shop_language": 2_000_000}, source="test")
    found = _found(django_tree, LintConfig(sizes=sizes))
    command = "shop/management/commands/dump.py"
    assert (command, 8) in found  # Language.objects.all(): a lookup by shape, big by count
    assert (command, 10) not in found  # GlobalSetting: no size given, the shape holds


def test_the_cli_and_a_newer_grammar_file_agree(django_tree: Path) -> None:
    """The shapes reach the files linted by a newer interpreter too (``lint/_newer_child.py``)."""
    before = _expected(django_tree)
    command = django_tree / "shop/management/commands/dump.py"
    newer = django_tree / "shop/management/commands/dump312.py"
    newer.write_text("type Codes = list[str]\n" + command.read_text())
    done = subprocess.run(
        [sys.executable, "-m", "membound", "lint", "--select", "MB1", "--hints", "shop"],
        cwd=django_tree,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert 0 == done.returncode, done.stderr  # hints only: nothing shows a table is big
    rows = {
        (line.split(":")[0], int(line.split(":")[1]))
        for line in done.stdout.splitlines()
        if ": MB101 hint: " in line or ": MB102 hint: " in line
    }
    commands = {(p, r) for p, r in before if "0002" not in p}
    shifted = {("shop/management/commands/dump312.py", r + 1) for p, r in commands}
    assert rows == before | shifted, done.stdout


ALEMBIC = """\
from alembic import op
from sqlalchemy import Column, ForeignKey, Integer, String, Text
from sqlalchemy.ext.declarative import declarative_base
from sqlalchemy.orm import Session

Base = declarative_base()


class ViewMenu(Base):
    __tablename__ = "ab_view_menu"
    id = Column(Integer, primary_key=True)
    name = Column(String(250), unique=True)


class Slice(Base):
    __tablename__ = "slices"
    id = Column(Integer, primary_key=True)
    params = Column(Text)
    menu_id = Column(Integer, ForeignKey("ab_view_menu.id"))


def upgrade():
    session = Session(bind=op.get_bind())
    for menu in session.query(ViewMenu).all():
        print(menu)
    for slc in session.query(Slice).all():  # HIT
        print(slc)
"""


def test_a_migration_s_own_model_copies_are_its_models(tmp_path: Path) -> None:
    """Alembic migrations define their own copy of each model they change, under the same name
    as in other migrations: the copy in the file is the one its queries read."""
    other = ALEMBIC.replace("name = Column(String(250), unique=True)", "body = Column(Text)")
    _tree(tmp_path, {"versions/0001_a.py": ALEMBIC, "versions/0002_b.py": other})
    lines = ALEMBIC.splitlines()
    menus = 1 + next(i for i, line in enumerate(lines) if "query(ViewMenu)" in line)
    slices = 1 + next(i for i, line in enumerate(lines) if "query(Slice)" in line)
    found = _found(tmp_path)
    assert ("versions/0001_a.py", menus) not in found  # its ViewMenu is a lookup
    assert ("versions/0002_b.py", menus) in found  # this file's ViewMenu holds content
    assert {("versions/0001_a.py", slices), ("versions/0002_b.py", slices)} <= found
