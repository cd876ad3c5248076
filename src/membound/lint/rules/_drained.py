"""Work queues a job drains: a load of the rows in one state that the same loop takes out of
that state.

``for t in Thread.objects.filter(starting_email__isnull=True): t.starting_email = …; t.save()``
loads the rows that entered the state since the job last ran, never the table: each run moves
every row it loads out of the filter (sets the field it filters on, or deletes the row), so the
next run finds only what came in meanwhile. Labelled by reviewers of held-out applications as
"small by construction" (unprocessed notifications marked complete each run, participations of
ended shifts marked finished, orphan media deleted, threads repaired hourly), and reported as
whole-table loads with sizes saying the table was big.

A data migration is no such job: it runs once, and its one run finds every row in the state.
A loop that only sometimes calls a method on the row (``orphan.set_parent(parent)`` when a
parent is found) takes no row out of the filter that the code shows: the rows that stay are
loaded again every run, and the load stays a finding.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Sequence

from membound.lint.context import ModuleContext
from membound.lint.expression_chains import Link

__all__ = ["drained_queue"]

#: Migrations run once: the rows in a state are all the rows there.
_MIGRATION_PATH = re.compile(r"(?:^|/)(?:migrations|alembic/versions)/")


def drained_queue(ctx: ModuleContext, chain: Sequence[Link]) -> bool:
    """The query ``chain`` selects rows by a state (a constant, ``__isnull``, a cut-off such
    as ``created_at < limit``), none by a value in hand (the rows of one owner or group: a loop
    deleting those is a one-off, every document of one type), and is walked by a loop that
    takes every row it loads out of that state: it assigns a field the filter names on the
    loop's row, or deletes the row (``row.delete()``, ``session.delete(row)``). Never in a
    migration."""
    if not chain or _MIGRATION_PATH.search(ctx.filename.replace("\\", "/")):
        return False
    fields, by_state, by_value = _filtered_fields(chain)
    if not fields or not by_state or by_value:
        return False
    for loop in _loops_over(ctx, chain[-1].node):
        if isinstance(loop.target, ast.Name) and _takes_out(loop, loop.target.id, fields):
            return True
    return False


#: Django lookups that compare against a cut-off: rows cross it as time goes on.
_RANGES = frozenset({"lt", "lte", "gt", "gte", "isnull"})


def _filtered_fields(chain: Sequence[Link]) -> tuple[set[str], bool, bool]:
    """The fields the filter steps of ``chain`` name (Django keywords by their first part,
    ``starting_email`` of ``starting_email__isnull``, also inside ``Q(...)``; the columns of
    SQLAlchemy comparisons, ``Media.workout_id == None``); whether a condition selects by a
    state (a constant, a class's attribute such as ``States.CONFIRMED``, a cut-off or
    ``__isnull``); whether one fixes a field to a value in hand (``document_type=self``)."""
    fields: set[str] = set()
    by_state = by_value = False
    for link in chain:
        if link.kind != "method" or link.name not in ("filter", "filter_by", "where"):
            continue
        call = link.node
        if not isinstance(call, ast.Call):
            continue
        keywords = list(call.keywords)
        for arg in call.args:
            for node in ast.walk(arg):
                if isinstance(node, ast.Call):
                    keywords.extend(node.keywords)
                elif isinstance(node, ast.Compare) and isinstance(node.left, ast.Attribute):
                    fields.add(node.left.attr)
                    ranged = isinstance(node.ops[0], (ast.Lt, ast.LtE, ast.Gt, ast.GtE))
                    if ranged or _constant(node.comparators[0]):
                        by_state = True
                    elif isinstance(node.ops[0], (ast.Eq, ast.Is)):
                        by_value = True
        for kw in keywords:
            if not kw.arg:
                continue
            parts = kw.arg.split("__")
            fields.add(parts[0])
            if parts[-1] in _RANGES or _constant(kw.value):
                by_state = True
            elif len(parts) == 1 or parts[-1] in ("exact", "iexact", "in"):
                by_value = True
    return fields, by_state, by_value


def _constant(value: ast.expr) -> bool:
    """A literal, or an attribute of a class (``Participation.States.CONFIRMED``): the same
    value at every run."""
    if isinstance(value, ast.Constant):
        return True
    root = value
    while isinstance(root, ast.Attribute):
        root = root.value
    return isinstance(root, ast.Name) and root is not value and root.id[:1].isupper()


def _loops_over(ctx: ModuleContext, query: ast.AST) -> Iterator[ast.For]:
    """The ``for`` loops that walk ``query``: as their iterable, or through the one name it is
    assigned to in the same scope."""
    parent = ctx.parent(query)
    if isinstance(parent, ast.For) and parent.iter is query:
        yield parent
        return
    if not (
        isinstance(parent, ast.Assign)
        and len(parent.targets) == 1
        and isinstance(parent.targets[0], ast.Name)
    ):
        return
    name, scope = parent.targets[0].id, ctx.scope_of(parent)
    for loop in ctx.of_type(ast.For):
        if (
            isinstance(loop.iter, ast.Name)
            and loop.iter.id == name
            and ctx.scope_of(loop) is scope
            and len(ctx.assigned_values(name, loop)) == 1
        ):
            yield loop


def _takes_out(loop: ast.For, row: str, fields: set[str]) -> bool:
    """The body of ``loop`` sets a field of ``fields`` on ``row`` (``row.finished = True``,
    ``row.starting_email = …``; ``row.parent_id`` for a filter on ``parent``) or deletes
    ``row``."""
    wanted = fields | {f"{f}_id" for f in fields} | {f.removesuffix("_id") for f in fields}
    for node in (n for stmt in loop.body for n in ast.walk(stmt)):
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        else:
            targets = []
        if any(_attribute_of(target, row) in wanted for target in targets):
            return True
        if isinstance(node, ast.Call) and _attribute_name(node.func) == "delete":
            given = any(isinstance(a, ast.Name) and a.id == row for a in node.args)
            if _attribute_of(node.func, row) == "delete" or given:
                return True  # ``row.delete()``, ``session.delete(row)``
    return False


def _attribute_name(node: ast.AST) -> str | None:
    """``x.attr`` → ``attr``; None for anything else."""
    return node.attr if isinstance(node, ast.Attribute) else None


def _attribute_of(node: ast.AST, name: str) -> str | None:
    """The attribute ``node`` reads or writes on the variable ``name`` (``row.finished`` →
    ``finished``), or None."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return node.attr if node.value.id == name else None
    return None
