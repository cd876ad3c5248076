"""``membound watch``: a running process (or a command it starts) watched from outside by the
production guard's own :class:`~membound.guard.Watchdog`.

Modules: ``command`` (the click command and the watch's run), ``target`` (the watched process),
``tree`` (a command's process tree and its memory group), ``actions`` (what runs at a
threshold), ``view`` (the main loop and the live display), ``outputs`` (JSON, the chart,
Prometheus) and ``errors`` (one-line errors, exit 2).
"""

from __future__ import annotations

from membound.cli.commands.watch.command import command

__all__ = ["command"]
