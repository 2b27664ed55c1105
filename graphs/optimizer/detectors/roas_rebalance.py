"""ROAS rebalance: move daily budget from budget holders below their ROAS target to budget-limited ones above it.

Within each account (one currency) the sum of daily budgets stays exactly the same, to the cent: what the
donors give is what the receivers get. Every change stays within the policy's per-action limit and the
currency's minimum and maximum daily budget, so a proposal is never refused for its size alone. A holder is
budget-limited when it spent at least ``min_utilisation`` of its current daily budget over the window.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import duckdb
from pydantic import Field

from agent.domain import Money, SetBudget
from graphs.optimizer.common import (
    BudgetBounds,
    DetectorParams,
    PlatformFor,
    action_key,
    cents_down,
    fmt,
    latest_day,
    live,
    minor_unit,
    ref,
    rows,
    window_start,
)
from graphs.optimizer.detectors._budgets import HOLDERS_SQL, allocate, holder_kind
from graphs.optimizer.findings import Finding

NAME = "roas_rebalance"


class RoasRebalanceParams(DetectorParams):
    """Parameters of the ROAS rebalance."""

    max_step_pct: Decimal = Field(default=Decimal(20), gt=0, le=100,
                                  description="Largest change of one budget in %, capped by the policy's limit.")
    min_utilisation: Decimal = Field(default=Decimal("0.95"), gt=0, le=2,
                                     description="Share of the daily budget spent on average that makes a holder "
                                                 "budget-limited.")


def detect(con: duckdb.DuckDBPyConnection, platform_for: PlatformFor, params: RoasRebalanceParams, *,
           accounts: Sequence[str], bounds: BudgetBounds | None = None) -> list[Finding]:
    """Propose budget moves from below-target holders to budget-limited above-target holders, per account."""
    bounds = bounds or BudgetBounds()
    as_of = latest_day(con)
    start = window_start(as_of, params.window_days)
    holders = rows(con, HOLDERS_SQL, [start, as_of, list(accounts), list(accounts)])
    refs = {h["holder_id"]: ref(h["platform"], h["account_id"], holder_kind(h["holder_kind"]), h["holder_id"])
            for h in holders}
    state = live(platform_for, refs.values())
    step = bounds.step(params.max_step_pct) / 100
    by_account: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for h in holders:
        entity = state.get(refs[h["holder_id"]])
        cost = Decimal(h["cost"])
        if (entity is None or entity.status != "ENABLED" or entity.daily_budget is None or cost <= 0
                or h["target_roas"] is None):
            continue
        budget = entity.daily_budget.amount
        currency = entity.daily_budget.currency
        by_account[h["account_id"]].append({
            **h, "ref": refs[h["holder_id"]], "budget": budget, "currency": currency,
            "roas": Decimal(h["value"]) / cost, "target": Decimal(h["target_roas"]),
            "utilisation": cost / (budget * params.window_days),
        })
    findings: list[Finding] = []
    for account_holders in by_account.values():
        findings += _rebalance(account_holders, params, bounds, step, as_of)
    return findings


def _rebalance(holders: list[dict[str, Any]], params: RoasRebalanceParams, bounds: BudgetBounds, step: Decimal,
               as_of: Any) -> list[Finding]:
    donors = [h for h in holders if h["roas"] < h["target"]]
    receivers = [h for h in holders if h["roas"] > h["target"] and h["utilisation"] >= params.min_utilisation]
    if not donors or not receivers:
        return []
    currency = holders[0]["currency"]
    unit = minor_unit(currency)
    floor = bounds.minimum(currency)
    ceiling = bounds.maximum(currency)
    gives = [max(Decimal(0), min(cents_down(d["budget"] * step, currency), d["budget"] - floor)) for d in donors]
    takes = [cents_down(r["budget"] * step, currency) for r in receivers]
    if ceiling is not None:
        takes = [max(Decimal(0), min(t, ceiling - r["budget"])) for t, r in zip(takes, receivers, strict=True)]
    moved = min(sum(gives, Decimal(0)), sum(takes, Decimal(0)))
    if moved <= 0:
        return []
    given = allocate(moved, gives, unit)
    taken = allocate(moved, takes, unit)
    donor_ids = ", ".join(d["holder_id"] for d in donors)
    receiver_ids = ", ".join(r["holder_id"] for r in receivers)
    window = params.window_days
    findings: list[Finding] = []
    for holder, delta, sign in [*((d, g, -1) for d, g in zip(donors, given, strict=True)),
                                *((r, t, 1) for r, t in zip(receivers, taken, strict=True))]:
        if delta == 0:
            continue
        before = holder["budget"]
        after = before + sign * delta
        target = holder["ref"]
        roas = f"ROAS {fmt(holder['roas'])} over {window} days vs target {fmt(holder['target'])}"
        if sign < 0:
            reason = (f"{roas}: daily budget {fmt(before)} → {fmt(after)} {currency}; the {fmt(delta)} {currency} "
                      f"go to budget-limited {target.kind}s above target ({receiver_ids})")
        else:
            reason = (f"{roas}, budget-limited ({fmt(holder['utilisation'] * 100, 0)} % of the daily budget spent): "
                      f"daily budget {fmt(before)} → {fmt(after)} {currency}, funded by {target.kind}s below "
                      f"target ({donor_ids})")
        action = SetBudget(target=target, daily_budget=Money(amount=after, currency=currency), reason=reason,
                           idempotency_key=action_key(NAME, "budget", target, as_of))
        findings.append(Finding(detector=NAME, action=action, evidence={
            "roas": holder["roas"], "target_roas": holder["target"], "cost": Decimal(holder["cost"]),
            "utilisation": holder["utilisation"], "budget_before": before, "budget_after": after,
            "change": sign * delta}))
    return findings
