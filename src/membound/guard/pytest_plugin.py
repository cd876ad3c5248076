"""pytest plugin entry point (``pytest11``) for membound's markers and fixture.

The markers (``limit_memory``, ``no_leak``, ``memory_complexity``) and the ``membound`` fixture are
delivered with the verdicts work; until then the plugin registers nothing, so installing membound
never changes how an existing test suite runs.
"""

from __future__ import annotations
