"""``stop=``: an exclusive upper bound on the key, so that half-open ranges read by
``find_each(start=r.start, stop=r.stop)`` cover the source exactly once (G1, G8): integer keys
with gaps, string keys, composite keys, a filtered source, ORM and ``tuples=True``, on SQLite
and PostgreSQL."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

import membound as mb
from membound import BatchSourceError
from tests.bound.helpers import Db, fill, ids_of, sa

#: Integer keys with large gaps: 1..300, then 10_000..10_299, then 1_000_000..1_000_099.
GAPPED = [*range(1, 301), *range(10_000, 10_300), *range(1_000_000, 1_000_100)]


def _gapped(db: Db) -> sa.Table:
    table = db.users(0)
    fill(db.engine, table, GAPPED)
    return table


def _ranges(bounds: list[Any]) -> list[tuple[Any, Any]]:
    """Half-open ranges from cut points: [None, b0), [b0, b1), …, [bn, None)."""
    cuts = [None, *bounds, None]
    return list(itertools.pairwise(cuts))


@pytest.mark.parametrize("batch_size", [1, 7, 1000])
@pytest.mark.parametrize("tuples", [False, True])
def test_half_open_ranges_cover_every_key_exactly_once(
    db: Db, batch_size: int, tuples: bool
) -> None:
    table = _gapped(db)
    full = ids_of(mb.find_each(db.engine, table, batch_size=batch_size))
    seen: list[int] = []
    for start, stop in _ranges([150, 301, 10_000, 10_150, 999_999, 1_000_050]):
        rows = mb.find_each(
            db.engine, table, batch_size=batch_size, start=start, stop=stop, tuples=tuples
        )
        ids = [r[0] for r in rows] if tuples else ids_of(rows)
        assert all((start is None or i >= start) and (stop is None or i < stop) for i in ids)
        seen.extend(ids)
    assert GAPPED == full
    assert full == seen


def test_stop_is_exclusive_and_finish_inclusive(db: Db) -> None:
    table = db.users(20)
    assert [5, 6, 7, 8, 9] == ids_of(mb.find_each(db.engine, table, start=5, stop=10))
    assert [5, 6, 7] == ids_of(mb.find_each(db.engine, table, start=5, finish=7, stop=10))
    assert [5, 6, 7, 8, 9] == ids_of(mb.find_each(db.engine, table, start=5, finish=15, stop=10))
    assert [] == ids_of(mb.find_each(db.engine, table, start=5, stop=5))
    batches = list(mb.in_batches(db.engine, table, batch_size=3, stop=8))
    assert [(1, 3), (4, 6), (7, 7)] == [(b.first_key, b.last_key) for b in batches]


def test_the_snapshot_is_taken_below_stop(db: Db) -> None:
    table = db.users(10)
    rows = mb.find_each(db.engine, table, batch_size=2, stop=6)  # snapshot: max key below 6
    first = next(rows)
    fill(db.engine, table, [4_000, 5_000])  # inserted during the run, above stop
    assert [1, 2, 3, 4, 5] == [first.id, *ids_of(rows)]


def test_string_keys(db: Db) -> None:
    table = sa.Table(
        f"words_{id(db)}",
        db.metadata,
        sa.Column("word", sa.String(20), primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
    )
    table.create(db.engine)
    words = [f"w{i:04d}" for i in range(0, 500, 3)]
    with db.engine.begin() as conn:
        conn.execute(table.insert(), [{"word": w, "n": i} for i, w in enumerate(words)])
    seen: list[str] = []
    for start, stop in _ranges(["w0100", "w0250", "w0251"]):
        seen.extend(
            r.word for r in mb.find_each(db.engine, table, batch_size=11, start=start, stop=stop)
        )
    assert words == seen


def test_composite_keys_and_a_filtered_source(db: Db) -> None:
    table = db.pairs("stop_pairs", 40)
    source = sa.select(table).where(table.c.b != "y")
    full = [(r.a, r.b) for r in mb.find_each(db.engine, source, batch_size=5)]
    seen: list[tuple[int, str]] = []
    for start, stop in _ranges([(10, "x"), (10, "z"), (25, "a")]):
        rows = mb.find_each(db.engine, source, batch_size=5, start=start, stop=stop)
        seen.extend((r.a, r.b) for r in rows)
    assert 80 == len(full)
    assert full == seen
    assert (10, "z") not in [(r.a, r.b) for r in mb.find_each(db.engine, source, stop=(10, "z"))]


def test_orm_entities(db: Db) -> None:
    from sqlalchemy.orm import DeclarativeBase, sessionmaker

    class Base(DeclarativeBase):
        pass

    class User(Base):
        __table__ = _gapped(db)

    sessions = sessionmaker(db.engine)
    seen: list[int] = []
    for start, stop in _ranges([200, 10_100]):
        seen.extend(
            u.id for u in mb.find_each(sessions, User, batch_size=50, start=start, stop=stop)
        )
    assert GAPPED == seen


def test_resuming_a_checkpoint_stays_below_stop(db: Db) -> None:
    table = db.users(30)
    checkpoint = mb.Checkpoint(db.engine, f"stop-{id(db)}")
    rows = mb.find_each(db.engine, table, batch_size=4, start=10, stop=20, checkpoint=checkpoint)
    first_batch = [next(rows).id for _ in range(4)]
    next(rows)  # the second batch is asked for: the first is saved
    rows.close()
    again = mb.find_each(db.engine, table, batch_size=4, start=10, stop=20, checkpoint=checkpoint)
    assert [10, 11, 12, 13] == first_batch
    assert list(range(14, 20)) == ids_of(again)


def test_bad_stops(db: Db) -> None:
    table = db.users(3)
    with pytest.raises(BatchSourceError, match="above stop"):
        mb.find_each(db.engine, table, start=9, stop=3)
    with pytest.raises(BatchSourceError, match="stop"):
        mb.find_each(db.engine, table, stop=(None,))
