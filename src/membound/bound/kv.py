"""Batches over an LMDB database, each read in its own short read transaction (DESIGN §6, G4-G6).

Why not one cursor for the whole loop: an LMDB read transaction pins the snapshot it started
from, so while it lives no page freed by later writers can be reused and the map file only grows
(the bbolt incident: a long-lived reader plus a writer). Here each batch opens a read
transaction, copies keys and values to ``bytes`` (G5: a buffer into the memory map is only valid
until the transaction ends), closes it, and only then hands the batch to the caller. The next
batch resumes with ``set_range(last_key)``, skipping an exact match, so keys deleted or inserted
between batches are handled like in the SQL loop: read committed per batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from membound._errors import BatchSourceError, KeyOrderError

__all__ = ["lmdb_batches"]

_MISSING_EXTRA = "membound's LMDB batching needs the lmdb package: pip install 'membound[lmdb]'"


def lmdb_batches(
    env: Any,
    batch_size: int = 1000,
    db: Any = None,
    start: bytes | None = None,
    *,
    after: bytes | None = None,
) -> Iterator[list[tuple[bytes, bytes]]]:
    """Yield ``[(key, value), ...]`` lists of at most ``batch_size`` items in key order.

    No read transaction is open while the caller holds a batch; writers may commit between
    batches, and their changes ahead of the last key are seen (read committed per batch).

    Args:
        env: an open ``lmdb.Environment``.
        batch_size: items per batch (>= 1).
        db: a named database handle from ``env.open_db``; the main database by default.
            Databases with ``dupsort``, ``integerkey`` or ``reverse_key`` are rejected: their
            order is not the plain byte order the resume step relies on.
        start: first key to visit, inclusive.
        after: resume strictly after this key (e.g. the last key of an earlier run's batch).

    Raises:
        ImportError: the ``lmdb`` extra is not installed.
        BatchSourceError: ``batch_size < 1`` or an unsupported database (raised at the call).
        KeyOrderError: a batch's first key is not greater than the previous batch's last key.
    """
    try:
        import lmdb  # noqa: F401  (the env comes from it; import only to give a clear error)
    except ImportError:
        raise ImportError(_MISSING_EXTRA) from None
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise BatchSourceError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    handle = db if db is not None else env.open_db()
    with env.begin(db=handle) as txn:
        flags = handle.flags(txn)
    for flag in ("dupsort", "integerkey", "reverse_key"):
        if flags.get(flag):
            raise BatchSourceError(
                f"LMDB database with {flag}=True is not supported: keys must be unique and in "
                "plain byte order"
            )
    return _batches(env, batch_size, db, start, after)


def _batches(
    env: Any, batch_size: int, db: Any, start: bytes | None, after: bytes | None
) -> Iterator[list[tuple[bytes, bytes]]]:
    last: bytes | None = bytes(after) if after is not None else None
    first_seek: bytes | None = bytes(start) if start is not None else None
    while True:
        batch: list[tuple[bytes, bytes]] = []
        with env.begin(db=db, buffers=False) as txn:
            cursor = txn.cursor()
            seek = last if last is not None else first_seek
            positioned = cursor.set_range(seek) if seek is not None else cursor.first()
            if positioned and last is not None and cursor.key() == last:
                positioned = cursor.next()  # resume is exclusive of the last key
            while positioned and len(batch) < batch_size:
                # Copy now: with buffers=True these would point into the map (G5); bytes() keeps
                # this correct whatever the caller's environment defaults are.
                batch.append((bytes(cursor.key()), bytes(cursor.value())))
                positioned = cursor.next()
        # The read transaction is closed here, before the caller runs (G4).
        if not batch:
            return
        if last is not None and not batch[0][0] > last:
            raise KeyOrderError(
                f"LMDB batch starts at key {batch[0][0]!r}, not after the previous last key "
                f"{last!r}"
            )
        last = batch[-1][0]
        yield batch
        if len(batch) < batch_size:
            return
