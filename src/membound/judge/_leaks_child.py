"""The child of ``find_leaks(..., isolate=True)``: ``python -m membound.judge._leaks_child
REQUEST RESULT``. Reads the pickled request, hunts in this fresh interpreter, writes the report (or
the error) as JSON."""

from __future__ import annotations

import json
import os
import pickle
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from membound._errors import ChildFailed, MemboundError
from membound.judge.leaks import find_leaks
from membound.measure.target import load_ref


def _progress_writer(path: str | None) -> Callable[[int, int], None] | None:
    """``on_round`` that rewrites ``path`` with ``done planned`` (the parent shows it)."""
    if not path:
        return None

    def write(done: int, planned: int) -> None:
        tmp = f"{path}.tmp"
        Path(tmp).write_text(f"{done} {planned}")
        os.replace(tmp, path)  # whole lines only: the parent never reads half a write

    return write


def main(argv: list[str]) -> int:
    """Run the request in ``argv[0]``, write the outcome to ``argv[1]``."""
    request = pickle.loads(Path(argv[0]).read_bytes())
    out: dict[str, Any]
    try:
        target = load_ref(request["ref"])
        report = find_leaks(
            target,
            iterations=request["iterations"],
            warmup=request["warmup"],
            rounds=request["rounds"],
            tolerance=request["tolerance"],
            label=request["label"],
            on_round=_progress_writer(request.get("progress")),
        )
        out = {"report": report.to_dict()}
    except MemboundError as exc:
        out = {
            "error": type(exc).__name__,
            "message": str(exc),
            "hint": exc.hint,
            "traceback": exc.traceback if isinstance(exc, ChildFailed) else "",
        }
    Path(argv[1]).write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
