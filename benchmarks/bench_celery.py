"""Celery under a leak: prefork children recycled on their current memory (issue 28).

A real ``celery worker`` (``tests/guard/apps/celery_tasks.py``, 4 prefork children, a private
redis-server on 127.0.0.1 as broker and result backend) runs in a fresh 400 MiB memory cgroup
(v1, made under this process's own; needs root and redis-server). ``--tasks`` (1,000) tasks each
keep 2 MiB in their child — 2 GB of leak in all, five times the limit.

* **membound**: ``recycle_children(app, hard="60%")`` (of a child's share: 60 MiB). Target:
  every task's result back (none lost, none twice), 0 OOM kills.
* **Contrast**, the same load without it: OOM kills (children die mid-task, and their tasks
  are redelivered or lost), until the group is killed at ``--contrast-s``.

Writes ``benchmarks/results/celery.json`` and prints target vs measured.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import write
from bench_guard import Cgroups, group_figures, own_memory_cgroup

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "guard" / "apps"))

from tests.guard.celery_helpers import celery_worker, redis_server  # noqa: E402
from tests.guard.cgroup_helpers import MemoryCgroup  # noqa: E402

MIB = 1 << 20
LIMIT = 400 * MIB
CHILDREN = 4


def _tasks_module(redis: str) -> Any:
    os.environ["MB_TEST_REDIS"] = redis
    os.environ["MB_TEST_CELERY_GUARD"] = "none"  # this process only sends
    sys.modules.pop("celery_tasks", None)
    import celery_tasks

    return celery_tasks


def run(cgroups: Cgroups, guard: str, tasks: int, wait_s: float) -> dict[str, Any]:
    """Send ``tasks`` leaking tasks to a worker guarded by ``guard``; what came back."""
    with tempfile.TemporaryDirectory() as folder, redis_server(Path(folder)) as redis:
        module = _tasks_module(redis)
        with cgroups.group(LIMIT) as path:
            group = MemoryCgroup(str(path), 1)
            started = time.monotonic()
            with celery_worker(redis, guard, "60%", CHILDREN, group) as worker:
                sent = [module.leak.delay(n, 2) for n in range(tasks)]
                got: list[int] = []
                pids: set[int] = set()
                deadline = time.monotonic() + wait_s
                for result in sent:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    try:
                        n, pid = result.get(timeout=left)
                    except Exception:  # a lost worker's task: counted as lost
                        continue
                    got.append(n)
                    pids.add(pid)
                seconds = time.monotonic() - started
                peak, oom = group_figures(path)
                log = worker.log
        module.app.close()
    return {
        "guard": guard,
        "tasks": tasks,
        "results": len(got),
        "lost": tasks - len(set(got)),
        "duplicates": len(got) - len(set(got)),
        "children_seen": len(pids),
        "recycles_logged": log.count("recycles after its task"),
        "oom_kills": oom,
        "peak_mib": round(peak / MIB, 1),
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--contrast-tasks", type=int, default=300)
    parser.add_argument("--wait-s", type=float, default=300.0)
    parser.add_argument("--contrast-s", type=float, default=60.0)
    args = parser.parse_args()
    parent = own_memory_cgroup()
    if parent is None or os.geteuid() != 0:
        print("bench_celery: needs root and a v1 memory cgroup; skipped")
        return
    cgroups = Cgroups(parent)
    guarded = run(cgroups, "membound", args.tasks, args.wait_s)
    print(f"membound: {guarded}", flush=True)
    plain = run(cgroups, "none", args.contrast_tasks, args.contrast_s)
    print(f"no guard: {plain}", flush=True)
    met = guarded["lost"] == 0 and guarded["duplicates"] == 0 and guarded["oom_kills"] == 0
    print(
        f"target: {args.tasks} leaking tasks, 0 lost, 0 OOM kills -> "
        f"{guarded['lost']} lost, {guarded['oom_kills']} OOM kills ({'met' if met else 'NOT met'})"
    )
    write(
        "celery",
        {
            "limit_mib": LIMIT // MIB,
            "children": CHILDREN,
            "leak_mib_per_task": 2,
            "hard": "60%",
            "membound": guarded,
            "no_guard": plain,
            "target_met": met,
        },
    )


if __name__ == "__main__":
    main()
