"""What counts as a batch job for the default policy (MB101/MB102 report whole-table loads
there): command-line commands of click, typer and Flask's CLI too (issue 25: two whole-table
loads in ckan's click commands were reported only with --preview)."""

from __future__ import annotations

from pathlib import Path

import pytest

from membound.lint import LintConfig, lint_paths, lint_source
from membound.lint.sizes import TableSizes

BODY = "def dump(session):\n    return [u.id for u in session.query(User.id).all()]\n"


@pytest.mark.parametrize(
    ("header", "reported"),
    [
        ("import click\nfrom sqlalchemy.orm import Session\n@click.command()\n", True),
        ("import click\nfrom sqlalchemy.orm import Session\n@cli.command(name='dump')\n", True),
        ("import typer\nfrom sqlalchemy.orm import Session\n@app.command()\n", True),
        ("from flask import Flask\nfrom sqlalchemy.orm import Session\n@app.cli.command()\n", True),
        # a request handler, and a "command" of a library that is no CLI (a chat bot's)
        ("from flask import Flask\nfrom sqlalchemy.orm import Session\n@app.route('/')\n", False),
        ("import discord\nfrom sqlalchemy.orm import Session\n@bot.command()\n", False),
    ],
)
def test_cli_commands_are_batch_jobs(header: str, reported: bool) -> None:
    found = [f for f in lint_source(header + BODY, "app/views.py") if f.code == "MB102"]
    assert reported == bool(found), found
    if reported:
        assert "in the command `dump`" in found[0].message


ACCUMULATE = """\
from django.db import models
from shop.models import Order


def totals(request):
    out = []
    for order in Order.objects.filter(paid=True).iterator():
        out.append(order)
    return out
"""

ONE_COLUMN = """\
from django.db import models
from shop.models import Order


def ids(request):
    return [o.id for o in Order.objects.filter(paid=True)]
"""


@pytest.mark.parametrize(("text", "code"), [(ACCUMULATE, "MB201"), (ONE_COLUMN, "MB501")])
def test_accumulators_and_one_column_loads_are_batch_job_findings(text: str, code: str) -> None:
    """MB201 and MB501 judge loads: in batch jobs without evidence that the table is big they
    are hints; in request code nothing (a hint as a preview variant); with evidence
    (``large-models``, sizes) a finding anywhere (issue 25, 38: outside batch jobs nearly all
    were no risk on applications the rules were not tuned on)."""

    def kinds(filename: str, **kwargs: object) -> list[str]:
        found = lint_source(text, filename, **kwargs)  # type: ignore[arg-type]
        return [f.kind for f in found if f.code == code]

    assert kinds("shop/views.py") == []
    assert kinds("shop/views.py", preview=[code]) == ["hint"]
    assert kinds("shop/management/commands/totals.py") == ["hint"]
    assert kinds("shop/migrations/0002_totals.py") == ["hint"]
    assert kinds("shop/views.py", large_models=["Order"]) == ["finding"]
    assert kinds("shop/migrations/0002_totals.py", large_models=["Order"]) == ["finding"]


def test_a_big_table_is_reported_by_mb501_in_request_code(tmp_path: Path) -> None:
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop/models.py").write_text(
        "from django.db import models\n\nclass Order(models.Model):\n"
        "    paid = models.BooleanField()\n"
    )
    (tmp_path / "shop/views.py").write_text(ONE_COLUMN)
    sizes = TableSizes(tables={"shop_order": 3_000_000}, source="test")
    found = lint_paths([str(tmp_path)], LintConfig(sizes=sizes)).findings
    assert [(f.code, f.row) for f in found] == [("MB501", 6)]
    assert "`.id`, ≈3.0M rows of `shop_order` (test):" in found[0].message
    small = TableSizes(tables={"shop_order": 30}, source="test")
    assert lint_paths([str(tmp_path)], LintConfig(sizes=small, preview=("MB501",))).findings == ()


COMMAND_CHOICES = """\
from django.core.management.base import BaseCommand
from shop.models import Queue


class Command(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("--queue", choices=[q.slug for q in Queue.objects.all()])
        names = [q.name for q in Queue.objects.all()]
        parser.add_argument("--name", choices=names)
        parser.add_argument("--all", default=[q.slug for q in Queue.objects.all()])
"""


def test_choices_a_person_picks_from_are_small_by_design() -> None:
    found = lint_source(COMMAND_CHOICES, "shop/management/commands/escalate.py")
    assert [f.row for f in found] == [10], found


READ_SQL = """\
import pandas as pd
from flask import Flask

app = Flask(__name__)


@app.route("/report")
def report():
    return pd.read_sql("SELECT * FROM events", app.config["DB"]).to_json()
"""


def test_read_sql_follows_the_policy_of_the_other_database_loads(tmp_path: Path) -> None:
    """MB104's ``read_sql`` reports in batch jobs by default, elsewhere as preview or when sizes
    say a table it reads is big (and never when they say every table is small)."""
    assert lint_source(READ_SQL, "app/views.py") == []
    assert [f.code for f in lint_source(READ_SQL, "app/views.py", preview=["MB104"])] == ["MB104"]
    script = (
        READ_SQL.replace('@app.route("/report")\n', "")
        + "\nif __name__ == '__main__':\n    report()\n"
    )
    found = lint_source(script, "app/report.py")
    assert [f.code for f in found] == ["MB104"]
    assert "in a script" in found[0].message
    (tmp_path / "views.py").write_text(READ_SQL)
    big = TableSizes(tables={"events": 5_000_000}, source="test")
    found = list(lint_paths([str(tmp_path)], LintConfig(sizes=big)).findings)
    assert [f.code for f in found] == ["MB104"], found
    assert "≈5.0M rows of `events` (test)" in found[0].message
    small = TableSizes(tables={"events": 5}, source="test")
    assert lint_paths([str(tmp_path)], LintConfig(sizes=small, preview=("MB104",))).findings == ()
