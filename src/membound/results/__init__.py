"""results: the frozen result types and the pure growth classification of a timeline.

The leaf of the house (DESIGN §2): it imports only ``_units`` and ``_errors``. Every result has
``to_dict``/``from_dict``; ``to_markdown()`` is the one documented delegate up into ``report``,
imported lazily when called.

One module per result: ``measurement``, ``comparison``, ``complexity``, ``leaks``, ``sites``
(``PeakSite``), ``baseline``; ``timeline`` with ``downsample`` (bounded in size), ``growth``
(``classify``) and ``lifespan`` (a process's whole life); ``checked`` and ``plausible`` vet a
result read from a file.
"""

from __future__ import annotations

from membound.results.comparison import Comparison, ScenarioStats, Spread
from membound.results.complexity import Complexity, ComplexityPoint
from membound.results.growth import Growth, GrowthPattern, classify, theil_sen
from membound.results.leaks import Holder, LeakReport, LeakRound, Site, TypeGrowth
from membound.results.measurement import Kind, Measurement, Outcome
from membound.results.sites import PeakSite
from membound.results.timeline import Timeline

#: Any result membound produces (what reports render and JSON files hold).
Result = Measurement | Comparison | Complexity | LeakReport

__all__ = [
    "Comparison",
    "Complexity",
    "ComplexityPoint",
    "Growth",
    "GrowthPattern",
    "Holder",
    "Kind",
    "LeakReport",
    "LeakRound",
    "Measurement",
    "Outcome",
    "PeakSite",
    "Result",
    "ScenarioStats",
    "Site",
    "Spread",
    "Timeline",
    "TypeGrowth",
    "classify",
    "theil_sen",
]
