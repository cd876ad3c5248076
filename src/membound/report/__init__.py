"""report: render result objects as Markdown, JSON, PNG charts and HTML pages.

``membound.report.chart(result, path)`` writes a PNG; ``membound.report.html(results, path)``
writes one self-contained HTML page of one or more results. The ``markdown``, ``json``, ``chart``
and ``html`` modules each offer a reporter class built from a result with a ``render(outfile)``
method. matplotlib is imported only when a chart is drawn.

What the renderers share: ``sections`` (what each result shows, as plain text), ``sites`` (where
the memory was), ``text`` (user text made safe to draw); ``terminal`` draws the sections in a
terminal and ``baseline`` a run checked against its baseline.
"""

from __future__ import annotations

from membound.report.chart import chart
from membound.report.html import html

__all__ = ["chart", "html"]
