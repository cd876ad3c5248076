"""A batch's ``executemany`` at driver speed: the statement compiled once, the rows' parameters
handed to the driver as they are.

``Connection.execute(update, [params, ...])`` runs SQLAlchemy's per-row parameter processing
(``construct_params``: a dict built and checked for every row, about 2 µs each) before the
driver's ``executemany``; on a per-row UPDATE that was a third of ``BatchWriter``'s time. Where
that processing does nothing — an UPDATE, DELETE or ``text()`` whose bind parameters have no
type processors, no expanding (``IN``) parameters, and rows that all carry the same keys — the
statement is compiled once for the batch's keys and the rows go to
``Connection.exec_driver_sql`` (dicts for the named paramstyles, tuples in the compiled order
for the positional ones). Everything else goes through ``Connection.execute`` as before: INSERT
keeps SQLAlchemy's ``insertmanyvalues``, which is faster than ``executemany``. On PostgreSQL a
keyed UPDATE or DELETE goes further: the whole batch as one statement over arrays
(``unnest_batch.py``), where that does the same work.

Written here: SQLAlchemy exposes no switch that skips its per-row processing for an executemany,
and the driver-level call needs the compiled text and parameter order, which only the dialect
knows.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

# SQLAlchemy is the ``sql`` extra: this module imports without it, as ``writer.py`` does, and
# runs only once a writer exists (which needs it).
with contextlib.suppress(ImportError):
    import sqlalchemy as sa
    from sqlalchemy.sql.dml import Delete, Update

from membound.bound.sql.unnest_batch import UnnestPlan, unnest_plan

__all__ = ["execute_many"]

#: Compiled statements kept per process (statement, keys, dialect): a job uses one or two. Each
#: entry keeps its statement alive, so the statement's id in the key is not reused meanwhile.
_KEEP = 16
_compiled: OrderedDict[
    tuple[int, tuple[str, ...], str], tuple[Any, _Plan | None, UnnestPlan | None]
] = OrderedDict()


class _Plan:
    """The driver SQL of one statement for one set of keys, and how to turn a row into the
    driver's parameters."""

    __slots__ = ("compiled", "defaults", "order", "sql")

    def __init__(
        self, compiled: Any, order: tuple[str, ...] | None, defaults: dict[str, Any]
    ) -> None:
        self.compiled = compiled
        self.sql: str = compiled.string
        self.order = order
        self.defaults = defaults

    def parameters(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        defaults = self.defaults
        if self.order is None:
            if not defaults:
                return list(rows)
            return [{**defaults, **row} for row in rows]
        order = self.order
        if defaults:
            merged = ({**defaults, **row} for row in rows)
            return [tuple([m[n] for n in order]) for m in merged]
        return [tuple([row[n] for n in order]) for row in rows]


def _plan(conn: Any, statement: Any, keys: tuple[str, ...]) -> _Plan | None:
    """How to send ``statement`` for rows with ``keys``; None when SQLAlchemy must process
    each row (types with bind processors, expanding parameters, a missing required value)."""
    if not isinstance(statement, Update | Delete | sa.TextClause):
        return None
    dialect = conn.dialect
    compiled = statement.compile(dialect=dialect, column_keys=list(keys), for_executemany=True)
    if compiled._bind_processors or "POSTCOMPILE" in compiled.string:
        return None
    if any(b.expanding or b.literal_execute for b in compiled.binds.values()):
        return None
    names = set(compiled.bind_names.values())
    defaults: dict[str, Any] = {}
    for bind in compiled.binds.values():
        name = compiled.bind_names.get(bind, bind.key)
        if name in keys:
            continue
        if bind.callable is not None or (bind.required and bind.value is None):
            return None  # a value each row must give, or one computed per execution
        defaults[name] = bind.value
    if not set(keys) <= names:
        return None  # keys that are no parameter: let SQLAlchemy decide what they mean
    order = tuple(compiled.positiontup) if compiled.positiontup is not None else None
    if order is None and not dialect.paramstyle.endswith(("named", "pyformat")):
        return None
    return _Plan(compiled, order, defaults)


def execute_many(conn: Any, statement: Any, rows: list[Any]) -> None:
    """``conn.execute(statement, rows)``, through the driver directly where that is the same
    (see the module docstring)."""
    first = rows[0]
    if not isinstance(first, Mapping) or not first:
        conn.execute(statement, rows)
        return
    keys = tuple(first)
    if not all(isinstance(row, Mapping) and row.keys() == first.keys() for row in rows):
        conn.execute(statement, rows)
        return
    cache_key = (id(statement), keys, conn.dialect.name)
    if cache_key in _compiled:
        _compiled.move_to_end(cache_key)
        _, plan, unnest = _compiled[cache_key]
    else:
        plan = _plan(conn, statement, keys)
        unnest = None if plan is None else unnest_plan(conn, statement, keys, plan.compiled)
        # Kept alive with its plans: the statement's id stays its own.
        _compiled[cache_key] = (statement, plan, unnest)
        while len(_compiled) > _KEEP:
            _compiled.popitem(last=False)
    if plan is None:
        conn.execute(statement, rows)
        return
    if unnest is not None and len(rows) > 1 and unnest.run(conn, rows):
        return
    conn.exec_driver_sql(plan.sql, plan.parameters(rows))
