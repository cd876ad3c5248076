"""Call a function every few tenths of a second from a thread of this process while a block
runs: how live figures (a sampler's status file, a child's progress file) reach a display
without touching the measured process."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator

__all__ = ["polling"]

_log = logging.getLogger("membound")


@contextlib.contextmanager
def polling(tick: Callable[[], None], every: float, name: str) -> Iterator[None]:
    """Run ``tick()`` every ``every`` seconds in a daemon thread called ``name`` until the block
    ends (the thread is joined before it returns), and once more when the block ends without an
    exception, so the last figures are shown even when the block took less than one period. An
    exception from ``tick`` is logged and the polling goes on: a display must never end a
    measurement."""
    stop = threading.Event()

    def safe_tick() -> None:
        try:
            tick()
        except Exception:
            _log.debug("membound: %s failed", name, exc_info=True)

    def run() -> None:
        while not stop.wait(every):
            safe_tick()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
    safe_tick()  # the final figures (skipped when the block raised)
