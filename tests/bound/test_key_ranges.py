"""``key_ranges``: contiguous half-open ranges balanced by rows; read back with
``find_each(start=, stop=)`` they equal a plain full scan (G8)."""

from __future__ import annotations

import itertools

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
