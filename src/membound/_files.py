"""Files membound writes and reads, without trusting the disk or the path.

**Writing: whole or not at all.** :func:`write_atomic` writes into a temporary file in the same
folder, flushes it to the disk, then renames it over the target (``os.replace``, atomic on
POSIX). A full disk, a read-only folder or an interrupt therefore leaves the old file as it was
(or no file), never a truncated or empty one in its place; the temporary file is removed. A
path that names something other than a regular file (``/dev/stdout``, ``/dev/null``, a FIFO a
reader waits on) is a stream, not a file that can be replaced: it is written in place. A symlink
is followed, so the link stays and its target is replaced. A new file gets the permissions an
ordinary ``open`` would give it (``0o666`` less the umask); a replaced one keeps its own.

**Reading: regular files only, and only so much.** :func:`read_regular` refuses what is not a
regular file before opening it (a FIFO with no writer blocks an ``open`` for ever; a symlink to
``/dev/zero`` never ends and fills memory), opens without blocking and checks again on the open
descriptor (the path may have been swapped in between), and reads at most ``limit`` bytes.

Written out here rather than taken from a library: ``atomicwrites`` is unmaintained and
``tempfile.NamedTemporaryFile`` creates files with mode ``0o600`` and no rename; the few steps
are the point, and their order matters.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat

__all__ = ["Unreadable", "read_regular", "write_atomic"]

#: Characters of the target's name kept in the temporary file's name (NAME_MAX is 255 bytes).
_NAME_KEPT = 160

_READ_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
_TEMP_FLAGS = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
)
_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
#: Read size after the first read, should the file grow after ``fstat``.
_CHUNK = 1 << 20


class Unreadable(Exception):
    """A file that was not read; ``str()`` is the one-line reason (no path: the caller adds
    it)."""


def _named(exc: OSError, path: str) -> OSError:
    """``exc`` as the same kind of ``OSError`` naming ``path``, the path the caller gave."""
    if exc.errno is None:
        return exc
    return OSError(exc.errno, exc.strerror or os.strerror(exc.errno), path)


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` whole, or leave what was there untouched.

    Raises:
        OSError: the file cannot be written (``ENOSPC``, ``EROFS``, ``EACCES``, …), with
            ``filename`` set to ``path`` as given and ``strerror`` the system's reason. Nothing
            is left behind.
    """
    given = os.fspath(path)
    try:
        info: os.stat_result | None = os.stat(given)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise _named(exc, given) from None
    if info is not None and not stat.S_ISREG(info.st_mode):
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), given)
        _write_stream(given, data)  # /dev/stdout is a link to a pipe: not resolved
        return
    # A link to a regular file (or to none yet): replace its target, keep the link.
    target = os.path.realpath(given) if os.path.islink(given) else given
    folder, name = os.path.split(target)
    try:
        fd, temp = _create_temp(folder or ".", name)
    except OSError as exc:
        raise _named(exc, given) from None
    try:
        try:
            if info is not None:
                os.fchmod(fd, stat.S_IMODE(info.st_mode))
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)  # a full disk can show only here (NFS, delayed allocation)
        finally:
            os.close(fd)
        os.replace(temp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, OSError):
            raise _named(exc, given) from None
        raise


def _create_temp(folder: str, name: str) -> tuple[int, str]:
    """A new, empty file beside the target: ``.NAME.<random>.tmp``, mode ``0o666`` less the
    umask (what ``open`` would give the target)."""
    while True:
        temp = os.path.join(folder, f".{name[:_NAME_KEPT]}.{os.urandom(4).hex()}.tmp")
        try:
            return os.open(temp, _TEMP_FLAGS, 0o666), temp
        except FileExistsError:
            continue


def _write_stream(path: str, data: bytes) -> None:
    """Write to a device or a FIFO: no rename is possible, and none is needed."""
    try:
        with open(path, "wb") as out:
            out.write(data)
    except OSError as exc:
        raise _named(exc, path) from None


def _check(mode: int, size: int, limit: int, cap: str) -> None:
    if stat.S_ISDIR(mode):
        raise Unreadable("Is a directory")  # the system's own words for reading a folder
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "a special file")
        raise Unreadable(f"not a regular file ({kind})")
    if size > limit:
        raise Unreadable(f"file too large ({size:,} bytes; {cap})")


def read_regular(path: str | os.PathLike[str], limit: int, *, what: str = "") -> bytes:
    """The bytes of the regular file at ``path`` (symlinks followed), if at most ``limit``;
    ``what`` names the setting the limit comes from, for the message (lint's
    ``max-file-size``).

    Raises:
        Unreadable: the path does not exist or cannot be opened (the system's reason), is not a
            regular file (a FIFO, a device, a socket, a folder), or holds more than ``limit``
            bytes (also when it grew past that while being read).
    """
    cap = f"{what} is {limit:,} bytes" if what else f"at most {limit:,} are read"
    try:
        info = os.stat(path)
        _check(info.st_mode, info.st_size, limit, cap)
        fd = os.open(path, _READ_FLAGS)
    except OSError as exc:
        raise Unreadable(exc.strerror or str(exc)) from None
    try:
        info = os.fstat(fd)
        _check(info.st_mode, info.st_size, limit, cap)
        parts: list[bytes] = []
        total = 0
        want = min(limit, info.st_size) + 1  # one more byte shows at once that it grew
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
        raise Unreadable(f"file too large (grew while read; {cap})")
    # The usual case is one part: return it as it is rather than copying it.
    return parts[0] if len(parts) == 1 else b"".join(parts)
