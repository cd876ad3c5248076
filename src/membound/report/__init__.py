"""report: render result objects as Markdown, JSON and PNG charts.

``membound.report.chart(result, path)`` writes a PNG; ``markdown``, ``json`` and ``chart`` modules
each offer a reporter class built from a result with a ``render(outfile)`` method.
"""

from __future__ import annotations

from membound.report.chart import chart

__all__ = ["chart"]
