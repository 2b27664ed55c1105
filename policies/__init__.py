"""The policy layer: YAML policy files compiled into a pure engine that decides every action.

Use ``load_engine(path)`` (never raises; a policy that cannot be loaded denies everything) and call
``engine.evaluate(action, ctx)`` when an action is proposed and again right before it is applied.
"""

from policies.engine import (
    EvaluationContext,
    PolicyEngine,
    PriorChange,
    Reason,
    Verdict,
    change_kind,
    load_engine,
)
from policies.loader import PolicyIssue, PolicyLoadError, load_policy, parse_policy
from policies.model import BrandRules, Policy

__all__ = [
    "BrandRules",
    "EvaluationContext",
    "Policy",
    "PolicyEngine",
    "PolicyIssue",
    "PolicyLoadError",
    "PriorChange",
    "Reason",
    "Verdict",
    "change_kind",
    "load_engine",
    "load_policy",
    "parse_policy",
]
