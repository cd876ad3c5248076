"""Every error membound raises, in one place; all derive from :class:`MemboundError`.

The CLI turns any ``MemboundError`` into a one-line message (``str(error)``) plus its ``hint``
and exit code 2, never a traceback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from membound.measure.result import Measurement

__all__ = [
    "ChildFailed",
    "CommandNotFound",
    "KeyOrderError",
    "LimitExceeded",
    "MemboundError",
    "MemoryBudgetExceeded",
    "SizeError",
    "TargetError",
]


class MemboundError(Exception):
    """Base class of every error membound raises on purpose."""

    hint: str = ""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        if hint:
            self.hint = hint


class SizeError(MemboundError, ValueError):
    """A size string could not be parsed (``parse_size("lots")``)."""

    hint = "write sizes like '512MB', '1.5GiB' or a number of bytes"


class TargetError(MemboundError):
    """A measured target is unusable: not importable, not callable, or not module-level."""

    hint = "give a module-level function as 'package.module:function' or 'path/to/file.py:function'"


class CommandNotFound(TargetError):
    """The command to run does not exist or is not executable."""

    hint = "check the command name and PATH; put the command after '--'"


class ChildFailed(MemboundError):
    """The measured child raised, crashed or was killed by a signal membound did not send.

    Attributes:
        traceback: the child's traceback text, when it raised a Python exception.
        exit_code: the child's exit status (negative: killed by that signal).
        measurement: what was measured up to the failure, when anything was.
    """

    hint = "the measured code itself failed; the child's traceback is shown above"

    def __init__(
        self,
        message: str,
        *,
        traceback: str = "",
        exit_code: int | None = None,
        measurement: Measurement | None = None,
        hint: str = "",
    ) -> None:
        super().__init__(message, hint=hint)
        self.traceback = traceback
        self.exit_code = exit_code
        self.measurement = measurement


class LimitExceeded(MemboundError):
    """A memory limit or timeout stopped the measured run.

    Attributes:
        measurement: the measurement up to the stop (its ``outcome`` says which limit).
    """

    hint = "raise the limit, or make the code use less memory"

    def __init__(self, message: str, *, measurement: Any = None, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.measurement = measurement


class KeyOrderError(MemboundError):
    """Keyset iteration saw a key that did not increase: a key changed during the run (G6)."""

    hint = "batch keys must be unique, non-null and immutable while the loop runs"


class MemoryBudgetExceeded(MemboundError):
    """Process memory crossed the budget of a ``memory_budget`` block."""

    hint = "the block used more memory than its budget; bound the work it does"
