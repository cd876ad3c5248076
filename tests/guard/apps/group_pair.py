"""Two guarded processes in one memory group (``test_backstop.py``): ``python group_pair.py
mapper`` maps 150 MiB, says ``mapped`` once its watchdog has read since, then writes it a page
at a time over about half a second and holds it 2 s more; ``python group_pair.py taker`` waits
for a line on stdin, gives its watchdog a reading, then asks for 150 MiB of written bytes and
holds them 2 s. Each prints ``result: <what happened>``. Both run
``Watchdog(hard="95%", on_hard=<record>)``, read every 20 ms. Each meets a ``MemoryError`` as
the middleware does (two guarded processes share the group's room, ``turns.py``: 150 MiB is
more than half of it): wait for memory to come back, up to 3 s, and run once more."""

from __future__ import annotations

import mmap
import sys
import time

import membound as mb
from membound.guard.watchdog.refusal import memory_came_back

MIB = 1 << 20
PAGE = mmap.PAGESIZE
causes: list[str] = []
dog = mb.Watchdog(hard="95%", interval=0.02, on_hard=lambda e: causes.append(e.cause)).start()
time.sleep(0.1)


def wait_for_memory() -> None:
    """Wait up to 3 s for memory to come back (or the turn at the group's room)."""
    assert dog.usage is not None
    before, seen = dog.usage.judged, []
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and not memory_came_back(dog, before, seen):
        time.sleep(0.005)


if sys.argv[1] == "mapper":
    try:
        block = bytearray(150 * MIB)  # mapped by calloc, not written
    except MemoryError:
        wait_for_memory()
        block = bytearray(150 * MIB)
    readings = dog.readings
    while dog.readings < readings + 3:
        time.sleep(0.005)
    print("mapped", flush=True)
    for at in range(0, len(block), PAGE):
        block[at] = 1
        if at % (10 * MIB) == 0:
            time.sleep(0.03)
    print("result: written", flush=True)
    time.sleep(2)  # held while the taker asks
else:
    sys.stdin.readline()
    readings = dog.readings
    while dog.readings < readings + 2:
        time.sleep(0.005)
    try:
        try:
            taken = bytearray(b"\x07") * (150 * MIB)
        except MemoryError:
            wait_for_memory()
            taken = bytearray(b"\x07") * (150 * MIB)
        time.sleep(2)  # held while the mapper writes its block
        print(f"result: allocated {len(taken) // MIB}", flush=True)
    except MemoryError:
        deadline = time.monotonic() + 5
        while not causes and time.monotonic() < deadline:  # on_hard runs in the watch thread
            time.sleep(0.01)
        print(f"result: refused causes={','.join(causes)}", flush=True)
dog.stop()
