"""Child program of ``bench_guard.py``: a CPU-bound service's throughput with and without a
Watchdog.

Joins a memory cgroup with a limit (so the watchdog judges the group and waits on its events, as
in production) and runs the same work under three variants, alternating round by round (the order
rotates): no watchdog, a started Watchdog with its defaults (which lowers the GIL switch interval
to 0.5 ms while it runs), and one with ``switch_interval=None`` (CPython's 5 ms kept). Each run
does a fixed number of requests (a JSON document serialised, parsed and summed in Python) in one
thread, or split over four threads; the watchdog is started before and stopped after the timing.

Prints one JSON line: the wall and process CPU time of every run, by variant and thread count.
"""

from __future__ import annotations

import argparse
import json
import threading
import time

from _child import join_cgroup, report

DOC = {
    "id": 12345,
    "name": "order",
    "items": [{"sku": f"sku-{i}", "qty": i % 7, "price": i * 1.25} for i in range(40)],
    "tags": ["a", "b", "c"],
}


def request() -> float:
    data = json.loads(json.dumps(DOC))
    return sum(item["qty"] * item["price"] for item in data["items"])


def work(n: int) -> None:
    for _ in range(n):
        request()


def timed(threads: int, n: int) -> tuple[float, float]:
    """Wall and process CPU seconds for ``n`` requests over ``threads`` threads."""
    pool = [threading.Thread(target=work, args=(n // threads,)) for _ in range(threads)]
    c0, t0 = time.process_time(), time.perf_counter()
    if threads == 1:
        work(n)
    else:
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    return time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cgroup", required=True)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--requests", type=int, default=1500)
    args = parser.parse_args()
    join_cgroup(args.cgroup)

    from membound.guard.watchdog import Watchdog

    variants: dict[str, dict[str, object] | None] = {
        "none": None,
        "watchdog": {},
        "watchdog, switch_interval=None": {"switch_interval": None},
    }
    names = list(variants)
    times: dict[str, dict[str, list[float]]] = {name: {"1": [], "4": []} for name in names}
    cpu: dict[str, dict[str, list[float]]] = {name: {"1": [], "4": []} for name in names}
    events_kind = ""
    timed(1, args.requests // 4)  # warm-up
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for threads in (1, 4):
            for name in order:  # the variants back to back: neighbours' load hits them alike
                options = variants[name]
                wd = Watchdog(**options).start() if options is not None else None  # type: ignore[arg-type]
                if wd is not None:
                    events_kind = wd.events_kind
                try:
                    wall, used = timed(threads, args.requests)
                finally:
                    if wd is not None:
                        wd.stop()
                times[name][str(threads)].append(wall)
                cpu[name][str(threads)].append(used)
    report(
        {
            "requests_per_run": args.requests,
            "rounds": args.rounds,
            "events_kind": events_kind,
            "times_s": times,
            "cpu_s": cpu,
        }
    )


if __name__ == "__main__":
    main()
