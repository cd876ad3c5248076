"""Is this run worse than its baseline? A figure counts as changed only beyond its noise.

The rule: a median peak *rose* when it is above the recorded median by more than the largest
of ``ratio`` of the recorded median (10 %), ``noise_factor`` times the spread seen over
repeats (3×; the larger spread of the recording run and this one), and ``floor`` (1 MiB). It
*fell* by the same measure the other way. A verdict got worse when it ranks lower than the
recorded one: complexity by its class (O(1) < O(log n) < O(n) < O(n log n) < O(n²)), leaks
``no leak`` < ``undecided`` < ``leak``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from membound._errors import MemboundError
from membound._units import format_size, parse_size
from membound.judge.curves import MODELS
from membound.results.baseline import (
    PEAKS,
    BaselineCheck,
    BaselineEntry,
    PeakChange,
    VerdictChange,
)

__all__ = ["Tolerance", "check_against", "parse_ratio"]

_LEAK_RANK = {"no leak": 0, "undecided": 1, "leak": 2}
_COMPLEXITY_RANK = {model: i for i, model in enumerate(MODELS)}
_WORDS = {"heap_peak": "heap peak", "rss_peak": "RSS peak"}


def parse_ratio(value: str | float) -> float:
    """``"10%"`` or ``0.1`` as a ratio (0.1); a usage error names a bad one.

    A bare number is a fraction, and one above 1 is refused: read as a percentage above 1 and
    as a fraction below, "0.99" meant 99 % and "1.0" 1 %."""
    text = str(value).strip()
    try:
        number = float(text.removesuffix("%"))
    except ValueError:
        raise MemboundError(f"not a percentage: {value!r} (e.g. 10%)") from None
    percent = text.endswith("%")
    if not percent and number > 1:
        raise MemboundError(
            f"not a fraction: {value!r}; write {text}% for a percentage, or a fraction such as 0.1"
        )
    ratio = number / 100 if percent else number
    if not 0 <= ratio < 100:
        raise MemboundError(f"not a usable percentage: {value!r}")
    return ratio


@dataclass(frozen=True)
class Tolerance:
    """How far a peak may move before it counts as a change."""

    ratio: float = 0.10
    """Share of the recorded median."""
    noise_factor: float = 3.0
    """Times the larger spread over repeats of the two runs."""
    floor: int = 2**20
    """Bytes below which no change counts."""

    @classmethod
    def parse(cls, ratio: str | float = "10%", floor: str | int = "1MiB") -> Tolerance:
        """From the options' text (``"10%"``, ``"1MiB"``)."""
        return cls(ratio=parse_ratio(ratio), floor=parse_size(floor))

    def allowed(self, recorded: int, noise: int) -> int:
        """Bytes a median of ``recorded`` may move with ``noise`` of spread."""
        return int(max(self.ratio * recorded, self.noise_factor * noise, self.floor))

    def describe(self, recorded: int, noise: int) -> str:
        """The rule behind :meth:`allowed`, with its three terms as figures."""
        return (
            f"the largest of {self.ratio * 100:g}% ({format_size(self.ratio * recorded)}), "
            f"{self.noise_factor:g}× the spread ({format_size(self.noise_factor * noise)}) "
            f"and {format_size(self.floor)}"
        )


def _verdict_worse(kind: str, before: str, now: str) -> bool:
    ranks = _COMPLEXITY_RANK if kind == "complexity" else _LEAK_RANK
    if before not in ranks or now not in ranks:
        return before != now  # an unknown verdict: any change is worth a look
    return ranks[now] > ranks[before]


def check_against(
    name: str,
    before: BaselineEntry | None,
    now: BaselineEntry,
    tolerance: Tolerance | None = None,
) -> BaselineCheck:
    """``now`` checked against ``before`` (None: the name is new to the baseline).

    Only figures and verdicts present in both are compared; a figure recorded on one side only
    (RSS recorded but not measured now) is left out, not counted as a change.
    """
    tol = tolerance or Tolerance()
    if before is None:
        return BaselineCheck(name, "new", (), (), "not in the baseline")
    peaks: list[PeakChange] = []
    for metric in PEAKS:
        was, is_now = before.peak(metric), now.peak(metric)
        if was is None or is_now is None:
            continue
        noise = max(was.spread, is_now.spread)
        peaks.append(PeakChange(metric, was, is_now, tol.allowed(was.median, noise), noise))
    verdicts = [
        VerdictChange(kind, b, n, _verdict_worse(kind, b, n))
        for kind, b, n in (
            ("complexity", before.complexity, now.complexity),
            ("leak", before.leak, now.leak),
        )
        if b is not None and n is not None
    ]
    rose = [p for p in peaks if p.direction == "rose"]
    worse = [v for v in verdicts if v.worse]
    fell = [p for p in peaks if p.direction == "fell"]
    lines = [_peak_line(p, tol) for p in rose] + [
        f"{v.kind} verdict got worse: {v.before} → {v.now}" for v in worse
    ]
    status: Literal["regressed", "improved", "same"]
    if rose or worse:
        status = "regressed"
    elif fell:
        status = "improved"
        lines = [_peak_line(p, tol) for p in fell]
    else:
        status = "same"
        lines = [_peak_line(p, tol) for p in peaks] or ["no figure in common with the baseline"]
    return BaselineCheck(name, status, tuple(peaks), tuple(verdicts), "; ".join(lines))


def _peak_line(p: PeakChange, tol: Tolerance) -> str:
    pct = f" ({p.change / p.before.median:+.0%})" if p.before.median else ""
    verb = {"rose": "rose", "fell": "fell", "same": "within noise"}[p.direction]
    return (
        f"{_WORDS[p.metric]} {verb}: {format_size(p.now.median)} now, "
        f"{format_size(p.before.median)} in the baseline, "
        f"{format_size(p.change, signed=True)}{pct}; a change counts beyond "
        f"{format_size(p.allowed)}, {tol.describe(p.before.median, p.noise)}"
    )
