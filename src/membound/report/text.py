"""User text made safe to draw and to write as UTF-8.

A command line, a file name or a scenario name may hold bytes that are not UTF-8: Python keeps
them as lone surrogates (``'\\udcff'`` for the byte ``0xff``, PEP 383), and a JSON file may carry
one as ``"\\udcff"``. Printed to a terminal they go back out as the bytes they were, but a chart
library cannot draw them (matplotlib's ``set_text`` raises ``TypeError``) and a UTF-8 file cannot
hold them. Wherever such text is drawn or written, each lone surrogate becomes U+FFFD, the
replacement character, as a UTF-8 decoder with ``errors="replace"`` would show the byte.
"""

from __future__ import annotations

import re

__all__ = ["displayable"]

_SURROGATE = re.compile(r"[\ud800-\udfff]")


def displayable(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (``'�'``)."""
    return _SURROGATE.sub("\ufffd", text)
