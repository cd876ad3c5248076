"""Whether an unbounded load of a whole table is a finding, a hint, or nothing.

The same line — every row of a table loaded at once — is a risk or no risk by the table's size
alone: a migration over every order line is the job that gets OOM-killed, the same migration
over the configured currencies is fine, and nothing in the line tells them apart. So a load is
a **finding** only with evidence that its table is big:

* its size (``--db``, ``--sizes``: at least ``small-table-rows``), in any context;
* the user's ``large-models``;
* the code itself: the table is one a framework appends to on every event (the admin's action
  log, sessions, task results, a model's history: :data:`EVENT_TABLES`).

Not evidence, though it looks like it: a batch job's loop that writes or deletes every row it
loads. On a held-out application 48 of 58 such data migrations walked tables an administrator
configures (themes, workflows, credentials); those stay hints.

A table known to be small (by its size or ``small-models``) is never reported, nor is code
that never runs (after a ``return``, or a function nothing in the project calls:
``rules/_unreached.py``). Without any
evidence, a load that runs in a batch job (where whole tables are walked unattended) is a
**hint**: listed apart (``--hints``), never a finding, never in the exit code; one line counts
the hints and says how to give sizes. Outside batch jobs such loads stay silent (pagination,
permissions and ownership bound them there more often than not), unless the rule's preview
variants are asked for, which makes them hints too.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass

from membound.lint.context import ModuleContext
from membound.lint.expression_chains import Link
from membound.lint.rules._models import get_model_call, model_name, model_path
from membound.lint.rules._queries import batch_job, feeds_choices
from membound.lint.rules._sizes import query_size
from membound.lint.rules._unreached import never_runs

__all__ = ["EVENT_TABLES", "Judged", "judge_load"]

#: Models the frameworks append a row to on every event, by the path code imports them from:
#: they grow without bound, whatever the application.
EVENT_TABLES = frozenset(
    {"django.contrib.admin.models.LogEntry", "django.contrib.sessions.models.Session",
     "django_celery_results.models.TaskResult", "django_celery_results.models.GroupResult",
     "auditlog.models.LogEntry", "reversion.models.Version", "reversion.models.Revision",
     "actstream.models.Action", "axes.models.AccessAttempt", "axes.models.AccessLog",
     "notifications.models.Notification", "django_q.models.Task", "silk.models.Request"}
)  # fmt: skip
#: The same, as a migration names them: ``apps.get_model("admin", "LogEntry")``.
_EVENT_LABELS = frozenset(
    {("admin", "LogEntry"), ("sessions", "Session"), ("django_celery_results", "TaskResult"),
     ("auditlog", "LogEntry"), ("reversion", "Version"), ("actstream", "Action")}
)  # fmt: skip
#: A manager that django-simple-history adds: every change of the model appends a row there.
_HISTORY_MANAGERS = frozenset({"history"})


@dataclass(frozen=True)
class Judged:
    """What a load is: where it runs and why it counts (words for the message), and its kind."""

    where: str
    """`` in a migration, ≈1.2M rows of `files` (pg_class estimate)`` (may be empty)."""
    kind: str
    """``"finding"`` or ``"hint"``."""


def _event_table(ctx: ModuleContext, chain: Sequence[Link]) -> bool:
    """The chain loads a table a framework appends to on every event."""
    found = get_model_call(ctx, chain)
    if found is not None and found in _EVENT_LABELS:
        return True
    if len(chain) > 1 and chain[1].kind == "attr" and chain[1].name in _HISTORY_MANAGERS:
        return True
    name = model_name(ctx, chain)
    return name is not None and model_path(ctx, name) in EVENT_TABLES


def judge_load(
    ctx: ModuleContext,
    node: ast.AST,
    code: str,
    chain: Sequence[Link] | None = None,
    execute: ast.Call | None = None,
    *,
    rendered: bool = False,
) -> Judged | None:
    """Judge the unbounded load at ``node`` (its query ``chain``, run by ``execute`` when
    given): a finding, a hint, or None (not reported). See the module docstring.
    ``rendered``: the load runs when a page renders (a form field's options), never in the
    batch job or module-level code ``node`` may sit in."""
    declared = ctx.model_size(model_name(ctx, chain)) if chain else None
    if declared == "small" or never_runs(ctx, node):
        return None
    size = query_size(ctx, chain, execute) if declared is None else None
    if size is not None and size.small:
        return None
    if size is None and declared is None and feeds_choices(ctx, node):
        return None
    said = "" if size is None else f", {size.words()}"
    job = None if rendered else batch_job(ctx, node)
    if declared == "large" or size is not None:
        return Judged(f" in {job}{said}" if job else said, "finding")
    if chain and _event_table(ctx, chain):
        events = ", a table the framework appends to on every event"
        return Judged(f" in {job}{events}" if job else events, "finding")
    if job is not None:
        # A loop that writes every row it loads is no evidence of the table's size: on a held-out
        # application 48 of 58 such data migrations walked tables an administrator configures.
        return Judged(f" in {job}", "hint")
    if code in ctx.preview:
        return Judged("", "hint")
    return None
