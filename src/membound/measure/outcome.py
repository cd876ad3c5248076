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
from membound.measure.sampler import SamplerReport
from membound.results.measurement import Outcome

__all__ = ["check_timeout", "describe_outcome", "heap_and_gc", "parse_limit", "read_report"]


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


def check_timeout(timeout: float | None) -> None:
    """Reject a timeout that is not a positive number of seconds.

    Raises:
        TargetError: zero, negative or not a number.
    """
    if timeout is not None and not timeout > 0:  # NaN too
        raise TargetError(f"timeout must be positive, not {timeout}")


def describe_outcome(
    returncode: int,
    report: SamplerReport,
    timed_out: bool,
    limit: int | None,
    timeout: float | None,
) -> tuple[Outcome, str]:
    """How a run ended, and the same in words: stopped at the limit or the timeout, killed by a
    signal, failed with a status, or ok."""
    if report.limit_hit_at is not None and limit is not None:
        return "limit", (
            f"memory limit {format_size(limit)} exceeded at {report.limit_hit_at:.2f} s "
            f"(RSS {format_size(report.limit_hit_rss)}); stopped"
        )
    if timed_out:
        return "timeout", f"timeout of {timeout:g} s reached; stopped"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        if returncode == -signal.SIGKILL:
            return "killed", (
                "killed by SIGKILL (when memory runs out, the kernel's OOM killer sends this; "
                "see dmesg)"
            )
        return "killed", f"killed by {name}"
    if returncode > 0:
        return "failed", f"exited with status {returncode}"
    return "ok", ""


def read_report(path: Path) -> dict[str, Any] | None:
    """A child's JSON report, or None when it wrote none (or not all of it)."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def heap_and_gc(report: dict[str, Any] | None) -> dict[str, Any]:
    """The heap and GC fields of a Measurement from a child's report (None where absent)."""
    keys = ("heap_current", "heap_peak", "heap_overhead", "gc_collections", "gc_pause_s")
    return {key: report.get(key) if report else None for key in keys}
