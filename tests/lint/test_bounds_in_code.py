"""Bounds the code shows (issue 38): with sizes saying the table is big, a load of one
owner's rows (``filter(cable=self)``), of rows whose keys are in hand, of one row per value of
a column (``distinct("pulp_type")``), of the first few of each partition (a window rank
filter) is no finding; a boto3 collection's ``.objects`` is no Django queryset. The same
table loaded whole is."""

from __future__ import annotations

from pathlib import Path

import pytest

from membound.lint import LintConfig, lint_paths
from membound.lint.sizes import TableSizes

MODELS = """\
import boto3
from django.db import models
from django.db.models import F, Window
from django.db.models.functions import Rank


class Cable(models.Model):
    label = models.TextField()


class Termination(models.Model):
    cable = models.ForeignKey(Cable, on_delete=models.CASCADE)
    termination_id = models.IntegerField()
    pulp_type = models.TextField()

    def peers(self):
        return list(Termination.objects.filter(cable=self))  # BOUND owner

    def in_hand(self, ids):
        return list(Termination.objects.filter(termination_id__in=ids))  # BOUND in hand

    def types(self):
        return list(Termination.objects.distinct("pulp_type"))  # BOUND distinct

    def top(self):
        ranked = Termination.objects.annotate(rank=Window(Rank(), partition_by=[F("cable")]))
        return list(ranked.filter(rank__lte=3))  # BOUND top three

    def everything(self):
        return list(Termination.objects.all())  # WHOLE


def keys(bucket_name):
    s3 = boto3.resource("s3")
    return [o.key for o in s3.Bucket(bucket_name).objects.all()]  # BOUND not a queryset
"""


@pytest.fixture
def reported(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "dcim").mkdir()
    (tmp_path / "dcim" / "models.py").write_text(MODELS)
    sizes = TableSizes(tables={"dcim_termination": 600_000, "dcim_cable": 300_000}, source="t")
    result = lint_paths([str(tmp_path)], LintConfig(sizes=sizes))
    lines = MODELS.splitlines()
    return {lines[f.row - 1].split("# ")[-1]: f.kind for f in (*result.findings, *result.hints)}


def test_bounds_in_the_code_are_no_findings_whatever_the_size(reported: dict[str, str]) -> None:
    assert {"WHOLE": "finding"} == reported


MORE = """\
from django.db import models


class Account(models.Model):
    email = models.TextField()


class Product(models.Model):
    sku = models.TextField()


def login(email):
    return list(Account.objects.filter(email__iexact=email))  # BOUND one e-mail


def upload(skus):
    return list(Product.objects.filter(sku__in=skus))  # BOUND skus in hand


def everyone():
    return list(Account.objects.all())  # WHOLE
"""

MIGRATION = """\
def forwards(apps, schema_editor):
    Theme = apps.get_model(app_label="appearance", model_name="Theme")
    for theme in Theme.objects.all():  # SMALL by its size
        theme.save()
"""


def test_identifying_values_in_hand_and_keyword_get_model(tmp_path: Path) -> None:
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "models.py").write_text(MORE)
    (tmp_path / "appearance" / "migrations").mkdir(parents=True)
    (tmp_path / "appearance" / "migrations" / "0002_x.py").write_text(MIGRATION)
    sizes = TableSizes(
        tables={"shop_account": 10**6, "shop_product": 10**6, "appearance_theme": 5}, source="t"
    )
    result = lint_paths([str(tmp_path)], LintConfig(sizes=sizes))
    lines = {"models.py": MORE.splitlines(), "0002_x.py": MIGRATION.splitlines()}
    reported = {
        lines[Path(f.filename).name][f.row - 1].split("# ")[-1]: f.kind
        for f in (*result.findings, *result.hints)
    }
    assert {"WHOLE": "finding"} == reported
