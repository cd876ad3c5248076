"""Every lint rule by family: MB1 loading, MB2 accumulation, MB3 caching, MB4 per call, MB5 columns.

Codes and names are a contract: a rule may be removed only with a major release, never renumbered.
"""

from __future__ import annotations

from membound.lint.model import Rule
from membound.lint.rules import accumulation, caching, columns, loading, per_call

__all__ = ["RULES", "RULES_BY_CODE"]

RULES: tuple[Rule, ...] = (
    *loading.RULES,
    *accumulation.RULES,
    *caching.RULES,
    *per_call.RULES,
    *columns.RULES,
)
RULES_BY_CODE: dict[str, Rule] = {rule.code: rule for rule in RULES}
