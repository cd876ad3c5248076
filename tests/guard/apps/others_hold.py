"""Started in a memory cgroup beside a process that holds most of it: a watchdog whose hard
is below what the others hold says so at start (one line), then stops."""

from __future__ import annotations

import logging
import sys

import membound as mb

logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stdout)
dog = mb.Watchdog(hard=sys.argv[1], on_soft=None, backstop=False).start()
dog.stop()
print("started and stopped", flush=True)
