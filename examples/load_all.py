"""A job that holds all its input at once: run it under ``membound run --where --limit``."""

from __future__ import annotations


def load_all(n: int) -> list[bytes]:
    """Every record (100 KB each) in one list: the O(n) pattern a limit catches."""
    return [bytes(100_000) for _ in range(n)]


if __name__ == "__main__":
    records = load_all(3_000)
    print(f"{len(records):,} records")
