"""What the ``membound`` command does before anything else: before its imports, which take a
few hundred milliseconds (SQLAlchemy, rich, click, psutil).

``membound/__init__.py`` imports this module first, before those imports, and importing it calls
:func:`begin`; that does something only when the process *is* the command (the ``membound``
console script or ``python -m membound``), never when membound is imported as a library.

* **Ctrl-C while starting.** Python's default handler raises ``KeyboardInterrupt`` wherever the
  interpreter is, which in the middle of an import prints a traceback of import machinery. Until
  :func:`ready` (called by the CLI's ``main`` once its imports are done, when its own handling
  of ``KeyboardInterrupt`` takes over), SIGINT ends the process at once with exit 130
  (128 + SIGINT) and one line. Nothing has started yet: no child, no temporary file, no output.
  SIGTERM and SIGHUP, whose default ends the process without a word, do the same (143, 129),
  as they do once the command runs. A signal that was ignored when membound started
  (``nohup``, a background job) stays ignored.
* **Closed standard streams.** A command started with ``2>&-`` or ``>&-`` has no file
  descriptor 2 or 1: Python sets ``sys.stderr`` (``sys.stdout``) to None, on which membound's
  imports and messages fail, and the next file membound opens would *become* descriptor 2, so
  that messages, and every child's stderr, would go into it. Each closed descriptor 0-2 is
  opened on ``/dev/null`` first (as OpenSSH's ``sanitise_stdfd`` does), and the missing Python
  stream is made again on it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from types import FrameType

__all__ = ["begin", "launched_as_command", "ready"]

#: The names the console script may have (``pip`` on Windows adds ``.exe``).
_SCRIPT_NAMES = ("membound", "membound.exe")


def launched_as_command() -> bool:
    """Whether this process is the ``membound`` command: its console script, or ``python -m
    membound`` (while Python locates the module, ``sys.argv[0]`` is ``"-m"`` and the module's
    name is in ``sys.orig_argv``)."""
    if not sys.argv:
        return False
    if os.path.basename(sys.argv[0]) in _SCRIPT_NAMES:
        return True
    if sys.argv[0] != "-m":
        return False
    args: list[str] = list(getattr(sys, "orig_argv", []))[1:]
    for i, arg in enumerate(args):
        if arg == "-m":
            return args[i + 1 : i + 2] == ["membound"]
        if arg.startswith("-m"):
            return arg == "-mmembound"
    return False


#: The signals that end the command while it starts, and what it then says.
_WORDS = {
    signal.SIGINT: "interrupted",
    signal.SIGTERM: "terminated by SIGTERM",
    signal.SIGHUP: "terminated by SIGHUP",
}


def _starting(signum: int, frame: FrameType | None) -> None:
    """A signal before the command is ready: one line, exit 128 + N, nothing to clean up."""
    words = _WORDS.get(signal.Signals(signum), f"ended by signal {signum}")
    with contextlib.suppress(OSError):
        os.write(2, f"membound: {words} while starting\n".encode())
    os._exit(128 + signum)


def _open_closed_streams() -> None:
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
        if getattr(sys, name) is None:
            stream = open(fd, "r" if fd == 0 else "w", closefd=False, errors="backslashreplace")  # noqa: SIM115
            setattr(sys, name, stream)


def begin() -> None:
    """Called on import, first thing in ``membound/__init__.py``: when this process is the
    command, open closed standard streams on ``/dev/null`` and end a Ctrl-C quietly until
    :func:`ready`."""
    if not launched_as_command() or threading.current_thread() is not threading.main_thread():
        return
    _open_closed_streams()
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _starting)
    for signum in (signal.SIGTERM, signal.SIGHUP):  # their default kills without a word
        if signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, _starting)


def ready() -> None:
    """The command's imports are done: Ctrl-C raises ``KeyboardInterrupt`` again, which the
    CLI turns into its own message and exit 130 (SIGTERM and SIGHUP get the CLI's handler,
    set before this is called)."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is _starting:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is _starting:
            signal.signal(signum, signal.SIG_DFL)


begin()
