"""One of two guarded processes in one memory group (``test_room_turns.py``): ``python
turn_pair.py`` starts ``Watchdog(hard="95%", on_hard=<record>, share_room=True)``, prints
``ready <room>`` (the room the kernel has left, bytes), waits for a size on stdin and then at
once asks for that many written bytes, holds them half a second and gives them back. A
``MemoryError`` is met as the middleware meets it: wait up to 3 s for ``memory_came_back`` (or
the turn) and run once more, up to nine times. Prints ``turns asked <n> held <n>`` (from the
watchdog's snapshot) and ``result: <outcome of each run> causes=<causes of on_hard>``."""

from __future__ import annotations

import sys
import time

import membound as mb
from membound.guard.watchdog.refusal import memory_came_back

causes: list[str] = []
dog = mb.Watchdog(hard="95%", on_hard=lambda e: causes.append(e.cause), share_room=True).start()
time.sleep(0.3)
assert dog.backstop is not None
assert dog.usage is not None
print(f"ready {dog.backstop.point_bytes - dog.usage.judged}", flush=True)
size = int(sys.stdin.readline())
outcome: list[str] = []
for _attempt in range(10):
    try:
        block = bytearray(b"\x07") * size
        time.sleep(0.5)
        del block
        outcome.append("ok")
        break
    except MemoryError:
        outcome.append("refused")
        before = dog.usage.judged
        seen: list[int] = []
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not memory_came_back(dog, before, seen):
            time.sleep(0.005)
time.sleep(0.1)  # on_hard runs in the watch thread
snapshot = dog.snapshot()["backstop"]
assert isinstance(snapshot, dict)
print(f"turns asked {snapshot['turn_asks']} held {snapshot['turns_held']}", flush=True)
print(f"result: {' '.join(outcome)} causes={','.join(causes)}", flush=True)
dog.stop()
