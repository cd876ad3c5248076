"""G1 over joins: a key unique in its own table but repeated by a one-to-many join would skip
rows at page ends; each page of a multi-table source is checked, and such a run stops with a
one-line error before the page is handed out."""

from __future__ import annotations

import pytest

import membound as mb
from membound import BatchSourceError
from tests.bound.helpers import Db, sa


def _parent_child(db: Db, children: dict[int, int]) -> tuple[sa.Table, sa.Table]:
    """Parents 1..n, with ``children[p]`` child rows each."""
    parent = sa.Table(
        f"parent_{id(db)}", db.metadata, sa.Column("id", sa.Integer, primary_key=True)
    )
    child = sa.Table(
        f"child_{id(db)}",
        db.metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("pid", sa.Integer, sa.ForeignKey(parent.c.id), nullable=False),
    )
    db.metadata.create_all(db.engine)
    rows, n = [], 0
    for p, k in children.items():
        for _ in range(k):
            n += 1
            rows.append({"id": n, "pid": p})
    with db.engine.begin() as conn:
        conn.execute(parent.insert(), [{"id": p} for p in children])
        conn.execute(child.insert(), rows)
    return parent, child


def test_a_key_repeated_within_a_page_is_refused(db: Db) -> None:
    parent, child = _parent_child(db, dict.fromkeys(range(1, 21), 5))
    source = sa.select(parent.c.id, child.c.id.label("cid")).join(child)
    with pytest.raises(BatchSourceError, match=r"key \(id\) is not unique in this source: 1 "):
        list(mb.find_each(db.engine, source, key=parent.c.id, batch_size=50))


def test_a_key_repeated_across_a_page_end_is_refused(db: Db) -> None:
    # Keys 1 and 2 have one row each, key 3 two: a page of 3 rows ends on key 3's first row,
    # and the next page would start after key 3, skipping its second row.
    parent, child = _parent_child(db, {1: 1, 2: 1, 3: 2, 4: 1})
    source = sa.select(parent.c.id, child.c.id.label("cid")).join(child)
    batches = mb.in_batches(db.engine, source, key=parent.c.id, batch_size=3)
    with pytest.raises(BatchSourceError, match=r"3 occurs in more than one row"):
        next(batches)  # stopped before the first page was handed out


def test_a_key_unique_in_the_join_is_read_in_full(db: Db) -> None:
    parent, child = _parent_child(db, dict.fromkeys(range(1, 101), 3))
    many = sa.select(child.c.id, parent.c.id.label("p")).join(parent)
    assert list(range(1, 301)) == [
        r.id for r in mb.find_each(db.engine, many, key=child.c.id, batch_size=7)
    ]
    one_each = (
        sa.select(parent.c.id, child.c.id.label("cid")).join(child).where(child.c.id % 3 == 0)
    )
    assert list(range(1, 101)) == [
        r.id for r in mb.find_each(db.engine, one_each, key=parent.c.id, batch_size=10)
    ]


def _noop(batch: object, writer: object) -> None:
    return None


def test_key_ranges_refuses_a_key_the_join_repeats_before_cutting(db: Db) -> None:
    # Parent 7 has two children among a thousand single ones: one repeat is enough.
    parent, child = _parent_child(db, {p: 2 if p == 7 else 1 for p in range(1, 1001)})
    source = sa.select(parent.c.id, child.c.id.label("cid")).join(child)
    with pytest.raises(BatchSourceError, match=r"key \(id\) is not unique in this source: 7 "):
        mb.key_ranges(db.engine, source, parts=4, key=parent.c.id)
    unique = sa.select(child.c.id, parent.c.id.label("p")).join(parent)
    assert 4 == len(mb.key_ranges(db.engine, unique, parts=4, key=child.c.id))


def test_run_partitioned_refuses_it_before_writing_a_job_row(db: Db) -> None:
    parent, child = _parent_child(db, {p: 2 if p == 7 else 1 for p in range(1, 1001)})
    source = sa.select(parent.c.id, child.c.id.label("cid")).join(child)
    with pytest.raises(BatchSourceError, match="is not unique in this source"):
        mb.run_partitioned(
            db.engine, source, _noop, name=f"repeats-{id(db)}", parts=4, key=parent.c.id
        )
    leases = sa.Table("membound_leases", sa.MetaData(), autoload_with=db.engine)
    with db.engine.connect() as conn:
        jobs = conn.execute(sa.select(leases.c.job).where(leases.c.job == f"repeats-{id(db)}"))
        assert [] == jobs.all()
