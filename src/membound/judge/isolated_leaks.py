"""``find_leaks(..., isolate=True)``: the same hunt in a fresh interpreter.

A long-lived process (a test worker, a notebook) has free memory in its allocators and caches
already warm; a fresh interpreter starts from the target's imports alone, so what it reports
belongs to the target. The child (``_leaks_child.py``) runs :func:`find_leaks` in-process and
writes the report as JSON; errors come back as the same exception classes.
"""

from __future__ import annotations

import contextlib
import json
import pickle
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from membound import _errors
from membound._errors import ChildFailed, LimitExceeded, MemboundError
from membound.measure.isolate.function import module_args, run_python
from membound.measure.isolate.outcome import exit_words
from membound.measure.sampler.polling import polling
from membound.measure.target import Target, resolve_target
from membound.results.leaks import LeakReport

__all__ = ["hunt_isolated"]


@contextlib.contextmanager
def _relaying(path: Path, on_round: Callable[[int, int], None] | None) -> Iterator[None]:
    """While the block runs, pass each new ``done planned`` line of ``path`` to ``on_round``."""
    if on_round is None:
        yield
        return
    last = [b""]

    def relay() -> None:
        with contextlib.suppress(OSError):  # not written yet
            now = path.read_bytes()
            if now != last[0] and now.strip():
                last[0] = now
                done, planned = (int(w) for w in now.split())
                on_round(done, planned)

    with polling(relay, 0.25, "membound-leaks-progress"):
        yield


def hunt_isolated(
    target: Target,
    iterations: int,
    warmup: int,
    rounds: int,
    tolerance: float | None,
    timeout: float | None,
    label: str | None,
    on_round: Callable[[int, int], None] | None = None,
) -> LeakReport:
    """Run :func:`membound.find_leaks` on ``target`` in a fresh interpreter (``on_round`` is
    fed from a progress file the child rewrites after each round).

    Raises:
        TargetError: the target cannot be imported there.
        ChildFailed: the target raised, or the child died.
        LimitExceeded: the hunt did not finish within ``timeout``.
    """
    ref = resolve_target(target)
    request = {
        "ref": ref,
        "iterations": iterations,
        "warmup": warmup,
        "rounds": rounds,
        "tolerance": tolerance,
        "label": label or ref.display,
    }
    with tempfile.TemporaryDirectory(prefix="membound-leaks-") as tmp:
        request_path, result_path = Path(tmp, "request.pickle"), Path(tmp, "result.json")
        progress_path = Path(tmp, "progress")
        request["progress"] = str(progress_path) if on_round is not None else None
        request_path.write_bytes(pickle.dumps(request))
        with _relaying(progress_path, on_round):
            code, timed_out = run_python(
                module_args("membound.judge._leaks_child", str(request_path), str(result_path)),
                timeout,
            )
        if timed_out:
            raise LimitExceeded(
                f"the leak hunt of {request['label']} did not finish within the timeout of "
                f"{timeout:g} s; the child was stopped",
                hint="raise the timeout, or look for a call that never returns",
            )
        try:
            result: dict[str, Any] = json.loads(result_path.read_text())
        except (OSError, ValueError):
            raise ChildFailed(
                f"the leak hunt of {request['label']} ended without a report ({exit_words(code)})",
                exit_code=code,
                hint="the measured code ended its process (os._exit, a crash or a signal); "
                "run it once directly to see how",
            ) from None
    if "report" in result:
        return LeakReport.from_dict(result["report"])
    kind = getattr(_errors, result.get("error", ""), None)
    if not (isinstance(kind, type) and issubclass(kind, MemboundError)):
        kind = ChildFailed
    if kind is ChildFailed:
        raise ChildFailed(result["message"], traceback=result.get("traceback", ""), exit_code=code)
    raise kind(result["message"], hint=result.get("hint", ""))
