"""membound beside pytest-memray: who owns a bare ``@pytest.mark.limit_memory``.

Both plugins read a marker of that name, with different arguments and different measurements,
and pytest-memray acts on its markers even without ``--memray`` (it then traces the marked
test with memray, which also stops membound from tracing it). Installed together:

- without ``--memray`` (nor its ini ``memray = true``), pytest-memray's plugin is unregistered
  at configure time, so its markers act only under ``--memray``, and a bare ``limit_memory``
  is membound's, as when membound is alone;
- with ``--memray``, pytest-memray runs as usual and owns the bare ``limit_memory``; membound
  leaves it alone;
- ``@pytest.mark.membound_limit_memory`` always means membound's, whichever is active;
- the first test run with a bare ``limit_memory`` while both are installed gets one note at the
  end of the run saying which plugin it means. A note, not a warning: under ``-W error`` a
  warning would stop the run before any test (an internal error), for a marker that works.
"""

from __future__ import annotations

from typing import Any

import pytest

__all__ = ["MEMRAY_MANAGER", "Coexistence", "coexist"]

#: The name pytest-memray registers its plugin object under.
MEMRAY_MANAGER = "memray_manager"


class Coexistence:
    """What pytest-memray's presence means for membound's markers in this session."""

    def __init__(self, installed: bool, memray_on: bool) -> None:
        self.installed = installed
        """pytest-memray is installed (its plugin was loaded)."""
        self.memray_on = memray_on
        """It was asked for (``--memray`` or its ini option): it owns the bare marker."""

    @property
    def bare_limit_is_ours(self) -> bool:
        """Whether a bare ``limit_memory`` marker is membound's."""
        return not (self.installed and self.memray_on)

    def note(self, nodeid: str) -> str:
        """What a bare ``limit_memory`` means in this run, naming ``nodeid``, the first test
        that carries one."""
        owner = (
            "pytest-memray's (--memray is on)"
            if self.memray_on
            else "membound's (pytest-memray's markers act only under --memray)"
        )
        return (
            f"membound and pytest-memray both read @pytest.mark.limit_memory (first on "
            f"{nodeid}): in this run it is {owner}; "
            "@pytest.mark.membound_limit_memory always means membound's"
        )


def _memray_asked(config: pytest.Config) -> bool:
    """``--memray`` given, or pytest-memray's ini option ``memray`` true (as it reads them)."""
    value = config.getoption("memray", None)
    if value:
        return True
    try:
        return bool(config.getini("memray"))
    except (KeyError, ValueError):
        return False


def coexist(config: pytest.Config) -> Coexistence:
    """Settle the markers between membound and pytest-memray (call after pytest-memray's own
    ``pytest_configure``): unregister its plugin unless it was asked for."""
    manager: Any = config.pluginmanager.get_plugin(MEMRAY_MANAGER)
    if manager is None:
        return Coexistence(installed=False, memray_on=False)
    asked = _memray_asked(config)
    if not asked:
        config.pluginmanager.unregister(name=MEMRAY_MANAGER)
        # What its pytest_unconfigure would have done: its results folder and the variable
        # naming it for xdist workers.
        cleanup = getattr(manager, "pytest_unconfigure", None)
        if cleanup is not None:
            steps = cleanup(config)
            for _ in steps:
                pass
    return Coexistence(installed=True, memray_on=asked)
