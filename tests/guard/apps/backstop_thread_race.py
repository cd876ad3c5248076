"""A reading that renews a backstop's cap while a thread starts, near the cap.

``python backstop_thread_race.py``: arms a :class:`Backstop` (no watchdog thread, so that the
one reading happens exactly where this script puts it), brings its cap to the data size plus
the least room, as a reading after a refusal does, starts and joins one thread (glibc keeps its
stack for the next one), then starts a second thread with a reading renewing the cap between
the lift for its start and its first Python code. Prints ``ran=<bool> room=<bytes>``: whether
the second thread ran, and the cap less the data size once it did (a start-up that failed at
the cap leaves ``Thread.start()`` waiting for ever: the caller's timeout ends it).
"""

from __future__ import annotations

import threading

from membound.guard.limit import given_limit
from membound.guard.watchdog import backstop as backstop_module

backstop = backstop_module.Backstop(
    given_limit("64 GB"), on_refusal=lambda: None, on_uncaught=lambda: None
)
assert backstop.arm()
real = backstop_module.data_and_anon
starting = threading.Event()


def reading_in_between() -> tuple[int, int] | None:
    """In the starting thread: the watchdog's reading comes first (the kernel has no room
    left beyond the least), then the start-up accounting's own."""
    if starting.is_set() and threading.current_thread() is not threading.main_thread():
        starting.clear()
        backstop.update((0, 0), real())
    return real()


backstop_module.data_and_anon = reading_in_between  # type: ignore[assignment]
backstop.update((0, 0), real())
first = threading.Thread(target=lambda: None)
first.start()
first.join()
room: list[int] = []


def measure() -> None:
    sizes = real()
    assert sizes is not None
    assert backstop.cap_bytes is not None
    room.append(backstop.cap_bytes - sizes[0])


starting.set()
second = threading.Thread(target=measure, daemon=True)
second.start()  # waits for ever if the thread's start-up failed at the cap
second.join(10)
backstop.disarm()
print(f"ran={bool(room)} room={room[0] if room else None}", flush=True)

# A reading that measured the data size before a thread's stack was mapped and re-set the cap
# after the lift: the start under way still has its room.
backstop.arm()
backstop_module.data_and_anon = real  # type: ignore[assignment]
before = real()
assert before is not None
backstop.update((0, 0), before)
lifted = backstop.lift_for(8 << 20)
backstop.update((0, 0), before)  # measured before the lift, applied after it
assert backstop.cap_bytes is not None
print(f"stale room={backstop.cap_bytes - before[0]}", flush=True)
backstop.thread_started(0, lifted, backstop.renewals, None, 8 << 20)
backstop.disarm()
