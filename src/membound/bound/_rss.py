"""This process's RSS and data size, cheaply (bound/ stands alone: it does not import measure/)."""

from __future__ import annotations

import importlib
import os

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def current_rss() -> int:
    """Resident set size of this process in bytes.

    Reads ``/proc/self/statm`` where it exists (one small read, cheap enough to poll every few
    milliseconds), else asks psutil.
    """
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        # Imported by name: psutil ships no type stubs, and this keeps mypy --strict clean
        # without a project-wide override.
        psutil = importlib.import_module("psutil")
        return int(psutil.Process().memory_info().rss)


def data_size() -> int | None:
    """Bytes of private writable memory this process has mapped (``VmData``), or None.

    This is what Linux (4.7 and later) holds to ``RLIMIT_DATA``: the heap, anonymous and
    private writable mappings, thread stacks; mapped, not necessarily resident. None where
    ``/proc/self/status`` does not say (not Linux).
    """
    return _status_bytes(b"VmData:")


def _status_bytes(field: bytes) -> int | None:
    """A ``/proc/self/status`` field in bytes, or None where it is not there."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024  # the kernel prints kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def reset_peak() -> bool:
    """Reset this process's peak RSS (``VmHWM``) to its current RSS; False where it cannot.

    Writes ``5`` to ``/proc/self/clear_refs`` (Linux 4.0 and later). Only for a process that
    works for membound alone (a worker): it resets the peak any other measurement of this
    process reads.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def peak_rss() -> int | None:
    """This process's peak RSS (``VmHWM``) in bytes since start or the last reset, or None."""
    return _status_bytes(b"VmHWM:")
