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
        '[models]\n"Contnet" = 7\n"Published" = 1000000\n'
    )
    assert 1 == main(["lint", "--isolated", "--sizes", str(sizes), str(tree)])
    err = capsys.readouterr().err.splitlines()
    warned = [line for line in err if "match nothing" in line]
    assert 1 == len(warned), err
    assert warned[0].endswith(": Contnet, core_domian"), warned
    assert "core_domain," not in warned[0]
