"""Run a compiled page query straight on a pooled DBAPI connection and return the driver's tuples.

This is the ``tuples=True`` read path of :func:`membound.find_each` / :func:`membound.in_batches`.
Why membound executes here instead of calling SQLAlchemy's ``Connection.execute``: per page that
builds an execution context and a result (about 35 µs on SQLite), and per row a ``Row`` object
(0.2-0.3 µs, more than sqlite3 itself spends producing the row), which held keyset batches to
about 0.6x a raw single-cursor stream. Everything that decides *what* runs stays SQLAlchemy's: the
statement is compiled once by SQLAlchemy for the engine's dialect, parameters come from the
compiled statement's ``construct_params``, and values go through the same bind and result
processors SQLAlchemy would apply (taken from the column types' public ``dialect_impl`` API). Only
the execution is done here, so results are identical (G8; tests compare both paths).

The driver path is taken only where skipping SQLAlchemy's execute cannot change what runs
(:func:`driver_path_allowed`): the two drivers membound tests (pysqlite, psycopg 3), an engine with
no execution options (``schema_translate_map``, isolation level, ...) and no engine or dialect
event listeners (``engine_connect``, ``before_cursor_execute``, ``do_execute``, ...). A statement
whose SQL is finished only at execution time (expanding ``IN`` lists, literal-execute parameters,
placeholders) or whose bind names need escaping is refused with :class:`DriverPathUnavailable`.
In every such case the caller uses SQLAlchemy's execute and converts its rows to tuples.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

Processor = Callable[[Any], Any]


#: (dialect, driver) pairs whose execution SQLAlchemy does not adjust per statement (no
#: ``pre_exec``/``setinputsizes`` step) and that membound's tests run against.
_DRIVERS = frozenset({("sqlite", "pysqlite"), ("postgresql", "psycopg")})


class DriverPathUnavailable(Exception):
    """The statement cannot be run on the driver exactly as SQLAlchemy would run it."""


def driver_path_allowed(engine: Engine) -> bool:
    """Whether running pages on the driver gives exactly what SQLAlchemy's execute would.

    Listeners and execution options can change the SQL, the connection's state or the rows
    (a ``search_path`` set on connect, a tenant filter, schema translation), so either sends the
    run through SQLAlchemy. ``_has_events`` is SQLAlchemy's own flag for "a listener is
    registered"; if a future version drops it, the driver path is simply not taken.
    """
    dialect = engine.dialect
    return (
        (dialect.name, dialect.driver) in _DRIVERS
        and not engine.get_execution_options()
        and getattr(engine, "_has_events", True) is False
        and getattr(dialect, "_has_events", True) is False
    )


class DriverQuery:
    """One page statement compiled once, then executed on pooled DBAPI connections."""

    def __init__(self, engine: Engine, stmt: Any) -> None:
        dialect = engine.dialect
        compiled = stmt.compile(dialect=dialect)
        if (
            compiled.post_compile_params
            or compiled.literal_execute_params
            or getattr(compiled, "escaped_bind_names", None)
            or "__[" in compiled.string  # a placeholder SQLAlchemy fills in at execution
        ):
            raise DriverPathUnavailable(compiled.string)
        self._engine = engine
        self._compiled = compiled
        self.sql: str = compiled.string
        self._order: list[str] | None = list(compiled.positiontup) if compiled.positional else None
        bind_processors: dict[str, Processor] = {}
        for bind, name in compiled.bind_names.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                bind_processors[name] = process
        self._bind_processors = bind_processors
        # Positions of each name in a positional parameter list (a name can appear twice).
        self._slots: dict[str, list[int]] = {}
        for index, name in enumerate(self._order or ()):
            self._slots.setdefault(name, []).append(index)
        self._volatile = any(bind.callable is not None for bind in compiled.bind_names)
        self._template: Any = None
        self._template_names: set[str] = set()
        self._types = [column.type for column in stmt.selected_columns]
        # Result processors depend on the driver's column type codes, known after one execute:
        # (column index, processor) for each column that has one.
        self._result_steps: list[tuple[int, Processor]] | None = None

    def parameters(self, params: Mapping[str, Any]) -> Any:
        """The DBAPI parameters for one execution: SQLAlchemy's values, bind-processed, ordered.

        The first call builds them all through ``construct_params``; later calls with the same
        parameter names reuse the other values (a LIMIT, the source's filter literals) and
        process only the given ones, unless a bind computes its value per execution.
        """
        template = self._template
        if template is None or self._template_names != params.keys():
            values = self._compiled.construct_params(params)
            for name, process in self._bind_processors.items():
                values[name] = process(values[name])
            built = tuple(values[n] for n in self._order) if self._order is not None else values
            if not self._volatile:
                self._template, self._template_names = built, set(params)
            return built
        if self._order is None:
            named = dict(template)
            for name, value in params.items():
                convert = self._bind_processors.get(name)
                named[name] = value if convert is None else convert(value)
            return named
        ordered = list(template)
        for name, given in params.items():
            convert = self._bind_processors.get(name)
            value = given if convert is None else convert(given)
            for index in self._slots[name]:
                ordered[index] = value
        return tuple(ordered)

    def run(self, params: Mapping[str, Any]) -> list[Any]:
        """Fetch every row of one page on a pooled connection, returned to the pool at the end.

        The read transaction is rolled back and the connection is back in the pool before the
        rows are handed back (G4). Driver errors come back as SQLAlchemy's ``DBAPIError``
        subclasses, as from ``Connection.execute``.
        """
        args = self.parameters(params)
        engine = self._engine
        dialect = engine.dialect
        try:
            connection = engine.raw_connection()
        except dialect.loaded_dbapi.Error as exc:  # e.g. a connect-time PRAGMA on a locked file
            raise _wrapped(engine, self.sql, args, exc, invalidated=False) from exc
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(self.sql, args)
                fetched = cursor.fetchall()  # noqa: MB102 (one LIMIT page)
                description = cursor.description
            finally:
                cursor.close()
            # End the read transaction here (G4) rather than trusting the pool's reset on
            # return, which an engine may turn off (pool_reset_on_return=None).
            connection.rollback()
        except dialect.loaded_dbapi.Error as exc:
            lost = dialect.is_disconnect(exc, connection.dbapi_connection, None)
            if lost:
                # As SQLAlchemy does: this connection and older pooled ones are recycled.
                engine.pool._invalidate(connection, exc)
            raise _wrapped(engine, self.sql, args, exc, invalidated=lost) from exc
        finally:
            connection.close()
        # Drivers return a list of tuples unless a row_factory was set on the connection.
        if isinstance(fetched, list) and (not fetched or type(fetched[0]) is tuple):
            rows: list[Any] = fetched
        else:
            rows = [tuple(row) for row in fetched]
        steps = self._result_steps
        if steps is None:
            processors = [
                type_.dialect_impl(dialect).result_processor(dialect, column[1])
                for type_, column in zip(self._types, description or (), strict=False)
            ]
            steps = self._result_steps = [(i, p) for i, p in enumerate(processors) if p]
        if steps:
            for n, row in enumerate(rows):
                values = list(row)
                for i, process in steps:
                    values[i] = process(values[i])
                rows[n] = tuple(values)
        return rows


def _wrapped(
    engine: Engine, sql: str, args: Any, exc: Exception, *, invalidated: bool
) -> Exception:
    """The error SQLAlchemy itself would raise for this driver error (e.g. OperationalError)."""
    from sqlalchemy import exc as sa_exc

    dialect = engine.dialect
    return sa_exc.DBAPIError.instance(
        sql,
        args,
        exc,
        dialect.loaded_dbapi.Error,
        hide_parameters=engine.hide_parameters,
        connection_invalidated=invalidated,
        dialect=dialect,
    )
