"""``key_ranges``: contiguous half-open ranges balanced by rows; read back with
``find_each(start=, stop=)`` they equal a plain full scan (G8)."""

from __future__ import annotations

import itertools
import os
import statistics

import pytest

import membound as mb
from membound import BatchSourceError
from tests.bound.helpers import Db, fill, ids_of, sa

#: Gapped and skewed keys: dense low, sparse high.
KEYS = [*range(1, 2001), *range(10_000, 20_000, 10), *range(10**6, 10**6 + 500)]


def _table(db: Db) -> sa.Table:
    table = db.users(0)
    fill(db.engine, table, KEYS)
    return table


def _read_back(db: Db, source: object, ranges: list[mb.KeyRange]) -> list[int]:
    seen: list[int] = []
    for r in ranges:
        seen.extend(ids_of(mb.find_each(db.engine, source, start=r.start, stop=r.stop)))
    return seen


@pytest.mark.parametrize("kwargs", [{"exact_below": 10**9}, {"exact_below": 0}])
def test_ranges_cover_every_key_once_and_are_balanced(db: Db, kwargs: dict[str, int]) -> None:
    table = _table(db)
    ranges = mb.key_ranges(db.engine, table, parts=8, **kwargs)
    assert ranges[0].start is None
    assert ranges[-1].stop is None
    assert all(a.stop == b.start for a, b in itertools.pairwise(ranges))
    assert KEYS == _read_back(db, table, ranges)
    sizes = sorted(
        len(ids_of(mb.find_each(db.engine, table, start=r.start, stop=r.stop))) for r in ranges
    )
    assert 0 not in sizes
    if ranges[0].basis == "exact":
        assert [r.rows for r in ranges] == [
            len(ids_of(mb.find_each(db.engine, table, start=r.start, stop=r.stop))) for r in ranges
        ]
        assert sizes[-1] / sizes[len(sizes) // 2] <= 1.25
    else:  # a 3,500-row source sampled in full or nearly: still no huge range
        assert sizes[-1] <= 2 * len(KEYS) / 8


def test_a_filtered_source_and_rows_per_part(db: Db) -> None:
    table = _table(db)
    source = sa.select(table).where(table.c.id % 2 == 0)
    ranges = mb.key_ranges(db.engine, source, rows_per_part=500)
    expected = [k for k in KEYS if k % 2 == 0]
    assert -(-len(expected) // 500) == len(ranges)
    assert expected == _read_back(db, source, ranges)


def test_one_part_for_a_small_table_by_default(db: Db) -> None:
    table = _table(db)
    assert [mb.KeyRange(None, None, len(KEYS))] == mb.key_ranges(db.engine, table)


@pytest.mark.parametrize(
    "kwargs", [{"parts": 0}, {"rows_per_part": -1}, {"parts": 2, "rows_per_part": 2}]
)
def test_bad_arguments(db: Db, kwargs: dict[str, int]) -> None:
    table = _table(db)
    with pytest.raises(BatchSourceError):
        mb.key_ranges(db.engine, table, **kwargs)


sqlite_only = pytest.mark.parametrize("db", ["sqlite-wal"], indirect=True)
#: 120,000 keys, most at the low end (a power law): a skew where a fixed sample of 20,000 left
#: the largest of 256 parts 1.3-1.45 times the median.
SKEWED = sorted({int(i**2.2) + i for i in range(1, 120_001)})


@sqlite_only
def test_the_default_sample_grows_with_the_parts_and_keeps_many_parts_even(db: Db) -> None:
    table = db.users(0)
    fill(db.engine, table, SKEWED)
    ranges = mb.key_ranges(db.engine, table, parts=256, exact_below=0)
    assert {"sample"} == {r.basis for r in ranges}
    with db.engine.connect() as conn:
        sizes = [
            int(
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(table)
                    .where(*([table.c.id >= r.start] if r.start is not None else []))
                    .where(*([table.c.id < r.stop] if r.stop is not None else []))
                ).scalar_one()
            )
            for r in ranges
        ]
    assert len(SKEWED) == sum(sizes)
    assert max(sizes) / statistics.median(sizes) <= 1.25


@sqlite_only
def test_a_sample_too_small_for_the_parts_warns_with_the_way_out(db: Db) -> None:
    table = _table(db)
    with pytest.warns(UserWarning, match=r"6 keys a part for 32 parts.*pass sample=20,000"):
        ranges = mb.key_ranges(db.engine, table, parts=32, exact_below=0, sample=200)
    assert KEYS == _read_back(db, table, ranges)  # uneven, never wrong


# ------------------------------------------------------------ PostgreSQL statistics (pg_stats)

postgres_only = pytest.mark.parametrize("db", ["postgres"], indirect=True)
_schemas = itertools.count()

#: 50,000 gapped and skewed keys, more rows than ANALYZE samples at the default statistics
#: target (300 x 100 = 30,000), so the default histogram is built from a sample.
PG_KEYS = [*range(1, 20_001), *range(100_000, 1_100_000, 50), *range(10**8, 10**8 + 10_000)]
#: Well below ``len(PG_KEYS)``, so the exact path is skipped.
EXACT_BELOW = 1000


def _fill_pg(
    engine: sa.Engine, table: sa.Table, keys: list[int], *, statistics: int | None = None
) -> None:
    """Insert ``keys`` in one statement; autovacuum off so that only the test analyses."""
    name = engine.dialect.identifier_preparer.format_table(table)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"ALTER TABLE {name} SET (autovacuum_enabled = false)")
        conn.execute(
            sa.text(
                f"INSERT INTO {name} (id, status, counter, payload) "
                "SELECT k, 'SYNCED', 0, 'p' || k FROM unnest(CAST(:keys AS integer[])) AS k"
            ),
            {"keys": keys},
        )
        if statistics is not None:
            conn.exec_driver_sql(f"ALTER TABLE {name} ALTER COLUMN id SET STATISTICS {statistics}")


def _analyse(engine: sa.Engine, table: sa.Table) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(f"ANALYZE {engine.dialect.identifier_preparer.format_table(table)}")


def _pg_table(db: Db, *, statistics: int | None = None, analyse: bool = True) -> sa.Table:
    table = db.users(0)
    _fill_pg(db.engine, table, PG_KEYS, statistics=statistics)
    if analyse:
        _analyse(db.engine, table)
    return table


def _histogram_bounds(engine: sa.Engine, schema: str, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT array_length(CAST(CAST(histogram_bounds AS text) AS integer[]), 1) "
                    "FROM pg_stats WHERE schemaname = :s AND tablename = :t AND attname = 'id'"
                ),
                {"s": schema, "t": table.name},
            ).scalar_one()
        )


def _range_rows(engine: sa.Engine, source: object, ranges: list[mb.KeyRange]) -> list[list[int]]:
    return [ids_of(mb.find_each(engine, source, start=r.start, stop=r.stop)) for r in ranges]


def _check_pg_stats_ranges(
    engine: sa.Engine,
    table: sa.Table,
    ranges: list[mb.KeyRange],
    parts: int,
    *,
    balance: float,
    error: float,
) -> None:
    """pg_stats ranges: half-open and contiguous, exactly a full scan when read back, no range
    empty, none more than ``balance`` x the median or less than the median / ``balance``, each
    range's estimate within ``error`` (a fraction) of its rows and their sum within 2 % of the
    table's."""
    assert {"pg_stats"} == {r.basis for r in ranges}
    assert parts == len(ranges)
    assert ranges[0].start is None
    assert ranges[-1].stop is None
    assert all(a.stop == b.start for a, b in itertools.pairwise(ranges))
    per_range = _range_rows(engine, table, ranges)
    assert PG_KEYS == list(itertools.chain.from_iterable(per_range))
    assert PG_KEYS == ids_of(mb.find_each(engine, table))
    sizes = [len(ids) for ids in per_range]
    assert 0 not in sizes
    median = statistics.median(sizes)
    assert max(sizes) / median <= balance, sizes
    assert median / min(sizes) <= balance, sizes
    # The estimates come from reltuples and the share of histogram buckets in each range.
    assert abs(sum(r.rows for r in ranges) - len(PG_KEYS)) <= 0.02 * len(PG_KEYS)
    assert all(abs(r.rows - n) <= error * n for r, n in zip(ranges, sizes, strict=True)), [
        (r.rows, n) for r, n in zip(ranges, sizes, strict=True)
    ]


@pytest.mark.postgres
@postgres_only
@pytest.mark.parametrize(
    ("target", "parts", "balance", "error"),
    [
        # 100 buckets (from a 30,000-row sample) into 8 parts: 12 or 13 buckets a range, so
        # 13/12.5 from the resolution alone plus the sample's error (measured over 25 ANALYZE
        # runs: largest / median at most 1.07, median / smallest at most 1.07, an estimate at
        # most 2.9 % off).
        (None, 8, 1.15, 0.1),
        # 1,000 buckets, the whole table sampled: 10 buckets a range (measured: 1.002, 0.2 %).
        (1000, 100, 1.05, 0.02),
    ],
)
def test_pg_stats_ranges_cover_every_key_once_and_are_balanced(
    db: Db, target: int | None, parts: int, balance: float, error: float
) -> None:
    table = _pg_table(db, statistics=target)
    assert (target or 100) + 1 == _histogram_bounds(db.engine, "public", table)
    ranges = mb.key_ranges(db.engine, table, parts=parts, exact_below=EXACT_BELOW)
    _check_pg_stats_ranges(db.engine, table, ranges, parts, balance=balance, error=error)


@pytest.mark.postgres
@postgres_only
@pytest.mark.parametrize(("parts", "basis"), [(10, "pg_stats"), (11, "sample")])
def test_more_parts_than_histogram_buckets_are_sampled(db: Db, parts: int, basis: str) -> None:
    table = _pg_table(db)  # default statistics target: 101 bounds, 100 buckets: 10 a part
    assert 101 == _histogram_bounds(db.engine, "public", table)
    ranges = mb.key_ranges(db.engine, table, parts=parts, exact_below=EXACT_BELOW)
    assert {basis} == {r.basis for r in ranges}
    assert parts == len(ranges)
    assert PG_KEYS == _read_back(db, table, ranges)


@pytest.mark.postgres
@postgres_only
def test_a_never_analysed_table_is_sampled(db: Db) -> None:
    table = _pg_table(db, analyse=False)
    ranges = mb.key_ranges(db.engine, table, parts=8, exact_below=EXACT_BELOW)
    assert {"sample"} == {r.basis for r in ranges}
    assert PG_KEYS == _read_back(db, table, ranges)
    # The same table once analysed uses its statistics.
    _analyse(db.engine, table)
    ranges = mb.key_ranges(db.engine, table, parts=8, exact_below=EXACT_BELOW)
    assert {"pg_stats"} == {r.basis for r in ranges}


@pytest.mark.postgres
@postgres_only
def test_a_filtered_source_is_sampled_despite_statistics(db: Db) -> None:
    table = _pg_table(db)
    source = sa.select(table).where(table.c.id % 2 == 0)
    ranges = mb.key_ranges(db.engine, source, parts=8, exact_below=EXACT_BELOW)
    assert {"sample"} == {r.basis for r in ranges}
    assert [k for k in PG_KEYS if k % 2 == 0] == _read_back(db, source, ranges)


@pytest.mark.postgres
@postgres_only
@pytest.mark.parametrize("named", ["by schema=", "by search_path"])
def test_pg_stats_of_a_table_outside_public(db: Db, named: str) -> None:
    """The statistics read are those of the table the queries read, also when it is found on
    the search_path: a same-named table in public must not lend its histogram."""
    schema = f"ranges_{os.getpid()}_{next(_schemas)}"
    with db.engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    path_engine = db.new_engine(connect_args={"options": f"-csearch_path={schema}"})
    try:
        twin = db.users(0)  # in public, other keys, analysed
        _fill_pg(db.engine, twin, list(range(10**9, 10**9 + 2000)))
        _analyse(db.engine, twin)
        inner = twin.to_metadata(sa.MetaData(), schema=schema)
        inner.create(db.engine)
        _fill_pg(db.engine, inner, PG_KEYS)
        _analyse(db.engine, inner)
        assert 101 == _histogram_bounds(db.engine, schema, inner)
        engine, table = (db.engine, inner) if named == "by schema=" else (path_engine, twin)
        ranges = mb.key_ranges(engine, table, parts=8, exact_below=EXACT_BELOW)
        _check_pg_stats_ranges(engine, table, ranges, 8, balance=1.15, error=0.1)
    finally:
        path_engine.dispose()
        with db.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
