"""A queryset handed to a project function that iterates that parameter whole is loaded whole
by the call (issue 38): ``set_null_to_blank(Value.objects.all(), fields)`` in a migration, with
``for value in queryset:`` in a helper of another module. A bounded queryset, a function that
does not iterate the parameter, or an argument at another position is no such load."""

from __future__ import annotations

from pathlib import Path

from membound.lint import LintConfig, lint_paths
from membound.lint.sizes import TableSizes

MODELS = """\
from django.db import models


class Value(models.Model):
    text = models.TextField(null=True)
"""

UTILS = """\
def set_null_to_blank(queryset, fields):
    for value in queryset:
        for field in fields:
            if getattr(value, field) is None:
                setattr(value, field, "")
        value.save()


def count_them(queryset):
    return queryset.count()


def first_names(limit, rows):
    return sorted(rows)[:limit]


def shown(rows):
    rows = rows[:10]  # cut before it is iterated
    return [r.pk for r in rows]
"""

MIGRATION = """\
from django.db import migrations

from app.utils import count_them, first_names, set_null_to_blank, shown


def run(apps, schema_editor):
    Value = apps.get_model("app", "Value")
    set_null_to_blank(Value.objects.all(), ["text"])  # line 8: iterated whole by the helper
    set_null_to_blank(Value.objects.all()[:100], ["text"])  # a slice: bounded
    count_them(Value.objects.all())  # the helper counts in the database
    first_names(Value.objects.all(), [])  # the queryset is not the parameter it iterates
    first_names(10, rows=Value.objects.exclude(text=None))  # line 12: by keyword
    shown(Value.objects.all())  # the helper slices it first


class Migration(migrations.Migration):
    operations = [migrations.RunPython(run)]
"""

COMMAND = """\
from django.core.management.base import BaseCommand

from app.models import Value


class Command(BaseCommand):
    def walk(self, rows):
        return [r.pk for r in rows]

    @staticmethod
    def pair(qs, rows):
        return list(rows)

    def handle(self, *args, **options):
        self.walk(Value.objects.all())  # line 15: a method of the class iterates it
        self.pair(Value.objects.all(), [])  # a static method: the queryset is not ``rows``

        def get_rows(query):
            for value in query.select_related("owner").order_by("pk"):
                yield value.pk

        def numbered(rows):
            return [(i, r) for i, r in enumerate(rows)]

        def narrowed(rows):
            return list(rows.filter(text=None)[:5])

        print(list(get_rows(Value.objects.all())))  # line 28: a function defined here
        numbered(Value.objects.all())  # line 29: through enumerate()
        narrowed(Value.objects.all())  # the helper narrows and slices it
"""


def test_a_queryset_handed_to_a_function_that_iterates_it_is_loaded_whole(
    tmp_path: Path,
) -> None:
    app = tmp_path / "app"
    (app / "migrations").mkdir(parents=True)
    (app / "management" / "commands").mkdir(parents=True)
    for folder in (app, app / "migrations", app / "management", app / "management" / "commands"):
        (folder / "__init__.py").write_text("", encoding="utf-8")
    (app / "models.py").write_text(MODELS, encoding="utf-8")
    (app / "utils.py").write_text(UTILS, encoding="utf-8")
    (app / "migrations" / "0002_blank.py").write_text(MIGRATION, encoding="utf-8")
    (app / "management" / "commands" / "walk.py").write_text(COMMAND, encoding="utf-8")
    sizes = TableSizes(tables={"app_value": 4_000_000}, source="t")
    result = lint_paths([str(tmp_path)], LintConfig(sizes=sizes))
    found = {(Path(f.filename).name, f.row) for f in result.findings if f.code == "MB101"}
    assert found == {
        ("0002_blank.py", 8),
        ("0002_blank.py", 12),
        ("walk.py", 15),
        ("walk.py", 28),
        ("walk.py", 29),
    }, found
    said = next(f for f in result.findings if f.row == 8).message
    assert "handed to `set_null_to_blank()`, which iterates it whole" in said
