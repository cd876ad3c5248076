"""``run_partitioned`` in process and on executors: every row's write happens exactly once,
and the rows handed to ``fn`` are those of a plain full scan (G8), on SQLite and PostgreSQL."""

from __future__ import annotations

import concurrent.futures as cf
import functools
import multiprocessing as mp
import random
from pathlib import Path

import pytest

import membound as mb
from membound import BatchSourceError
from tests.bound import partition_jobs as jobs
from tests.bound.helpers import Db, fill, sa

#: Gapped keys: dense, sparse, and a far block.
GAPPED = [*range(1, 1501), *range(5000, 20_000, 9), *range(10**7, 10**7 + 400)]


def _zipf_keys(n: int) -> list[int]:
    """``n`` distinct keys crowded at the low end, as Zipf-distributed ids are."""
    rng = random.Random(7)
    keys: set[int] = set()
    while len(keys) < n:
        keys.add(int(rng.paretovariate(0.6)) + rng.randrange(50))
    return sorted(keys)


def _counters(db: Db, table: sa.Table) -> dict[int, int]:
    with db.engine.connect() as conn:
        return dict(conn.execute(sa.select(table.c.id, table.c.counter)).all())  # type: ignore[arg-type]


def _table(db: Db, keys: list[int]) -> sa.Table:
    table = db.users(0)
    fill(db.engine, table, keys)
    return table


def _name(table: sa.Table, suffix: str = "") -> str:
    return f"job-{table.name}{suffix}"


@pytest.mark.parametrize("keys", ["gapped", "zipf"])
def test_in_process_every_row_once(db: Db, keys: str) -> None:
    ids = GAPPED if keys == "gapped" else _zipf_keys(3000)
    table = _table(db, ids)
    report = mb.run_partitioned(
        db.url, table, functools.partial(jobs.bump, table.name), name=_name(table), parts=5,
        batch_size=97, write_batch_size=40,
    )  # fmt: skip
    assert dict.fromkeys(ids, 1) == _counters(db, table)
    assert len(ids) == report.rows == sum(r.rows for r in report.ranges)
    assert 5 == len(report.ranges)
    assert all(r.done and r.rows > 0 for r in report.ranges)
    assert report.ranges[0].start is None
    assert report.ranges[-1].stop is None
    assert all(a.stop == b.start for a, b in zip(report.ranges, report.ranges[1:], strict=False))
    assert "in-process" == report.runner
    assert all(r.peak_rss_delta is not None for r in report.ranges)


def test_a_filtered_source_and_a_read_only_fn(db: Db) -> None:
    table = _table(db, GAPPED)
    source = sa.select(table).where(table.c.id % 4 == 1)
    counts: dict[int, int] = {}
    report = mb.run_partitioned(
        db.url, source, functools.partial(jobs.count_rows, counts), name=_name(table), parts=4,
        client=cf.ThreadPoolExecutor(2),
    )  # fmt: skip
    expected = {k: 1 for k in GAPPED if k % 4 == 1}
    assert expected == counts
    assert len(expected) == report.rows


def test_composite_keys(db: Db) -> None:
    table = db.pairs("rp_pairs", 700)
    seen: dict[tuple[int, str], int] = {}

    def collect(batch: mb.Batch, writer: mb.BatchWriter) -> None:
        for row in batch.rows:
            seen[(row.a, row.b)] = seen.get((row.a, row.b), 0) + 1

    report = mb.run_partitioned(db.url, table, collect, name=f"job-{table.name}", parts=6)
    assert {(a, b): 1 for a in range(700) for b in "xyz"} == seen
    assert all(isinstance(r.stop, tuple) for r in report.ranges[:-1])


def test_process_pool(db: Db) -> None:
    table = _table(db, GAPPED)
    with cf.ProcessPoolExecutor(2) as pool:
        report = mb.run_partitioned(
            db.url, table, functools.partial(jobs.bump, table.name), name=_name(table),
            parts=4, client=pool,
        )  # fmt: skip
    assert dict.fromkeys(GAPPED, 1) == _counters(db, table)
    assert "ProcessPoolExecutor" == report.runner
    assert len(GAPPED) == report.rows


def test_a_straggler_is_split_for_the_idle_worker(db: Db) -> None:
    table = _table(db, list(range(1, 4001)))
    fn = functools.partial(jobs.slow_until_split, db.url, table.name, _name(table), 2001)
    with cf.ThreadPoolExecutor(2) as pool:
        report = mb.run_partitioned(
            db.url, table, fn, name=_name(table), parts=2, client=pool, batch_size=50,
            poll_interval=0.05,
        )  # fmt: skip
    assert dict.fromkeys(range(1, 4001), 1) == _counters(db, table)
    assert report.splits >= 1
    assert len(report.ranges) > 2
    assert all(a.stop == b.start for a, b in zip(report.ranges, report.ranges[1:], strict=False))
    assert 4000 == report.rows


def test_a_failed_batch_is_retried_without_writing_twice(db: Db, tmp_path: Path) -> None:
    table = _table(db, GAPPED)
    fn = functools.partial(jobs.failing_bump, table.name, str(tmp_path / "m"), 9005)
    report = mb.run_partitioned(
        db.url, table, fn, name=_name(table), parts=3, batch_size=50, write_batch_size=20
    )
    assert dict.fromkeys(GAPPED, 1) == _counters(db, table)
    assert 1 == report.retries
    assert len(GAPPED) == report.rows


def test_a_range_that_keeps_failing_is_reported_and_resumable(db: Db) -> None:
    table = _table(db, GAPPED)
    with pytest.raises(
        mb.PartitionFailed, match=r"failed after 1 retries.*ranges finished"
    ) as info:
        mb.run_partitioned(
            db.url, table, jobs.always_failing, name=_name(table), parts=3, retries=1
        )
    report = info.value.report
    assert 3 == len(report.ranges)
    assert not any(r.done for r in report.ranges)
    # The same name resumes the same job; a fixed fn completes it, each row once.
    done = mb.run_partitioned(
        db.url, table, functools.partial(jobs.bump, table.name), name=_name(table), parts=3
    )
    assert dict.fromkeys(GAPPED, 1) == _counters(db, table)
    assert len(GAPPED) == done.rows


def test_a_finished_job_stays_finished_unless_restarted(db: Db) -> None:
    table = _table(db, list(range(1, 301)))
    fn = functools.partial(jobs.bump, table.name)
    mb.run_partitioned(db.url, table, fn, name=_name(table), parts=2)
    again = mb.run_partitioned(db.url, table, fn, name=_name(table), parts=2)
    assert again.already_finished
    assert dict.fromkeys(range(1, 301), 1) == _counters(db, table)
    mb.run_partitioned(db.url, table, fn, name=_name(table), parts=3, restart=True)
    assert dict.fromkeys(range(1, 301), 2) == _counters(db, table)


def test_a_name_in_use_with_other_ranges_is_refused(db: Db) -> None:
    table = _table(db, list(range(1, 301)))
    with pytest.raises(mb.PartitionFailed):
        mb.run_partitioned(
            db.url, table, jobs.always_failing, name=_name(table), parts=2, retries=0
        )
    with pytest.raises(BatchSourceError, match=r"is under way with .*parts: 2 then, 3 now"):
        mb.run_partitioned(db.url, table, jobs.always_failing, name=_name(table), parts=3)
    # Another table, or another filter value, under the same name is another job too.
    other = _table(db, list(range(1, 301)))
    with pytest.raises(BatchSourceError, match=rf"source: .*{table.name}.* then, .*{other.name}"):
        mb.run_partitioned(db.url, other, jobs.always_failing, name=_name(table), parts=2)
    some = sa.select(table).where(table.c.id > 5)
    filtered = functools.partial(jobs.count_rows, {})
    mb.run_partitioned(db.url, some, filtered, name=f"{_name(table)}-f", parts=2)
    with pytest.raises(BatchSourceError, match=r"is finished with another source"):
        mb.run_partitioned(
            db.url, sa.select(table).where(table.c.id > 6), filtered,
            name=f"{_name(table)}-f", parts=2,
        )  # fmt: skip


def test_an_engine_factory(db: Db) -> None:
    table = _table(db, list(range(1, 201)))
    report = mb.run_partitioned(
        lambda: sa.create_engine(db.url), table, functools.partial(jobs.bump, table.name),
        name=_name(table), parts=2,
    )  # fmt: skip
    assert 200 == report.rows


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"parts": 0}, "parts must be a whole number >= 1"),
        ({"fn": 3}, "fn must be callable"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1 or 'auto'"),
        ({"retries": -1}, "retries must be a whole number"),
        ({"lease": "soon"}, "lease is not a usable duration"),
        ({"client": "cluster"}, "client must be a dask.distributed.Client"),
        ({"name": ""}, "a job name must be a non-empty string"),
    ],
)
def test_bad_arguments(db: Db, kwargs: dict[str, object], message: str) -> None:
    table = _table(db, list(range(1, 51)))
    args: dict[str, object] = {"fn": functools.partial(jobs.bump, table.name), "name": "bad"}
    args.update(kwargs)
    fn = args.pop("fn")
    with pytest.raises(mb.MemboundError, match=message):
        mb.run_partitioned(db.url, table, fn, **args)  # type: ignore[arg-type]


def test_an_engine_in_process_but_not_to_a_process_pool(db: Db) -> None:
    table = _table(db, list(range(1, 51)))
    fn = functools.partial(jobs.bump, table.name)
    report = mb.run_partitioned(db.engine, table, fn, name=_name(table), parts=2)
    assert 50 == report.rows
    with (
        cf.ProcessPoolExecutor(1) as pool,
        pytest.raises(BatchSourceError, match=r"an Engine cannot be sent .*pass its URL"),
    ):
        mb.run_partitioned(db.engine, table, fn, name=_name(table, "-p"), client=pool)
    with pytest.raises(BatchSourceError, match="db must be a database URL"):
        mb.run_partitioned(3, table, fn, name="x")  # type: ignore[arg-type]


def test_a_dead_pool_worker_is_reported_and_the_job_resumes(db: Db, tmp_path: Path) -> None:
    table = _table(db, list(range(1, 2001)))
    fn = functools.partial(jobs.die_once, table.name, str(tmp_path / "died"), 700)
    with (
        cf.ProcessPoolExecutor(2) as pool,
        pytest.raises(mb.PartitionFailed, match=r"a worker process of the pool died") as info,
    ):
        mb.run_partitioned(
            db.url, table, fn, name=_name(table), parts=4, client=pool, batch_size=50,
            write_batch_size=50,
        )  # fmt: skip
    counters = _counters(db, table)
    assert set(counters.values()) <= {0, 1}
    assert sum(counters.values()) == sum(r.rows for r in info.value.report.ranges)
    with cf.ProcessPoolExecutor(2) as pool:
        mb.run_partitioned(db.url, table, fn, name=_name(table), parts=4, client=pool)
    assert dict.fromkeys(range(1, 2001), 1) == _counters(db, table)


def test_two_coordinators_of_one_job_share_it(db: Db) -> None:
    table = _table(db, list(range(1, 3001)))
    fn = functools.partial(jobs.slow_bump, table.name, 0.01, 10**9)

    def drive() -> mb.PartitionReport:
        return mb.run_partitioned(
            db.url, table, fn, name=_name(table), parts=6, batch_size=100, lease="5 s"
        )

    with cf.ThreadPoolExecutor(2) as coordinators:
        reports = [f.result() for f in [coordinators.submit(drive), coordinators.submit(drive)]]
    assert dict.fromkeys(range(1, 3001), 1) == _counters(db, table)
    assert all(3000 == r.rows for r in reports)
    assert 0 == max(r.retries for r in reports)  # waited for each other, took nothing over


def test_a_keyless_source(db: Db) -> None:
    table = _table(db, list(range(1, 51)))
    keyless = sa.Table(
        f"keyless_{table.name}", db.metadata, sa.Column("v", sa.Integer, nullable=False)
    )
    keyless.create(db.engine)
    with pytest.raises(BatchSourceError, match=r"primary key|key"):
        mb.run_partitioned(db.url, keyless, jobs.always_failing, name="keyless", parts=2)


def test_a_closure_cannot_go_to_a_process_pool(db: Db) -> None:
    table = _table(db, list(range(1, 51)))
    with (
        cf.ProcessPoolExecutor(1) as pool,
        pytest.raises(BatchSourceError, match="cannot be sent to the process pool"),
    ):
        mb.run_partitioned(
            db.url, table, lambda b, w: None, name=_name(table), parts=2, client=pool
        )


def test_tables_of_an_older_layout_are_refused(db: Db) -> None:
    table = _table(db, list(range(1, 51)))
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS membound_leases")
        conn.exec_driver_sql("CREATE TABLE membound_leases (job VARCHAR(200), part INTEGER)")
    try:
        with pytest.raises(BatchSourceError, match=r"membound_leases .*another layout"):
            mb.run_partitioned(db.url, table, jobs.always_failing, name="old", parts=2)
    finally:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE membound_leases")
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS membound_checkpoints")
        conn.exec_driver_sql("CREATE TABLE membound_checkpoints (name VARCHAR(200), pos TEXT)")
    try:
        with pytest.raises(BatchSourceError, match=r"membound_checkpoints .*missing position"):
            mb.Checkpoint(db.engine, "old").position  # noqa: B018
    finally:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE membound_checkpoints")


def test_a_shared_engine_factory_across_a_forked_pool(db: Db) -> None:
    """The coordinator uses the factory's engine before the pool forks: workers must not share its
    pooled connections (on PostgreSQL that mixes up results or hangs)."""
    table = _table(db, list(range(1, 8001)))
    factory = functools.partial(jobs.shared_engine, db.url)
    with factory().connect() as conn:  # the parent's pool now holds a connection
        conn.execute(sa.select(1))
    with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("fork")) as pool:
        report = mb.run_partitioned(
            factory, table, functools.partial(jobs.bump, table.name), name=_name(table),
            parts=4, client=pool, batch_size=200,
        )  # fmt: skip
    assert dict.fromkeys(range(1, 8001), 1) == _counters(db, table)
    assert 8000 == report.rows
    factory().dispose()


def test_in_process_ranges_after_a_failed_one_do_not_run(db: Db) -> None:
    table = _table(db, list(range(1, 301)))
    fn = functools.partial(jobs.fail_below, table.name, 50)
    with pytest.raises(mb.PartitionFailed, match=r"range 0 of job .* failed after 0 retries"):
        mb.run_partitioned(db.url, table, fn, name=_name(table), parts=3, retries=0)
    counters = _counters(db, table)
    assert 0 == sum(counters.values())  # range 0 rolled back; ranges 1 and 2 never started


def test_long_names_and_text_keys_fit_the_checkpoint_table(db: Db) -> None:
    table = sa.Table(
        f"urls_{id(db)}",
        db.metadata,
        sa.Column("url", sa.String(300), primary_key=True),
        sa.Column("counter", sa.Integer, nullable=False),
    )
    table.create(db.engine)
    urls = [f"https://example.org/{'x' * 150}/{i:05d}" for i in range(200)]
    with db.engine.begin() as conn:
        conn.execute(table.insert(), [{"url": u, "counter": 0} for u in urls])
    seen: dict[str, int] = {}

    def collect(batch: mb.Batch, writer: mb.BatchWriter) -> None:
        for row in batch.rows:
            seen[row.url] = seen.get(row.url, 0) + 1

    report = mb.run_partitioned(db.url, table, collect, name="n" * 150, parts=4)
    assert dict.fromkeys(urls, 1) == seen
    assert 200 == report.rows


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target_batch_s": -1}, "target_batch_s must be a positive number"),
        ({"max_batch_memory": "1 B"}, "max_batch_memory must be at least"),
        ({"poll_interval": -1}, "poll_interval must be a number of seconds"),
    ],
)
def test_auto_arguments_are_checked_at_the_call(
    db: Db, kwargs: dict[str, object], message: str
) -> None:
    table = _table(db, list(range(1, 51)))
    with pytest.raises(BatchSourceError, match=message):
        mb.run_partitioned(
            db.url, table, jobs.always_failing, name=_name(table), batch_size="auto", **kwargs
        )  # type: ignore[arg-type]
    with db.engine.connect() as conn:  # no job was created
        assert (
            not sa.inspect(conn).has_table("membound_leases")
            or 0
            == conn.execute(
                sa.text("SELECT count(*) FROM membound_leases WHERE job = :j"), {"j": _name(table)}
            ).scalar_one()
        )
