"""This process's RSS and data size, cheaply (bound/ stands alone: it does not import measure/)."""

from __future__ import annotations

import importlib

from membound._proc import PAGE, statm, status_bytes
from membound._proc import reset_peak as reset_peak_of


def current_rss() -> int:
    """Resident set size of this process in bytes.

    Reads ``/proc/self/statm`` where it exists (one small read, cheap enough to poll every few
    milliseconds), else asks psutil.
    """
    fields = statm()
    if fields is not None:
        return fields[1] * PAGE
    # Imported by name: psutil ships no type stubs, and this keeps mypy --strict clean without
    # a project-wide override.
    psutil = importlib.import_module("psutil")
    return int(psutil.Process().memory_info().rss)


def data_size() -> int | None:
    """Bytes of private writable memory this process has mapped (``VmData``), or None.

    This is what Linux (4.7 and later) holds to ``RLIMIT_DATA``: the heap, anonymous and
    private writable mappings, thread stacks; mapped, not necessarily resident. None where
    ``/proc/self/status`` does not say (not Linux).
    """
    return status_bytes("self", b"VmData:")


def reset_peak() -> bool:
    """Reset this process's peak RSS (``VmHWM``) to its current RSS; False where it cannot.

    Writes ``5`` to ``/proc/self/clear_refs`` (Linux 4.0 and later). Only for a process that
    works for membound alone (a worker): it resets the peak any other measurement of this
    process reads.
    """
    return reset_peak_of("self")


def peak_rss() -> int | None:
    """This process's peak RSS (``VmHWM``) in bytes since start or the last reset, or None."""
    return status_bytes("self", b"VmHWM:")
