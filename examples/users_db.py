"""A SQLite file with a ``users`` table of ``n`` rows, for the batching examples."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(100), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
)


def make_users(path: str, n: int) -> tuple[sa.Engine, sa.Table]:
    """Create ``path`` (replacing its table) with ``n`` users; the engine and the table."""
    engine = sa.create_engine(f"sqlite:///{path}")
    metadata.drop_all(engine)
    metadata.create_all(engine)
    with engine.begin() as conn:
        for start in range(0, n, 10_000):
            conn.execute(
                users.insert(),
                [
                    {"id": i, "email": f"user{i}@example.com"}
                    for i in range(start, min(n, start + 10_000))
                ],
            )
    return engine, users
