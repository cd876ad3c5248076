"""The watchdog: a process's memory judged against its limit, two thresholds and what is done
at each.

``core`` is the watchdog itself; ``event`` what a callback is given, ``eventlog`` the line each
event is logged with (once per service); ``actions`` the ready-made
callbacks and ``refusal`` how a process stops taking work; ``kernel_events`` the cgroup and PSI
notifications that wake it, ``pace`` how often it reads otherwise, ``backstop`` the kernel cap
that refuses the one allocation the OOM killer would have ended, ``group_room`` what the group's
processes have mapped and not yet written, ``turns`` how the group's guarded processes share
its room, ``trend`` the leak trend it keeps;
``instances`` which watchdog is this process's own.
"""

from __future__ import annotations

from membound.guard.watchdog import actions
from membound.guard.watchdog.core import State, Watchdog, WatchdogEvent
from membound.guard.watchdog.instances import current

__all__ = ["State", "Watchdog", "WatchdogEvent", "actions", "current"]
