"""A query assigned in the branches of an ``if``/``try`` before its use is one of them on each
run (after round 15: geonode's commands ``if name: qs = X.objects.filter(name=name)`` ``else:
qs = X.objects.all()`` then ``for x in qs``): the load is judged as the branch that narrows
nothing. Branches that all narrow, and values given in a loop or after the use, leave the
name unexpanded as before."""

from __future__ import annotations

from pathlib import Path

from membound.lint import LintConfig, lint_paths
from membound.lint.sizes import TableSizes

MODELS = """\
from django.db import models


class Dataset(models.Model):
    name = models.CharField(max_length=100)
    owner = models.ForeignKey("auth.User", on_delete=models.CASCADE)
"""

COMMAND = """\
from django.core.management.base import BaseCommand

from app.models import Dataset


class Command(BaseCommand):
    def handle(self, **options):
        if options["owner"]:
            layers = Dataset.objects.filter(owner=options["owner"])
        else:
            layers = Dataset.objects.all()
        if options["owner"]:
            layers = layers.filter(owner=options["owner"])  # on some runs only
        for layer in layers:  # line 14
            print(layer)

    def mine(self, user, **options):
        if options["name"]:
            layers = Dataset.objects.filter(owner=user, name=options["name"])
        else:
            layers = Dataset.objects.filter(owner=user)
        for layer in layers:  # every branch narrows: not judged
            print(layer)

    def tried(self, **options):
        try:
            layers = Dataset.objects.filter(name=options["name"])
        except KeyError:
            layers = Dataset.objects.order_by("name")
        for layer in layers:  # line 30
            print(layer)

    def looped(self, user, names):
        for name in names:
            layers = Dataset.objects.all()
        if names:
            layers = Dataset.objects.filter(owner=user)
        for layer in layers:  # a value given in a loop: not judged
            print(layer)

    def paged_elsewhere(self, user, staff):
        if staff:
            layers = Dataset.objects.all()
        else:
            layers = Dataset.objects.filter(owner=user)
            layers = layers.order_by("name")[:10]  # the other branch's page
        for layer in layers:  # line 47
            print(layer)

    def none_yet(self, user, staff):
        if user is None:
            layers = []
        elif staff:
            layers = Dataset.objects.all()
        else:
            layers = Dataset.objects.filter(owner=user)
        for layer in layers:  # line 57
            print(layer)

    def raised(self, user):
        try:
            layers = Dataset.objects.filter(owner=user)
        except ValueError:
            layers = Dataset.objects.all()
            raise
        for layer in layers:  # the branch that raises never reaches it
            print(layer)
"""


def test_a_query_given_in_branches_is_judged_as_the_one_that_narrows_nothing(
    tmp_path: Path,
) -> None:
    app = tmp_path / "app"
    commands = app / "management" / "commands"
    commands.mkdir(parents=True)
    for folder in (app, app / "management", commands):
        (folder / "__init__.py").write_text("", encoding="utf-8")
    (app / "models.py").write_text(MODELS, encoding="utf-8")
    (commands / "scan.py").write_text(COMMAND, encoding="utf-8")
    sizes = TableSizes(tables={"app_dataset": 22_000}, source="t")
    result = lint_paths([str(tmp_path)], LintConfig(sizes=sizes))
    rows = sorted(f.row for f in result.findings if f.filename.endswith("scan.py"))
    assert rows == [14, 30, 47, 57], [(f.row, f.message[:60]) for f in result.findings]
