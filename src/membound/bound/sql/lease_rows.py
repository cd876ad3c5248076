"""The rows of the job table ``membound_leases`` (``leases.py`` works them): its schema, how a
range's keys and names are written, and one range as read back (:class:`RangeRow`)."""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from membound.bound.sql.checkpoint import decode_key, encode_key

with contextlib.suppress(ImportError):
    import sqlalchemy as sa

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = [
    "HEADER",
    "RangeRow",
    "describe_source",
    "key_text",
    "key_value",
    "leases_table",
    "now_text",
    "range_name",
    "range_row",
    "unclaimed",
]

#: ``part`` of a job's header row.
HEADER = -1

_TABLES: dict[str, Any] = {}


def leases_table() -> sa.Table:
    """The ``membound_leases`` table (defined once per process)."""
    if "table" not in _TABLES:
        _TABLES["table"] = sa.Table(
            "membound_leases",
            sa.MetaData(),
            sa.Column("job", sa.String(200), primary_key=True),
            sa.Column("part", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("start", sa.Text, nullable=True),
            sa.Column("stop", sa.Text, nullable=True),
            sa.Column("rows", sa.BigInteger, nullable=False),
            sa.Column("basis", sa.String(20), nullable=False),
            sa.Column("owner", sa.String(200), nullable=True),
            sa.Column("lease_until", sa.Float, nullable=True),
            sa.Column("attempts", sa.Integer, nullable=False),
            sa.Column("rows_done", sa.BigInteger, nullable=False),
            sa.Column("reached", sa.Text, nullable=True),
            sa.Column("split_at", sa.Text, nullable=True),
            sa.Column("splits", sa.Integer, nullable=False),
            sa.Column("done", sa.Integer, nullable=False),
            sa.Column("seconds", sa.Float, nullable=True),
            sa.Column("peak_rss_delta", sa.BigInteger, nullable=True),
            sa.Column("spec", sa.Text, nullable=True),
            sa.Column("updated_at", sa.String(40), nullable=False),
        )
    return _TABLES["table"]  # type: ignore[no-any-return]


def range_name(job: str, start: Any) -> str:
    """The checkpoint name of a range: ``"{job}/{start key}"`` (``"{job}/start"`` for the
    first range, which has no start key); a key too long for the checkpoint table's 200
    characters is named by its SHA-1 instead, ``"{job}/#{hex}"``."""
    if start is None:
        return f"{job}/start"
    text = json.dumps(json.loads(encode_key(start)))
    name = f"{job}/{text}"
    if len(name) > 200:
        name = f"{job}/#{hashlib.sha1(text.encode()).hexdigest()}"
    return name


def describe_source(engine: Engine, source: Any, key: Any) -> str:
    """The source, its filter's values and its key as text, to tell a resumed job from another
    job of the same name (the SQL the pages are read with, as the database's dialect writes
    it; a Table compiles to nothing on its own).

    Raises:
        BatchSourceError: a source without a usable key (as ``find_each``).
    """
    from membound.bound.sql.plan import SourcePlan

    plan = SourcePlan(engine, source, key)
    compiled = plan.stmt.compile(dialect=engine.dialect)
    params = ", ".join(f"{k}={v!r}" for k, v in sorted(compiled.params.items()))
    keys = ", ".join(c.name for c in plan.key_columns)
    text = " ".join(str(compiled).split())
    return f"{text} [{params}] key=({keys})" if params else f"{text} key=({keys})"


def now_text() -> str:
    """Now, UTC, as the table writes it."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat()


def unclaimed() -> dict[str, Any]:
    """The columns of a range row nobody has worked on yet."""
    return {
        "owner": None,
        "lease_until": None,
        "attempts": 0,
        "rows_done": 0,
        "reached": None,
        "split_at": None,
        "splits": 0,
        "done": 0,
        "seconds": None,
        "peak_rss_delta": None,
        "updated_at": now_text(),
    }


def key_text(key: Any) -> str | None:
    """A key as the table stores it (None stays None)."""
    return None if key is None else encode_key(key)


def key_value(text: str | None) -> Any:
    """A stored key read back: a one-column key as its value, else a tuple."""
    if text is None:
        return None
    key = decode_key(text)
    return key[0] if len(key) == 1 else key


@dataclass(frozen=True)
class RangeRow:
    """One range of a job as the table holds it."""

    part: int
    start: Any
    stop: Any
    rows: int
    basis: str
    owner: str | None
    lease_until: float | None
    attempts: int
    rows_done: int
    reached: Any
    splits: int
    done: bool
    seconds: float | None
    peak_rss_delta: int | None


def range_row(row: Any) -> RangeRow:
    """One row of the table as a :class:`RangeRow`."""
    return RangeRow(
        part=row.part,
        start=key_value(row.start),
        stop=key_value(row.stop),
        rows=int(row.rows),
        basis=row.basis,
        owner=row.owner,
        lease_until=row.lease_until,
        attempts=int(row.attempts),
        rows_done=int(row.rows_done),
        reached=key_value(row.reached),
        splits=int(row.splits),
        done=bool(row.done),
        seconds=row.seconds,
        peak_rss_delta=None if row.peak_rss_delta is None else int(row.peak_rss_delta),
    )
