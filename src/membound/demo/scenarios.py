"""The seed experiments as module-level functions, so that each can run in a fresh interpreter.

Each function does one way of doing a job; pairs of them do the same job two ways. They use the
standard library only (``sqlite3``), so the demo runs anywhere membound installs.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator

__all__ = [
    "PAGE",
    "keyset_pages",
    "lazy_range",
    "list_range",
    "load_all",
    "make_blob",
    "make_users_db",
    "offset_pages",
    "read_in_chunks",
    "read_whole",
]

#: Rows per page for the paging scenarios.
PAGE = 1000
_STATUSES = ("SYNCED", "PENDING", "SYNCED", "SYNCED")


def _user_rows(rows: int) -> Iterator[tuple[int, str, str, str]]:
    for i in range(1, rows + 1):
        yield i, f"user {i:07d}", f"user{i}@example.com", _STATUSES[i % len(_STATUSES)]


def make_users_db(path: str, rows: int) -> None:
    """Create ``path`` with a ``users`` table of ``rows`` rows (streamed in, bounded memory)."""
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "email TEXT NOT NULL, status TEXT NOT NULL)"
        )
        conn.executemany("INSERT INTO users VALUES (?, ?, ?, ?)", _user_rows(rows))
    conn.close()


def _work(row: tuple[object, ...]) -> int:
    """Stand-in for per-row work: touch a field."""
    return len(str(row[1]))


def load_all(db_path: str) -> int:
    """Load every row with ``fetchall()``, then work through them: O(n) memory."""
    conn = sqlite3.connect(db_path)
    rows = conn.execute("SELECT id, name, email, status FROM users").fetchall()  # noqa: MB102
    total = sum(_work(r) for r in rows)
    conn.close()
    return total


def offset_pages(db_path: str, page: int = PAGE) -> int:
    """Page with ``LIMIT/OFFSET``: bounded memory, but each page rescans all rows before it."""
    conn = sqlite3.connect(db_path)
    total = offset = 0
    while True:
        rows = conn.execute(
            "SELECT id, name, email, status FROM users ORDER BY id LIMIT ? OFFSET ?",
            (page, offset),
        ).fetchall()
        if not rows:
            break
        total += sum(_work(r) for r in rows)
        offset += page
    conn.close()
    return total


def keyset_pages(db_path: str, page: int = PAGE) -> int:
    """Page by key (``WHERE id > last``), each page read whole in its own short transaction."""
    conn = sqlite3.connect(db_path)
    total, last = 0, 0
    while True:
        with conn:  # one short read transaction per page; nothing open while we work
            rows = conn.execute(
                "SELECT id, name, email, status FROM users WHERE id > ? ORDER BY id LIMIT ?",
                (last, page),
            ).fetchall()
        if not rows:
            break
        total += sum(_work(r) for r in rows)
        last = rows[-1][0]
    conn.close()
    return total


def list_range(n: int) -> int:
    """Materialise ``list(range(n))`` before summing: O(n) memory."""
    numbers = list(range(n))  # noqa: MB202 - the anti-pattern this scenario shows
    return sum(numbers)


def lazy_range(n: int) -> int:
    """Sum ``range(n)`` lazily: O(1) memory."""
    return sum(range(n))


def make_blob(path: str, size: int, chunk: int = 1 << 20) -> None:
    """Write ``size`` bytes of text lines to ``path``, a chunk at a time."""
    line = b"the quick brown fox jumps over the lazy dog 0123456789\n"
    block = line * (chunk // len(line) + 1)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            f.write(block[: min(left, chunk)])
            left -= chunk


def read_whole(path: str) -> int:
    """``f.read()`` the whole file, then count lines: memory grows with the file."""
    with open(path, "rb") as f:
        data = f.read()  # noqa: MB103 - the anti-pattern this scenario shows
    return data.count(b"\n")


def read_in_chunks(path: str, size: int = 64 * 1024) -> int:
    """Read fixed-size chunks and count lines: memory stays at one chunk."""
    count = 0
    with open(path, "rb") as f:
        while chunk := f.read(size):
            count += chunk.count(b"\n")
    return count


def sized_path(folder: str, stem: str, n: int) -> str:
    """Where the input of size ``n`` lives: ``FOLDER/STEM-N``."""
    return os.path.join(folder, f"{stem}-{n}")


def load_all_n(folder: str, n: int) -> int:
    """:func:`load_all` on the ``n``-row database in ``folder``."""
    return load_all(sized_path(folder, "users", n))


def offset_pages_n(folder: str, n: int) -> int:
    """:func:`offset_pages` on the ``n``-row database in ``folder``."""
    return offset_pages(sized_path(folder, "users", n))


def keyset_pages_n(folder: str, n: int) -> int:
    """:func:`keyset_pages` on the ``n``-row database in ``folder``."""
    return keyset_pages(sized_path(folder, "users", n))


def read_whole_n(folder: str, n: int) -> int:
    """:func:`read_whole` on the ``n``-byte file in ``folder``."""
    return read_whole(sized_path(folder, "blob", n))


def read_in_chunks_n(folder: str, n: int) -> int:
    """:func:`read_in_chunks` on the ``n``-byte file in ``folder``."""
    return read_in_chunks(sized_path(folder, "blob", n))


def file_size(path: str) -> int:
    """Size of ``path`` in bytes."""
    return os.path.getsize(path)
