"""A flush's run of items sharing one statement, sent the fastest way that writes what the same
statements run one by one would write (DESIGN §6 G9).

A run's items are first split where their keys change: SQLAlchemy compiles an INSERT's
columns, and the SET of an UPDATE without ``values()``, from the item's own keys, so items with
other keys are other statements. Each run of items with the same keys goes one of four ways,
tried in order:

1. **One statement** on PostgreSQL (``unnest_batch.py``): a keyed UPDATE or DELETE over
   arrays of the items' values, where the statement, the table's catalog and the flush's
   values prove it the same work.
2. **The driver's executemany**: ``Connection.execute(update, [params, ...])`` runs SQLAlchemy's
   per-row parameter processing (``construct_params``: a dict built and checked for every row,
   about 2 µs each) before the driver's ``executemany``; on a per-row UPDATE that was a third of
   ``BatchWriter``'s time. For an UPDATE, DELETE or ``text()`` without expanding (``IN``)
   parameters or values computed in Python per row, the statement is compiled once — with the
   connection's ``schema_translate_map``, SQLAlchemy's escaped parameter names and its type
   processors applied to each value, as its own execution does — and the items go to
   ``Connection.exec_driver_sql``.
3. **SQLAlchemy's own executemany** (``Connection.execute(statement, [params, ...])``) for the
   rest, where it runs what each item alone would: the statement compiles for an executemany
   as it does for one item (not so for an UPDATE that sets nothing, which an executemany
   compiles into a ``SET`` of the table's first column), and no parameter is rendered per
   execution (an ``IN`` list, ``literal_execute``). An INSERT that the dialect sends as
   multi-row ``VALUES`` pages (``insertmanyvalues``: with RETURNING, or psycopg2's batch mode)
   must have no ``FOR EACH STATEMENT`` INSERT trigger, which would fire once a page.
4. **Item by item**: ``Connection.execute(statement, params)`` for each item, the reference
   itself, for everything else.

Row by row on PostgreSQL means each statement planned for its own values: psycopg prepares a
statement it runs repeatedly, and once PostgreSQL switches such a statement to its generic
plan it no longer converts the parameters while planning, so an item whose key meets no row
but whose value does not fit its column (too long, out of range, not in its domain) would pass
where the statement run alone fails. A flush that runs any item row by row sets
``plan_cache_mode = force_custom_plan`` for its transaction first.

Written here: SQLAlchemy exposes no switch that skips its per-row processing for an executemany,
and the driver-level call needs the compiled text and parameter order, which only the dialect
knows.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

# SQLAlchemy is the ``sql`` extra: this module imports without it, as ``writer.py`` does, and
# runs only once a writer exists (which needs it).
with contextlib.suppress(ImportError):
    import sqlalchemy as sa
    from sqlalchemy.sql.dml import Delete, Insert, Update

from membound.bound.sql.catalog import TableFacts, qualified_name, read_table_facts
from membound.bound.sql.unnest_batch import UnnestPlan, unnest_plan

__all__ = ["ONE_STATEMENT", "ROW_BY_ROW", "SQLALCHEMY", "BatchPlans", "DriverPlan", "execute_many"]

#: How a run of items was sent (:meth:`BatchPlans.execute`'s answer): ways 1, 2, and 3 or 4
#: of the module docstring.
ONE_STATEMENT = "one statement"
ROW_BY_ROW = "row by row"
SQLALCHEMY = "sqlalchemy"

#: Statements a writer keeps plans for: a job uses one or two.
_KEEP = 16

#: Execution options that change nothing SQLAlchemy compiles or sends; any other one (a
#: listener's own, ``no_parameters``, …) keeps SQLAlchemy's path.
_HARMLESS_OPTIONS = frozenset(
    {
        "schema_translate_map",
        "isolation_level",
        "compiled_cache",
        "logging_token",
        "stream_results",
        "max_row_buffer",
        "yield_per",
        "preserve_rowcount",
        "insertmanyvalues_page_size",
        "postgresql_readonly",
        "postgresql_deferrable",
        "driver_column_names",
        "sqlite_raw_colnames",
    }
)


class DriverPlan:
    """One statement compiled for one set of item keys, and how items become the driver's
    parameters."""

    __slots__ = ("compiled", "fields", "getter", "names", "positional", "sql", "verbatim")

    def __init__(
        self,
        compiled: Any,
        fields: Sequence[tuple[str, str | None, Any, Callable[[Any], Any] | None]],
        positional: bool,
        verbatim: bool,
    ) -> None:
        self.compiled = compiled
        self.sql: str = compiled.string
        self.fields = tuple(fields)
        """Per placeholder (in the positional order where the paramstyle has one): its name,
        the item key it takes its value from (None: the statement's own ``default``), and
        SQLAlchemy's processor of the value."""
        self.names = tuple(name for name, _, _, _ in self.fields)
        self.positional = positional
        self.verbatim = verbatim
        """The items can go as they are: named placeholders equal to their keys, no
        processor, no value of the statement's own."""
        self.getter = _positional_getter(self.fields) if positional else None
        """Positional placeholders without processors (SQLite's usual case): one function
        call per item builds its tuple."""

    def parameters(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        """``rows`` as the driver's parameters for :attr:`sql`."""
        if self.verbatim:
            return list(rows)
        if self.getter is not None:
            return list(map(self.getter, rows))
        fields = self.fields
        out: list[Any] = []
        for row in rows:
            values = [
                (row[key] if key is not None else default)
                if processor is None
                else processor(row[key] if key is not None else default)
                for _, key, default, processor in fields
            ]
            out.append(
                tuple(values) if self.positional else dict(zip(self.names, values, strict=True))
            )
        return out


def _positional_getter(
    fields: Sequence[tuple[str, str | None, Any, Callable[[Any], Any] | None]],
) -> Callable[[Mapping[str, Any]], tuple[Any, ...]] | None:
    """A function turning an item into its positional tuple, when no field has a processor:
    made from source (``lambda r, c=c: (c[0], r['uid'])``; keys written with ``repr``, constants
    passed in), as a loop over the fields costs a microsecond an item and this a fifth of it."""
    if not fields or any(processor is not None for _, _, _, processor in fields):
        return None
    constants = tuple(default for _, key, default, _ in fields if key is None)
    parts: list[str] = []
    taken = 0
    for _, key, _, _ in fields:
        if key is None:
            parts.append(f"c[{taken}]")
            taken += 1
        else:
            parts.append(f"r[{key!r}]")
    # The constants come in as a default argument: one call an item.
    made: Callable[[Mapping[str, Any]], tuple[Any, ...]] = eval(
        f"lambda r, c=c: ({', '.join(parts)},)", {"c": constants}
    )
    return made


def compile_options(conn: Any) -> dict[str, Any] | None:
    """The options SQLAlchemy would compile ``conn``'s statements with (schema translation),
    or None when the connection has execution options this module does not reproduce."""
    options = conn.get_execution_options()
    if not set(options) <= _HARMLESS_OPTIONS:
        return None
    translate = options.get("schema_translate_map")
    if translate:
        return {"schema_translate_map": translate, "render_schema_translate": True}
    return {}


def driver_plan(conn: Any, statement: Any, keys: tuple[str, ...]) -> DriverPlan | None:
    """How to send ``statement`` for items with ``keys`` to the driver, or None when
    SQLAlchemy must process each item (expanding parameters, values computed in Python per
    row, a missing required value, keys that are no parameter, execution options of its own)."""
    if not isinstance(statement, Update | Delete | sa.TextClause):
        return None
    options = compile_options(conn)
    if options is None:
        return None
    dialect = conn.dialect
    compiled = statement.compile(dialect=dialect, column_keys=list(keys), **options)
    if compiled.update_prefetch or compiled.insert_prefetch or _per_execution(compiled):
        return None
    escaped = compiled.escaped_bind_names
    processors: dict[str, Any] = dict(compiled._bind_processors)
    by_name: dict[str, tuple[str, str | None, Any, Callable[[Any], Any] | None]] = {}
    used: set[str] = set()
    for bind, name in compiled.bind_names.items():
        placeholder = escaped.get(name, name)
        processor = processors.get(name)
        # SQLAlchemy's construct_params: the item's value under the parameter's key, else
        # under its compiled name, else the statement's own value.
        key = bind.key if bind.key in keys else (name if name in keys else None)
        if key is None:
            if bind.callable is not None or (bind.required and bind.value is None):
                return None
            by_name[name] = (placeholder, None, bind.effective_value, processor)
        else:
            used.add(key)
            by_name[name] = (placeholder, key, None, processor)
    if set(keys) - used:
        return None  # keys that are no parameter: let SQLAlchemy decide what they mean
    if compiled.positiontup is not None:
        fields = [by_name[name] for name in compiled.positiontup]
        positional = True
    elif dialect.paramstyle.endswith(("named", "pyformat")):
        fields = list(by_name.values())
        positional = False
    else:
        return None
    verbatim = not positional and all(
        placeholder == key and processor is None for placeholder, key, _, processor in fields
    )
    return DriverPlan(compiled, fields, positional, verbatim)


def _per_execution(compiled: Any) -> bool:
    """Whether a parameter of ``compiled`` is rendered into the SQL at each execution (an
    expanding ``IN`` list, ``literal_execute``): no executemany can send it."""
    if "POSTCOMPILE" in compiled.string:
        return True
    return any(b.expanding or b.literal_execute for b in compiled.binds.values())


def executemany_refusal(
    conn: Any, statement: Any, keys: tuple[str, ...], facts: Callable[[Any], TableFacts | None]
) -> str | None:
    """None when SQLAlchemy's own executemany of ``statement`` for items with ``keys`` runs
    what each item run alone runs (way 3 of the module docstring), else why not.

    Args:
        conn: the flush's connection.
        statement: the statement.
        keys: the items' parameter names.
        facts: the catalog's facts about a table (for an INSERT sent in multi-row pages).
    """
    options = compile_options(conn) or {}
    dialect = conn.dialect
    try:
        alone = statement.compile(dialect=dialect, column_keys=list(keys), **options)
        many = statement.compile(
            dialect=dialect, column_keys=list(keys), for_executemany=True, **options
        )
    except sa.exc.SQLAlchemyError:
        return "it does not compile for these keys (each item runs alone and raises)"
    if _per_execution(alone):
        return "an IN list or a parameter rendered at each execution"
    if alone.string != many.string:
        return "an executemany compiles it otherwise than one item"
    if isinstance(statement, Insert) and dialect.name == "postgresql":
        returning = bool(statement._returning)
        pages = returning or bool(getattr(dialect, "use_insertmanyvalues_wo_returning", False))
        if pages and getattr(dialect, "use_insertmanyvalues", False):
            found = facts(statement.table)
            if found is None:
                return "INSERT in multi-row pages into a table the catalog does not describe"
            if found.insert_statement_triggers:
                trigger = found.insert_statement_triggers[0]
                return f"INSERT in multi-row pages fires trigger {trigger} once a page"
    return None


class _Plans:
    """The ways one statement may be sent for one set of keys (a plan, or why there is none)."""

    __slots__ = ("driver", "many", "reason", "statement", "unnest")

    def __init__(
        self,
        statement: Any,
        driver: DriverPlan | None,
        reason: str,
        unnest: UnnestPlan | str,
        many: str | None,
    ) -> None:
        self.statement = statement  # kept alive: its id in the cache key stays its own
        self.driver = driver
        self.reason = reason
        self.unnest = unnest
        self.many = many
        """None when SQLAlchemy's executemany may send the items, else why each goes alone."""


class BatchPlans:
    """The plans one writer makes for its statements, and the catalog facts they rest on.

    A writer lives for one job: facts read at its first flush of a statement hold for the rest
    of its run (DDL committed meanwhile is not seen). At most 16 statements are kept.
    """

    def __init__(self) -> None:
        self._plans: OrderedDict[tuple[int, tuple[str, ...], str], _Plans] = OrderedDict()
        self._facts: OrderedDict[str, TableFacts | None] = OrderedDict()
        self._custom_for: Any = None
        self.sent: dict[str, int] = {ONE_STATEMENT: 0, ROW_BY_ROW: 0, SQLALCHEMY: 0}
        """Items sent each way so far."""
        self.reason: str | None = None
        """Why the last items not sent as one statement were not (None before any)."""

    def execute(self, conn: Any, statement: Any, rows: list[Any]) -> str:
        """Send ``rows`` (the items' parameters) with ``statement`` on ``conn``, in its
        transaction, in order; returns which way the last of them went
        (:data:`ONE_STATEMENT`, :data:`ROW_BY_ROW` or :data:`SQLALCHEMY`)."""
        way = SQLALCHEMY
        for run in _runs_of_same_keys(rows):
            way = self._send(conn, statement, run)
            self.sent[way] += len(run)
        return way

    def _send(self, conn: Any, statement: Any, rows: list[Any]) -> str:
        first = rows[0]
        if not isinstance(first, Mapping) or not first:
            return self._item_by_item(conn, statement, rows, "items without parameters")
        keys = tuple(first)
        plans = self._plans_for(conn, statement, keys)
        driver = plans.driver
        if driver is None:
            if plans.many is not None:
                return self._item_by_item(conn, statement, rows, plans.many)
            return self._sqlalchemy(conn, statement, rows, plans.reason)
        unnest = plans.unnest
        if isinstance(unnest, UnnestPlan) and len(rows) > 1:
            refused = unnest.run(conn, rows, lambda missed: self._row_by_row(conn, driver, missed))
            if refused is None:
                return ONE_STATEMENT
            self.reason = refused
        elif isinstance(unnest, str):
            self.reason = unnest
        self._row_by_row(conn, driver, rows)
        return ROW_BY_ROW

    def _sqlalchemy(self, conn: Any, statement: Any, rows: list[Any], reason: str) -> str:
        self.reason = reason
        self.row_by_row_plans(conn)
        conn.execute(statement, rows)
        return SQLALCHEMY

    def _item_by_item(self, conn: Any, statement: Any, rows: list[Any], reason: str) -> str:
        self.reason = reason
        self.row_by_row_plans(conn)
        for row in rows:
            if isinstance(row, Mapping) and not row:
                conn.execute(statement)
            else:
                conn.execute(statement, row)
        return SQLALCHEMY

    def _row_by_row(self, conn: Any, driver: DriverPlan, rows: Sequence[Any]) -> None:
        self.row_by_row_plans(conn)
        conn.exec_driver_sql(driver.sql, driver.parameters(rows))

    def row_by_row_plans(self, conn: Any) -> None:
        """On PostgreSQL, make each statement of ``conn``'s transaction planned for its own
        values (once per transaction; see the module docstring)."""
        if conn.dialect.name != "postgresql":
            return
        transaction = conn.get_transaction()
        if transaction is not None and transaction is self._custom_for:
            return
        conn.exec_driver_sql("SELECT set_config('plan_cache_mode', 'force_custom_plan', true)")
        self._custom_for = transaction

    def _plans_for(self, conn: Any, statement: Any, keys: tuple[str, ...]) -> _Plans:
        cache_key = (id(statement), keys, conn.dialect.name)
        found = self._plans.get(cache_key)
        if found is not None:
            self._plans.move_to_end(cache_key)
            return found
        many = executemany_refusal(conn, statement, keys, lambda t: self._table_facts(conn, t))
        driver = driver_plan(conn, statement, keys) if many is None else None
        unnest: UnnestPlan | str = "SQLAlchemy processes each item"
        if driver is not None:
            options = compile_options(conn) or {}
            unnest = unnest_plan(conn, statement, keys, driver.compiled, options)
            if isinstance(unnest, UnnestPlan):
                unnest.check(conn, self._table_facts(conn, unnest.shape.table))
                if unnest.refused is not None:
                    unnest = f"the table's catalog: {unnest.refused}"
        reason = "SQLAlchemy processes each item (a value computed per row, an INSERT, options)"
        plans = _Plans(statement, driver, reason, unnest, many)
        self._plans[cache_key] = plans
        while len(self._plans) > _KEEP:
            self._plans.popitem(last=False)
        return plans

    def _table_facts(self, conn: Any, table: Any) -> TableFacts | None:
        name = qualified_name(conn, table)
        if name not in self._facts:
            self._facts[name] = read_table_facts(conn, name)
            while len(self._facts) > _KEEP:
                self._facts.popitem(last=False)
        return self._facts[name]


def _runs_of_same_keys(rows: list[Any]) -> list[list[Any]]:
    """``rows`` cut where an item's keys differ from the one before it (an item that is not a
    mapping is a run of its own)."""
    first = rows[0]
    if isinstance(first, Mapping):
        keys = first.keys()
        if all(type(row) is dict and row.keys() == keys for row in rows):
            return [rows]  # the usual flush: one run
    runs: list[list[Any]] = []
    previous: Any = None
    for row in rows:
        current = tuple(row) if isinstance(row, Mapping) else None
        if runs and current is not None and current == previous:
            runs[-1].append(row)
        else:
            runs.append([row])
        previous = current
    return runs


def execute_many(
    conn: Any, statement: Any, rows: list[Any], plans: BatchPlans | None = None
) -> str:
    """``conn.execute(statement, rows)``, sent the fastest way that writes the same (see the
    module docstring); returns which way was taken.

    Args:
        conn: an open connection in a transaction.
        statement: the statement every item runs.
        rows: the items' parameters.
        plans: the writer's plans (a new set when None: nothing is kept between calls).
    """
    return (plans or BatchPlans()).execute(conn, statement, rows)
