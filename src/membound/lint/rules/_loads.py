"""Whether an unbounded load of a whole table is a finding, a hint, or nothing.

The same line — every row of a table loaded at once — is a risk or no risk by the table's size
alone: a migration over every order line is the job that gets OOM-killed, the same migration
over the configured currencies is fine, and nothing in the line tells them apart. So a load is
a **finding** only with evidence that its table is big:

* its size (``--db``, ``--sizes``: at least ``small-table-rows``), in any context;
* the user's ``large-models``;
* the code itself: in a batch job, the loop over the rows writes or deletes each of them
  (``obj.save()``, ``obj.delete()``, ``session.delete(obj)``, a ``bulk_update`` per batch) — a
  data job over the whole table, which nobody writes for a handful of rows —; anywhere, the
  table is one a framework appends to on every event (the admin's action log, sessions, task
  results, a model's history: :data:`EVENT_TABLES`).

A table known to be small (by its size or ``small-models``) is never reported. Without any
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
#: Calls on a loaded row that write or delete it.
_ROW_WRITES = frozenset({"save", "delete"})
#: Session calls that write or delete a row handed to them.
_SESSION_WRITES = frozenset({"delete", "merge"})
#: Calls that write many rows at once (a batch of the loaded ones).
_BULK_WRITES = frozenset(
    {"bulk_update", "bulk_create", "bulk_save_objects", "bulk_update_mappings"}
)


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


def _loop_of(ctx: ModuleContext, node: ast.AST) -> ast.For | ast.AsyncFor | None:
    """The loop that iterates ``node`` (directly, or through a name it is assigned to)."""
    parent = ctx.parent(node)
    if isinstance(parent, (ast.For, ast.AsyncFor)) and parent.iter is node:
        return parent
    if isinstance(parent, ast.Assign) and len(parent.targets) == 1:
        target = parent.targets[0]
        if isinstance(target, ast.Name):
            scope = ctx.scope_of(node)
            for loop in ctx.for_loops():
                if (
                    isinstance(loop.iter, ast.Name)
                    and loop.iter.id == target.id
                    and ctx.scope_of(loop) is scope
                    and loop.lineno > parent.lineno
                ):
                    return loop
    return None


def _rooted_at(expr: ast.AST, names: set[str]) -> bool:
    while isinstance(expr, (ast.Attribute, ast.Subscript)):
        expr = expr.value
    return isinstance(expr, ast.Name) and expr.id in names


def writes_each_row(ctx: ModuleContext, node: ast.AST) -> bool:
    """The loop over the rows ``node`` loads writes or deletes each of them: a data job over
    the whole table (``for o in Order.objects.all(): o.total = …; o.save()``)."""
    loop = _loop_of(ctx, node)
    if loop is None:
        return False
    rows = {n.id for n in ast.walk(loop.target) if isinstance(n, ast.Name)}
    if not rows:
        return False
    for inner in ast.walk(ast.Module(body=loop.body, type_ignores=[])):
        if not isinstance(inner, ast.Call) or not isinstance(inner.func, ast.Attribute):
            continue
        name = inner.func.attr
        if name in _ROW_WRITES and _rooted_at(inner.func.value, rows):
            return True
        if name in _SESSION_WRITES and any(_rooted_at(a, rows) for a in inner.args):
            return True
        if name in _BULK_WRITES:
            return True
    return False


def judge_load(
    ctx: ModuleContext,
    node: ast.AST,
    code: str,
    chain: Sequence[Link] | None = None,
    execute: ast.Call | None = None,
) -> Judged | None:
    """Judge the unbounded load at ``node`` (its query ``chain``, run by ``execute`` when
    given): a finding, a hint, or None (not reported). See the module docstring."""
    declared = ctx.model_size(model_name(ctx, chain)) if chain else None
    if declared == "small":
        return None
    size = query_size(ctx, chain, execute) if declared is None else None
    if size is not None and size.small:
        return None
    if size is None and declared is None and feeds_choices(ctx, node):
        return None
    said = "" if size is None else f", {size.words()}"
    job = batch_job(ctx, node)
    if declared == "large" or size is not None:
        return Judged(f" in {job}{said}" if job else said, "finding")
    if chain and _event_table(ctx, chain):
        events = ", a table the framework appends to on every event"
        return Judged(f" in {job}{events}" if job else events, "finding")
    if job is not None:
        if writes_each_row(ctx, node):
            return Judged(f" in {job}, which writes every row it loads", "finding")
        return Judged(f" in {job}", "hint")
    if code in ctx.preview:
        return Judged("", "hint")
    return None
