"""Creative refresh: running ads whose CTR is far below the other ads of their ad group.

The peers are every other ad of the ad group that had impressions in the window, paused ones included (an
ad group whose only other ad was paused last week still says what its audience clicks). The ad is paused
and a brief goes to the copywriter for new variants: the service identity never writes ads itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import duckdb
from pydantic import Field

from agent.domain import EntityKind, SetStatus
from graphs.optimizer.common import (
    BudgetBounds,
    DetectorParams,
    PlatformFor,
    action_key,
    ad_texts,
    fmt,
    latest_day,
    live,
    ref,
    rows,
    window_start,
)
from graphs.optimizer.findings import CopyBrief, Finding

NAME = "creative_refresh"


class CreativeRefreshParams(DetectorParams):
    """Parameters of the creative refresh."""

    min_impressions: int = Field(default=500, ge=1, description="An ad needs this many impressions to be judged.")
    min_peer_impressions: int = Field(default=200, ge=1, description="The other ads together need this many.")
    max_ctr_ratio: Decimal = Field(default=Decimal("0.5"), gt=0, lt=1,
                                   description="Flag an ad whose CTR is below this share of its peers' CTR.")


_SQL = """
WITH w AS (
    SELECT p.ad_id, any_value(p.ad_group_id) AS ad_group_id, sum(p.impressions) AS impressions,
           sum(p.clicks) AS clicks
    FROM performance_daily p
    WHERE p.day BETWEEN ? AND ? AND list_contains(?, p.account_id)
    GROUP BY p.ad_id
),
g AS (
    SELECT w.*, sum(impressions) OVER (PARTITION BY ad_group_id) - impressions AS peer_impressions,
           sum(clicks) OVER (PARTITION BY ad_group_id) - clicks AS peer_clicks
    FROM w
)
SELECT a.ad_id, a.ad_group_id, a.account_id, a.platform, a.sku, g.impressions, g.clicks, g.peer_impressions,
       g.peer_clicks
FROM g JOIN ads a ON a.ad_id = g.ad_id
WHERE a.status = 'ENABLED' AND g.impressions >= ? AND g.peer_impressions >= ? AND g.peer_clicks > 0
  AND g.clicks * g.peer_impressions < ? * g.peer_clicks * g.impressions
ORDER BY a.account_id, a.ad_id
"""


def detect(con: duckdb.DuckDBPyConnection, platform_for: PlatformFor, params: CreativeRefreshParams, *,
           accounts: Sequence[str], bounds: BudgetBounds | None = None) -> list[Finding]:
    """Pause running ads with a CTR far below their ad group's other ads and brief the copywriter."""
    as_of = latest_day(con)
    found = rows(con, _SQL, [window_start(as_of, params.window_days), as_of, list(accounts), params.min_impressions,
                             params.min_peer_impressions, params.max_ctr_ratio])
    refs = {r["ad_id"]: ref(r["platform"], r["account_id"], EntityKind.AD, r["ad_id"]) for r in found}
    state = live(platform_for, refs.values())
    findings: list[Finding] = []
    for row in found:
        target = refs[row["ad_id"]]
        entity = state.get(target)
        if entity is None or entity.status != "ENABLED":
            continue
        ctr = Decimal(row["clicks"]) / Decimal(row["impressions"])
        peer_ctr = Decimal(row["peer_clicks"]) / Decimal(row["peer_impressions"])
        numbers = (f"CTR {fmt(ctr * 100)} % over {params.window_days} days ({row['impressions']} impressions) vs "
                   f"{fmt(peer_ctr * 100)} % for the other ads of ad group {row['ad_group_id']}")
        action = SetStatus(target=target, status="PAUSED", idempotency_key=action_key(NAME, "pause", target, as_of),
                           reason=f"{numbers}; pausing it and asking for new variants")
        brief = CopyBrief(ad=target, ad_group=ref(row["platform"], row["account_id"], EntityKind.AD_GROUP,
                                                  row["ad_group_id"]),
                          sku=row["sku"], problem="low_ctr", note=f"{numbers}: write clearly different variants",
                          current_text=ad_texts(entity.ad))
        findings.append(Finding(detector=NAME, action=action, brief=brief, evidence={
            "ctr": ctr, "peer_ctr": peer_ctr, "impressions": Decimal(row["impressions"]),
            "peer_impressions": Decimal(row["peer_impressions"])}))
    return findings

