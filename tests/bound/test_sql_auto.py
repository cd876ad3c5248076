"""``batch_size="auto"``: pages sized toward a time target and under a memory cap; the rows are
those of a plain full scan (G8) whatever sizes the tuner picks."""

from __future__ import annotations

import importlib

import pytest

import membound as mb
from membound import BatchSourceError
from membound.bound.sql.autosize import PageSizer
from tests.bound.helpers import Db, fill, ids_of, sa


def test_auto_reads_every_row_once(db: Db) -> None:
    table = db.users(0)
    keys = [*range(1, 3000), *range(10_000, 60_000, 7)]
    fill(db.engine, table, keys)
    assert keys == ids_of(mb.find_each(db.engine, table, batch_size="auto"))
    batches = list(mb.in_batches(db.engine, table, batch_size="auto", tuples=True))
    assert keys == [row[0] for b in batches for row in b.rows]
    assert len({len(b.rows) for b in batches}) > 1  # the size did change
    source = sa.select(table).where(table.c.id % 3 == 0)
    expected = [k for k in keys if k % 3 == 0 and 5 <= k < 40_000]
    assert expected == ids_of(
        mb.find_each(db.engine, source, batch_size="auto", start=5, stop=40_000)
    )


def test_auto_with_a_composite_key_and_checkpoint(db: Db) -> None:
    table = db.pairs("auto_pairs", 3000)
    cp = mb.Checkpoint(db.engine, f"auto-{table.name}")
    seen = []
    for i, row in enumerate(mb.find_each(db.engine, table, batch_size="auto", checkpoint=cp)):
        seen.append((row.a, row.b))
        if i == 4000:
            break
    rest = [(r.a, r.b) for r in mb.find_each(db.engine, table, batch_size="auto", checkpoint=cp)]
    everything = [(a, b) for a in range(3000) for b in "xyz"]
    assert everything == sorted(set(seen + rest))
    assert len(rest) >= len(everything) - len(seen)  # resumed, not restarted


class _Clock:
    """The clock ``in_batches`` times its pages by, moved only by the test: the page sizes then
    follow from the work the test says each page took, not from how busy the machine is."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now

    def spend(self, seconds: float) -> None:
        self.now += seconds


def test_pages_grow_when_fast_and_shrink_when_the_work_gets_heavier(
    db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Page times are what ``in_batches`` measures, from the start of a page's query to the
    request for the next page, on a clock the test moves: 2 ms for each query, 1 µs a row for
    the loop body of the first three pages, 20 µs from the fourth on."""
    table = db.users(60_000)
    clock = _Clock()
    monkeypatch.setattr(importlib.import_module("membound.bound.sql.read"), "time", clock)
    sa.event.listen(db.engine, "before_cursor_execute", lambda *_: clock.spend(0.002))
    sizes = []
    for batch in mb.in_batches(db.engine, table, batch_size="auto", target_batch_s=0.02):
        sizes.append(len(batch.rows))
        clock.spend((1e-6 if batch.index < 3 else 20e-6) * len(batch.rows))
    assert 60_000 == sum(sizes)
    # Cheap pages (3 ms for the first 1,000 rows): the size grows, 4x a page at most.
    assert [1000, 4000] == sizes[:2], sizes
    assert sizes[2] > sizes[1], sizes
    # Heavier work from the fourth page: one slow page is a hiccup (the next is the same size),
    # the second confirms it; then the 0.02 s target is (0.02 - 0.002) / 20 µs = 900 rows a
    # page, met within a tenth (the last page is a remnant).
    assert sizes[4] == sizes[3], sizes
    heavy = sizes[5:-1]
    assert len(heavy) >= 5, sizes
    assert all(abs(n - 900) <= 90 for n in heavy), sizes


def test_wide_rows_are_capped_by_memory(db: Db) -> None:
    wide = sa.Table(
        f"wide_{id(db)}",
        db.metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("blob", sa.Text, nullable=False),
    )
    wide.create(db.engine)
    with db.engine.begin() as conn:
        conn.execute(wide.insert(), [{"id": i, "blob": "y" * 20_000} for i in range(1, 3001)])
    sizes = [
        len(b.rows)
        for b in mb.in_batches(db.engine, wide, batch_size="auto", max_batch_memory="1 MB")
    ]
    assert 3000 == sum(sizes)
    # ~20 KB a row under a 1 MB cap: about 50 rows a page once the first page was seen.
    assert all(n <= 55 for n in sizes[1:])
    assert max(sizes[1:]) >= 40


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": "fast"}, "batch_size must be an integer >= 1 or 'auto'"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1 or 'auto'"),
        ({"batch_size": "auto", "target_batch_s": 0}, "target_batch_s must be a positive"),
        ({"batch_size": "auto", "max_batch_memory": "12 B"}, "max_batch_memory must be at least"),
        ({"batch_size": "auto", "max_batch_memory": "lots"}, "lots"),
    ],
)
def test_bad_auto_arguments(db: Db, kwargs: dict[str, object], message: str) -> None:
    table = db.users(3)
    with pytest.raises((BatchSourceError, mb.MemboundError), match=message):
        mb.find_each(db.engine, table, **kwargs)  # type: ignore[arg-type]


def _settle(sizer: PageSizer, seconds_per_row: float, pages: int) -> list[float]:
    """Page times of ``pages`` pages at a fixed cost per row plus 2 ms per query."""
    times = []
    for _ in range(pages):
        n = sizer.size
        t = 0.002 + seconds_per_row * n
        times.append(t)
        sizer.observe(n, t, 0, 50.0)
    return times


def test_the_sizer_settles_and_resettles_after_a_tenfold_change() -> None:
    sizer = PageSizer(0.5, "1 GB")
    times = _settle(sizer, 20e-6, 12)
    assert all(abs(t - 0.5) / 0.5 <= 0.2 for t in times[5:])
    times = _settle(sizer, 200e-6, 6)  # rows ten times as costly
    assert all(abs(t - 0.5) / 0.5 <= 0.2 for t in times[3:])
    times = _settle(sizer, 20e-6, 6)  # and back
    assert all(abs(t - 0.5) / 0.5 <= 0.2 for t in times[3:])


def test_one_slow_page_is_a_hiccup_not_a_new_load() -> None:
    sizer = PageSizer(0.5, "1 GB")
    _settle(sizer, 20e-6, 10)
    settled = sizer.size
    sizer.observe(settled, 5.0, 0, 50.0)  # one page 10x slow (the machine was busy)
    assert settled == sizer.size
    _settle(sizer, 20e-6, 3)
    assert abs(sizer.size - settled) <= 0.15 * settled


def test_the_memory_cap_uses_the_larger_of_rss_and_sampled_sizes() -> None:
    sizer = PageSizer(0.5, "10 MB")
    sizer.observe(1000, 0.001, 0, 1000.0)  # fast pages; 1 KB rows by their sampled size
    assert sizer.size <= 10 * 2**20 // 1000
    sizer = PageSizer(0.5, "10 MB")
    sizer.observe(1000, 0.001, 50 * 2**20, 100.0)  # RSS grew 50 MB for 1,000 rows
    assert sizer.size <= 10 * 2**20 // (50 * 2**20 // 1000) + 1


@pytest.mark.parametrize("fixed", [0.4, 0.6, 2.0])
def test_a_fixed_cost_per_page_does_not_shrink_pages_to_nothing(fixed: float) -> None:
    """A bulk call per batch: t = fixed + 10 µs/row. Proportional shrinking would go to 1 row
    a page with every page still taking ``fixed``."""
    sizer = PageSizer(0.5, "1 GB")
    for _ in range(25):
        n = sizer.size
        sizer.observe(n, fixed + 10e-6 * n, 0, 50.0)
    # Past half the target the fixed cost rules: rows take about as long as it (±25 %).
    assert abs(sizer.size * 10e-6 - fixed) <= 0.25 * fixed
    assert abs(sizer.fixed_s - fixed) <= 0.05 * fixed


def test_a_small_fixed_cost_still_meets_the_target() -> None:
    sizer = PageSizer(0.5, "1 GB")
    times = []
    for _ in range(20):
        n = sizer.size
        times.append(0.1 + 20e-6 * n)
        sizer.observe(n, times[-1], 0, 50.0)
    assert all(abs(t - 0.5) <= 0.1 for t in times[10:])


def test_container_values_are_sized_with_what_they_hold(db: Db) -> None:
    docs = sa.Table(
        f"docs_{id(db)}",
        db.metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("doc", sa.JSON, nullable=False),
    )
    docs.create(db.engine)
    doc = {f"key{i}": [f"value {i} {j}" for j in range(5)] for i in range(20)}
    with db.engine.begin() as conn:
        conn.execute(docs.insert(), [{"id": i, "doc": doc} for i in range(1, 4001)])
    sizes = [
        len(b.rows)
        for b in mb.in_batches(db.engine, docs, batch_size="auto", max_batch_memory="2 MB")
    ]
    row_bytes = mb.deep_sizeof(doc)
    assert 4000 == sum(sizes)
    # Each row holds a ~20 KB dict: about 2 MB / 20 KB rows a page, never the 1,000 of a
    # shallow size's estimate.
    assert max(sizes[1:]) * row_bytes <= 2.2 * 2**20


def _flush_sizes(writer: mb.BatchWriter) -> list[int]:
    """Wrap ``writer.flush`` to record how many items each flush committed."""
    sizes: list[int] = []
    flush = writer.flush

    def recording() -> int:
        done = flush()
        if done:
            sizes.append(done)
        return done

    writer.flush = recording  # type: ignore[method-assign]
    return sizes


def test_an_auto_writer_sizes_its_flushes_from_their_times_and_writes_each_item_once(
    db: Db,
) -> None:
    table = db.users(60_000)
    stmt = (
        sa.update(table)
        .where(table.c.id == sa.bindparam("uid"))
        .values(counter=table.c.counter + 1)
    )
    cp = mb.Checkpoint(db.engine, f"auto-writer-{table.name}")
    with mb.BatchWriter(db.engine, "auto", checkpoint=cp, target_batch_s=0.5) as writer:
        sizes = _flush_sizes(writer)
        for row in mb.find_each(db.engine, table, batch_size=5000, checkpoint=cp):
            writer.add(stmt, {"uid": row.id})
    assert 60_000 == writer.committed == sum(sizes)
    assert sizes[0] == 1000  # the first flush, before anything was measured
    assert max(sizes) > 2000, sizes  # cheap flushes: the size grew toward the 0.5 s target
    with db.engine.connect() as conn:
        assert {1} == set(conn.execute(sa.select(table.c.counter)).scalars())


def test_an_auto_writer_keeps_its_buffer_under_the_memory_cap(db: Db) -> None:
    table = sa.Table(
        f"docs_{id(db)}",
        db.metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("doc", sa.Text, nullable=True),
    )
    table.create(db.engine)
    with db.engine.begin() as conn:
        conn.execute(table.insert(), [{"id": i} for i in range(1, 3001)])
    stmt = sa.update(table).where(table.c.id == sa.bindparam("uid")).values(doc=sa.bindparam("p"))
    with mb.BatchWriter(db.engine, "auto", max_batch_memory="1 MB") as writer:
        sizes = _flush_sizes(writer)
        for i in range(1, 3001):
            writer.add(stmt, {"uid": i, "p": f"{i:05}" + "x" * 20_000})  # ~20 KB an item
    assert 3000 == sum(sizes)
    assert sizes[0] == 1000
    # ~20 KB an item under a 1 MB cap: about 50 items a flush once the first was measured.
    assert all(n <= 55 for n in sizes[1:]), sizes
    assert max(sizes[1:]) >= 40, sizes


def test_bad_auto_writer_arguments(db: Db) -> None:
    with pytest.raises(BatchSourceError, match="batch_size must be an integer >= 1 or 'auto'"):
        mb.BatchWriter(db.engine, "fast")  # type: ignore[arg-type]
    with pytest.raises(BatchSourceError, match="target_batch_s must be a positive"):
        mb.BatchWriter(db.engine, "auto", target_batch_s=0)
