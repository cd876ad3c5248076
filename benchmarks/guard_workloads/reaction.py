"""Child program of ``bench_guard.py``: how soon after a soft crossing does ``on_soft`` start?

Runs in a memory cgroup with a limit (joined before anything big is imported). A Watchdog watches
the group with ``soft`` 32 MiB above the base usage; ``on_soft`` records ``time.perf_counter()``
(a user callback runs in the watchdog's callback thread; with ``--immediate`` it is marked like
the ready-made actions and runs in the watchdog's own thread).

Each approach: allocate quickly to 3 MiB under ``soft``, pause at random (up to ``--pause``, so
that polling readings fall at every phase), then add 1 MiB pieces of non-zero bytes every
``--step`` seconds, the main thread spinning in pure Python in between (a busy service: the GIL
is handed over at the switch interval only), until the callback has run. After each piece the
ramp reads the group's judged usage the way the watchdog does (``Limit.usage().judged``: charged
less page cache, through its own ``Limit`` and descriptors); the piece after which it is at or
over ``soft`` is the crossing, which happened while that piece was being allocated: the reaction
is measured from the piece's start (an upper bound) and from its end. Then everything is freed,
and the next approach starts once the watchdog is ``ok`` again.

Prints one JSON line: per crossing ``[from piece start, from piece end]`` in seconds, the pieces
allocated after the crossing one before the callback ran, misses.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

from _child import MIB, join_cgroup, pin_mmap_threshold, report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cgroup", required=True)
    parser.add_argument("--events", type=int, default=1)
    parser.add_argument("--immediate", type=int, default=0)
    parser.add_argument("--crossings", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--pause", type=float, default=0.1, help="longest random pause, s")
    parser.add_argument("--step", type=float, default=0.01, help="s between 1 MiB pieces")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    join_cgroup(args.cgroup)
    pin_mmap_threshold()

    import gc

    from membound.guard.limit import memory_limit
    from membound.guard.watchdog import Watchdog, WatchdogEvent

    rng = random.Random(args.seed)
    limit = memory_limit()
    if limit.kind != "cgroup-v1":
        raise SystemExit(f"expected a cgroup v1 limit, got {limit.describe()}")

    def judged() -> int:
        usage = limit.usage()
        assert usage is not None
        return usage.judged

    gc.collect()
    base = judged()
    soft = base + 32 * MIB
    recover = base + 12 * MIB
    hits: list[float] = []

    def on_soft(event: WatchdogEvent) -> None:
        hits.append(time.perf_counter())

    if args.immediate:
        on_soft._membound_immediate = True  # type: ignore[attr-defined]
    wd = Watchdog(
        soft=soft,
        hard="90%",
        recover=recover,
        interval=args.interval,
        on_soft=on_soft,
        events=bool(args.events),
    ).start()
    reactions: list[list[float]] = []
    steps: list[float] = []
    later: list[int] = []
    misses = 0
    not_recovered = 0
    t_start = time.perf_counter()
    for _ in range(args.crossings):
        seen = len(hits)
        pieces = []
        while judged() < soft - 3 * MIB:  # quickly to just under soft
            pieces.append(b"\x01" * MIB)
        time.sleep(rng.uniform(0, args.pause))  # a random phase against the polling
        crossed: tuple[float, float] | None = None
        crossed_at = 0
        due = time.perf_counter()
        while len(pieces) < 256:
            while time.perf_counter() < due and len(hits) == seen:
                pass  # a busy main thread: the GIL is handed over at the switch interval only
            if len(hits) > seen:
                break
            t0 = time.perf_counter()
            pieces.append(b"\x01" * MIB)
            t1 = time.perf_counter()
            steps.append(t1 - t0)
            if crossed is None and judged() >= soft:
                crossed = (t0, t1)
                crossed_at = len(pieces)
            due = t0 + args.step
        deadline = time.perf_counter() + 2.0
        while len(hits) == seen and time.perf_counter() < deadline:
            pass
        if len(hits) > seen and crossed is not None:
            reactions.append([hits[seen] - crossed[0], hits[seen] - crossed[1]])
            later.append(len(pieces) - crossed_at)  # pieces allocated after the crossing one
        else:
            misses += 1
        pieces.clear()
        deadline = time.perf_counter() + 2.0
        while wd.state != "ok" and time.perf_counter() < deadline:
            time.sleep(0.0005)
        if wd.state != "ok":
            not_recovered += 1
    elapsed = time.perf_counter() - t_start
    wd.stop()
    report(
        {
            "events_kind": wd.events_kind,
            "limit_bytes": limit.bytes,
            "base_bytes": base,
            "soft_bytes": soft,
            "recover_bytes": recover,
            "interval_s": args.interval,
            "switch_interval_s": wd.switch_interval,
            "reactions_s": reactions,
            "pieces_after_crossing": later,
            "misses": misses,
            "not_recovered": not_recovered,
            "pace_s_per_mib": args.step,
            "median_step_s": sorted(steps)[len(steps) // 2],
            "callbacks_dropped": wd.callbacks_dropped,
            "elapsed_s": elapsed,
        }
    )


if __name__ == "__main__":
    sys.exit(main())
