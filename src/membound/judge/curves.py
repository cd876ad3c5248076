"""Curve fitting for memory complexity: the five models, a weighted least-squares fit of
``y = a + b·f(n)`` for each, and the rule that chooses among them.

Pure arithmetic over numbers: it imports nothing that measures, so that ``report`` (the
scaling chart) and ``judge/baseline.py`` use it without loading ``measure``.
``judge/complexity.py`` runs the target at each size and decides with it.

Least squares is written here (two parameters, closed form) rather than taken from NumPy to
keep NumPy out of the core dependencies.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from membound._errors import TargetError

__all__ = [
    "MIN_FLOOR",
    "MIN_GAIN",
    "MODELS",
    "POOR_FIT",
    "UNIT",
    "Fit",
    "choose_model",
    "confidence",
    "fit_models",
    "normalise_big_o",
]

MODELS: dict[str, Callable[[float], float]] = {
    "O(1)": lambda n: 0.0,
    "O(log n)": math.log,
    "O(n)": lambda n: n,
    "O(n log n)": lambda n: n * math.log(n),
    "O(n^2)": lambda n: n * n,
}
UNIT = {
    "O(1)": "",
    "O(log n)": "per unit of log n",
    "O(n)": "per unit of n",
    "O(n log n)": "per unit of n·log n",
    "O(n^2)": "per unit of n²",
}
MIN_FLOOR: dict[str, int] = {"rss": 64 * 1024, "heap": 4 * 1024, "seconds": 0}
MIN_GAIN = 0.05
POOR_FIT = 0.15


_SPELLINGS = {
    "o(1)": "O(1)",
    "o(log n)": "O(log n)",
    "o(n)": "O(n)",
    "o(n log n)": "O(n log n)",
    "o(n^2)": "O(n^2)",
    "o(n²)": "O(n^2)",
    "o(n**2)": "O(n^2)",
}


def normalise_big_o(text: str) -> str:
    """The canonical spelling of a complexity class (``"o(n²)"`` → ``"O(n^2)"``).

    Raises:
        TargetError: not one of the five classes membound fits.
    """
    key = " ".join(text.strip().lower().replace("·", " ").split())
    if key not in _SPELLINGS:
        raise TargetError(
            f"unknown complexity {text!r}",
            hint="use one of O(1), O(log n), O(n), O(n log n), O(n^2)",
        )
    return _SPELLINGS[key]


@dataclass(frozen=True)
class Fit:
    """One model fitted to the points."""

    model: str
    """``O(1)``, ``O(log n)``, ``O(n)``, ``O(n log n)`` or ``O(n^2)``."""
    intercept: float
    """``a`` in ``y = a + b·f(n)``."""
    slope: float
    """``b`` (never negative): bytes (or seconds) per unit of ``f(n)``."""
    residual: float
    """Relative RMS residual beyond the noise floor:
    sqrt(mean((max(0, |y - ŷ| - floor) / max(y, floor))²))."""
    r2: float
    """Coefficient of determination on the raw values (1.0 = perfect)."""


def fit_models(
    ns: Sequence[float], ys: Sequence[float], floor: float, *, weighted: bool = True
) -> dict[str, Fit]:
    """Fit every model in :data:`MODELS` to the points ``(ns, ys)``.

    ``weighted`` fits relative errors (used to choose a model); unweighted ordinary least
    squares follows the largest sizes, which gives the slope a person asks for ("bytes per row").
    """
    weights = [1.0 / max(abs(y), floor, 1e-12) ** 2 if weighted else 1.0 for y in ys]
    mean_y = statistics.fmean(ys)
    ss_tot = sum((y - mean_y) ** 2 for y in ys)
    fits = {}
    for name, f in MODELS.items():
        xs = [f(n) for n in ns]
        sw = sum(weights)
        mx = sum(w * x for w, x in zip(weights, xs, strict=True)) / sw
        my = sum(w * y for w, y in zip(weights, ys, strict=True)) / sw
        sxx = sum(w * (x - mx) ** 2 for w, x in zip(weights, xs, strict=True))
        sxy = sum(w * (x - mx) * (y - my) for w, x, y in zip(weights, xs, ys, strict=True))
        slope = max(0.0, sxy / sxx) if sxx > 0 else 0.0
        intercept = my - slope * mx
        pred = [intercept + slope * x for x in xs]
        # Errors within the noise floor are no evidence against a model (a dead band).
        rel = [
            max(0.0, abs(y - p) - floor) / max(abs(y), floor, 1e-12)
            for y, p in zip(ys, pred, strict=True)
        ]
        residual = math.sqrt(statistics.fmean(r * r for r in rel))
        ss_res = sum((y - p) ** 2 for y, p in zip(ys, pred, strict=True))
        r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
        fits[name] = Fit(name, intercept, slope, residual, r2)
    return fits


def choose_model(fits: Mapping[str, Fit]) -> str:
    """The simplest model that no more complex one clearly beats (the module's rule)."""
    chosen = "O(1)"
    for name in MODELS:
        if name == chosen:
            continue
        current, candidate = fits[chosen].residual, fits[name].residual
        if candidate <= current / 2 and current - candidate >= MIN_GAIN:
            chosen = name
    return chosen


def confidence(fits: Mapping[str, Fit], chosen: str) -> float:
    """``beat × (0.5 + 0.5 × excluded)``: how clearly ``chosen`` beat the simpler models
    (1 - r / r_simpler; 1 with none), and how clearly the more complex ones were excluded
    ((r_complex - r) / 0.05, clipped to 0..1; 1 with none). A model preferred only because it is
    simpler scores at most 0.5."""
    order = list(MODELS)
    r = fits[chosen].residual
    simpler = [fits[m].residual for m in order[: order.index(chosen)]]
    richer = [fits[m].residual for m in order[order.index(chosen) + 1 :]]
    beat = 1.0 - r / min(simpler) if simpler and min(simpler) > 0 else 1.0
    excluded = min(1.0, max(0.0, (min(richer) - r) / MIN_GAIN)) if richer else 1.0
    return max(0.0, beat) * (0.5 + 0.5 * excluded)
