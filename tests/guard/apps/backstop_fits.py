"""A program that peaks under its group's limit: 190 MiB held, then nine steps of 7.6 MiB (the
group's memory ends near 271 of 300 MiB, the interpreter's own included) past ``hard`` (85 %:
255 MiB), with the watchdog's defaults and an ``on_hard`` that only records
(``python backstop_fits.py [on]``: ``on`` asks for the backstop by name; without it, the
default). It prints ``result: finished held=<MiB> refusals=<n>
causes=<...>`` when it gets to its end, or dies with the ``MemoryError``."""

from __future__ import annotations

import sys

import membound as mb

MIB = 1 << 20
causes: list[str] = []
named = {"backstop": True} if sys.argv[1:] == ["on"] else {}
dog = mb.Watchdog(hard="85%", on_hard=lambda event: causes.append(event.cause), **named).start()
held = [b"\x01" * (190 * MIB)]
for _ in range(9):
    held.append(b"\x02" * int(7.6 * MIB))
total = sum(map(len, held)) // MIB
refusals = dog.backstop.refusals if dog.backstop is not None else -1
dog.stop()
print(f"result: finished held={total} refusals={refusals} causes={','.join(causes)}", flush=True)
