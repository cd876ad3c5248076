"""Code that never runs loads nothing (issue 38): a whole-table load in a function nothing in
the project calls, or after a ``return``, is no finding; a function called in any way the code
shows (by name, a string, a template, a name built from a prefix, a decorator, an entry
point), or in a module nothing in the project imports (an API another project calls), keeps
its finding, and a run over part of a project judges no function uncalled."""

from __future__ import annotations

from pathlib import Path

from membound.lint import LintConfig, lint_paths

MODELS = """\
from django.db import models


class Post(models.Model):
    text = models.TextField()

    def unused_report(self):
        return [p.text for p in Post.objects.all()]  # line 8: nothing calls it

    def summary_for_template(self):
        return [p.text for p in Post.objects.all()]  # line 11: a template calls it
"""

HELPERS = """\
from app.models import Post
from django.db import transaction
from django.dispatch import receiver


def print_everything():
    for p in Post.objects.all():  # line 7: defined, never called
        print(p)


@transaction.atomic
def rewrite_everything():
    for p in Post.objects.all():  # line 13: wrapped, still never called
        p.save()


def named_in_a_string():
    for p in Post.objects.all():  # line 18: a schedule names it
        print(p)


def api_public_export():
    for p in Post.objects.all():  # line 23: called as getattr(api, "api_public_%s" % m)
        print(p)


@receiver("post_save")
def on_save(sender, **kwargs):
    for p in Post.objects.all():  # line 29: a decorator registers it
        print(p)


def called():
    for p in Post.objects.all():  # line 34: called below
        print(p)


def caller():
    called()
    return
    for p in Post.objects.all():  # line 41: after the return
        print(p)


def only_tests_call_it():
    for p in Post.objects.all():  # line 46: only a test calls it
        print(p)
"""

SCHEDULE = """\
import helpers

SCHEDULE = {"nightly": "app.helpers.named_in_a_string"}


def dispatch(api, method):
    return getattr(api, "api_public_%s" % method)()


def main():
    '''Runs the caller; a docstring naming :func:`print_everything` calls nothing.'''
    helpers.caller()
"""

API = """\
from app.models import Post
from django.db import transaction


@transaction.atomic
def export_for_the_billing_tool():
    return [p.text for p in Post.objects.all()]  # line 7: another project imports this module
"""

TEST = """\
from app.api import export_for_the_billing_tool
from app.helpers import only_tests_call_it


def test_it():
    only_tests_call_it()
"""


def _project(root: Path, *, marker: bool = True) -> Path:
    app = root / "app"
    (app / "templates").mkdir(parents=True)
    (app / "tests").mkdir()
    (app / "__init__.py").write_text("", encoding="utf-8")
    (app / "models.py").write_text(MODELS, encoding="utf-8")
    (app / "helpers.py").write_text(HELPERS, encoding="utf-8")
    (app / "schedule.py").write_text(SCHEDULE, encoding="utf-8")
    (app / "api.py").write_text(API, encoding="utf-8")
    (app / "tests" / "test_helpers.py").write_text(TEST, encoding="utf-8")
    # a module of tests beside the code, named as Django's runner finds them (``test*.py``)
    (app / "tests_views.py").write_text(TEST, encoding="utf-8")
    (app / "templates" / "post.html").write_text(
        "<p>{{ post.summary_for_template }}</p>\n", encoding="utf-8"
    )
    if marker:
        (root / "pyproject.toml").write_text('[project]\nname = "app"\n', encoding="utf-8")
    return root


def _reported(root: Path, path: str = "") -> set[tuple[str, int]]:
    config = LintConfig(large_models=("Post",))
    result = lint_paths([str(root / path) if path else str(root)], config)
    return {(Path(f.filename).name, f.row) for f in result.findings}


def test_a_load_in_code_that_never_runs_is_no_finding(tmp_path: Path) -> None:
    found = _reported(_project(tmp_path))
    never = {("models.py", 8), ("helpers.py", 7), ("helpers.py", 13), ("helpers.py", 41)}
    never |= {("helpers.py", 46)}
    runs = {("models.py", 11), ("helpers.py", 18), ("helpers.py", 23), ("helpers.py", 29)}
    runs |= {("helpers.py", 34), ("api.py", 7)}  # a module only tests import: an API
    assert not found & never, sorted(found & never)
    assert runs <= found, sorted(runs - found)


def test_a_run_over_part_of_a_project_judges_no_function_uncalled(tmp_path: Path) -> None:
    # No pyproject.toml, setup.py, manage.py... at the top: callers may live elsewhere.
    found = _reported(_project(tmp_path, marker=False))
    assert {("models.py", 8), ("helpers.py", 7), ("helpers.py", 13)} <= found
    # Statements after a return never run, whatever was linted.
    assert ("helpers.py", 41) not in found
    # One folder of a project with its marker: still a part of it.
    part = _reported(_project(tmp_path / "whole"), "app")
    assert ("helpers.py", 7) in part


CALLED_IN_OTHER_WAYS = {
    "app/__init__.py": "",
    "app/models.py": "from django.db import models\n\n\nclass Post(models.Model):\n    pass\n",
    "app/jobs.py": (
        "from app.models import Post\n\n\n"
        "def purgé():\n    for p in Post.objects.all():  # line 5: views.py calls purgé()\n"
        "        p.delete()\n\n\n"
        "def purge_all():\n    for p in Post.objects.all():  # line 10: a console script\n"
        "        p.delete()\n\n\n"
        "class Reports:\n    def run(self, kind):\n"
        "        return getattr(self, kind + '_report')()\n\n"
        "    def sales_report(self):\n"
        "        return list(Post.objects.all())  # line 19: named from a suffix\n"
    ),
    "app/mixins.py": (
        "from app.models import Post\n\n\nclass StatsMixin(object):\n"
        "    def get_context_data(self, **kwargs):\n"
        "        return {'posts': list(Post.objects.all())}  # line 6: Django calls it\n"
    ),
    "app/views.py": (
        "from django.views.generic import TemplateView\n\n"
        "from app.jobs import Reports, purgé\nfrom app.mixins import StatsMixin\n\n\n"
        "class StatsView(StatsMixin, TemplateView):\n    template_name = 'stats.html'\n\n\n"
        "def purge(request):\n    purgé()\n    return Reports().run('sales')\n"
    ),
    "pyproject.toml": '[project]\nname = "app"\n[project.scripts]\npurge = "app.jobs:purge_all"\n',
}


def test_functions_called_in_other_ways_keep_their_findings(tmp_path: Path) -> None:
    # Review findings: a Unicode name, a console script in pyproject.toml, a name built from a
    # suffix, a plain mixin whose method Django calls through the view it is mixed into.
    for name, text in CALLED_IN_OTHER_WAYS.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    found = _reported(tmp_path)
    assert {("jobs.py", 5), ("jobs.py", 10), ("jobs.py", 19), ("mixins.py", 6)} <= found, found
    # A caller in a file the run leaves out (excluded, unreadable) may be anywhere: with an
    # exclude, no function is judged uncalled.
    (tmp_path / "app" / "views.py").write_text("", encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "app"\n[tool.membound.lint]\nexclude = ["scripts"]\n', encoding="utf-8"
    )
    config = LintConfig(large_models=("Post",), exclude=("scripts",))
    result = lint_paths([str(tmp_path)], config)
    assert ("jobs.py", 5) in {(Path(f.filename).name, f.row) for f in result.findings}
