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

A statement whose SQL is finished only at execution time (expanding ``IN`` lists, literal-execute
parameters, schema translation) or whose bind names need escaping is refused with
:class:`DriverPathUnavailable`; the caller then uses SQLAlchemy's execute and converts its rows.
Engine events such as ``before_cursor_execute`` do not fire for queries run here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

Processor = Callable[[Any], Any]


class DriverPathUnavailable(Exception):
    """The statement cannot be run on the driver exactly as SQLAlchemy would run it."""


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

        The pool's reset on return (a rollback) ends the read transaction before the rows are
        handed back, as on SQLAlchemy's path (G4).
        """
        args = self.parameters(params)
        dialect = self._engine.dialect
        connection = self._engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(self.sql, args)
                fetched = cursor.fetchall()
                description = cursor.description
            except dialect.loaded_dbapi.Error as exc:
                if dialect.is_disconnect(exc, connection.dbapi_connection, cursor):
                    connection.invalidate(exc)
                raise _wrapped(self.sql, args, exc, dialect) from exc
            finally:
                cursor.close()
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


def _wrapped(sql: str, args: Any, exc: Exception, dialect: Any) -> Exception:
    """The error SQLAlchemy itself would raise for this driver error (e.g. OperationalError)."""
    from sqlalchemy import exc as sa_exc

    return sa_exc.DBAPIError.instance(sql, args, exc, dialect.loaded_dbapi.Error, dialect=dialect)
