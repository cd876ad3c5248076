"""The out-of-process sampler: a small process that reads another's memory from outside it.

``process`` is the parent side (start it, read its status, stop it, the report); the sampler
itself is ``measure/children/sampler_process.py``. ``polling`` calls a function every few
tenths of a second while a block runs, how live figures reach a display.
"""

from __future__ import annotations

from membound.measure.sampler.process import Sampler, SamplerReport, kill_descendants

__all__ = ["Sampler", "SamplerReport", "kill_descendants"]
