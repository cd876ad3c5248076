"""``where=``: which lines held the memory. ``engine`` checks the option and picks memray or
tracemalloc; ``native`` finds where kept native memory was allocated, ``malloc_lines`` the
line whose calls kept malloc growth that no hook saw; ``limit_stack`` the line
that was running at a memory limit. The capture runs in the measured process and its reader in
a process of its own: ``measure/children/where_capture.py`` and ``where_reader.py``.
"""

from __future__ import annotations

from membound.measure.where.engine import WhereMode, where_engine, where_mode

__all__ = ["WhereMode", "where_engine", "where_mode"]
