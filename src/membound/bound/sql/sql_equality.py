"""When two Python values that a batch compares to a key column are the same row in SQL.

A flush runs as one statement only when no row is met by two of its items (DESIGN §6 G9:
"keys distinct under SQL equality"). Python's ``==`` is not SQL's: ``'a'`` and ``'A'`` are one
key under a case-insensitive (nondeterministic) collation, ``'a'`` and ``'a '`` under
``char(n)``, a naive and an aware datetime may be one instant of a ``timestamptz``, two UUID
strings in other letter cases are one ``uuid``, and ``NaN`` equals itself in PostgreSQL. So
each key column gets a *canonical form* chosen from what the catalog says of it
(``catalog.ColumnFacts``) and the Python type of the values: values equal in SQL always have
the same canonical form (the converse need not hold: a form coarser than SQL's equality only
sends more flushes row by row). A column or value this module cannot vouch for has no form,
and the flush runs row by row.

``NULL`` never equals anything in SQL (``col = NULL`` meets no row), so a None value never
collides with another item.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from membound.bound.sql.catalog import ColumnFacts

__all__ = ["canonical_keys"]

_INTEGERS = frozenset({"int2", "int4", "int8"})
_FLOATS = frozenset({"float4", "float8"})
_STRINGS = frozenset({"text", "varchar"})


class _Never:
    """A None key: unequal to every other value, itself included."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return False

    def __hash__(self) -> int:
        return id(self)


def _same(value: Any) -> Any:
    return value


def _strip_blanks(value: str) -> str:
    """``character(n)`` ignores trailing blanks when it compares."""
    return value.rstrip(" ")


def _finite_float(value: float) -> float:
    if math.isnan(value):
        raise ValueError("NaN equals NaN in PostgreSQL")
    return value + 0.0  # -0.0 and 0.0: one key in both


def _finite_decimal(value: decimal.Decimal) -> decimal.Decimal:
    if value.is_nan():
        raise ValueError("NaN equals NaN in PostgreSQL")
    return value


def _uuid_text(value: str) -> uuid.UUID:
    return uuid.UUID(value)  # ValueError for text Python cannot read: then no form


def _form(column: ColumnFacts, kind: type) -> Callable[[Any], Any] | None:
    """How to turn a value of Python type ``kind`` compared to ``column`` into its canonical
    form, or None when no form is known."""
    base = column.base_type
    if base in _INTEGERS:
        return _same if kind is int else None
    if base == "numeric":
        return _finite_decimal if kind is decimal.Decimal else (_same if kind is int else None)
    if base in _FLOATS:
        return _finite_float if kind is float else None
    if base in _STRINGS or base == "bpchar" or column.is_enum:
        if kind is not str or not column.deterministic:
            return None
        return _strip_blanks if base == "bpchar" else _same
    if base == "uuid":
        return _same if kind is uuid.UUID else (_uuid_text if kind is str else None)
    if base == "timestamptz":
        return _same if kind is dt.datetime else None  # aware only: checked per value
    if base == "timestamp":
        return _same if kind is dt.datetime else None  # naive only: checked per value
    if base == "date":
        return _same if kind is dt.date else None
    if base == "bool":
        return _same if kind is bool else None
    if base == "bytea":
        return _same if kind is bytes else None
    return None


def _column_forms(column: ColumnFacts, values: Sequence[Any]) -> list[Any] | None:
    present = [v for v in values if v is not None]
    kinds = set(map(type, present))
    if len(kinds) > 1:
        return None
    if not kinds:
        return [_Never() for _ in values]
    (kind,) = kinds
    form = _form(column, kind)
    if form is None:
        return None
    if kind is dt.datetime:
        # An aware datetime is an instant, a naive one a wall-clock time: each column type
        # compares one of them exactly; the other goes through the session's time zone.
        aware = column.base_type == "timestamptz"
        if any((v.tzinfo is not None) != aware for v in present):
            return None
    try:
        if form is _same:
            if len(present) == len(values):
                return list(values)  # the usual key: one Python type, no None
            return [_Never() if v is None else v for v in values]
        return [_Never() if v is None else form(v) for v in values]
    except ValueError:
        return None


def canonical_keys(
    columns: Sequence[ColumnFacts], values: Sequence[Sequence[Any]]
) -> list[Any] | None:
    """Each item's key in a form that is equal for two items exactly when SQL may find them
    equal (or coarser), or None when that cannot be vouched for.

    Args:
        columns: the key columns, in order.
        values: per key column, the items' values (one list per column, each as long as the
            flush).

    Returns:
        One hashable key per item (a tuple for a composite key), or None.
    """
    forms = []
    for column, column_values in zip(columns, values, strict=True):
        found = _column_forms(column, column_values)
        if found is None:
            return None
        forms.append(found)
    if len(forms) == 1:
        return forms[0]
    return list(zip(*forms, strict=True))
