"""``key_ranges``: split a source's key space into contiguous ranges of about equal *rows*.

Splitting ``[min, max]`` evenly by key value is what Spark's JDBC reader and Dask's
``read_sql_table`` do, and gapped or skewed keys then give empty and huge partitions. Here the
cuts come from the rows themselves, in order of preference:

1. **exact** — when the source has at most ``exact_below`` rows: its keys are streamed in key
   order (key columns only, keyset pages, O(page) memory) and a cut is made every
   ``rows / parts`` keys. Exact counts.
2. **PostgreSQL statistics** — a single-column key of a plain table with no filter, whose
   histogram has at least 10 buckets per part (the default statistics target, 100, serves up to
   10 parts; ``ALTER TABLE … ALTER COLUMN … SET STATISTICS 1000`` up to 100): the planner's
   ``pg_stats.histogram_bounds`` split the column into buckets of equal rows, and the
   cuts are taken among them; a range's rows are its buckets' share of the count taken at the
   start. No key is read. (Not used when the table was never analysed.)
3. **a bounded sample** — otherwise (SQLite is built without STAT4 here): ``sample`` keys drawn
   at random by the database (one scan, a top-``sample`` sort: bounded memory), sorted, and the
   cuts taken at their quantiles; rows estimated from a count of the source.

Ranges are half-open, ``[start, stop)``: the first has ``start=None``, the last ``stop=None``, so
together they cover every key the source has now or will have, whatever the estimate said;
``find_each(engine, source, start=r.start, stop=r.stop)`` reads exactly one range.
"""

from __future__ import annotations

import bisect
import itertools
import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from membound._errors import BatchSourceError
from membound.bound.sql.catalog import qualified_name
from membound.bound.sql.connection import require_sqlalchemy
from membound.bound.sql.keys import Key, compare, public_key
from membound.bound.sql.plan import SourcePlan

if TYPE_CHECKING:
    from membound.bound.sql.connection import Bind

__all__ = ["KeyRange", "key_ranges"]

#: Sampled keys a part by default: a part's rows are then estimated within about 5 % (one in
#: sqrt(400)), which kept largest/median under 1.25 at 256 parts of a skewed 3M-row table.
SAMPLE_PER_PART = 400
SAMPLE_MIN = 20_000
#: The sample's bound (about 15 MiB of key tuples): ranges beyond 500 parts get fewer a part.
SAMPLE_MAX = 200_000

#: Rows per part when neither ``parts`` nor ``rows_per_part`` is given.
DEFAULT_ROWS_PER_PART = 1_000_000
#: Histogram buckets a range needs for ``pg_stats`` cuts. A range gets a whole number of
#: buckets, so with ``b`` buckets a range it can be ``(b + 1) / b`` the size of another from
#: the resolution alone: 100 buckets into 32 parts gave 3 or 4 a range, a largest range 1.33×
#: the median (``bench_partition.py``). With at least 10, sampling is used below that.
_BUCKETS_PER_PART = 10
#: Keys read per query while streaming keys for exact cuts.
_PAGE = 10_000


@dataclass(frozen=True)
class KeyRange:
    """A half-open range of keys, ``start <= key < stop``.

    Attributes:
        start: the first key of the range, inclusive; None for the first range.
        stop: the key after the range, exclusive; None for the last range.
        rows: the rows in the range: exact, or an estimate (see ``basis``).
        basis: ``exact``, ``pg_stats`` or ``sample``: where ``rows`` and the cut came from.
    """

    start: Any
    stop: Any
    rows: int
    basis: str = "exact"


def key_ranges(
    engine: Bind,
    source: Any,
    parts: int | None = None,
    rows_per_part: int | None = None,
    *,
    key: Any = None,
    exact_below: int = 2_000_000,
    sample: int | None = None,
) -> list[KeyRange]:
    """Contiguous, non-overlapping key ranges covering the whole source, balanced by rows.

    Args:
        engine: an ``Engine`` or ``sessionmaker``.
        source: a ``Table``, an ORM entity or a ``select()`` with filters (as ``find_each``).
        parts: how many ranges (at most; fewer when the source has fewer distinct keys).
        rows_per_part: rows per range instead (``parts`` is then rows / rows_per_part); the
            default when neither is given is 1,000,000.
        key: the key column(s), as for ``find_each`` (the primary key by default).
        exact_below: sources with at most this many rows are cut exactly.
        sample: keys sampled when neither exact cuts nor PostgreSQL statistics apply; None
            (default): 400 a part, at least 20,000 and at most 200,000. A part's rows are
            off by about ``1 / sqrt(keys per part)`` of its size (5 % at 400), and the largest
            of many parts by about three times that: with fewer than 100 keys a part, a warning
            says so and what to pass.

    Raises:
        BatchSourceError: ``parts``/``rows_per_part`` below 1 or both given, a source without
            a usable key (as ``find_each``), or a key that repeats in the source (a join's:
            checked with one grouped query when the key is not declared unique).
    """
    require_sqlalchemy()
    if parts is not None and rows_per_part is not None:
        raise BatchSourceError("give parts or rows_per_part, not both")
    for name, value in (("parts", parts), ("rows_per_part", rows_per_part)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise BatchSourceError(f"{name} must be a whole number >= 1, got {value!r}")
    if sample is not None and (
        isinstance(sample, bool) or not isinstance(sample, int) or sample < 2
    ):
        raise BatchSourceError(f"sample must be a whole number >= 2 or None, got {sample!r}")
    plan = SourcePlan(engine, source, key)
    if not plan.key_declared_unique:
        _refuse_repeated_keys(plan)
    total = plan.count(None, None, None)
    wanted = parts if parts is not None else -(-total // (rows_per_part or DEFAULT_ROWS_PER_PART))
    wanted = max(1, min(wanted, max(total, 1)))
    if wanted == 1:
        return [KeyRange(None, None, total)]
    if total <= exact_below:
        return _exact(plan, total, wanted)
    stats = _pg_stats_cuts(plan, wanted, total)
    if stats is not None:
        return stats
    return _sampled(plan, total, wanted, _sample_size(sample, wanted))


def _refuse_repeated_keys(plan: SourcePlan) -> None:
    """Refuse a key that repeats in the source (a join's "one" side) before any range is cut
    or any job row written: ranges cut on it would split or lose rows sharing a key. One
    grouped query (the database aggregates; one row comes back)."""
    import sqlalchemy as sa

    stmt = (
        plan.bounded(None, None, None)
        .with_only_columns(*plan.key_columns, maintain_column_froms=True)
        .group_by(*plan.key_columns)
        .having(sa.func.count() > 1)
        .limit(1)
    )
    repeated = plan.run(stmt)
    if repeated:
        names = ", ".join(c.name for c in plan.key_columns)
        raise BatchSourceError(
            f"key ({names}) is not unique in this source: {public_key(tuple(repeated[0]))!r} "
            "occurs in more than one row (a join repeats it?); ranges cut on it would lose "
            "rows. Pass key= columns that are unique in the joined rows, e.g. the many "
            "side's primary key"
        )


def _key_query(plan: SourcePlan, after: Key | None) -> Any:
    stmt = plan.bounded(after, None, None).with_only_columns(*plan.key_columns)
    return stmt.order_by(*plan.key_columns).limit(_PAGE)


def _exact(plan: SourcePlan, total: int, parts: int) -> list[KeyRange]:
    """Cut every ``total / parts`` keys, streaming the keys in key order."""
    # The i-th cut is the key at position round(i * total / parts) (0-based): the first key of
    # range i. Positions are increasing, so one pass finds them all.
    targets = [round(i * total / parts) for i in range(1, parts)]
    cuts: list[Key] = []
    seen = 0
    after: Key | None = None
    t = 0
    while t < len(targets):
        rows = plan.run(_key_query(plan, after))
        if not rows:
            break
        while t < len(targets) and targets[t] < seen + len(rows):
            cuts.append(tuple(rows[targets[t] - seen]))
            t += 1
        seen += len(rows)
        after = tuple(rows[-1])
    bounds = _dedupe(cuts)
    counts = _counts_between(plan, bounds)
    return _ranges(bounds, counts, "exact")


def _counts_between(plan: SourcePlan, bounds: list[Key]) -> list[int]:
    """Exact rows in each range ``[b(i-1), b(i))`` (one count query per range)."""
    import sqlalchemy as sa

    counts = []
    edges: list[Key | None] = [None, *bounds, None]
    for lo, hi in itertools.pairwise(edges):
        stmt = plan.bounded(None, lo, None)
        if hi is not None:
            stmt = stmt.where(compare(plan.key_columns, hi, "<", plan.row_value))
        rows = plan.run(sa.select(sa.func.count()).select_from(stmt.subquery()))
        counts.append(int(rows[0][0]))
    return counts


def _dedupe(cuts: list[Key]) -> list[Key]:
    out: list[Key] = []
    for cut in sorted(cuts):
        if not out or cut > out[-1]:
            out.append(cut)
    return out


def _ranges(bounds: list[Key], rows: list[int], basis: str) -> list[KeyRange]:
    edges: list[Any] = [None, *(public_key(b) for b in bounds), None]
    return [
        KeyRange(lo, hi, n, basis)
        for (lo, hi), n in zip(itertools.pairwise(edges), rows, strict=True)
    ]


def _pg_stats_cuts(plan: SourcePlan, parts: int, total: int) -> list[KeyRange] | None:
    """Cuts among PostgreSQL's histogram bounds (single-column key of a plain, unfiltered
    table that has been analysed); None when they do not apply. Rows per range are the
    buckets' share of ``total``, the count made at the start (statistics may be stale)."""
    import sqlalchemy as sa

    table = plan.table
    if (
        plan.engine.dialect.name != "postgresql"
        or table is None
        or plan.width != 1
        or plan.where_clause is not None
    ):
        return None
    column = plan.key_columns[0]
    # The table the queries read: resolved by the database as they are, so a table without a
    # schema is the one first on the search_path, not necessarily public's.
    located = sa.text(
        "SELECT n.nspname, c.relname, c.reltuples FROM pg_catalog.pg_class c "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.oid = to_regclass(:name)"
    ).bindparams(name=qualified_name(plan.engine, table))
    tuples = plan.run(located)
    if not tuples or tuples[0][2] is None or tuples[0][2] <= 0:
        return None
    schema, name, _ = tuples[0]
    bounds_expr = sa.cast(sa.cast(sa.column("histogram_bounds"), sa.Text), sa.ARRAY(column.type))
    query = (
        sa.select(bounds_expr)
        .select_from(sa.table("pg_stats", schema="pg_catalog"))
        .where(
            sa.column("schemaname") == schema,
            sa.column("tablename") == name,
            sa.column("attname") == column.name,
        )
        # A table with inheritance children has two rows; its queries read the children too,
        # so the statistics that include them (inherited) are the ones that describe them.
        .order_by(sa.column("inherited").desc())
        .limit(1)
    )
    found = plan.run(query)
    if not found or not found[0][0]:
        return None
    histogram = list(found[0][0])
    buckets = len(histogram) - 1
    if buckets < _BUCKETS_PER_PART * parts:
        return None  # too coarse for this many parts: sample instead
    estimate = float(total)
    picks = sorted({round(i * buckets / parts) for i in range(1, parts)})
    cuts = [(histogram[p],) for p in picks if 0 < p < buckets]
    bounds = _dedupe(cuts)
    # Each bucket holds about the same share of rows: a range's share is its buckets' share.
    positions = [0, *[histogram.index(b[0]) for b in bounds], buckets]
    rows = [round(estimate * (hi - lo) / buckets) for lo, hi in itertools.pairwise(positions)]
    return _ranges(bounds, rows, "pg_stats")


def _sample_size(given: int | None, parts: int) -> int:
    """Keys to sample for ``parts`` ranges: ``given``, else enough for each part's rows to be
    estimated within about 5 % (see ``key_ranges``); warns when ``given`` is too few."""
    if given is None:
        return min(max(SAMPLE_MIN, SAMPLE_PER_PART * parts), SAMPLE_MAX)
    per_part = given / parts
    if per_part < 100:
        warnings.warn(
            f"key_ranges: sample={given:,} gives {per_part:.0f} keys a part for {parts} parts: "
            f"parts may differ from their share by about {100 / math.sqrt(max(per_part, 1)):.0f} "
            f"% each and the largest by about three times that; pass sample="
            f"{_sample_size(None, parts):,} (or leave it out) for even ranges",
            stacklevel=3,
        )
    return given


def _sampled(plan: SourcePlan, total: int, parts: int, size: int) -> list[KeyRange]:
    """Cuts at the quantiles of a random sample of keys."""
    import sqlalchemy as sa

    stmt = (
        plan.bounded(None, None, None)
        .with_only_columns(*plan.key_columns)
        .order_by(sa.func.random())
        .limit(size)
    )
    keys = sorted(tuple(r) for r in plan.run(stmt))
    if len(keys) < 2:
        return [KeyRange(None, None, total, "sample")]
    cuts = [keys[round(i * len(keys) / parts)] for i in range(1, parts)]
    bounds = _dedupe([c for c in cuts if c > keys[0]])
    positions = [0, *[bisect.bisect_left(keys, b) for b in bounds], len(keys)]
    rows = [round(total * (hi - lo) / len(keys)) for lo, hi in itertools.pairwise(positions)]
    return _ranges(bounds, rows, "sample")
