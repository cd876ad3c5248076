"""Measure one call of a function in a fresh interpreter, with a memory limit."""

from __future__ import annotations

import membound as mb


def load_everything(n: int) -> int:
    """Hold n integers in a list at once."""
    return len(list(range(n)))  # noqa: MB202 - the O(n) case being measured


if __name__ == "__main__":
    m = mb.measure(load_everything, 5_000_000, limit="1GB")
    print(f"{m.label}: Δ peak RSS {mb.format_size(m.rss_peak_delta)} over a fresh interpreter")
    print(f"baseline {mb.format_size(m.rss_start)}; outcome {m.outcome}; {m.growth.pattern}")
