"""A django-filter ``FilterSet(data, queryset=qs).qs`` holds the rows of ``qs``: the filters the
request gives are optional, so they bound nothing (after round 12, from openrem's export tasks,
which loop over a filterset's ``.qs`` of a 1.2M-row table)."""

from __future__ import annotations

from pathlib import Path

from membound.lint import LintConfig, lint_paths
from membound.lint.sizes import TableSizes

TASKS = """\
from celery import shared_task

from app.filters import StudyFilter
from app.models import Study


@shared_task
def export(filters):
    studies = StudyFilter(filters, queryset=Study.objects.filter(modality="CT")).qs
    for study in studies:  # line 10: every CT study
        print(study)


@shared_task
def export_positional(filters):
    for study in StudyFilter(filters, Study.objects.all()).qs:  # line 16
        print(study)


@shared_task
def export_one_owner(filters, owner):
    studies = StudyFilter(filters, queryset=Study.objects.filter(owner=owner)).qs
    for study in studies:  # one owner's studies
        print(study)


@shared_task
def export_a_page(filters):
    for study in StudyFilter(filters, queryset=Study.objects.all()).qs[:100]:
        print(study)
"""


def test_a_filtersets_rows_are_those_of_its_queryset(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "__init__.py").write_text("", encoding="utf-8")
    (app / "models.py").write_text(
        "from django.db import models\n\n\nclass Study(models.Model):\n"
        "    modality = models.TextField()\n"
        "    owner = models.ForeignKey('auth.User', on_delete=models.CASCADE)\n",
        encoding="utf-8",
    )
    (app / "filters.py").write_text(
        "import django_filters\n\n\nclass StudyFilter(django_filters.FilterSet):\n    pass\n",
        encoding="utf-8",
    )
    (app / "tasks.py").write_text(TASKS, encoding="utf-8")
    sizes = TableSizes(tables={"app_study": 1_200_000}, source="t")
    result = lint_paths([str(tmp_path)], LintConfig(sizes=sizes))
    assert {f.row for f in result.findings if f.code == "MB101"} == {10, 16}
