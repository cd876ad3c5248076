"""Backends for the batching tests: real SQLite files (rollback journal and WAL) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bound.helpers import BACKENDS, Db, sa, sqlite_engine


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    """Each test runs once per backend; PostgreSQL tables are dropped afterwards."""
    kind = request.param
    metadata = sa.MetaData()
    if kind == "postgres":
        url = request.getfixturevalue("postgres_url")
        engine = sa.create_engine(url)
    else:
        url = f"sqlite:///{tmp_path / 'test.db'}"
        engine = sqlite_engine(tmp_path / "test.db", wal=kind == "sqlite-wal")
    try:
        yield Db(kind, url, engine, metadata)
    finally:
        if kind == "postgres":
            metadata.drop_all(engine)
        engine.dispose()
