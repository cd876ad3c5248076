"""A ``run_partitioned`` coordinator run as a process of its own, for the Ctrl-C tests:
``python -m tests.bound.interrupt_coordinator URL TABLE JOB RUNNER LOG``.

``RUNNER`` is ``process`` (a 2-process pool) or ``dask`` (a 2-worker ``LocalCluster``). Every
batch appends ``<first key> <monotonic time>`` to ``LOG`` (from the worker) before
a pause, so the test sees when each range's work began. The coordinator prints ``ready`` before it
starts, then ``interrupted <seconds> <rows> <json report>`` when
:class:`membound.Interrupted` comes back, and exits 130.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import sys
import time
from typing import Any

import membound as mb
from tests.bound import partition_jobs as jobs


def logged_slow_bump(table: str, log: str, batch: mb.Batch, writer: Any) -> None:
    """``bump`` with a 0.2 s pause, each batch logged with the time it began."""
    with open(log, "a") as f:
        f.write(f"{batch.first_key} {time.monotonic():.3f}\n")
    jobs.bump(table, batch, writer)
    time.sleep(0.2)


def main(url: str, table: str, job: str, runner: str, log: str) -> int:
    fn = functools.partial(logged_slow_bump, table, log)
    client: Any
    if runner == "dask":
        import distributed

        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
        client = distributed.Client(cluster)
    else:
        client = cf.ProcessPoolExecutor(2)
    print("ready", flush=True)
    try:
        mb.run_partitioned(
            url, sa_table(url, table), fn, name=job, parts=8, client=client, batch_size=20,
            write_batch_size=10, split_stragglers=False,
        )  # fmt: skip
    except mb.Interrupted as exc:
        print(f"interrupted {time.monotonic():.3f} {exc.partial.rows} {exc.finished}", flush=True)
        code = 130
    else:
        print("finished", flush=True)
        code = 0
    finally:
        if runner == "dask":
            client.close()
            cluster.close()
        else:
            client.shutdown(wait=True, cancel_futures=True)
    print(f"closed {time.monotonic():.3f}", flush=True)
    return code


def sa_table(url: str, name: str) -> Any:
    import sqlalchemy as sa

    return sa.Table(name, sa.MetaData(), autoload_with=sa.create_engine(url))


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:6]))
