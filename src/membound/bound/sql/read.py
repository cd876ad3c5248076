"""Reading: ``find_each`` and ``in_batches`` over a planned source, page by page, each page
read completely in its own short transaction before it is handed out (the contract is in the
package docstring, ``bound/sql/__init__.py``).
"""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

from membound._errors import BatchSourceError, KeyOrderError
from membound.bound._rss import current_rss
from membound.bound.sql.autosize import AUTO, PageSizer, check_batch_size, sampled_bytes_per_row
from membound.bound.sql.checkpoint import Checkpoint
from membound.bound.sql.connection import (
    DEFAULT_DB_WAIT_S,
    check_db_wait,
    require_sqlalchemy,
    with_db_retry,
)
from membound.bound.sql.keys import Key, as_key, public_key
from membound.bound.sql.pages import PageReader
from membound.bound.sql.plan import SourcePlan
from membound.bound.sql.progress import ProgressBar

if TYPE_CHECKING:
    from sqlalchemy.sql.elements import ColumnElement

    from membound.bound.sql.connection import Bind

__all__ = ["Batch", "find_each", "in_batches"]


@dataclass(frozen=True)
class Batch:
    """One batch of rows, already fetched completely; no transaction is open while you hold it."""

    rows: Sequence[Any]
    """The rows (Core ``Row`` objects) or ORM objects (detached) of this batch, in key order."""
    first_key: Any
    """Key of the first row: a scalar for a one-column key, a tuple for a composite key."""
    last_key: Any
    """Key of the last row, same shape as ``first_key``."""
    index: int
    """Position of this batch in the run, from 0."""
    _where: Any = field(default=None, repr=False, compare=False)
    """What ``where()`` needs: the run's plan and the batch's key range (private)."""

    def where(self) -> ColumnElement[bool]:
        """A WHERE clause selecting exactly this batch: the source's filter and its key range.

        Use it for set-based DML per batch (G3), e.g.
        ``conn.execute(update(users).where(batch.where()).values(status="TEMP_DELETED"))``.
        The range is ``first_key <= key <= last_key``; it fits single-table sources.
        """
        plan, first, last = self._where  # built on demand: most loops never call where()
        return plan.batch_where(first, last)  # type: ignore[no-any-return]


def in_batches(
    engine_or_sessionmaker: Bind,
    source: Any,
    batch_size: int | Literal["auto"] = 1000,
    key: Any = None,
    start: Any = None,
    finish: Any = "snapshot",
    checkpoint: Checkpoint | None = None,
    progress: bool = False,
    *,
    stop: Any = None,
    wal_checkpoint: bool = False,
    tuples: bool = False,
    target_batch_s: float = 0.5,
    max_batch_memory: int | str = "64 MB",
    db_wait: float = DEFAULT_DB_WAIT_S,
) -> Iterator[Batch]:
    """Yield the source's rows as :class:`Batch` objects in key order, O(batch_size) memory.

    Before the first page the key is checked (G1): unique, and never NULL by what the database
    itself says (one catalog query), since a row with a NULL key would never come out. A SQLite
    ``TEXT PRIMARY KEY`` without NOT NULL, a view's column or a column on the outer side of an
    outer join is refused unless the source filters it ``IS NOT NULL``.

    Keys that change during the run (G6): each page is read by key range when it is read, so a
    row whose key another writer changes mid-run is skipped if the new key lies in the range
    already visited (or, with ``finish="snapshot"``, above the high-water mark), and comes out
    twice if it moves from the visited range into the range still ahead. That is inherent to
    keyset batching and nothing cheap detects it: the moved row carries a new key, so telling a
    move from an insert or a delete takes every visited key in memory (O(rows)) or a count
    that inserts and deletes change as well. :class:`~membound.KeyOrderError` catches what does
    show at a page boundary, the database and Python ordering keys differently (a collation).
    Batch by a key nobody changes (a surrogate primary key, not an email or a status).

    Args:
        engine_or_sessionmaker: where to read. With a ``sessionmaker`` each batch runs in a fresh
            session from it; with an ``Engine``, Core sources use a pooled connection per batch.
        source: a ``Table``, an ORM entity class, or a ``select()`` with filters but without
            ORDER BY, OFFSET or LIMIT. ``select(Entity)`` and entity classes yield ORM objects,
            each batch loaded in a fresh Session closed before the batch is yielded (objects
            are detached: load what you need eagerly). A Core select that does not select
            the key columns gets them added as ``membound_key_<i>`` (needed to resume).
        batch_size: rows per batch (>= 1), or ``"auto"``: each page sized from the pages
            before it so that a page takes about ``target_batch_s`` (its query plus your code
            for it) and its memory stays under ``max_batch_memory`` (the first page has 1,000
            rows; see ``autosize.py``).
        key: the column(s) to order and resume by: the primary key by default, or a unique,
            non-null column / tuple of columns (names, ``Column`` objects or ORM attributes).
            Nullable key columns are refused unless the source filters them ``IS NOT NULL``.
        start: first key to visit, inclusive (a tuple for composite keys; never None inside).
        finish: ``"snapshot"`` (default) stops at the largest key present at start; ``None``
            follows rows inserted during the run; a key value stops there, inclusive.
        stop: an exclusive upper bound on the key (as ``range``'s stop), beside ``finish``:
            ``start=r.start, stop=r.stop`` reads exactly the half-open range of a
            ``KeyRange``; with ``finish="snapshot"`` the snapshot is taken below ``stop``.
        checkpoint: resume strictly after the checkpoint's stored key. When no ``BatchWriter``
            owns the checkpoint, a batch's last key is saved once the loop asks for the next
            batch (or ends), i.e. after your code for that batch returned: at-least-once. For
            exactly-once, give the same checkpoint to a ``BatchWriter`` (the recipe is in
            docs/guides/big-table.md).
        progress: show a rich progress bar with rows/s, ETA (from a count taken at start) and RSS.
        wal_checkpoint: on SQLite, run ``PRAGMA wal_checkpoint(PASSIVE)`` between batches so the
            WAL file stays small while the loop writes.
        target_batch_s: with ``batch_size="auto"``, the seconds a page should take.
        max_batch_memory: with ``batch_size="auto"``, the memory one page may take (Δ RSS
            while it is read, or its rows' sampled size, whichever is larger).
        db_wait: seconds to keep reconnecting when the database stops answering (a server
            restarted or down, a backend terminated) before raising
            :class:`~membound.DatabaseUnavailable`; 0 raises at once. Every query here is a
            read in its own transaction (or the checkpoint's idempotent save), so the run
            goes on after the last key read: no row skipped, none repeated.
        tuples: Core sources only: rows are plain tuples in the select's column order instead of
            SQLAlchemy ``Row`` objects (no ``row.name`` access). Each page's statement is
            compiled by SQLAlchemy once and run straight on a pooled DBAPI connection, with the
            same type processing SQLAlchemy applies; the fastest read (about the speed of one
            raw driver cursor). With a sessionmaker, engine listeners or execution options, a
            driver other than pysqlite/psycopg 3, or SQL finished at execution time, the pages
            go through SQLAlchemy instead (same rows, as tuples).

    Raises:
        BatchSourceError: unusable source or key (keyless, not unique, can hold NULL), a
            ``start``/``finish`` holding None, ``batch_size < 1``, or ``tuples=True`` with an
            ORM source (raised at the call).
        KeyOrderError: a batch's first key is not greater than the previous batch's last key.
        DatabaseLocked: the database stayed locked past its busy timeout: at the call (the
            key's schema, the checkpoint, the snapshot) or while reading a batch.
        DatabaseUnavailable: the database did not answer for ``db_wait`` seconds; the
            message says the last key handed out and how many rows came before it.
    """
    plan, pages = _open_run(
        engine_or_sessionmaker,
        source,
        batch_size=batch_size,
        key=key,
        start=start,
        finish=finish,
        stop=stop,
        checkpoint=checkpoint,
        progress=progress,
        wal_checkpoint=wal_checkpoint,
        tuples=tuples,
        sizer=_sizer(batch_size, target_batch_s, max_batch_memory),
        db_wait=check_db_wait(db_wait),
    )
    return _batches(plan, pages)


def _open_run(
    bind: Bind,
    source: Any,
    *,
    batch_size: int | Literal["auto"],
    key: Any,
    start: Any,
    finish: Any,
    stop: Any,
    checkpoint: Checkpoint | None,
    progress: bool,
    wal_checkpoint: bool,
    tuples: bool,
    sizer: PageSizer | None,
    db_wait: float,
) -> tuple[SourcePlan, Iterator[Sequence[Any]]]:
    """Check the arguments, fix the resume point and high-water mark, and return the pages."""
    require_sqlalchemy()
    size = sizer.size if sizer is not None else int(batch_size)
    plan = with_db_retry(
        lambda: SourcePlan(bind, source, key, tuples=tuples),
        doing="reading the source's key columns",
        db_wait=db_wait,
    )
    if isinstance(finish, str) and finish != "snapshot":
        raise BatchSourceError(f"finish must be 'snapshot', None or a key value, got {finish!r}")
    # Resume point and high-water mark are fixed here, at the call, not at the first next():
    # "snapshot" means the largest key when in_batches()/find_each() was called.
    after: Key | None = None
    start_key = None if start is None else as_key(start, plan.width, "start")
    if stop is not None:
        plan.stop = as_key(stop, plan.width, "stop")
        if start_key is not None and not start_key < plan.stop:
            if start_key == plan.stop:
                return plan, iter(())  # an empty range, as range(5, 5)
            raise BatchSourceError(
                f"start={public_key(start_key)!r} is above stop={public_key(plan.stop)!r}: "
                "stop is the exclusive upper bound of the keys read"
            )
    if checkpoint is not None:
        stored = with_db_retry(
            checkpoint.load, doing=f"loading checkpoint {checkpoint.name!r}", db_wait=db_wait
        )
        if stored is not None:
            after = as_key(public_key(stored), plan.width, f"the position of {checkpoint!r}")
    if finish == "snapshot":
        upper = with_db_retry(
            lambda: plan.snapshot_max(start_key),
            doing=f"reading the largest key of {_source_name(plan)}",
            db_wait=db_wait,
        )
        if upper is None:
            return plan, iter(())
    else:
        upper = None if finish is None else as_key(finish, plan.width, "finish")
    return plan, _page_loop(
        PageReader(plan, size),
        after=after,
        start_key=start_key,
        upper=upper,
        checkpoint=checkpoint,
        progress=progress,
        wal_checkpoint=wal_checkpoint,
        sizer=sizer,
        db_wait=db_wait,
    )


def _saving(checkpoint: Checkpoint, key: Key, rows: int) -> str:
    return (
        f"saving checkpoint {checkpoint.name!r} at key {public_key(key)!r} ({rows:,} rows "
        "handed out; a run resumed from it redoes the last batch)"
    )


def _source_name(plan: SourcePlan) -> str:
    return plan.table.name if plan.table is not None else "the source"


def _sizer(batch_size: Any, target_batch_s: float, max_batch_memory: int | str) -> PageSizer | None:
    """The page-size tuner for ``batch_size="auto"``, None for a fixed size; checks both."""
    check_batch_size(batch_size)
    if batch_size != AUTO:
        return None
    return PageSizer(target_batch_s, max_batch_memory)


def _batches(plan: SourcePlan, pages: Iterator[Sequence[Any]]) -> Iterator[Batch]:
    # No enumerate(): its reused result tuple would keep the previous page alive while the
    # next one loads.
    index = -1
    for rows in pages:
        index += 1
        first, last = plan.key_of(rows[0]), plan.key_of(rows[-1])
        batch = Batch(
            rows=rows,
            first_key=public_key(first),
            last_key=public_key(last),
            index=index,
            _where=(plan, first, last),
        )
        del rows
        yield batch
        del batch  # not alive while the next page loads (see _page_loop)


def _page_loop(
    reader: PageReader,
    *,
    after: Key | None,
    start_key: Key | None,
    upper: Key | None,
    checkpoint: Checkpoint | None,
    progress: bool,
    wal_checkpoint: bool,
    sizer: PageSizer | None,
    db_wait: float,
) -> Iterator[Sequence[Any]]:
    """Each page's rows, fetched completely before they are yielded (G4); checks G6, saves
    a checkpoint without a writer once the caller asks for the next page; with a ``sizer``
    (``batch_size="auto"``) sizes each page from the pages before it. Every query goes on
    through a lost connection for up to ``db_wait`` seconds (each is a read in its own
    transaction, or the checkpoint's idempotent save), from the last key read."""
    plan = reader.plan
    name = _source_name(plan)
    index = rows_out = 0

    def doing() -> str:
        if after is None:
            return f"reading the first batch of {name}"
        return (
            f"reading {name} after key {public_key(after)!r} ({rows_out:,} rows in {index} "
            "batches handed out before it)"
        )

    def retry(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return with_db_retry(lambda: fn(*args, **kwargs), doing=doing, db_wait=db_wait)

    bar = ProgressBar(retry(plan.count, after, start_key, upper)) if progress else None
    began, rss_before, rss_after, row_bytes = 0.0, 0, 0, 0.0
    try:
        while True:
            batch_size = reader.batch_size
            if sizer is not None:
                began, rss_before = time.perf_counter(), current_rss()
            rows = retry(reader.page, after, start_key, upper)
            if not rows:
                return
            if not plan.key_declared_unique:
                retry(_check_unique_keys, plan, rows, full=len(rows) == batch_size)
            if sizer is not None:
                rss_after, row_bytes = current_rss(), sampled_bytes_per_row(rows)
            last = plan.key_of(rows[-1])
            if after is not None:
                first = plan.key_of(rows[0])
                if not first > after:
                    raise KeyOrderError(
                        f"batch {index} starts at key {public_key(first)!r}, which is not "
                        f"greater than the previous last key {public_key(after)!r}"
                    )
            if checkpoint is not None:
                checkpoint.mark(last)
            count = len(rows)
            yield rows
            # Drop this generator's reference before the next page is fetched: with it, two
            # pages are alive while the next one loads, and the garbage collector's young
            # generation keeps finding (and promoting) the old page's objects. Measured on 1M
            # ORM rows: about 10% of the loop's time.
            del rows
            # Reaching here means the caller finished with the batch and asked for the next.
            if sizer is not None:
                seconds = time.perf_counter() - began
                reader.resize(sizer.observe(count, seconds, rss_after - rss_before, row_bytes))
            if checkpoint is not None and not checkpoint.owned_by_writer:
                with_db_retry(
                    functools.partial(checkpoint.save, public_key(last)),
                    doing=functools.partial(_saving, checkpoint, last, rows_out + count),
                    db_wait=db_wait,
                )
            if bar is not None:
                bar.advance(count)
            if wal_checkpoint and plan.engine.dialect.name == "sqlite":
                with plan.engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            after, start_key = last, None
            index += 1
            rows_out += count
            # A short batch means the fixed range is exhausted; following new rows
            # (finish=None, no stop) needs one more query to see rows inserted meanwhile.
            if count < batch_size and (upper is not None or reader.plan.stop is not None):
                return
    finally:
        if bar is not None:
            bar.close()


def _check_unique_keys(plan: SourcePlan, rows: Sequence[Any], *, full: bool) -> None:
    """Raise before a page is handed out when its keys repeat (G1) — a key that is unique in
    its own table but not in a join over it. Within the page, keys must strictly increase; a
    full page's last key must belong to that one row, else the rows sharing it beyond the page
    would be skipped (the next page starts strictly after it). One small query per page."""
    key_of = plan.key_of
    previous = key_of(rows[0])
    for row in rows[1:]:
        current = key_of(row)
        if not current > previous:
            _not_unique(plan, current)
        previous = current
    if full and plan.rows_with_key(previous) > 1:
        _not_unique(plan, previous)


def _not_unique(plan: SourcePlan, key: Key) -> None:
    names = ", ".join(c.name for c in plan.key_columns)
    raise BatchSourceError(
        f"key ({names}) is not unique in this source: {public_key(key)!r} occurs in more than "
        "one row (a join repeats it?); batching by it would skip rows. Pass key= columns that "
        "are unique in the joined rows, e.g. the many side's primary key"
    )


def find_each(
    engine_or_sessionmaker: Bind,
    source: Any,
    batch_size: int | Literal["auto"] = 1000,
    key: Any = None,
    start: Any = None,
    finish: Any = "snapshot",
    checkpoint: Checkpoint | None = None,
    progress: bool = False,
    *,
    stop: Any = None,
    wal_checkpoint: bool = False,
    tuples: bool = False,
    target_batch_s: float = 0.5,
    max_batch_memory: int | str = "64 MB",
    db_wait: float = DEFAULT_DB_WAIT_S,
) -> Iterator[Any]:
    """Yield the source's rows one at a time, reading them in keyset batches (see ``in_batches``).

    Memory stays O(batch_size) whatever the table size, and no transaction or cursor is open
    while the loop body runs (G4). With a ``checkpoint`` shared with a ``BatchWriter``, every
    ``writer.add`` is tagged with the key of the row being processed, so the writer can commit
    the resume position together with the writes (G7).

    Every row present for the whole run comes out exactly once (G1) if its key is unique,
    never NULL (checked against the database before the first page, see ``in_batches``) and
    not changed during the run. A key changed mid-run by another writer makes its row come out
    twice (moved ahead of the cursor) or not at all (moved behind it, or above the
    ``"snapshot"`` high-water mark), and nothing cheap detects that (see ``in_batches``).

    Args:
        engine_or_sessionmaker: see :func:`in_batches`.
        source: see :func:`in_batches`.
        batch_size: rows read per query, or ``"auto"`` (see :func:`in_batches`).
        key: see :func:`in_batches`.
        start: see :func:`in_batches`.
        finish: see :func:`in_batches`.
        checkpoint: see :func:`in_batches`.
        stop: see :func:`in_batches`.
        progress: see :func:`in_batches`.
        wal_checkpoint: see :func:`in_batches`.
        tuples: see :func:`in_batches`.
        target_batch_s: see :func:`in_batches`.
        max_batch_memory: see :func:`in_batches`.
        db_wait: see :func:`in_batches`.

    Raises:
        BatchSourceError: unusable source or key (keyless, not unique, can hold NULL), a
            ``start``/``finish`` holding None, or ``batch_size < 1`` (raised at the call).
        KeyOrderError: keys did not increase between batches.
        DatabaseLocked: the database stayed locked past its busy timeout (at the call, or
            while reading a batch).
        DatabaseUnavailable: the database did not answer for ``db_wait`` seconds (see
            :func:`in_batches`).
    """
    plan, pages = _open_run(
        engine_or_sessionmaker,
        source,
        batch_size=batch_size,
        key=key,
        start=start,
        finish=finish,
        stop=stop,
        checkpoint=checkpoint,
        progress=progress,
        wal_checkpoint=wal_checkpoint,
        tuples=tuples,
        sizer=_sizer(batch_size, target_batch_s, max_batch_memory),
        db_wait=check_db_wait(db_wait),
    )
    if checkpoint is None:
        return _each(pages)
    return _each_tagged(pages, checkpoint, plan.key_of)


class RowStream(itertools.chain[Any]):
    """find_each's rows: a chain over the pages (each page's rows handed out in C, no Python
    frame resumed per row: a generator around it cost 2.5% of a SQLite read) that also has a
    generator's ``close()``, which ends the page loop (and its progress bar) at once."""

    __slots__ = ("_pages",)
    _pages: Iterator[Sequence[Any]]

    def close(self) -> None:
        """Stop, as a generator's ``close()``: no further page is read, no further row comes."""
        close = getattr(self._pages, "close", None)
        if close is not None:
            close()
        for _ in self:  # the rest of the page in hand (at most one batch, already in memory)
            pass


def _each(pages: Iterator[Sequence[Any]]) -> Iterator[Any]:
    rows = cast(RowStream, RowStream.from_iterable(pages))
    rows._pages = pages
    return rows


def _each_tagged(
    pages: Iterator[Sequence[Any]], checkpoint: Checkpoint, key_of: Callable[[Any], Key]
) -> Iterator[Any]:
    for rows in pages:
        for row in rows:
            checkpoint.mark(key_of(row))
            yield row
        del rows, row  # neither alive while the next page loads (see _page_loop)
