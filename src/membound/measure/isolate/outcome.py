"""What isolated runs and commands share: checked options, the outcome of a run in words, and
the figures a child reports.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

from membound._errors import SizeError, TargetError
from membound._units import format_size, parse_size
from membound.measure.sampler.process import SamplerReport
from membound.results.measurement import Outcome

__all__ = [
    "MAX_TIMEOUT",
    "check_interval",
    "check_timeout",
    "describe_outcome",
    "exit_words",
    "heap_and_gc",
    "parse_limit",
    "read_report",
]


def parse_limit(limit: int | str | None) -> int | None:
    """The memory limit in bytes; a limit must be positive.

    Raises:
        SizeError: not a size, or not positive.
    """
    if limit is None:
        return None
    value = parse_size(limit)
    if value <= 0:
        raise SizeError(f"a memory limit must be positive, not {limit!r}")
    return value


#: The longest timeout taken, in seconds (a year): longer ones overflow the system's timers.
MAX_TIMEOUT = 365 * 24 * 3600.0


def check_timeout(timeout: float | None) -> None:
    """Reject a timeout that is not a positive, finite number of seconds up to a year.

    Raises:
        TargetError: zero, negative, not a number, infinite or over :data:`MAX_TIMEOUT`.
    """
    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TargetError(f"timeout must be a number of seconds, not {timeout!r}", hint=_HINT)
    if not 0 < timeout <= MAX_TIMEOUT:  # NaN and infinity fail this too
        raise TargetError(
            f"timeout must be more than 0 and at most {MAX_TIMEOUT:.0f} seconds (a year), "
            f"not {timeout}",
            hint=_HINT,
        )


def check_interval(interval: float) -> None:
    """Reject a sampling interval that is not a finite number of seconds from 1 ms to 1 min.

    Raises:
        TargetError: out of that range, or not a number.
    """
    if isinstance(interval, bool) or not isinstance(interval, int | float):
        raise TargetError(f"interval must be a number of seconds, not {interval!r}")
    if not 0.001 <= interval <= 60:  # NaN fails this too
        raise TargetError(
            f"interval must be from 0.001 to 60 seconds, not {interval}",
            hint="the default, 0.01 s, suits most runs",
        )


_HINT = "give the seconds as a number, e.g. 60 or 0.5"


def describe_outcome(
    returncode: int,
    report: SamplerReport,
    timed_out: bool,
    limit: int | None,
    timeout: float | None,
) -> tuple[Outcome, str]:
    """How a run ended, and the same in words: stopped at the limit or the timeout, killed by a
    signal, failed with a status, or ok; and how many processes it left running were killed."""
    outcome: Outcome = "ok"
    detail = ""
    if report.limit_hit_at is not None and limit is not None:
        outcome, detail = (
            "limit",
            (
                f"memory limit {format_size(limit)} exceeded at {report.limit_hit_at:.2f} s "
                f"(RSS {format_size(report.limit_hit_rss)}); stopped"
            ),
        )
    elif timed_out:
        outcome, detail = "timeout", f"timeout of {timeout:g} s reached; stopped"
    elif returncode < 0:
        outcome, detail = "killed", exit_words(returncode)
    elif returncode > 0:
        outcome, detail = "failed", exit_words(returncode)
    left = report.leftovers_killed
    if left:
        also = (
            f"{left} process{'es' if left > 1 else ''} it left running "
            f"{'were' if left > 1 else 'was'} killed when it ended"
        )
        detail = f"{detail}; {also}" if detail else also
    return outcome, detail


def exit_words(returncode: int) -> str:
    """How a process ended, from its return code (negative: the signal that killed it)."""
    if returncode == -signal.SIGKILL:
        return (
            "killed by SIGKILL (when memory runs out, the kernel's OOM killer sends this; "
            "see dmesg)"
        )
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with status {returncode}"


def read_report(path: Path) -> dict[str, Any] | None:
    """A child's JSON report, or None when it wrote none (or not all of it)."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def heap_and_gc(report: dict[str, Any] | None) -> dict[str, Any]:
    """The heap and GC fields of a Measurement from a child's report (None where absent)."""
    keys = (
        "heap_current",
        "heap_peak",
        "heap_overhead",
        "heap_source",
        "gc_collections",
        "gc_pause_s",
    )
    return {key: report.get(key) if report else None for key in keys}
