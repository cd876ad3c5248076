"""Two guarded processes in one memory group (``test_backstop.py``): ``python group_pair.py
mapper`` maps 150 MiB, says ``mapped`` once its watchdog has read since, and then writes it a
page at a time over about half a second; ``python group_pair.py taker`` waits for a line on
stdin (it says ``ready`` first, once its watchdog has read the group), gives its watchdog a
reading, then asks for 150 MiB of written bytes and holds them 2 s.
Each prints ``result: <what happened>``. Both run ``Watchdog(hard="95%", on_hard=<record>,
share_room=False)``, read every 20 ms."""

from __future__ import annotations

import mmap
import sys
import time

import membound as mb

MIB = 1 << 20
PAGE = mmap.PAGESIZE
causes: list[str] = []
# Without shares: what is checked is the room read from outside (group_room.py); with them
# the mapper's 150 MiB would be refused under its half of the room before it is mapped.
dog = mb.Watchdog(
    hard="95%", interval=0.02, on_hard=lambda e: causes.append(e.cause), share_room=False
).start()
time.sleep(0.1)
if sys.argv[1] == "mapper":
    block = mmap.mmap(-1, 150 * MIB, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)  # as malloc maps
    readings = dog.readings
    while dog.readings < readings + 3:
        time.sleep(0.005)
    print("mapped", flush=True)
    for at in range(0, len(block), PAGE):
        block[at] = 1
        if at % (10 * MIB) == 0:
            time.sleep(0.03)
    print("result: written", flush=True)
else:
    # Read the group before the mapper starts: a process that had mapped already when this
    # watchdog first read it would be taken as it was (group_room.py).
    readings = dog.readings
    while dog.readings < readings + 2:
        time.sleep(0.005)
    print("ready", flush=True)
    sys.stdin.readline()
    readings = dog.readings
    while dog.readings < readings + 2:
        time.sleep(0.005)
    try:
        taken = bytearray(b"\x07") * (150 * MIB)
        time.sleep(2)  # held while the mapper writes its block
        print(f"result: allocated {len(taken) // MIB}", flush=True)
    except MemoryError:
        deadline = time.monotonic() + 5
        while not causes and time.monotonic() < deadline:  # on_hard runs in the watch thread
            time.sleep(0.01)
        print(f"result: refused causes={','.join(causes)}", flush=True)
dog.stop()
