"""A fast allocation ramp: 1 MiB pieces of non-zero bytes as fast as they can be made, until
memory runs out or the watchdog stops it.

``python ramp.py wd`` runs with a Watchdog whose hard action raises in the main thread; then it
frees what it holds and exits with status 3, printing the MiB it held. ``python ramp.py none``
runs without one (inside a cgroup the OOM killer ends it).
"""

from __future__ import annotations

import sys

import membound as mb
from membound.guard import actions

held: list[bytes] = []
watchdog = None
if sys.argv[1] == "wd":
    watchdog = mb.Watchdog(soft="70%", hard="90%", on_soft=None, on_hard=actions.raise_in())
    watchdog.start()
    print(f"events={watchdog.events_kind}", flush=True)
try:
    while True:
        held.append(b"\x01" * (1 << 20))
except mb.MemoryBudgetExceeded:
    mib = len(held)
    held.clear()
    print(f"stopped holding {mib} MiB", flush=True)
    sys.exit(3)
