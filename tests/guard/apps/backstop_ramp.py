"""A ramp of ``CHUNK`` MiB pieces whose pages are all written, as fast as they can be made, with
a Watchdog whose ``on_hard`` asks the loop to stop (a user callback).

``python backstop_ramp.py CHUNK_MIB MODE [catch] [--hard H] [--kind K]``:

* ``MODE``: ``default`` — ``Watchdog(hard=H, on_hard=...)`` and nothing else (the backstop as
  its default has it); ``on`` — the same with ``backstop=True``; ``off`` — ``backstop=False``;
  ``none`` — no watchdog.
* ``--hard``: the watchdog's ``hard`` (default ``85%``); ``--kind``: how a piece is made —
  ``bytes`` (``b"\\x01" * n``), ``bytearray`` (``bytearray(b"\\x01") * n``) or ``numpy``
  (``numpy.ones(n, dtype=uint8)``; numpy is imported before the watchdog starts).
* With ``catch`` the loop catches ``MemoryError`` and waits for the ``on_hard`` run for the
  refusal; without it a ``MemoryError`` leaves the program uncaught (exit 1).

It prints one line ``result: <how it stopped> held=<MiB> hard_runs=<n> causes=<...>`` and exits 0
when the loop ended (by ``on_hard`` or a caught ``MemoryError``).
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable

import membound as mb

parser = argparse.ArgumentParser()
parser.add_argument("chunk_mib", type=int)
parser.add_argument("mode", choices=["default", "on", "off", "none"])
parser.add_argument("catch", nargs="?", choices=["catch"])
parser.add_argument("--hard", default="85%")
parser.add_argument("--kind", choices=["bytes", "bytearray", "numpy"], default="bytes")
args = parser.parse_args()
chunk = args.chunk_mib << 20
make: Callable[[], object]
if args.kind == "numpy":
    import numpy

    def make() -> object:
        return numpy.ones(chunk, dtype=numpy.uint8)
elif args.kind == "bytearray":

    def make() -> object:
        return bytearray(b"\x01") * chunk
else:

    def make() -> object:
        return b"\x01" * chunk


stop = threading.Event()
refusal_reported = threading.Event()
causes: list[str] = []


def on_hard(event: mb.WatchdogEvent) -> None:
    causes.append(event.cause)
    if event.cause == "backstop":
        refusal_reported.set()
    print(f"on_hard: {event.describe()}", flush=True)
    stop.set()


if args.mode == "default":
    mb.Watchdog(hard=args.hard, on_hard=on_hard).start()
elif args.mode != "none":
    mb.Watchdog(hard=args.hard, on_hard=on_hard, backstop=args.mode == "on").start()
held: list[object] = []
how = "on_hard"
try:
    while not stop.is_set():
        held.append(make())
except MemoryError:
    if args.catch is None:
        raise
    how = "MemoryError"
    refusal_reported.wait(5)  # on_hard runs for the refusal after the watchdog's next reading
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
