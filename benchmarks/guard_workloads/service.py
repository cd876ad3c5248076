"""Child program of ``bench_guard.py``: a service on a 300 MB base, leaking or not, under a Watchdog
that judges its leak trend, with time scaled.

Joins a memory cgroup with a 1 GiB limit, loads its base (a dict of small records and some large
buffers, 300 MB), then starts ``Watchdog(leak_window=window/scale, interval=0.1/scale,
on_leak=…)``: the watchdog reads the group's judged usage (charged less page cache) itself, so
the trend is fed real readings. Time is scaled by ``scale``: every duration (window, interval,
request pacing, teeth) is divided by it, and every rate multiplied, so the amounts per window
and per slice are those of the real-time case.

* ``leak``: requests (temporary JSON documents and a response buffer, freed after each) plus a
  leak of ``leak_mb_per_min × scale`` MB/min (4 KB records appended to a global list, paced to
  the clock).
* ``sawtooth``: fragmenting teeth. Each tooth builds a working set for 3/4 of its period (four
  34-40 MB uploads, which malloc maps and unmaps: the visible teeth; buffers of 0.25-2 MB and
  small records, dicts with strings of random length and 1-32 KB strings, from malloc's heap and
  pymalloc's arenas), keeps a random 2 % of the small ones in a bounded cache that evicts at random
  (survivors spread over the heap: pymalloc arenas and malloc's heap stay partly used), then
  drops the rest.

Prints one JSON line: the alarms (time from the start of the load, usage, trend verdict), the
verdict sampled every half second, and the usage at the start.
"""

from __future__ import annotations

import argparse
import random
import time

from _child import join_cgroup, report

MB = 1_000_000


def build_base(total: int) -> tuple[dict[str, bytes], list[bytearray]]:
    """``total`` bytes: a third in 1 KB records under string keys, the rest in 4 MB buffers."""
    records = {f"user:{i}": bytes([i % 251 + 1]) * 1000 for i in range(total // 3 // 1100)}
    buffers = [bytearray(b"\x02" * (4 * MB)) for _ in range((total - total // 3) // (4 * MB))]
    return records, buffers


def request(rng: random.Random) -> int:
    import json

    rows = [{"id": i, "name": f"row-{i}", "score": rng.random()} for i in range(600)]
    body = json.dumps(rows).encode()
    buffer = b"\x03" * rng.randrange(MB // 10, MB)
    return len(body) + len(buffer)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cgroup", required=True)
    parser.add_argument("--mode", choices=["leak", "sawtooth"], required=True)
    parser.add_argument("--seconds", type=float, required=True, help="scaled seconds to run")
    parser.add_argument("--scale", type=float, default=20.0)
    parser.add_argument("--window", type=float, default=120.0, help="leak_window, real seconds")
    parser.add_argument("--leak-mb-per-min", type=float, default=2.0, help="real-time rate")
    parser.add_argument("--base-mb", type=float, default=300.0)
    parser.add_argument("--tooth", type=float, default=40.0, help="sawtooth period, real s")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    join_cgroup(args.cgroup)

    from membound.guard.watchdog import Watchdog, WatchdogEvent

    rng = random.Random(args.seed)
    base = build_base(int(args.base_mb * MB))
    alarms: list[dict[str, object]] = []
    t0 = 0.0

    def on_leak(event: WatchdogEvent) -> None:
        alarms.append(
            {
                "at_s": time.monotonic() - t0,
                "usage_bytes": event.usage_bytes,
                "trend": event.trend.to_dict() if event.trend else None,
            }
        )

    wd = Watchdog(
        on_soft=None,
        on_leak=on_leak,
        leak_window=args.window / args.scale,
        interval=0.1 / args.scale,
    ).start()
    assert wd.usage is not None
    start_usage = wd.usage.judged
    t0 = time.monotonic()
    rate = args.leak_mb_per_min * args.scale * MB / 60  # bytes per scaled second
    leaked: list[bytes] = []
    leaked_bytes = 0
    verdicts: list[list[object]] = []
    next_verdict = 0.0
    cache: list[object] = []
    cache_max = 20_000
    working: list[object] = []
    big: list[bytes] = []
    ticks = 0
    tooth = args.tooth / args.scale
    pace = 0.01  # a request every 10 scaled ms at most
    while (now := time.monotonic() - t0) < args.seconds:
        if args.mode == "leak":
            request(rng)
            while leaked_bytes < rate * now:
                leaked.append(bytes([len(leaked) % 251 + 1]) * 4000)
                leaked_bytes += 4000
        else:
            phase = (now % tooth) / tooth
            if phase < 0.75:
                if len(big) < 1 + int(phase / 0.75 * 4):  # 4 uploads of 34-40 MB a tooth
                    big.append(b"\x06" * rng.randrange(34 * MB, 40 * MB))
                if ticks % 5 == 0:
                    working.append(b"\x05" * rng.randrange(MB // 4, 2 * MB))
                for i in range(1000):
                    if i % 50 == 0:
                        item: object = b"\x04" * rng.randrange(1000, 32000)
                    else:
                        item = {"k": i, "v": "x" * rng.randrange(10, 300)}
                    working.append(item)
                    if rng.random() < 0.02:
                        if len(cache) < cache_max:
                            cache.append(item)
                        else:
                            cache[rng.randrange(cache_max)] = item
            else:
                working.clear()
                big.clear()
        ticks += 1
        if now >= next_verdict:
            v = wd.verdict
            usage = wd.usage.judged if wd.usage else 0
            verdicts.append(
                [round(now, 2), v.pattern, v.slope_bytes_per_s, v.time_to_limit_s, usage]
            )
            next_verdict += 0.5
        time.sleep(max(0.0, pace - (time.monotonic() - t0 - now)))
    wd.stop()
    report(
        {
            "mode": args.mode,
            "scale": args.scale,
            "window_real_s": args.window,
            "window_scaled_s": args.window / args.scale,
            "interval_scaled_s": 0.1 / args.scale,
            "limit_bytes": wd.limit.bytes,
            "limit_kind": wd.limit.kind,
            "start_usage_bytes": start_usage,
            "leak_bytes_per_scaled_s": rate if args.mode == "leak" else 0.0,
            "leaked_bytes": leaked_bytes,
            "alarms": alarms,
            "verdicts": verdicts,
            "base_objects": len(base[0]) + len(base[1]),
            "cache_items": len(cache),
        }
    )


if __name__ == "__main__":
    main()
