"""A ``Q`` built clause by clause bounds a query only as far as every path keeps it (after
round 12): ``q = Q()`` widened by owners' clauses, one of them on every path, keeps those
owners' rows; widened only in a branch, the other path keeps the empty ``Q`` (every row); a
``Q`` that starts with a condition of its own is widened beyond the owners by ``|=``."""

from __future__ import annotations

from pathlib import Path

from membound.lint import LintConfig, lint_paths
from membound.lint.sizes import TableSizes

VIEWS = """\
from django.db.models import Q

from app.models import Order


def every_path(user, other):
    q = Q()
    q |= Q(owner=user)
    if other:
        q |= Q(owner=other)
    return list(Order.objects.filter(q))


def only_in_a_branch(user):
    q = Q()
    if user is not None:
        q |= Q(owner=user)
    return list(Order.objects.filter(q))  # line 18


def widened_beyond_the_owner(user):
    q = Q(kind="public")
    q |= Q(owner=user)
    return list(Order.objects.filter(q))  # line 24


def narrowed_on_every_path(user, kind):
    q = Q(kind=kind)
    q &= Q(owner=user)
    return list(Order.objects.filter(q))
"""


def test_a_q_built_clause_by_clause_bounds_only_what_every_path_keeps(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "__init__.py").write_text("", encoding="utf-8")
    (app / "models.py").write_text(
        "from django.db import models\n\n\nclass Order(models.Model):\n"
        "    kind = models.TextField()\n",
        encoding="utf-8",
    )
    (app / "views.py").write_text(VIEWS, encoding="utf-8")
    sizes = TableSizes(tables={"app_order": 900_000}, source="t")
    result = lint_paths([str(tmp_path)], LintConfig(sizes=sizes))
    assert {f.row for f in result.findings if f.code == "MB101"} == {18, 24}
