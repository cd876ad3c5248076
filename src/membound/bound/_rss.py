"""Current RSS of this process, cheaply (bound/ stands alone: it does not import measure/)."""

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
