"""Child program of ``bench_guard.py``: the CPU an idle process spends with and without a Watchdog.

Joins a memory cgroup with a limit, starts a Watchdog with its defaults (``interval=0.1``, kernel
events on, or ``events=False``) or none, sleeps, and reports the process's CPU time over the
sleep (``getrusage``: the kernel's exact run time, split into user and system) and the watchdog
thread's own (``/proc/self/task/TID/schedstat``, nanoseconds on the CPU).
"""

from __future__ import annotations

import argparse
import resource
import time

from _child import join_cgroup, report


def thread_cpu_ns(tid: int) -> int:
    with open(f"/proc/self/task/{tid}/schedstat") as f:
        return int(f.read().split()[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cgroup", required=True)
    parser.add_argument("--mode", choices=["none", "events", "polling"], required=True)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    join_cgroup(args.cgroup)

    import threading

    from membound.guard.watchdog import Watchdog

    wd = None
    tid = None
    if args.mode != "none":
        wd = Watchdog(events=args.mode == "events").start()
        tid = next(t.native_id for t in threading.enumerate() if t.name == "membound-watchdog")
    time.sleep(1.0)  # settle: the first readings open files
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    w0 = time.perf_counter()
    t0 = thread_cpu_ns(tid) if tid else 0
    time.sleep(args.seconds)
    t1 = thread_cpu_ns(tid) if tid else 0
    wall = time.perf_counter() - w0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    readings = wd.readings if wd else 0
    if wd is not None:
        wd.stop()
    report(
        {
            "mode": args.mode,
            "events_kind": wd.events_kind if wd else "none",
            "interval_s": wd.interval if wd else None,
            "wall_s": wall,
            "user_s": r1.ru_utime - r0.ru_utime,
            "system_s": r1.ru_stime - r0.ru_stime,
            "watchdog_thread_s": (t1 - t0) / 1e9,
            "readings": readings,
        }
    )


if __name__ == "__main__":
    main()
