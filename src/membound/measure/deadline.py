"""A time limit on work done in this process: ``with deadline(30, "the leak hunt"): ...``.

Work in this process cannot be killed from outside it; the interval timer (``SIGALRM``) raises in
the main thread instead, between two bytecodes of the running code. The exception derives from
``BaseException``, so that the measured code's ``except Exception`` cannot swallow it, and the
timer and handler set before (pytest-timeout's, for one) are restored afterwards.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType

from membound._errors import LimitExceeded, StopRequested, TargetError

__all__ = ["deadline"]


class _Expired(StopRequested):
    """Raised by the timer inside the running code (membound's own stop, never the code's)."""


@contextlib.contextmanager
def deadline(seconds: float | None, what: str) -> Iterator[None]:
    """Stop the block after ``seconds`` with :class:`LimitExceeded` (no limit when None).

    Raises:
        LimitExceeded: the block ran out of time.
        TargetError: a limit was asked for outside the main thread or where there is no
            interval timer (run the work in a fresh interpreter instead).
    """
    if seconds is None:
        yield
        return
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "setitimer"
    ):
        raise TargetError(
            "a timeout in this process needs the main thread and SIGALRM",
            hint="run it in a fresh interpreter (isolate=True), where the timeout kills the child",
        )

    def expire(signum: int, frame: FrameType | None) -> None:
        raise _Expired

    started = time.monotonic()
    previous = signal.signal(signal.SIGALRM, expire)
    earlier, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _Expired:
        raise LimitExceeded(
            f"{what} did not finish within the timeout of {seconds:g} s",
            hint="raise the timeout, or look for a call that never returns",
        ) from None
    finally:
        signal.signal(signal.SIGALRM, previous)
        if earlier:  # someone else's timer was running: give it what is left
            signal.setitimer(signal.ITIMER_REAL, max(earlier - (time.monotonic() - started), 1e-3))
