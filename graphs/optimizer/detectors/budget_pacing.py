"""Budget pacing: month-to-date spend against a monthly cap; scale daily budgets down when the rest of the
month, spent at today's daily budgets, would break the cap.

The month is the month of the warehouse's latest day, and the days left are the days after it. Scaling is a
fixed point: budgets scaled to exactly fit the cap are not scaled again. One run moves each budget by at
most the policy's per-action step, so a badly overspent month is pulled back over several nights. Spend is
planned at the daily budgets; Google may spend up to twice a day's budget, so keep a tolerance below the
contract's real limit.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import duckdb
from pydantic import BaseModel, ConfigDict, Field, model_validator

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
    ref,
    rows,
)
from graphs.optimizer.detectors._budgets import HOLDERS_SQL, holder_kind
from graphs.optimizer.findings import Finding

NAME = "budget_pacing"


class MonthlyCap(BaseModel):
    """A monthly spending cap on one account or one campaign (in the account's currency)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    account: str | None = Field(default=None, min_length=1, description="Cap the whole account.")
    campaign: str | None = Field(default=None, min_length=1, description="Cap one campaign (id).")
    monthly: Decimal = Field(gt=0, le=Decimal("100000000"), description="The cap for a calendar month.")

    @model_validator(mode="after")
    def _one_scope(self) -> MonthlyCap:
        if (self.account is None) == (self.campaign is None):
            raise ValueError("a cap names exactly one of account or campaign")
        return self

    @property
    def scope(self) -> str:
        """``account 1234567890`` or ``campaign gc-001``."""
        return f"account {self.account}" if self.account is not None else f"campaign {self.campaign}"


class BudgetPacingParams(DetectorParams):
    """Parameters of budget pacing (the window is unused: the month decides)."""

    caps: list[MonthlyCap] = Field(default_factory=list, description="The monthly caps to keep.")
    tolerance_pct: Decimal = Field(default=Decimal(0), ge=0, le=100,
                                   description="Act only when the projection exceeds the cap by more than this %.")
    max_step_pct: Decimal = Field(default=Decimal(20), gt=0, le=100,
                                  description="Largest cut of one budget in %, capped by the policy's limit.")


_MTD_SQL = """
SELECT coalesce(sum(cost), 0) FROM performance_daily
WHERE day BETWEEN ? AND ? AND list_contains(?, account_id) AND ({scope} = ?)
"""


def detect(con: duckdb.DuckDBPyConnection, platform_for: PlatformFor, params: BudgetPacingParams, *,
           accounts: Sequence[str], bounds: BudgetBounds | None = None) -> list[Finding]:
    """Propose scaled-down daily budgets for every cap whose month is projected to overspend."""
    bounds = bounds or BudgetBounds()
    as_of = latest_day(con)
    month_start = as_of.replace(day=1)
    days_left = calendar.monthrange(as_of.year, as_of.month)[1] - as_of.day
    if days_left == 0 or not params.caps:
        return []
    holders = rows(con, HOLDERS_SQL, [month_start, as_of, list(accounts), list(accounts)])
    refs = {h["holder_id"]: ref(h["platform"], h["account_id"], holder_kind(h["holder_kind"]), h["holder_id"])
            for h in holders}
    state = live(platform_for, refs.values())
    proposals: dict[Any, Finding] = {}
    for cap in params.caps:
        scoped = [h for h in holders if (h["account_id"] == cap.account if cap.account is not None
                                         else h["campaign_id"] == cap.campaign)]
        running = [(h, state[refs[h["holder_id"]]]) for h in scoped if refs[h["holder_id"]] in state]
        running = [(h, e) for h, e in running if e.status == "ENABLED" and e.daily_budget is not None]
        if not running:
            continue
        column, value = ("account_id", cap.account) if cap.account is not None else ("campaign_id", cap.campaign)
        mtd_rows = rows(con, _MTD_SQL.format(scope=column), [month_start, as_of, list(accounts), value])
        mtd = Decimal(next(iter(mtd_rows[0].values())))
        for finding in _pace(cap, running, mtd, days_left, as_of, params, bounds):
            # An account cap and a campaign cap can both cover one budget: the tighter proposal wins.
            key = finding.action.target
            earlier = proposals.get(key)
            if earlier is None or finding.evidence["budget_after"] < earlier.evidence["budget_after"]:
                proposals[key] = finding
    return list(proposals.values())


def _pace(cap: MonthlyCap, running: list[tuple[dict[str, Any], Any]], mtd: Decimal, days_left: int, as_of: date,
          params: BudgetPacingParams, bounds: BudgetBounds) -> list[Finding]:
    currency = running[0][1].daily_budget.currency
    daily = sum((e.daily_budget.amount for _, e in running), Decimal(0))
    projected = mtd + days_left * daily
    if projected <= cap.monthly * (1 + params.tolerance_pct / 100):
        return []
    step = bounds.step(params.max_step_pct) / 100
    factor = max(Decimal(0), (cap.monthly - mtd) / (days_left * daily))
    factor = max(factor, 1 - step)
    situation = (f"month-to-date spend {fmt(mtd)} {currency} + {days_left} days at {fmt(daily)} {currency} of daily "
                 f"budgets = {fmt(projected)} {currency}, above the {fmt(cap.monthly)} {currency} monthly cap of "
                 f"{cap.scope}")
    findings: list[Finding] = []
    for _, entity in running:
        before = entity.daily_budget.amount
        after = max(bounds.minimum(currency), cents_down(before * factor, currency))
        if after >= before:
            continue
        target = entity.ref
        action = SetBudget(target=target, daily_budget=Money(amount=after, currency=currency),
                           idempotency_key=action_key(NAME, "budget", target, as_of),
                           reason=f"{situation}: daily budget {fmt(before)} → {fmt(after)} {currency}")
        findings.append(Finding(detector=NAME, action=action, evidence={
            "month_to_date": mtd, "monthly_cap": cap.monthly, "projected": projected, "days_left": Decimal(days_left),
            "budget_before": before, "budget_after": after}))
    return findings
