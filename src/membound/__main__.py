"""``python -m membound``: the same as the ``membound`` command."""

from __future__ import annotations

from membound.cli.main import run

if __name__ == "__main__":
    run()
