"""Long-running memory shapes for the leak trend, run as child processes and watched from
outside: ``python workloads.py KIND SECONDS``.

- ``leak``: keeps 256 KiB more every 0.1 s (2.5 MiB/s), over a 20 MiB sawtooth of temporaries;
- ``sawtooth``: builds up to 60 MiB of small objects and drops them, again and again, keeping a
  few survivors spread over the heap (fragmentation);
- ``cache``: fills an LRU cache bounded at 40 MiB over the first second, then serves hits.
"""

from __future__ import annotations

import functools
import sys
import time

KIND, SECONDS = sys.argv[1], float(sys.argv[2])
end = time.monotonic() + SECONDS
kept: list[bytes] = []
survivors: list[object] = []
print("ready", flush=True)
if KIND == "leak":
    while time.monotonic() < end:
        temp = [b"\x01" * 4096 for _ in range(5000)]  # 20 MiB, freed each round
        kept.append(b"\x02" * (256 << 10))
        del temp
        time.sleep(0.1)
elif KIND == "sawtooth":
    while time.monotonic() < end:
        batch = [bytearray(600) for _ in range(100_000)]  # ~60 MiB of small objects
        survivors.extend(batch[::5000])  # 20 kept per round, spread over the heap
        del survivors[:-200]  # but never more than 200 in all: bounded
        del batch
        time.sleep(0.15)
elif KIND == "cache":

    @functools.lru_cache(maxsize=40)
    def page(n: int) -> bytes:
        return bytes([n % 251]) * (1 << 20)

    i = 0
    while time.monotonic() < end:
        page(i % 40)
        i += 1
        time.sleep(0.025)
else:
    raise SystemExit(f"unknown workload {KIND}")
