"""A crossing of ``hard`` read with the backstop on: which files the reading opened before the
hard action ran, and which the next reading opened (``test_backstop.py``).

The watchdog is started with no kernel events and an hour between readings, so that the only
readings are the two this script takes itself; a 128 MiB block of written bytes crosses
``hard`` (64 MiB) between them. Prints one JSON line.
"""

from __future__ import annotations

import json
import sys

import membound as mb

opened: list[str] = []
counting = [False]


def _audit(event: str, args: tuple[object, ...]) -> None:
    if counting[0] and event == "open":
        opened.append(str(args[0]))


sys.addaudithook(_audit)
before_action: list[str] = []
actions: list[str] = []


def on_hard(event: object) -> None:
    actions.append("hard")
    before_action.extend(opened)


dog = mb.Watchdog(
    soft="48 MiB", hard="64 MiB", on_soft=None, on_hard=on_hard, interval=3600, events=False
)
dog.start()
try:
    block = bytearray(b"\x01") * (128 << 20)
    counting[0] = True
    crossing = dog.check()
    opened.clear()
    dog.check()
    counting[0] = False
    print(
        json.dumps(
            {
                "state": crossing,
                "actions": actions,
                "before_action": before_action,
                "next_reading": opened,
                "backstop": dog.backstop is not None,
            }
        )
    )
finally:
    dog.stop()
