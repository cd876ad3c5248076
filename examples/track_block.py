"""Measure a block of code in this process: peak RSS, heap, growth."""

from __future__ import annotations

import membound as mb

with mb.track("build a million dicts", heap=True) as t:
    rows = [{"id": i} for i in range(1_000_000)]
    del rows

m = t.result
assert m is not None
print(f"peak RSS +{mb.format_size(m.rss_peak_delta)} ({m.rss_peak_source})")
print(f"heap peak {mb.format_size(m.heap_peak)}; growth: {m.growth.explanation}")
