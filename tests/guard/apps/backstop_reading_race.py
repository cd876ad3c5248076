"""A reading whose thread lost the CPU between the backstop's look at this process's sizes and
the group's usage, while the program wrote a 40 MiB block (``test_backstop.py``): the block is
written inside the limit's ``usage()`` on the reading under test. Prints ``room <MiB> cap
<MiB>``: the room the kernel has left after that reading, read again, and what the cap it set
lets this process map beyond its data size."""

from __future__ import annotations

from typing import Any

import membound as mb
from membound._data_cap import data_and_anon

MIB = 1 << 20
held: list[bytes] = []
# A long interval: the readings here are the ones this program takes (``check()``).
dog = mb.Watchdog(hard="85%", on_soft=None, interval=60).start()
backstop = dog.backstop
assert backstop is not None, "no backstop here"
real_usage = dog.limit.usage
armed = [True]


def usage_with_a_write_meanwhile() -> Any:
    if armed[0]:
        armed[0] = False
        held.append(b"\x03" * (40 * MIB))
    return real_usage()


# The limit is a frozen dataclass: its usage() is shadowed on the instance for one reading.
object.__setattr__(dog.limit, "usage", usage_with_a_write_meanwhile)
dog.check()
object.__delattr__(dog.limit, "usage")
sizes = data_and_anon()
usage = real_usage()
assert sizes is not None
assert usage is not None
assert backstop.cap_bytes is not None
room = backstop.point_bytes - usage.judged
print(f"room {room / MIB:.1f} cap {(backstop.cap_bytes - sizes[0]) / MIB:.1f}", flush=True)
dog.stop()
