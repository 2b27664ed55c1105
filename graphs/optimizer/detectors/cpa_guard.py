"""CPA guard: campaigns (or ad groups) whose cost per conversion exceeds the target over a window with enough
conversions for the CPA to mean something.

The response scales down what the entity spends: its daily budget by one step when it holds a budget, or a
pause when it has none of its own (a Google ad group, a Meta campaign whose ad sets hold the budgets). Too
few conversions is not evidence: such entities are left alone, however bad their CPA looks.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Literal

import duckdb
from pydantic import Field

from agent.domain import Action, EntityKind, Money, SetBudget, SetStatus
from graphs.optimizer.common import (
    BudgetBounds,
    DetectorParams,
    PlatformFor,
    action_key,
    cents_down,
    fmt,
    latest_day,
    live,
    ref,
    rows,
    window_start,
)
from graphs.optimizer.findings import Finding

NAME = "cpa_guard"


class CpaGuardParams(DetectorParams):
    """Parameters of the CPA guard."""

    level: Literal["campaign", "ad_group"] = Field(default="campaign", description="Judge campaigns or ad groups "
                                                                                  "(against their campaign's target).")
    min_conversions: Decimal = Field(default=Decimal(15), ge=1, description="Fewer conversions in the window "
                                                                           "are not enough to judge.")
    tolerance_pct: Decimal = Field(default=Decimal(0), ge=0, le=1000, description="CPA may exceed the target by "
                                                                                 "this many % before acting.")
    max_step_pct: Decimal = Field(default=Decimal(20), gt=0, le=100,
                                  description="Budget cut in %, capped by the policy's per-action limit.")


_SQL = """
SELECT {id_col} AS entity_id, p.account_id, p.platform, any_value(c.currency) AS currency,
       any_value(c.target_cpa) AS target_cpa, sum(p.cost) AS cost, sum(p.conversions) AS conversions
FROM performance_daily p JOIN campaigns c ON c.campaign_id = p.campaign_id
WHERE p.day BETWEEN ? AND ? AND list_contains(?, p.account_id) AND c.target_cpa IS NOT NULL
GROUP BY {id_col}, p.account_id, p.platform
HAVING sum(p.conversions) >= ? AND sum(p.cost) > any_value(c.target_cpa) * (1 + ? / 100) * sum(p.conversions)
ORDER BY p.account_id, entity_id
"""


def detect(con: duckdb.DuckDBPyConnection, platform_for: PlatformFor, params: CpaGuardParams, *,
           accounts: Sequence[str], bounds: BudgetBounds | None = None) -> list[Finding]:
    """Propose a budget cut (or a pause) for running entities whose CPA is above target with enough conversions."""
    bounds = bounds or BudgetBounds()
    as_of = latest_day(con)
    kind = EntityKind.CAMPAIGN if params.level == "campaign" else EntityKind.AD_GROUP
    id_col = "p.campaign_id" if kind is EntityKind.CAMPAIGN else "p.ad_group_id"
    found = rows(con, _SQL.format(id_col=id_col), [window_start(as_of, params.window_days), as_of, list(accounts),
                                                   params.min_conversions, params.tolerance_pct])
    refs = {r["entity_id"]: ref(r["platform"], r["account_id"], kind, r["entity_id"]) for r in found}
    state = live(platform_for, refs.values())
    step = bounds.step(params.max_step_pct) / 100
    findings: list[Finding] = []
    for row in found:
        target = refs[row["entity_id"]]
        entity = state.get(target)
        if entity is None or entity.status != "ENABLED":
            continue
        cost, conversions = Decimal(row["cost"]), Decimal(row["conversions"])
        cpa, target_cpa, currency = cost / conversions, Decimal(row["target_cpa"]), row["currency"]
        why = (f"CPA {fmt(cpa)} {currency} over {params.window_days} days ({fmt(conversions, 0)} conversions) vs "
               f"target {fmt(target_cpa)} {currency}")
        evidence = {"cpa": cpa, "target_cpa": target_cpa, "cost": cost, "conversions": conversions}
        action: Action
        if entity.daily_budget is not None:
            before = entity.daily_budget.amount
            after = max(bounds.minimum(currency), before - cents_down(before * step, currency))
            if after >= before:
                continue  # already at the minimum budget; the next step is a person's decision
            action = SetBudget(target=target, daily_budget=Money(amount=after, currency=currency),
                               idempotency_key=action_key(NAME, "budget", target, as_of),
                               reason=f"{why}: daily budget {fmt(before)} → {fmt(after)} {currency}")
            evidence |= {"budget_before": before, "budget_after": after}
        else:
            action = SetStatus(target=target, status="PAUSED", idempotency_key=action_key(NAME, "pause", target, as_of),
                               reason=f"{why}: pausing {target.kind} {target.id}, which has no budget of its own")
        findings.append(Finding(detector=NAME, action=action, evidence=evidence))
    return findings
