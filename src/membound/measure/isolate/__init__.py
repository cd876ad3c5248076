"""Isolated runs: a function (``function``) or a command (``command``) measured in a fresh
process, with what they share (``outcome``: options, the outcome in words, the child's figures).
The child itself is ``measure/children/isolated_call.py``, and ``heap_runner.py`` for commands;
how a notebook's objects reach it is ``measure/by_value.py``, part of the target's reference.
"""

from __future__ import annotations

from membound.measure.isolate.command import measure_command
from membound.measure.isolate.function import measure

__all__ = ["measure", "measure_command"]
