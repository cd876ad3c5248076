"""Batch code found through calls (issue 38): a plain function that a click command, a task
started through a dispatcher, or a task decorated with a project's own decorator built on
Celery's calls is a batch job; the same function called only from a view is not."""

from __future__ import annotations

from pathlib import Path

from membound.lint import LintConfig, lint_paths
from membound.lint.sizes import TableSizes

MODELS = """\
from django.db import models


class Certificate(models.Model):
    body = models.TextField()
"""

SERVICE = """\
from app.models import Certificate


def rotate_all():
    for cert in Certificate.objects.all():  # line 5: reached from the command
        print(cert)


def report():
    return [c for c in Certificate.objects.all() if c.body]  # line 10: a view calls it


def cleanup(repository):
    for cert in Certificate.objects.all():  # line 14: dispatched as a task
        print(cert, repository)


def annotate():
    for cert in Certificate.objects.all():  # line 19: a decorated task calls it
        print(cert)
"""

CLI = """\
import click

from app.service import rotate_all


@click.command()
def rotate():
    rotate_all()
"""

VIEWS = """\
from app.service import report


def index(request):
    return report()
"""

TASKS = """\
from app.celery import celery_app
from app.service import annotate, cleanup
from app.tasking import dispatch


def app_task(*args, **kwargs):
    return celery_app.task(*args, **kwargs)


@app_task
def annotate_everything():
    annotate()


def schedule_cleanup(repo):
    dispatch(cleanup, args=(repo,))
"""


def _tree(root: Path) -> None:
    files = {
        "app/__init__.py": "",
        "app/models.py": MODELS,
        "app/service.py": SERVICE,
        "app/cli.py": CLI,
        "app/views.py": VIEWS,
        "app/tasks.py": TASKS,
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_functions_reached_from_entry_points_are_batch_code(tmp_path: Path) -> None:
    _tree(tmp_path)
    result = lint_paths([str(tmp_path)], LintConfig())
    reported = {(f.row, f.kind) for f in (*result.findings, *result.hints) if f.code == "MB101"}
    # Without sizes, batch code is judged (a hint: nothing shows the table is big); the view's
    # helper is not batch code: nothing
    assert {(5, "hint"), (14, "hint"), (19, "hint")} == reported
    messages = {f.row: f.message for f in result.hints}
    assert "in code that the command `rotate` runs" in messages[5]
    assert "in code that the job `cleanup` runs" in messages[14]
    assert "in code that the task `annotate_everything` runs" in messages[19]


def test_with_sizes_batch_code_over_a_big_table_is_a_finding(tmp_path: Path) -> None:
    _tree(tmp_path)
    sizes = TableSizes(tables={"app_certificate": 2_000_000}, source="test")
    result = lint_paths([str(tmp_path)], LintConfig(sizes=sizes))
    found = {f.row for f in result.findings if f.code == "MB101"}
    assert {5, 10, 14, 19} == found  # a big table: the view's helper too


JOBS = """\
from django_extensions.management.jobs import DailyJob

from app.models import Certificate
from app.worker import CalibreTask


class Job(DailyJob):
    def execute(self):
        for cert in Certificate.objects.all():  # line 9: a cron job's body
            print(cert)


class Renew(CalibreTask):
    def run(self, worker_thread):
        for cert in Certificate.objects.all():  # line 15: a worker task's body
            print(cert)

    def execute(self):
        for cert in Certificate.objects.all():  # line 19: a task's other method
            print(cert)
"""


def test_a_job_classs_execute_and_a_task_classs_run_are_batch_code(tmp_path: Path) -> None:
    """django-extensions' cron jobs (``execute`` of a ``…Job``) and task classes (``run`` of a
    ``…Task``: Celery's, Luigi's, a project's worker task) are entry points; another method of
    the class is not."""
    _tree(tmp_path)
    (tmp_path / "app" / "jobs" / "daily").mkdir(parents=True)
    (tmp_path / "app" / "jobs" / "daily" / "renew.py").write_text(JOBS)
    result = lint_paths([str(tmp_path)], LintConfig())
    messages = {
        f.row: f.message for f in result.hints if f.code == "MB101" and "jobs" in f.filename
    }
    assert {9, 15} == set(messages), messages
    assert "in code that the job `renew.Job` runs" in messages[9]
    assert "in code that the task `renew.Renew` runs" in messages[15]
