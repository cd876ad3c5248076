"""Read a file the linter was given or found, without trusting what the path points to: only
regular files, only up to ``max-file-size`` (:func:`membound._files.read_regular`, shared with
``membound report``); anything else is refused with a one-line reason that the caller reports
as ``MB000``."""

from __future__ import annotations

from membound._files import Unreadable, read_regular

__all__ = ["Unreadable", "read_limited"]


def read_limited(path: str, limit: int, *, what: str = "max-file-size") -> bytes:
    """Read the regular file at ``path`` if it holds at most ``limit`` bytes.

    Args:
        path: The file (symlinks are followed).
        limit: The largest size read, in bytes.
        what: The name of the setting ``limit`` comes from, for the message.

    Raises:
        Unreadable: The path does not exist or cannot be opened (the operating system's reason),
            is not a regular file (a FIFO, a device, a socket, a folder), or is larger than
            ``limit`` (also when it grew past it while being read).
    """
    return read_regular(path, limit, what=what)
