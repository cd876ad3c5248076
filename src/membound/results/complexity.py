"""``Complexity``: the verdict on how memory grows with the input size, and its points."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Complexity", "ComplexityPoint"]


@dataclass(frozen=True)
class ComplexityPoint:
    """The measurements at one size."""

    n: int
    """The size passed to ``target``."""
    value: float
    """Median peak over the runs at this size: bytes (Δ RSS or heap peak)."""
    seconds: float
    """Median wall time of the call, seconds."""
    runs: int
    """How many runs the medians summarise."""


@dataclass(frozen=True)
class Complexity:
    """The verdict on how memory grows with the input size."""

    big_o: str
    """``O(1)``, ``O(log n)``, ``O(n)``, ``O(n log n)`` or ``O(n^2)``; ``undecided`` when
    fewer than three sizes rose above the noise floor, or those that did sit on two levels
    (see ``decided``)."""
    bytes_per_unit: float
    """Slope of the chosen model by ordinary least squares: bytes per unit of n (or of log n,
    n log n, n²)."""
    fits: dict[str, float]
    """Every model's relative residual (lower fits better)."""
    confidence: float
    """0 to 1: how clearly the chosen model beat the simpler ones, discounted when a more
    complex one fits better without being clearly better."""
    points: tuple[ComplexityPoint, ...]
    """One per size, in increasing n."""
    noise_floor: float
    """Bytes of variation treated as noise, estimated from repeated smallest-size runs."""
    explanation: str
    """One line, e.g. ``peak grows 36.0 B per unit of n (R²=0.999); O(n)``."""
    metric: str
    """``rss`` (Δ peak RSS over each run's baseline) or ``heap`` (tracemalloc peak)."""
    label: str
    """What was measured."""
    time_big_o: str
    """The same fit applied to wall time."""
    time_explanation: str
    """One line about wall time."""
    decided: bool = True
    """False when fewer than three sizes rose above the noise floor, or those that did sit
    on two levels: ``big_o`` is then
    ``"undecided"`` and ``candidates`` names the models still tied."""
    candidates: tuple[str, ...] = ()
    """The models the points could not tell apart (only when undecided)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Complexity:
        """Inverse of :meth:`to_dict`."""
        kw = dict(data)
        kw["points"] = tuple(ComplexityPoint(**p) for p in kw["points"])
        kw["candidates"] = tuple(kw.get("candidates", ()))
        return cls(**kw)

    def to_markdown(self) -> str:
        """A Markdown table of the points and the verdict."""
        from membound.report.markdown import render_complexity

        return render_complexity(self)

    def _repr_html_(self) -> str:
        """Jupyter's display: the HTML report's section for this result, with its chart where
        matplotlib is installed."""
        from membound.report.html import fragment

        return fragment(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's text display: the Markdown report, not every field of the dataclass."""
        printer.text(self.to_markdown())
