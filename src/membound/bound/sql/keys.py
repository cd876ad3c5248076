"""Keys of keyset batching: as tuples inside, as the user wrote them outside, and compared in
lexicographic order in SQL (row values where the dialect has them)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from membound._errors import BatchSourceError

# Without SQLAlchemy the names stay undefined; connection.require_sqlalchemy() says what to
# install before any of them is used.
with contextlib.suppress(ImportError):
    import sqlalchemy as sa

if TYPE_CHECKING:
    from sqlalchemy.sql.elements import ColumnElement

__all__ = ["Key", "as_key", "compare", "public_key", "same_column"]

#: A key inside membound: always a tuple, one value per key column.
Key = tuple[Any, ...]


def as_key(value: Any, width: int, what: str = "start/finish") -> Key:
    """A user's key value (a scalar, or a tuple for a composite key) as a tuple of ``width``.

    Args:
        value: the value as given.
        width: the number of key columns.
        what: which value this is (``"start"``, ``"finish"``, ...), for the error message.

    Raises:
        BatchSourceError: a composite key given with the wrong number of values, or a value
            holding None: keys are never NULL (G1), and in SQL ``key > NULL`` is never true, so
            such a bound or resume point would silently select no row at all.
    """
    if width == 1:
        key = value if isinstance(value, tuple) and len(value) == 1 else (value,)
    elif not isinstance(value, (tuple, list)) or len(value) != width:
        raise BatchSourceError(f"the key has {width} columns; give {what} as a {width}-tuple")
    else:
        key = tuple(value)
    if any(v is None for v in key):
        raise BatchSourceError(
            f"{what} {public_key(key)!r} contains None; key values are never NULL, and no key "
            "compares greater or less than NULL, so the run would select nothing"
        )
    return key


def public_key(key: Key) -> Any:
    """A key as users see it: a scalar for a one-column key, else the tuple."""
    return key[0] if len(key) == 1 else key


def compare(cols: Sequence[Any], vals: Key, op: str, row_value: bool) -> ColumnElement[bool]:
    """``cols <op> vals`` in lexicographic order; op is one of ``>``, ``>=``, ``<=``, ``<``.

    Row values are used where the dialect supports them; elsewhere the equivalent expansion
    ``a > x OR (a = x AND b > y) ...`` gives the same rows (G8: tested against each other).
    """
    ops: dict[str, Callable[[Any, Any], Any]] = {
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
        "<=": lambda a, b: a <= b,
        "<": lambda a, b: a < b,
    }
    if len(cols) == 1:
        return ops[op](cols[0], vals[0])  # type: ignore[no-any-return]
    if row_value:
        return ops[op](sa.tuple_(*cols), sa.tuple_(*vals))  # type: ignore[no-any-return]
    strict: Callable[[Any, Any], Any] = ops["<"] if op in ("<=", "<") else ops[">"]
    terms = []
    for i in range(len(cols)):
        prefix = [cols[j] == vals[j] for j in range(i)]
        terms.append(sa.and_(*prefix, strict(cols[i], vals[i])))
    if op in (">=", "<="):
        terms.append(sa.and_(*[c == v for c, v in zip(cols, vals, strict=True)]))
    return sa.or_(*terms)


def same_column(a: Any, b: Any) -> bool:
    """Whether two column objects name the same column of the same table."""
    return (
        getattr(a, "table", None) is not None
        and getattr(a, "table", None) is getattr(b, "table", None)
        and getattr(a, "name", None) == getattr(b, "name", None)
    )
