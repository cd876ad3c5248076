"""The job table ``membound_leases``: a partitioned job's key ranges, who works each one, until
when, and how far it got; shared by ``run_partitioned`` and ``claim_ranges``.

One row per range (``part`` 0, 1, …) plus a header row (``part`` -1) holding the job's spec
(its source and how it was split) and whether the job finished. A worker *leases* a range:
owner and expiry, renewed by a heartbeat while it works. Every write the worker commits for the
range goes with a *fence*, an update of its own lease row that matches only while it still
owns it, in the same transaction (:class:`LeasedCheckpoint`): a worker whose range was taken
over (it stalled, or the scheduler thought it dead) cannot commit anything more, so each row's
write happens once even with two workers on one range for a while.

The table's rows: its schema (:func:`leases_table`), a range's keys and checkpoint name as the
table writes them (:func:`key_text`, :func:`range_name`), and one range read back
(:class:`RangeRow`).

Why a table and not a lock service: the workers already share the database, and a row lock
there serialises a takeover with a flush (the fence and the takeover update the same row), which
no lock outside the database can do. Lease expiry is judged by the workers' clocks (keep them in
sync, as for any lease); a clock off by less than the lease only makes a takeover late or early,
and the fence keeps early ones safe.

Splitting a straggler (dynamic re-splitting): the coordinator writes a *request*, a key inside
the range's unread part, into ``split_at``; the worker that owns the range applies it between
two batches, when it knows how far it read: it shortens its own range and inserts the new one
in one transaction, or declines if it already read past the key.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from membound._errors import BatchSourceError, LeaseLost
from membound.bound.sql.checkpoint import Checkpoint, create_table, decode_key, encode_key
from membound.bound.sql.connection import lock_errors
from membound.bound.sql.partition.owners import abandoned
from membound.bound.sql.partition.ranges import KeyRange

with contextlib.suppress(ImportError):
    import sqlalchemy as sa
    from sqlalchemy import exc as sa_exc

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = [
    "HEADER",
    "JobTable",
    "Lease",
    "LeasedCheckpoint",
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

# --- the table and its rows -----------------------------------------------------------------------

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


# --- the job and its leases -----------------------------------------------------------------------


class JobTable:
    """A job's rows in ``membound_leases``: created once from its ranges, then read and
    updated by the coordinator and the workers.

    Args:
        engine: the database (the one the job reads and writes, so fences share transactions).
        job: the job's name.
    """

    def __init__(self, engine: Engine, job: str) -> None:
        if not isinstance(job, str) or not job or len(job) > 150:
            raise BatchSourceError(
                f"a job name must be a non-empty string of at most 150 characters, got {job!r}"
            )
        self.engine = engine
        self.job = job
        self.table = leases_table()
        with lock_errors("creating the table membound_leases"):
            create_table(engine, self.table)

    def _where(self, part: int) -> Any:
        t = self.table
        return sa.and_(t.c.job == self.job, t.c.part == part)

    def open(
        self, spec: dict[str, Any], make_ranges: Callable[[], Sequence[KeyRange]], restart: bool
    ) -> bool:
        """Create the job from ``make_ranges()`` unless it exists; check an existing one is the
        same job (``spec``). Returns whether the job had finished already.

        Raises:
            BatchSourceError: a job of this name exists with another spec.
        """
        header = self.header()
        if header is not None and restart:
            self.delete()
            header = None
        if header is None:
            if self.create(spec, make_ranges()):
                return False
            header = self.header()  # another process created it first
        stored = json.loads(header.spec or "{}")
        if stored != spec:
            state = "finished" if header.done else "under way"
            differs = [
                f"{name}: {stored.get(name)!r} then, {spec.get(name)!r} now"
                for name in sorted(set(stored) | set(spec))
                if stored.get(name) != spec.get(name)
            ]
            raise BatchSourceError(
                f"job {self.job!r} is {state} with another source or split ("
                + "; ".join(differs)
                + "): resume it with the same arguments, give this run another name, or pass "
                "restart=True to forget the old job (its committed writes stay)"
            )
        return bool(header.done)

    def header(self) -> Any:
        """The header row (spec, done), or None when the job was never created."""
        t = self.table
        with self.engine.connect() as conn:
            return conn.execute(sa.select(t).where(self._where(HEADER))).first()

    def create(self, spec: dict[str, Any], ranges: Sequence[KeyRange]) -> bool:
        """Insert the header and one row per range in one transaction.

        Returns:
            False when another process created the job first (its ranges stand).
        """
        blank = unclaimed()
        rows = [
            {
                **blank,
                "job": self.job,
                "part": HEADER,
                "start": None,
                "stop": None,
                "rows": sum(r.rows for r in ranges),
                "basis": "job",
                "spec": json.dumps(spec, sort_keys=True),
            }
        ]
        rows += [
            {
                **blank,
                "job": self.job,
                "part": i,
                "start": key_text(r.start),
                "stop": key_text(r.stop),
                "rows": r.rows,
                "basis": r.basis,
                "spec": None,
            }
            for i, r in enumerate(ranges)
        ]
        try:
            with lock_errors(f"creating job {self.job!r}"), self.engine.begin() as conn:
                conn.execute(self.table.insert(), rows)
        except sa_exc.IntegrityError:
            return False
        return True

    def delete(self) -> None:
        """Forget the job: its header, its ranges and their checkpoints."""
        names = [range_name(self.job, r.start) for r in self.ranges()]
        with lock_errors(f"deleting job {self.job!r}"), self.engine.begin() as conn:
            conn.execute(sa.delete(self.table).where(self.table.c.job == self.job))
        for name in names:
            Checkpoint(self.engine, name).reset()

    def ranges(self) -> list[RangeRow]:
        """Every range of the job, in key order (splits included)."""
        t = self.table
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t).where(t.c.job == self.job, t.c.part != HEADER)).all()  # noqa: MB102 (one row per range: as many as the job has parts)
        found = [range_row(r) for r in rows]
        # Key order: the first range (start None) first, then by start key.
        return sorted(found, key=lambda r: (r.start is not None, _sortable(r.start)))

    def finish(self) -> None:
        """Mark the job finished (its header), once every range is done."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(self.table)
                .where(self._where(HEADER))
                .values(done=1, updated_at=now_text())
            )

    def set_stopping(self, coordinator: str | None, *, interrupt: bool = False) -> None:
        """Mark the job as being stopped by ``coordinator``: its tasks that have not leased
        their range yet return at once; with ``interrupt`` (Ctrl-C) running ones stop too, at their
        next progress sync. None clears the mark."""
        owner = None
        if coordinator is not None:
            owner = f"{'interrupt' if interrupt else 'stopping'}:{coordinator}"
        with self.engine.begin() as conn:
            conn.execute(sa.update(self.table).where(self._where(HEADER)).values(owner=owner))

    def stopping(self, coordinator: str) -> bool:
        """Whether ``coordinator`` is stopping the job (after a failure, or interrupted)."""
        t = self.table
        with self.engine.connect() as conn:
            owner = conn.execute(sa.select(t.c.owner).where(self._where(HEADER))).scalar()
        return owner in (f"stopping:{coordinator}", f"interrupt:{coordinator}")

    def release_owned(self, prefix: str, parts: Iterable[int] | None = None) -> None:
        """Free every unfinished range whose owner's name starts with ``prefix`` (a
        coordinator that stops: its tasks are over, dead or abandoned; one still running can commit
        nothing more, its fence fails), or only those of ``parts``."""
        t = self.table
        conditions = [
            t.c.job == self.job,
            t.c.part != HEADER,
            t.c.done == 0,
            sa.func.substr(t.c.owner, 1, len(prefix)) == prefix,
        ]
        if parts is not None:
            chosen = sorted(parts)
            if not chosen:
                return
            conditions.append(t.c.part.in_(chosen))
        with contextlib.suppress(sa_exc.SQLAlchemyError), self.engine.begin() as conn:
            conn.execute(
                sa.update(t)
                .where(*conditions)
                .values(owner=None, lease_until=None, updated_at=now_text())
            )

    def request_split(self, part: int, at: Any) -> bool:
        """Ask the owner of ``part`` to end its range before key ``at`` (applied by the owner
        between two batches; see the module docstring). False when a request is pending."""
        t = self.table
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(t)
                .where(self._where(part), t.c.done == 0, t.c.split_at.is_(None))
                .values(split_at=key_text(at))
            )
        return bool(result.rowcount)

    def claim_free(self, owner: str, lease_s: float) -> Lease | None:
        """Lease a range nobody owns (never leased, released, its lease ran out, or its
        owner is known gone: :func:`abandoned`)."""
        t = self.table
        now = time.time()
        with self.engine.connect() as conn:
            free = conn.execute(
                sa.select(t.c.part, t.c.owner, t.c.lease_until)
                .where(t.c.job == self.job, t.c.part != HEADER, t.c.done == 0)
                .order_by(t.c.part)
            ).all()  # noqa: MB102 (one row per range)
        for part, current, until in free:
            if current is not None and (until or 0) >= now and not abandoned(current):
                continue
            lease = self.claim(part, owner, lease_s, takeover_of=current)
            if lease is not None:
                return lease
        return None

    def claim(
        self,
        part: int,
        owner: str,
        lease_s: float,
        *,
        force: bool = False,
        takeover_from: str | None = None,
        takeover_of: str | None = None,
    ) -> Lease | None:
        """Lease ``part`` for ``owner``; None when it is done or held by a live lease.

        Args:
            part: the range.
            owner: the new owner's name.
            lease_s: the lease's length.
            force: take it over from anyone (the fence keeps that safe).
            takeover_from: take it over from a live owner whose name starts with this (a
                coordinator's own earlier task, on a worker the scheduler gave up on).
            takeover_of: take it over from exactly this owner (one known gone), unless it
                changed hands meanwhile.
        """
        t = self.table
        now = time.time()
        conditions = [self._where(part), t.c.done == 0]
        if not force:
            free = [t.c.owner.is_(None), t.c.lease_until < now]
            if takeover_from:
                prefix = sa.func.substr(t.c.owner, 1, len(takeover_from))
                free.append(prefix == takeover_from)
            if takeover_of:
                free.append(t.c.owner == takeover_of)
            conditions.append(sa.or_(*free))
        with lock_errors(f"leasing a range of job {self.job!r}"), self.engine.begin() as conn:
            result = conn.execute(
                sa.update(t)
                .where(*conditions)
                .values(
                    owner=owner,
                    lease_until=now + lease_s,
                    attempts=t.c.attempts + 1,
                    split_at=None,
                    updated_at=now_text(),
                )
            )
            if not result.rowcount:
                return None
            row = conn.execute(sa.select(t).where(self._where(part))).one()
        return Lease(self, range_row(row), owner, lease_s)


def _sortable(key: Any) -> Any:
    return key if isinstance(key, tuple) else (key,)


class Lease:
    """This worker's hold on one range: renew it, apply split requests, finish or release it.

    Every method that writes is fenced: it changes the row only while ``owner`` still holds it,
    and raises :class:`~membound.LeaseLost` otherwise.
    """

    def __init__(self, jobs: JobTable, row: RangeRow, owner: str, lease_s: float) -> None:
        self.jobs = jobs
        self.row = row
        self.part = row.part
        self.owner = owner
        self.lease_s = lease_s
        self.stop = row.stop
        self.lost = False
        #: The coordinator was interrupted (Ctrl-C): seen at the last :meth:`progress`.
        self.interrupted = False
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The range's checkpoint name."""
        return range_name(self.jobs.job, self.row.start)

    def fence(self, conn: Any, **values: Any) -> None:
        """Renew the lease inside ``conn``'s transaction, setting ``values`` too.

        Raises:
            LeaseLost: another worker owns the range now (the transaction must roll back).
        """
        t = self.jobs.table
        changes = {"lease_until": time.time() + self.lease_s, "updated_at": now_text(), **values}
        result = conn.execute(
            sa.update(t)
            .where(self.jobs._where(self.part), t.c.owner == self.owner)
            .values(**changes)
        )
        if not result.rowcount:
            self.lost = True
            raise LeaseLost(
                f"range {self.part} of job {self.jobs.job!r} was taken over by another worker; "
                "this worker's uncommitted work on it was rolled back"
            )

    def renew(self, **values: Any) -> None:
        """Renew the lease in a transaction of its own (the heartbeat), setting ``values``."""
        with self._lock, self.jobs.engine.begin() as conn:
            self.fence(conn, **values)

    def progress(self, rows_done: int, reached: Any) -> Any:
        """Record progress (renewing the lease) and apply a pending split request.

        Args:
            rows_done: rows of the range processed so far.
            reached: the last key read (nothing after it was read yet).

        Returns:
            The range's stop, shortened when a split was applied.
        """
        t = self.jobs.table
        coordinator = self.owner.split("|", 1)[0]
        with self._lock, self.jobs.engine.begin() as conn:
            self.fence(conn, rows_done=rows_done, reached=key_text(reached))
            header = conn.execute(sa.select(t.c.owner).where(self.jobs._where(HEADER))).scalar()
            self.interrupted = "|" in self.owner and header == f"interrupt:{coordinator}"
            request = conn.execute(
                sa.select(t.c.split_at).where(self.jobs._where(self.part))
            ).scalar_one()
            if request is None:
                return self.stop
            at = key_value(request)
            values: dict[str, Any] = {"split_at": None}
            if _sortable(at) > _sortable(reached) and (
                self.stop is None or _sortable(at) < _sortable(self.stop)
            ):
                self._insert_tail(conn, at)
                values.update(stop=request, splits=t.c.splits + 1)
                self.stop = at
            conn.execute(sa.update(t).where(self.jobs._where(self.part)).values(**values))
        return self.stop

    def _insert_tail(self, conn: Any, at: Any) -> None:
        """The new range ``[at, old stop)``, unowned, for an idle worker."""
        t = self.jobs.table
        highest = conn.execute(
            sa.select(sa.func.max(t.c.part)).where(t.c.job == self.jobs.job)
        ).scalar_one()
        row = self.row
        left = max(row.rows - self._done_estimate(conn), 0)
        conn.execute(
            t.insert().values(
                job=self.jobs.job,
                part=int(highest) + 1,
                start=key_text(at),
                stop=key_text(self.stop),
                rows=left // 2,
                basis="split",
                spec=None,
                **unclaimed(),
            )
        )
        conn.execute(
            sa.update(t).where(self.jobs._where(self.part)).values(rows=row.rows - left // 2)
        )
        self.row = RangeRow(**{**row.__dict__, "rows": row.rows - left // 2})

    def _done_estimate(self, conn: Any) -> int:
        t = self.jobs.table
        return int(
            conn.execute(sa.select(t.c.rows_done).where(self.jobs._where(self.part))).scalar_one()
        )

    def finish(self, rows_done: int, seconds: float, peak_rss_delta: int | None) -> None:
        """Mark the range done (fenced) with its figures. The owner stays, with no lease: the
        report names the worker that finished it (claims skip done ranges)."""
        self.renew(
            done=1,
            rows_done=rows_done,
            seconds=seconds,
            peak_rss_delta=peak_rss_delta,
            lease_until=None,
        )

    def release(self) -> None:
        """Give the range back unfinished, for another worker to take at once."""
        with (
            contextlib.suppress(LeaseLost, sa_exc.SQLAlchemyError),
            self._lock,
            self.jobs.engine.begin() as conn,
        ):
            self.fence(conn, owner=None, lease_until=None)


class LeasedCheckpoint(Checkpoint):
    """A range's checkpoint whose every save is fenced by the range's lease (same transaction):
    once the range was taken over, this worker's saves, and the writes committed with them,
    fail and roll back with :class:`~membound.LeaseLost`."""

    def __init__(self, lease: Lease) -> None:
        super().__init__(lease.jobs.engine, lease.name)
        self.lease = lease
        self._fenced: Any = None  # the connection whose transaction was fenced last

    def fence(self, connection: Any) -> None:
        """Renew the lease in ``connection``'s transaction, or raise ``LeaseLost``."""
        self.lease.fence(connection)
        self._fenced = connection

    def _write(self, conn: Any, text: str | None) -> None:
        if self._fenced is not conn:  # a writer's flush fenced this transaction already
            self.fence(conn)
        self._fenced = None
        super()._write(conn, text)
