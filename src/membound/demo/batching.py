"""Batching scenarios for ``membound demo``: one function per scenario, plain arguments.

The users-table scenarios each expect a fresh table made by :func:`create_users_table` (they
change every row's status). The RAG scenarios read a corpus made by :func:`create_corpus`.
Every scenario returns a small dict of counts and sizes; timing and memory are measured by the
caller (``membound.measure``), which runs each in a fresh interpreter.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = [
    "create_corpus",
    "create_users_table",
    "rag_naive_lists",
    "rag_pipeline",
    "read_find_each",
    "status_all_then_one_transaction",
    "status_find_each_writer",
    "status_in_batches_set_update",
]


def create_users_table(db_path: str, rows: int = 1_000_000) -> dict[str, int]:
    """Create (or replace) ``users(id, status, counter, payload)`` with every status SYNCED.

    Args:
        db_path: the SQLite file.
        rows: number of users.

    Returns:
        ``{"rows": rows, "file_size": bytes}``.
    """
    conn = sqlite3.connect(db_path)
    try:
        conn.execute("DROP TABLE IF EXISTS users")
        conn.execute(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, status VARCHAR(20) NOT NULL, "
            "counter INTEGER NOT NULL, payload VARCHAR(100) NOT NULL)"
        )
        step = 100_000
        for start in range(1, rows + 1, step):
            stop = min(start + step, rows + 1)
            conn.executemany(
                "INSERT INTO users VALUES (?, 'SYNCED', 0, ?)",
                ((i, f"user-{i:010d}@example.org") for i in range(start, stop)),
            )
            conn.commit()
    finally:
        conn.close()
    return {"rows": rows, "file_size": os.path.getsize(db_path)}


def _users(db_path: str) -> tuple[sa.Engine, sa.Table]:
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{db_path}")
    table = sa.Table("users", sa.MetaData(), autoload_with=engine)
    return engine, table


def read_find_each(db_path: str, batch_size: int = 1000) -> dict[str, int]:
    """Read every user with ``find_each`` (keyset batches, short transactions, O(1) memory)."""
    from membound.bound.sql import find_each

    engine, users = _users(db_path)
    rows = 0
    for _row in find_each(engine, users, batch_size=batch_size):
        rows += 1
    return {"rows": rows}


def _status_result(db_path: str, before: int, changed: int) -> dict[str, int]:
    return {
        "rows": changed,
        "file_size_before": before,
        "file_size_after": os.path.getsize(db_path),
    }


def status_all_then_one_transaction(db_path: str) -> dict[str, int]:
    """SYNCED → TEMP_DELETED the naive way: load every row, collect all updates, one commit.

    Memory grows with the table (all rows plus all pending updates are held until the single
    giant transaction commits) — the pattern behind the bbolt incident.
    """
    import sqlalchemy as sa

    before = os.path.getsize(db_path)
    engine, table = _users(db_path)
    with engine.connect() as conn:
        everything = conn.execute(sa.select(table).where(table.c.status == "SYNCED")).all()  # noqa: MB102 (the O(n) contrast)
    pending = [{"uid": row.id} for row in everything]
    stmt = sa.update(table).where(table.c.id == sa.bindparam("uid")).values(status="TEMP_DELETED")
    with engine.begin() as conn:
        conn.execute(stmt, pending)
    return _status_result(db_path, before, len(pending))


def status_in_batches_set_update(db_path: str, batch_size: int = 1000) -> dict[str, int]:
    """SYNCED → TEMP_DELETED with ``in_batches`` and one set-based UPDATE per batch (G3)."""
    import sqlalchemy as sa

    from membound.bound.sql import in_batches

    before = os.path.getsize(db_path)
    engine, table = _users(db_path)
    source = sa.select(table).where(table.c.status == "SYNCED")
    changed = 0
    for batch in in_batches(engine, source, batch_size=batch_size):
        with engine.begin() as conn:
            result = conn.execute(
                sa.update(table).where(batch.where()).values(status="TEMP_DELETED")
            )
            changed += result.rowcount
    return _status_result(db_path, before, changed)


def status_find_each_writer(db_path: str, batch_size: int = 1000) -> dict[str, int]:
    """SYNCED → TEMP_DELETED with ``find_each`` + ``BatchWriter`` and a checkpoint (resumable)."""
    import sqlalchemy as sa

    from membound.bound.sql import BatchWriter, Checkpoint, find_each

    before = os.path.getsize(db_path)
    engine, table = _users(db_path)
    checkpoint = Checkpoint(engine, "demo-status-transition")
    checkpoint.reset()
    stmt = sa.update(table).where(table.c.id == sa.bindparam("uid")).values(status="TEMP_DELETED")
    source = sa.select(table.c.id).where(table.c.status == "SYNCED")
    with BatchWriter(engine, batch_size=batch_size, checkpoint=checkpoint) as writer:
        for row in find_each(engine, source, batch_size=batch_size, checkpoint=checkpoint):
            writer.add(stmt, {"uid": row.id})
    return _status_result(db_path, before, writer.committed)


# ------------------------------------------------------------------------------------- RAG


def create_corpus(path: str, documents: int = 200_000) -> dict[str, int]:
    """Write a text corpus: one document per line, with some blank and noisy lines."""
    words = ["memory", "bounded", "stream", "batch", "vector", "token", "chunk", "index"]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(documents):
            if i % 10 == 0:
                f.write("   \n")
                continue
            body = " ".join(words[(i * 7 + j) % len(words)] for j in range(40))
            f.write(f"  Document {i}: {body.upper() if i % 3 == 0 else body}  \n")
    return {"documents": documents, "file_size": os.path.getsize(path)}


def _embed(text: str) -> list[float]:
    # A stand-in for a model: deterministic, cheap, and as big per chunk as a small embedding.
    digest = hashlib.blake2b(text.encode(), digest_size=32).digest()
    return [b / 255.0 for b in digest]


def _chunks(text: str, words: int = 12) -> list[str]:
    parts = text.split()
    return [" ".join(parts[i : i + words]) for i in range(0, len(parts), words)]


def rag_naive_lists(path: str) -> dict[str, int]:
    """read → clean → chunk → embed, each step building a full list (O(n) memory)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    cleaned = [line.strip().lower() for line in lines if line.strip()]
    chunks = [c for doc in cleaned for c in _chunks(doc)]
    vectors = [_embed(c) for c in chunks]
    return {"documents": len(cleaned), "chunks": len(chunks), "vectors": len(vectors)}


def _clean(lines: Iterator[str]) -> Iterator[str]:
    for line in lines:
        if line.strip():
            yield line.strip().lower()


def _chunk(docs: Iterator[str]) -> Iterator[str]:
    for doc in docs:
        yield from _chunks(doc)


def _embed_all(chunks: Iterator[str]) -> Iterator[list[float]]:
    for chunk in chunks:
        yield _embed(chunk)


def rag_pipeline(path: str) -> dict[str, int]:
    """The same read → clean → chunk → embed as generator stages in ``pipeline()`` (O(1))."""
    from membound.bound.iterables import pipeline, read_lines

    count = 0

    def sink(_vector: list[float]) -> None:
        nonlocal count
        count += 1

    stats = pipeline(read_lines(path), _clean, _chunk, _embed_all).run(sink)
    by_name = {s.name: s.items for s in stats}
    return {"documents": by_name["_clean"], "chunks": by_name["_chunk"], "vectors": count}
