"""Live progress of a magic's runs inside Jupyter: one line of text in the cell's output,
refreshed in place (a display with an id, updated), then left showing what was done.

Only a kernel that talks to a front end shows it (ipykernel's shell); IPython in a terminal or a
script gets nothing, as membound's CLI draws nothing when stderr is not a terminal. No widget
library is needed: a refreshed text output is what ipywidgets' absence leaves, and it is enough
for "run 3 of 6". The line is replaced, never appended to, and refreshed at most five times a
second, so a long run neither grows the notebook nor floods the front end.
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["LiveProgress"]

#: Seconds between two refreshes at most.
_EVERY_S = 0.2


def _front_end(shell: Any) -> bool:
    """True for a kernel with a front end to draw in (ipykernel's shell)."""
    return "ipykernel" in type(shell).__module__


class LiveProgress:
    """``step(text)`` while the runs go, ``done(text)`` at the end; nothing without a front end."""

    def __init__(self, shell: Any, what: str) -> None:
        self.what = what
        self.started = time.monotonic()
        self._last = 0.0
        self._handle: Any = None
        if _front_end(shell):
            from IPython.display import Pretty, display

            text = Pretty(f"{what}: starting")  # type: ignore[no-untyped-call]
            self._handle = display(text, display_id=True)  # type: ignore[no-untyped-call]

    def step(self, text: str) -> None:
        """Show ``text`` as the current state (at most every 0.2 s)."""
        now = time.monotonic()
        if self._handle is None or now - self._last < _EVERY_S:
            return
        self._last = now
        self._show(f"{self.what}: {text} ({now - self.started:.0f} s)")

    def done(self, text: str) -> None:
        """Leave the line saying what was done, and how long it took."""
        if self._handle is not None:
            self._show(f"{self.what}: {text} in {time.monotonic() - self.started:.1f} s")

    def _show(self, text: str) -> None:
        from IPython.display import Pretty

        self._handle.update(Pretty(text))  # type: ignore[no-untyped-call]
