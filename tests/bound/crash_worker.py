"""Worker for test_crash_resume: applies +1 to every row's counter, resumable by checkpoint.

Started by the test as a process forked from a multiprocessing forkserver that imported
SQLAlchemy and membound once (a fresh interpreter per worker spent most of the test's CPU on
imports): :func:`work` says ``ready`` and ``done`` on its pipe. MODE ``rows`` uses find_each +
per-row writes, ``set`` uses in_batches + one set-based UPDATE per batch. The parent SIGKILLs it
at random points.
"""

from __future__ import annotations

from multiprocessing.connection import Connection

import sqlalchemy as sa

from membound import BatchWriter, Checkpoint, find_each, in_batches


def work(say: Connection, url: str, table_name: str, mode: str) -> None:
    """Add 1 to every counter of ``table_name`` at ``url``, resuming from its checkpoint."""
    engine = sa.create_engine(url)
    table = sa.Table(table_name, sa.MetaData(), autoload_with=engine)
    checkpoint = Checkpoint(engine, table_name)
    say.send("ready")
    if mode == "rows":
        bump = (
            table.update()
            .where(table.c.id == sa.bindparam("uid"))
            .values(counter=table.c.counter + 1)
        )
        with BatchWriter(engine, batch_size=7, checkpoint=checkpoint) as writer:
            for row in find_each(engine, table, batch_size=13, checkpoint=checkpoint):
                writer.add(bump, {"uid": row.id})
    else:
        with BatchWriter(engine, batch_size=1, checkpoint=checkpoint) as writer:
            for batch in in_batches(engine, table, batch_size=11, checkpoint=checkpoint):
                writer.add(table.update().where(batch.where()).values(counter=table.c.counter + 1))
    engine.dispose()
    say.send("done")
