"""Helpers every detector shares: the warehouse's as-of day, live reads, policy bounds and parameter bases."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any

import duckdb
from pydantic import BaseModel, ConfigDict, Field

from agent.domain import (
    CURRENCY_EXPONENTS,
    Entity,
    EntityKind,
    EntityRef,
    GoogleResponsiveSearchAd,
    MetaAdCreative,
    Platform,
)
from agent.errors import BadInput, NotFound

if TYPE_CHECKING:
    from tools.adapters.base import AdPlatform

PlatformFor = Callable[[str], "AdPlatform"]


class DetectorParams(BaseModel):
    """Parameters every detector accepts; unknown keys are an error, so a typo in a job file is caught."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_days: int = Field(default=28, ge=1, le=365, description="Days of performance to judge, ending at the "
                                                                  "warehouse's latest day.")


@dataclass(frozen=True)
class BudgetBounds:
    """Limits a budget proposal must stay within, taken from the policy in force so that a job never proposes
    what the gate would refuse for size alone."""

    max_change_pct: Decimal = Decimal(20)
    min_daily_budget: dict[str, Decimal] = field(default_factory=dict)
    max_daily_budget: dict[str, Decimal] = field(default_factory=dict)

    def step(self, wanted_pct: Decimal) -> Decimal:
        """The step to use: what the job asks for, never more than one action may move."""
        return min(wanted_pct, self.max_change_pct)

    def minimum(self, currency: str) -> Decimal:
        """The lowest daily budget allowed in ``currency`` (platform minimum 1 unit when the policy says less)."""
        return max(self.min_daily_budget.get(currency, Decimal(0)), Decimal(1))

    def maximum(self, currency: str) -> Decimal | None:
        """The highest daily budget allowed in ``currency``, if the policy caps it."""
        return self.max_daily_budget.get(currency)


def latest_day(con: duckdb.DuckDBPyConnection) -> date:
    """The last complete day of performance data: every window ends here, never at the wall clock."""
    last = con.execute("SELECT max(day) FROM performance_daily").fetchall()[0][0]
    if last is None:
        raise BadInput("the warehouse has no performance data yet; run `adpilot data init` or sync an account")
    return last


def window_start(last: date, days: int) -> date:
    """The first day of a ``days``-day window ending on ``last`` (inclusive on both ends)."""
    return last - timedelta(days=days - 1)


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Run a query on its own cursor and return dicts (the runtime's connection is shared with the sandbox)."""
    cursor = con.cursor()
    try:
        result = cursor.execute(sql, list(params))
        names = [d[0] for d in result.description]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]
    finally:
        cursor.close()


def ref(platform: str, account_id: str, kind: EntityKind, entity_id: str) -> EntityRef:
    """An entity reference from warehouse columns."""
    return EntityRef(platform=Platform(platform), account_id=account_id, kind=kind, id=entity_id)


def live(platform_for: PlatformFor, refs: Iterable[EntityRef]) -> dict[EntityRef, Entity]:
    """Fresh state of ``refs`` from the platform serving each account; entities that no longer exist are left
    out (the warehouse may be a sync behind the platform)."""
    by_account: dict[str, list[EntityRef]] = defaultdict(list)
    for item in dict.fromkeys(refs):
        by_account[item.account_id].append(item)
    found: dict[EntityRef, Entity] = {}
    for account_id, wanted in by_account.items():
        platform = platform_for(account_id)
        try:
            found.update(platform.read_back(wanted))
        except NotFound:
            # One vanished entity must not hide the others: fall back to one read each.
            for item in wanted:
                try:
                    found[item] = platform.get_entity(item)
                except NotFound:
                    continue
    return found


def cents_down(amount: Decimal, currency: str) -> Decimal:
    """``amount`` rounded down to the currency's minor unit (never proposes a fraction of a cent)."""
    return amount.quantize(Decimal(1).scaleb(-CURRENCY_EXPONENTS[currency]), rounding=ROUND_DOWN)


def minor_unit(currency: str) -> Decimal:
    """One minor unit of ``currency`` (0.01 for EUR)."""
    return Decimal(1).scaleb(-CURRENCY_EXPONENTS[currency])


def action_key(detector: str, verb: str, target: EntityRef, as_of: date) -> str:
    """A deterministic idempotency key: the same proposal for the same data day is the same change, so a retried
    or repeated run can never apply it twice (the job runner prefixes the job's name)."""
    return f"{detector}:{verb}:{target.account_id}:{target.id}:{as_of.isoformat()}"


def fmt(value: Decimal, places: int = 2) -> str:
    """A number for a reason sentence, e.g. 0.60 or 3.50."""
    return f"{value:.{places}f}"


def ad_texts(ad: GoogleResponsiveSearchAd | MetaAdCreative | None) -> list[str]:
    """Every text of an ad as the customer sees it (empty when the platform returned no content)."""
    if isinstance(ad, GoogleResponsiveSearchAd):
        return [*ad.headlines, *ad.descriptions]
    if isinstance(ad, MetaAdCreative):
        return [t for t in (ad.primary_text, ad.headline, ad.description) if t]
    return []
