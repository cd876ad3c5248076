"""A ramp of ``CHUNK`` MiB pieces of non-zero bytes, as fast as they can be made, with a
Watchdog whose ``on_hard`` asks the loop to stop (a user callback, run in the callback thread).

``python backstop_ramp.py CHUNK_MIB on|off|none [catch]``: ``on`` with the backstop, ``off``
without it, ``none`` without a watchdog. With ``catch`` the loop catches ``MemoryError`` and
waits for the ``on_hard`` run for the refusal; it prints one line
``result: <how it stopped> held=<MiB> hard_runs=<n> causes=<...>`` and exits 0. Without
``catch`` a ``MemoryError`` leaves the program uncaught.
"""

from __future__ import annotations

import sys
import threading
import time

import membound as mb

chunk = int(sys.argv[1]) << 20
mode = sys.argv[2]
catch = "catch" in sys.argv[3:]
stop = threading.Event()
refusal_reported = threading.Event()
causes: list[str] = []


def on_hard(event: mb.WatchdogEvent) -> None:
    causes.append(event.cause)
    if event.cause == "backstop":
        refusal_reported.set()
    print(f"on_hard: {event.describe()}", flush=True)
    stop.set()


if mode != "none":
    mb.Watchdog(hard="85%", on_soft=None, on_hard=on_hard, backstop=mode == "on").start()
held: list[bytes] = []
how = "on_hard"
try:
    while not stop.is_set():
        held.append(b"\x01" * chunk)
except MemoryError:
    if not catch:
        raise
    how = "MemoryError"
    refusal_reported.wait(5)  # on_hard runs in the watchdog's callback thread
    # A thread started and ended at the cap: its exit must not need memory the cap refuses
    # (glibc loads libgcc_s at a thread's first pthread_exit, and aborted when it could not).
    worker = threading.Thread(target=print, args=("a thread after the refusal ran",))
    worker.start()
    worker.join()
print(
    f"result: {how} held={len(held) * chunk >> 20} hard_runs={len(causes)} "
    f"causes={','.join(causes)}",
    flush=True,
)
time.sleep(0.1)
