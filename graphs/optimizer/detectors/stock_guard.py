"""Stock guard: pause running ads whose product is out of stock; re-enable, once the product is back, exactly
the ads the stock guard itself paused.

Who paused an ad is read from the platform (``Entity.paused_by``); the guard pauses under its own marker
(``pause_marker``, passed as the acting identity on apply) and re-enables only ads carrying that marker, so an
ad a person paused stays paused whatever the stock says.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

import duckdb
from pydantic import Field, model_validator

from agent.domain import EntityKind, SetStatus
from graphs.optimizer.common import BudgetBounds, DetectorParams, PlatformFor, action_key, latest_day, live, ref, rows
from graphs.optimizer.findings import Finding

NAME = "stock_guard"


class StockGuardParams(DetectorParams):
    """Parameters of the stock guard."""

    out_of_stock_max: int = Field(default=0, ge=0, description="A product with at most this many units is out "
                                                              "of stock.")
    back_in_stock_min: int = Field(default=1, ge=1, description="A product with at least this many units is back "
                                                               "(above out_of_stock_max, so a count hovering at the "
                                                               "edge does not flap).")
    pause_marker: str = Field(default="stock_guard", pattern=r"^[a-z0-9][a-z0-9_.@\-]{0,63}$",
                              description="The paused_by value the guard writes and recognises.")

    @model_validator(mode="after")
    def _hysteresis(self) -> StockGuardParams:
        if self.back_in_stock_min <= self.out_of_stock_max:
            raise ValueError("back_in_stock_min must be above out_of_stock_max")
        return self


# Products without an inventory row are never touched: unknown stock is not zero stock.
_SQL = """
SELECT a.ad_id, a.account_id, a.platform, a.sku, i.stock, i.updated_at
FROM ads a JOIN inventory i ON i.sku = a.sku
WHERE list_contains(?, a.account_id) AND a.status <> 'REMOVED'
  AND (i.stock <= ? OR (i.stock >= ? AND a.status = 'PAUSED'))
ORDER BY a.account_id, a.ad_id
"""


def detect(con: duckdb.DuckDBPyConnection, platform_for: PlatformFor, params: StockGuardParams, *,
           accounts: Sequence[str], bounds: BudgetBounds | None = None,
           own_pauses: Mapping[tuple[str, str], str] | None = None) -> list[Finding]:
    """Pause ads of out-of-stock products that run now; re-enable the guard's own pauses of restocked products.

    An ad counts as the guard's own pause when the platform says ``paused_by == pause_marker``, or when
    ``own_pauses`` (the calling job's record: (account id, ad id) → the identity that applied the pause) lists
    it and the platform still attributes the pause to that identity, or attributes it to nobody (real
    platforms do not record who paused). Anything else paused stays paused.
    """
    own_pauses = own_pauses or {}
    as_of = latest_day(con)
    candidates = rows(con, _SQL, [list(accounts), params.out_of_stock_max, params.back_in_stock_min])
    refs = {r["ad_id"]: ref(r["platform"], r["account_id"], EntityKind.AD, r["ad_id"]) for r in candidates}
    state = live(platform_for, refs.values())
    findings: list[Finding] = []
    for row in candidates:
        target = refs[row["ad_id"]]
        entity = state.get(target)
        if entity is None:
            continue
        stock = int(row["stock"])
        counted = f"{row['updated_at']:%Y-%m-%d %H:%M}"
        if stock <= params.out_of_stock_max and entity.status == "ENABLED":
            action = SetStatus(target=target, status="PAUSED", idempotency_key=action_key(NAME, "pause", target, as_of),
                               reason=f"product {row['sku']} is out of stock ({stock} units, counted {counted}); "
                                      f"pausing its running ad {target.id}")
        elif (stock >= params.back_in_stock_min and entity.status == "PAUSED"
              and _paused_by_guard(entity.paused_by, own_pauses.get((target.account_id, target.id)), params)):
            action = SetStatus(target=target, status="ENABLED",
                               idempotency_key=action_key(NAME, "enable", target, as_of),
                               reason=f"product {row['sku']} is back in stock ({stock} units, counted {counted}); "
                                      f"re-enabling ad {target.id}, which the stock guard paused")
        else:
            continue
        findings.append(Finding(detector=NAME, action=action, evidence={"stock": Decimal(stock)}))
    return findings


def _paused_by_guard(paused_by: str | None, own_pause_actor: str | None, params: StockGuardParams) -> bool:
    if paused_by == params.pause_marker:
        return True
    return own_pause_actor is not None and paused_by in (own_pause_actor, None)
