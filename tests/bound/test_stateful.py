"""Hypothesis stateful tests: inserts, deletes, updates interleaved with batch reads (G1, G2, G6).

The model tracks, for the iteration in progress, which keys were present for the whole run
(must come out exactly once, G1), which keys existed at any time (nothing else may come out),
the snapshot's high-water mark (G2: nothing above it with finish="snapshot"), and keys inserted
ahead of the cursor (G2: they must come out with finish=None unless deleted again). Keys must
come out strictly increasing (G6; a KeyOrderError would fail the test). Backends: SQLite in
both journal modes, PostgreSQL, and LMDB (without the snapshot checks, which are SQL-only).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from membound import Batch, in_batches
from tests.bound.helpers import sa, sqlite_engine

KEYS = st.integers(min_value=1, max_value=60)


class BatchingMachine(RuleBasedStateMachine):
    wal = False
    postgres_url: str | None = None

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="membound-hyp-"))
        if self.postgres_url is not None:
            self.engine = sa.create_engine(self.postgres_url)
            with self.engine.begin() as conn:
                conn.exec_driver_sql("DROP TABLE IF EXISTS hyp_t")
        else:
            self.engine = sqlite_engine(self.dir / "db.sqlite", wal=self.wal, synchronous=False)
        self.table = sa.Table(
            "hyp_t",
            sa.MetaData(),
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("v", sa.Integer, nullable=False),
        )
        self.table.create(self.engine)
        self.present: set[int] = set()
        self.batches: Iterator[Batch] | None = None

    def teardown(self) -> None:
        if self.postgres_url is not None:
            self.table.drop(self.engine)
        self.engine.dispose()
        shutil.rmtree(self.dir, ignore_errors=True)

    # ----------------------------------------------------------------------- writes

    def _exec(self, stmt: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(stmt)

    @rule(k=KEYS)
    def insert(self, k: int) -> None:
        if k in self.present:
            return
        self._exec(self.table.insert().values(id=k, v=0))
        self.present.add(k)
        if self.batches is not None:
            self.ever.add(k)
            self.inserted_ahead[k] = k > self.cursor

    @rule(k=KEYS)
    def delete(self, k: int) -> None:
        if k not in self.present:
            return
        self._exec(self.table.delete().where(self.table.c.id == k))
        self.present.discard(k)
        if self.batches is not None:
            self.stable.discard(k)
            self.inserted_ahead.pop(k, None)

    @rule(k=KEYS)
    def update(self, k: int) -> None:
        self._exec(self.table.update().where(self.table.c.id == k).values(v=self.table.c.v + 1))

    # ------------------------------------------------------------------------ reads

    @precondition(lambda self: self.batches is None)
    @rule(size=st.integers(1, 7), follow=st.booleans(), tuples=st.booleans())
    def start(self, size: int, follow: bool, tuples: bool) -> None:
        self.follow = follow
        self.batches = in_batches(
            self.engine,
            self.table,
            batch_size=size,
            finish=None if follow else "snapshot",
            tuples=tuples,  # G8: the driver path obeys the same contract
        )
        self.stable = set(self.present)
        self.ever = set(self.present)
        self.snapshot_max = max(self.present, default=None)
        self.inserted_ahead: dict[int, bool] = {}
        self.seen: list[int] = []
        self.cursor = 0

    @precondition(lambda self: self.batches is not None)
    @rule()
    def read(self) -> None:
        assert self.batches is not None
        try:
            batch = next(self.batches)
        except StopIteration:
            self.finish()
            return
        keys = [row[0] for row in batch.rows]  # id is the first column (Row or tuple)
        assert (keys[0], keys[-1]) == (batch.first_key, batch.last_key)
        self.seen += keys
        self.cursor = keys[-1]

    def finish(self) -> None:
        seen = set(self.seen)
        assert len(seen) == len(self.seen), "a key came out twice (G1)"
        assert self.stable <= seen, f"missing keys {sorted(self.stable - seen)} (G1)"
        assert seen <= self.ever, "a key that never existed came out"
        if not self.follow and self.snapshot_max is not None:
            assert all(k <= self.snapshot_max for k in seen), "key beyond the snapshot (G2)"
        if self.follow:
            ahead = {k for k, was_ahead in self.inserted_ahead.items() if was_ahead}
            assert ahead <= seen, f"rows inserted ahead not followed: {sorted(ahead - seen)} (G2)"
        self.batches = None

    @invariant()
    def keys_increase(self) -> None:
        if self.batches is not None:
            assert all(a < b for a, b in zip(self.seen, self.seen[1:], strict=False)), "G6"


class WalBatchingMachine(BatchingMachine):
    wal = True


SETTINGS = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.parametrize("machine", [BatchingMachine, WalBatchingMachine], ids=["journal", "wal"])
def test_interleaved_writes_and_batch_reads(machine: type[RuleBasedStateMachine]) -> None:
    test_case = machine.TestCase
    test_case.settings = SETTINGS
    test_case().runTest()


class PostgresBatchingMachine(BatchingMachine):
    pass


@pytest.mark.postgres
def test_interleaved_writes_and_batch_reads_postgres(postgres_url: str) -> None:
    PostgresBatchingMachine.postgres_url = postgres_url
    test_case = PostgresBatchingMachine.TestCase
    test_case.settings = settings(SETTINGS, max_examples=40)
    test_case().runTest()


class LmdbBatchingMachine(RuleBasedStateMachine):
    """The same interleavings over LMDB with lmdb_batches (G1, G6; G5 via bytes copies)."""

    def __init__(self) -> None:
        super().__init__()
        import lmdb

        self.dir = Path(tempfile.mkdtemp(prefix="membound-hyp-lmdb-"))
        self.env = lmdb.open(str(self.dir), map_size=1 << 26)
        self.present: set[int] = set()
        self.batches: Iterator[list[tuple[bytes, bytes]]] | None = None

    def teardown(self) -> None:
        self.env.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @staticmethod
    def key(k: int) -> bytes:
        return b"%04d" % k

    @rule(k=KEYS)
    def insert(self, k: int) -> None:
        with self.env.begin(write=True) as txn:
            txn.put(self.key(k), b"0")
        self.present.add(k)
        if self.batches is not None:
            self.ever.add(k)

    @rule(k=KEYS)
    def delete(self, k: int) -> None:
        with self.env.begin(write=True) as txn:
            txn.delete(self.key(k))
        self.present.discard(k)
        if self.batches is not None:
            self.stable.discard(k)

    @rule(k=KEYS, v=st.binary(min_size=1, max_size=8))
    def update(self, k: int, v: bytes) -> None:
        if k in self.present:
            with self.env.begin(write=True) as txn:
                txn.put(self.key(k), v)

    @precondition(lambda self: self.batches is None)
    @rule(size=st.integers(1, 7))
    def start(self, size: int) -> None:
        from membound import lmdb_batches

        self.batches = lmdb_batches(self.env, batch_size=size)
        self.stable = set(self.present)
        self.ever = set(self.present)
        self.seen: list[int] = []

    @precondition(lambda self: self.batches is not None)
    @rule()
    def read(self) -> None:
        assert self.batches is not None
        try:
            batch = next(self.batches)
        except StopIteration:
            seen = set(self.seen)
            assert len(seen) == len(self.seen), "a key came out twice (G1)"
            assert self.stable <= seen, f"missing keys {sorted(self.stable - seen)} (G1)"
            assert seen <= self.ever
            self.batches = None
            return
        assert all(type(k) is bytes and type(v) is bytes for k, v in batch)  # G5
        self.seen += [int(k) for k, _ in batch]

    @invariant()
    def keys_increase(self) -> None:
        if self.batches is not None:
            assert all(a < b for a, b in zip(self.seen, self.seen[1:], strict=False)), "G6"


def test_interleaved_writes_and_batch_reads_lmdb() -> None:
    pytest.importorskip("lmdb")
    test_case = LmdbBatchingMachine.TestCase
    test_case.settings = SETTINGS
    test_case().runTest()
