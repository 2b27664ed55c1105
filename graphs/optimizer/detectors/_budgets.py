"""Budget holders (who owns a daily budget) and exact cent allocation, shared by the budget detectors."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_DOWN, Decimal

from agent.domain import EntityKind

# Google campaigns and Meta CBO campaigns hold their budget; otherwise Meta ad sets do. Performance is rolled up
# to whichever level holds the budget, so spend is compared with the budget that actually capped it.
HOLDERS_SQL = """
WITH holders AS (
    SELECT c.campaign_id AS holder_id, 'campaign' AS holder_kind, c.campaign_id, c.account_id, c.platform,
           c.currency, c.name, c.target_roas, c.target_cpa
    FROM campaigns c
    WHERE c.daily_budget IS NOT NULL AND c.status = 'ENABLED'
    UNION ALL
    SELECT g.ad_group_id, 'ad_group', g.campaign_id, g.account_id, g.platform, c.currency, g.name, c.target_roas,
           c.target_cpa
    FROM ad_groups g JOIN campaigns c ON c.campaign_id = g.campaign_id
    WHERE g.daily_budget IS NOT NULL AND g.status = 'ENABLED' AND c.status = 'ENABLED'
),
perf AS (
    SELECT CASE WHEN c.daily_budget IS NOT NULL THEN p.campaign_id ELSE p.ad_group_id END AS holder_id,
           sum(p.cost) AS cost, sum(p.conversion_value) AS value, sum(p.conversions) AS conversions
    FROM performance_daily p JOIN campaigns c ON c.campaign_id = p.campaign_id
    WHERE p.day BETWEEN ? AND ? AND list_contains(?, p.account_id)
    GROUP BY 1
)
SELECT h.*, coalesce(perf.cost, 0) AS cost, coalesce(perf.value, 0) AS value,
       coalesce(perf.conversions, 0) AS conversions
FROM holders h LEFT JOIN perf ON perf.holder_id = h.holder_id
WHERE list_contains(?, h.account_id)
ORDER BY h.account_id, h.holder_id
"""


def holder_kind(value: str) -> EntityKind:
    """The entity kind of a holder row."""
    return EntityKind.CAMPAIGN if value == "campaign" else EntityKind.AD_GROUP


def allocate(total: Decimal, limits: Sequence[Decimal], unit: Decimal) -> list[Decimal]:
    """Split ``total`` over ``limits`` in proportion to them, in whole ``unit``s, never above a limit, summing to
    ``total`` exactly (largest remainder; ties go to the earlier entry). ``total`` must not exceed ``sum(limits)``."""
    capacity = sum(limits, Decimal(0))
    if total > capacity:
        raise ValueError(f"cannot allocate {total} over limits summing to {capacity}")
    if total == 0 or capacity == 0:
        return [Decimal(0) for _ in limits]
    exact = [total * limit / capacity for limit in limits]
    shares = [min(e.quantize(unit, rounding=ROUND_DOWN), limit) for e, limit in zip(exact, limits, strict=True)]
    left = total - sum(shares, Decimal(0))
    order = sorted(range(len(limits)), key=lambda i: (-(exact[i] - shares[i]), i))
    while left > 0:
        progressed = False
        for i in order:
            if left <= 0:
                break
            if shares[i] + unit <= limits[i]:
                shares[i] += unit
                left -= unit
                progressed = True
        if not progressed:  # unreachable while total <= sum(limits) and limits are whole units
            raise ValueError("limits are not whole units")
    return shares
