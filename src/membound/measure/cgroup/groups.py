"""The typed face of ``measure/children/cgroups.py`` in the package: where a process sits, and
a group of its own for every measured run.

The sampler process runs that file by path, with the standard library only, to make and remove the
run groups; code in this process imports this module instead: the same file loaded by path
(``measure/child_code.py``), with its names typed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from membound.measure import child_code

if TYPE_CHECKING:
    from membound.measure.children.cgroups import (
        PREFIX,
        Hierarchy,
        RunGroup,
        hierarchies,
        kill_all,
        memory_hierarchies,
        procs,
        remove,
        remove_stale,
        tracking_disabled,
    )
else:
    _code = child_code.load("cgroups")
    PREFIX = _code.PREFIX
    Hierarchy = _code.Hierarchy
    RunGroup = _code.RunGroup
    hierarchies = _code.hierarchies
    kill_all = _code.kill_all
    memory_hierarchies = _code.memory_hierarchies
    procs = _code.procs
    remove = _code.remove
    remove_stale = _code.remove_stale
    tracking_disabled = _code.tracking_disabled

__all__ = [
    "PREFIX",
    "Hierarchy",
    "RunGroup",
    "hierarchies",
    "kill_all",
    "memory_hierarchies",
    "procs",
    "remove",
    "remove_stale",
    "tracking_disabled",
]
