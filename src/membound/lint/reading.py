"""Read a file the linter was given or found, without trusting what the path points to.

A tree can hold a FIFO (opening it blocks until a writer comes, so a read hangs for ever), a
symlink to ``/dev/zero`` or ``/dev/urandom`` (a read never ends and fills memory), a socket, a
device whose opening has side effects, or a huge generated file. Only regular files are read, and
only up to a size cap; anything else is refused with a one-line reason that the caller reports as
``MB000``.

No standard-library call reads a file with a type check and a size cap (``Path.read_bytes`` opens
whatever the path names and reads to the end), and no small library does it either; the few lines
are written out here because the order of the steps is the point:

1. ``stat`` the path first and open only regular files: opening a FIFO blocks, and opening some
   devices acts (a tape rewinds, a watchdog arms), so a device must never be opened at all.
2. Open with ``O_NONBLOCK`` and check again with ``fstat`` on the descriptor: between the two
   calls the path may have been replaced by a FIFO, and the non-blocking open cannot hang on one.
3. Read at most ``limit + 1`` bytes, in one allocation sized by ``fstat``: a file that grows after
   the check cannot push the read past the cap.
"""

from __future__ import annotations

import os
import stat

__all__ = ["Unreadable", "read_limited"]

#: Flags for ``os.open``: ``O_NONBLOCK`` so that a FIFO swapped in after the ``stat`` cannot
#: block, ``O_NOCTTY`` so that a terminal never becomes ours. Missing flags (Windows) are 0.
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
#: Read size after the first read, should the file grow after ``fstat``.
_CHUNK = 1 << 20

_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class Unreadable(Exception):
    """A file that was not read; ``str()`` is the one-line reason, ready for ``MB000``."""


def _check(mode: int, size: int, limit: int, what: str) -> None:
    """Raise :class:`Unreadable` unless ``mode`` is a regular file of at most ``limit`` bytes."""
    if stat.S_ISDIR(mode):
        # The operating system's own words, as reading a folder has always been reported.
        raise Unreadable("Is a directory")
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "a special file")
        raise Unreadable(f"not a regular file ({kind})")
    if size > limit:
        raise Unreadable(f"file too large ({size:,} bytes; {what} is {limit:,} bytes)")


def read_limited(path: str, limit: int, *, what: str = "max-file-size") -> bytes:
    """Read the regular file at ``path`` if it holds at most ``limit`` bytes.

    Args:
        path: The file (symlinks are followed).
        limit: The largest size read, in bytes.
        what: The name of the setting ``limit`` comes from, for the message.

    Returns:
        The file's bytes.

    Raises:
        Unreadable: The path does not exist or cannot be opened (the operating system's reason),
            is not a regular file (a FIFO, a device, a socket, a folder), or is larger than
            ``limit`` (also when it grew past it while being read).
    """
    try:
        info = os.stat(path)
        _check(info.st_mode, info.st_size, limit, what)
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise Unreadable(exc.strerror or str(exc)) from None
    try:
        info = os.fstat(fd)
        _check(info.st_mode, info.st_size, limit, what)
        parts: list[bytes] = []
        total = 0
        # One more byte than the size fstat gave, to see at once whether the file has grown.
        want = min(limit, info.st_size) + 1
        while total <= limit:
            part = os.read(fd, min(want, limit + 1 - total))
            if not part:
                break
            parts.append(part)
            total += len(part)
            want = _CHUNK
    except OSError as exc:
        raise Unreadable(exc.strerror or str(exc)) from None
    finally:
        os.close(fd)
    if total > limit:
        raise Unreadable(f"file too large (grew while read; {what} is {limit:,} bytes)")
    # The usual case is one part: return it as it is rather than copying it.
    return parts[0] if len(parts) == 1 else b"".join(parts)
