"""Forecast the daily impact of a change set from the warehouse's history.

The model (deliberately simple, explainable in a review, deterministic: the same warehouse and
actions give the same numbers):

* **Window.** The ``window_days`` days ending at the warehouse's latest performance day (or the day
  before ``today``). "Daily" means the window total divided by the number of days in the window on
  which the account has any data, so a campaign that did not spend on some day counts zero that day.
* **Budget changes** (Google campaign budgets, Meta CBO campaign budgets, Meta ad-set budgets). Spend
  responds only as far as the budget holder is budget-limited: on each day of the window on which it
  spent at least 95 % of its current budget, spend scales with the budget ratio; on the other days
  demand, not budget, set the spend, so it stays (capped at the new budget when the budget falls).
  The share of limited days is reported. Conversions follow a diminishing-returns curve
  ``conversions = a * spend^b`` fitted by least squares on the log of the holder's daily data (days
  with spend and conversions), ``b`` clamped to [0.2, 1.0]. With fewer than 7 such days, or spend
  whose log varies by less than 5 % (a campaign capped by its budget every day), an ad set borrows
  its campaign's curve, then the account-wide curve is used (one slope for all the account's
  campaigns, fitted on logs centred per campaign), and failing that ``b = 1`` (proportional). The
  curve is used as an elasticity anchored at today's average: after = before × (spend ratio)^b, so the
  model reproduces the present exactly. Clicks follow their own curve the same way; revenue keeps its
  value per conversion. As ``b <= 1`` and only limited days scale, a budget increase never raises
  spend or conversions more than proportionally.
* **Pausing** an ad, ad group / ad set or campaign removes the recent daily average of the ads under
  it; an ad already covered by an earlier pause in the same change set counts once. The budget it
  frees may be re-spent by the rest of its campaign (the platforms do that); this is not modelled.
  Pausing something that is not running changes nothing.
* **Enabling** restores the entity's recent average if it ran in the window, else nothing is forecast.
* **Ads, negative keywords, bids**: no forecast change, with a note (history says nothing about new
  copy; negatives remove unknown waste; the auction's response to bids is not in the data).

Limits: one current budget is assumed for the whole window (a budget changed mid-window blurs the
limited-day share); days with zero conversions are left out of the fit; the fit sees day-to-day
variation in demand, not controlled budget experiments, so it tends to read returns as closer to
proportional than a budget test would (the forecast errs optimistic); seasonality, auction
dynamics, learning phases and interactions between actions other than overlapping pauses are not
modelled. Totals are per currency over the accounts the change set touches: account daily averages
before, plus the sum of the action deltas after.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field, computed_field

from agent.domain import (
    Action,
    AddNegativeKeyword,
    CreateAd,
    EntityKind,
    EntityRef,
    SetBid,
    SetBudget,
    SetStatus,
)
from agent.errors import BadInput

LIMITED_THRESHOLD = 0.95      # a day counts as budget-limited at >= 95 % of the budget spent
MIN_FIT_DAYS = 7              # fewer usable days than this: no curve, fall back
# Spend whose log varies by less than 5 % (standard deviation) says nothing about the curve's shape: a campaign
# capped by its budget every day spends 95-100 % of it, and a slope fitted on that is noise.
MIN_LOG_SPEND_VARIANCE = 0.05 ** 2
ELASTICITY_MIN = 0.2
ELASTICITY_MAX = 1.0

_CENT = Decimal("0.01")

ForecastModel = Literal["budget_response", "pause", "enable", "no_change"]


class Kpis(BaseModel):
    """Expected daily figures in the account currency (clicks and conversions may be fractional)."""

    model_config = ConfigDict(frozen=True)

    spend: Decimal = Decimal("0.00")
    clicks: Decimal = Decimal("0.00")
    conversions: Decimal = Decimal("0.00")
    revenue: Decimal = Decimal("0.00")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def roas(self) -> Decimal | None:
        """Revenue per unit of spend; None without spend."""
        return (self.revenue / self.spend).quantize(_CENT, ROUND_HALF_EVEN) if self.spend else None

    def minus(self, other: Kpis) -> KpiDelta:
        """The change from ``other`` to this; ROAS as the difference of the two ratios, not a ratio of deltas."""
        roas = None if self.roas is None or other.roas is None else self.roas - other.roas
        return KpiDelta(spend=self.spend - other.spend, clicks=self.clicks - other.clicks,
                        conversions=self.conversions - other.conversions, revenue=self.revenue - other.revenue,
                        roas=roas)


class KpiDelta(BaseModel):
    """A change in expected daily figures (may be negative); ``roas`` is after minus before, None if either is."""

    model_config = ConfigDict(frozen=True)

    spend: Decimal
    clicks: Decimal
    conversions: Decimal
    revenue: Decimal
    roas: Decimal | None


class ActionForecast(BaseModel):
    """The expected daily effect of one action."""

    model_config = ConfigDict(frozen=True)

    idempotency_key: str
    kind: str
    target: str = Field(description="EntityRef key of the target.")
    description: str
    currency: str | None = Field(description="The account currency; None when the account is unknown.")
    model: ForecastModel
    before: Kpis
    after: Kpis
    elasticity: Decimal | None = Field(default=None, description="Fitted b of conversions = a * spend^b.")
    budget_limited_share: Decimal | None = Field(default=None, description="Share of window days at >= 95 % of budget.")
    note: str = ""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def delta(self) -> KpiDelta:
        """after - before."""
        return self.after.minus(self.before)


class ForecastTotal(BaseModel):
    """The change set's effect on the touched accounts of one currency."""

    model_config = ConfigDict(frozen=True)

    currency: str
    accounts: list[str]
    before: Kpis
    after: Kpis

    @computed_field  # type: ignore[prop-decorator]
    @property
    def delta(self) -> KpiDelta:
        """after - before."""
        return self.after.minus(self.before)


class Forecast(BaseModel):
    """Per-action and total expected daily changes."""

    model_config = ConfigDict(frozen=True)

    window_start: date | None
    window_end: date | None
    window_days: int
    actions: list[ActionForecast]
    totals: list[ForecastTotal]

    @property
    def total(self) -> ForecastTotal | None:
        """The single total when the change set touches one currency (the usual case), else None."""
        return self.totals[0] if len(self.totals) == 1 else None


@dataclass
class _Figures:
    """Float accumulators; rounded to Decimal only at the edge."""

    spend: float = 0.0
    clicks: float = 0.0
    conversions: float = 0.0
    revenue: float = 0.0

    def add(self, other: _Figures) -> None:
        self.spend += other.spend
        self.clicks += other.clicks
        self.conversions += other.conversions
        self.revenue += other.revenue

    def per_day(self, days: int) -> _Figures:
        if not days:
            return _Figures()
        return _Figures(self.spend / days, self.clicks / days, self.conversions / days, self.revenue / days)

    def kpis(self) -> Kpis:
        return Kpis(spend=_dec(self.spend), clicks=_dec(self.clicks), conversions=_dec(self.conversions),
                    revenue=_dec(self.revenue))


def _dec(value: float) -> Decimal:
    # Through a fixed-precision string so the float's binary noise never reaches the Decimal; adding 0.00
    # turns a rounded "-0.00" into "0.00".
    return Decimal(f"{value:.6f}").quantize(_CENT, ROUND_HALF_EVEN) + Decimal("0.00")


@dataclass
class _AccountHistory:
    """One account's window: the number of days with data and each ad's window totals."""

    currency: str
    days: int
    total: _Figures
    ads: dict[str, _Figures] = field(default_factory=dict)


@dataclass(frozen=True)
class Fit:
    """A fitted diminishing-returns curve ``y = a * spend^b`` (b clamped), or the proportional fallback."""

    a: float
    b: float
    days: int
    fitted: bool


def fit_power_curve(spend: Sequence[float], outcome: Sequence[float], groups: Sequence[str] | None = None) -> Fit:
    """Least squares of log(outcome) on log(spend) over the days where both are positive.

    With ``groups`` (one label per day, e.g. the campaign), logs are centred per group first: one slope
    shared by all groups, each with its own level (a fixed-effects fit, used for the account-wide curve).
    Returns ``fitted=False`` with ``b = 1`` when there are fewer than 7 usable days or spend barely varies.
    """
    labels = groups if groups is not None else [""] * len(spend)
    raw = [(g, math.log(s), math.log(y)) for g, s, y in zip(labels, spend, outcome, strict=True) if s > 0 and y > 0]
    if len(raw) < MIN_FIT_DAYS:
        return Fit(a=0.0, b=1.0, days=len(raw), fitted=False)
    sums: dict[str, tuple[float, float, int]] = {}
    for g, x, y in raw:
        sx, sy, k = sums.get(g, (0.0, 0.0, 0))
        sums[g] = (sx + x, sy + y, k + 1)
    # Centred per group, so each pair's mean is zero and the moments below need no further centring.
    pairs = [(x - sums[g][0] / sums[g][2], y - sums[g][1] / sums[g][2]) for g, x, y in raw]
    n = len(pairs)
    var_x = sum(x * x for x, _ in pairs) / n
    if var_x < MIN_LOG_SPEND_VARIANCE:
        return Fit(a=0.0, b=1.0, days=n, fitted=False)
    cov = sum(x * y for x, y in pairs) / n
    b = min(ELASTICITY_MAX, max(ELASTICITY_MIN, cov / var_x))
    # The level is reported at the pooled means (for one group, the usual intercept).
    mean_x = sum(x for _, x, _ in raw) / n
    mean_y = sum(y for _, _, y in raw) / n
    return Fit(a=math.exp(mean_y - b * mean_x), b=b, days=n, fitted=True)


class _Forecaster:
    """Holds the window and cached history while the actions of one change set are forecast in order."""

    def __init__(self, con: duckdb.DuckDBPyConnection, window_days: int, today: date | None) -> None:
        self.con = con
        self.window_days = window_days
        if today is None:
            self.end: date | None = con.execute("SELECT max(day) FROM performance_daily").fetchall()[0][0]
        else:
            self.end = today - timedelta(days=1)
        self.start = None if self.end is None else self.end - timedelta(days=window_days - 1)
        self._history: dict[str, _AccountHistory | None] = {}
        self._account_fits: dict[str, tuple[Fit, Fit]] = {}
        self.paused_ads: set[str] = set()

    def history(self, account_id: str) -> _AccountHistory | None:
        if account_id not in self._history:
            self._history[account_id] = self._load_history(account_id)
        return self._history[account_id]

    def _load_history(self, account_id: str) -> _AccountHistory | None:
        found = self.con.execute("SELECT currency FROM accounts WHERE account_id = ?", [account_id]).fetchall()
        if not found:
            return None
        history = _AccountHistory(currency=found[0][0], days=0, total=_Figures())
        if self.end is None:
            return history
        history.days = self.con.execute(
            "SELECT count(DISTINCT day) FROM performance_daily WHERE account_id = ? AND day BETWEEN ? AND ?",
            [account_id, self.start, self.end]).fetchall()[0][0]
        for ad_id, cost, clicks, conversions, value in self.con.execute(
                """SELECT ad_id, sum(cost), sum(clicks), sum(conversions), sum(conversion_value)
                   FROM performance_daily WHERE account_id = ? AND day BETWEEN ? AND ? GROUP BY ad_id""",
                [account_id, self.start, self.end]).fetchall():
            figures = _Figures(float(cost), float(clicks), float(conversions), float(value))
            history.ads[ad_id] = figures.per_day(history.days)
            history.total.add(history.ads[ad_id])
        return history

    def daily_series(self, column: str, entity_id: str, days: int) -> list[tuple[float, float, float, float]]:
        """(spend, clicks, conversions, revenue) per window day with account data; zeros where it had none."""
        rows = self.con.execute(
            f"""SELECT day, sum(cost), sum(clicks), sum(conversions), sum(conversion_value)
                FROM performance_daily WHERE {column} = ? AND day BETWEEN ? AND ? GROUP BY day ORDER BY day""",
            [entity_id, self.start, self.end]).fetchall()
        series = [(float(c), float(k), float(v), float(r)) for _, c, k, v, r in rows]
        return series + [(0.0, 0.0, 0.0, 0.0)] * max(0, days - len(series))

    def ads_under(self, ref: EntityRef) -> list[str] | None:
        """Ad ids under an entity, or None when the entity does not exist in that account."""
        column = {EntityKind.CAMPAIGN: "campaign_id", EntityKind.AD_GROUP: "ad_group_id", EntityKind.AD: "ad_id"}
        table = {EntityKind.CAMPAIGN: "campaigns", EntityKind.AD_GROUP: "ad_groups", EntityKind.AD: "ads"}
        if ref.kind not in column:
            return None
        exists = self.con.execute(f"SELECT count(*) FROM {table[ref.kind]} WHERE {column[ref.kind]} = ? "
                                  "AND account_id = ?", [ref.id, ref.account_id]).fetchall()[0][0]
        if not exists:
            return None
        return [r[0] for r in self.con.execute(
            f"SELECT ad_id FROM ads WHERE {column[ref.kind]} = ? AND account_id = ? ORDER BY ad_id",
            [ref.id, ref.account_id]).fetchall()]

    def statuses(self, ref: EntityRef) -> list[str]:
        """The entity's status followed by its ad group's and campaign's (empty when it does not exist)."""
        if ref.kind is EntityKind.AD:
            sql = """SELECT a.status, g.status, c.status FROM ads a JOIN ad_groups g USING (ad_group_id)
                     JOIN campaigns c ON c.campaign_id = a.campaign_id WHERE a.ad_id = ?"""
        elif ref.kind is EntityKind.AD_GROUP:
            sql = """SELECT g.status, c.status FROM ad_groups g JOIN campaigns c USING (campaign_id)
                     WHERE g.ad_group_id = ?"""
        else:
            sql = "SELECT status FROM campaigns WHERE campaign_id = ?"
        rows = self.con.execute(sql, [ref.id]).fetchall()
        return list(rows[0]) if rows else []

    def running(self, ref: EntityRef) -> bool:
        """Whether the entity and everything above it are ENABLED (only then does it spend)."""
        statuses = self.statuses(ref)
        return bool(statuses) and all(status == "ENABLED" for status in statuses)

    # ------------------------------------------------------------------------------------------ actions

    def one(self, action: Action) -> ActionForecast:
        history = self.history(action.target.account_id)
        base = {"idempotency_key": action.idempotency_key, "kind": action.kind, "target": action.target.key(),
                "description": action.describe()}
        if history is None:
            return ActionForecast(**base, currency=None, model="no_change", before=Kpis(), after=Kpis(),
                                  note=f"unknown account {action.target.account_id}; not forecast")
        if isinstance(action, SetBudget):
            return self.budget(action, history, base)
        if isinstance(action, SetStatus):
            return self.status(action, history, base)
        current = self.entity_figures(action.target, history).kpis()
        note = {
            CreateAd: "a new ad has no history; no change forecast",
            AddNegativeKeyword: "negative keywords cut unknown waste; no change forecast",
            SetBid: "the auction's response to a bid change is not in the history; no change forecast",
        }[type(action)]
        return ActionForecast(**base, currency=history.currency, model="no_change", before=current, after=current,
                              note=note)

    def entity_figures(self, ref: EntityRef, history: _AccountHistory) -> _Figures:
        figures = _Figures()
        for ad_id in self.ads_under(ref) or []:
            if ad_id in history.ads:
                figures.add(history.ads[ad_id])
        return figures

    def status(self, action: SetStatus, history: _AccountHistory, base: dict[str, str]) -> ActionForecast:
        ref = action.target
        ads = self.ads_under(ref)
        if ads is None:
            note = ("keywords have no performance of their own; no change forecast" if ref.kind is EntityKind.KEYWORD
                    else f"unknown {ref.kind} {ref.id}; not forecast")
            return ActionForecast(**base, currency=history.currency, model="no_change", before=Kpis(), after=Kpis(),
                                  note=note)
        figures = self.entity_figures(ref, history)
        statuses = self.statuses(ref)
        running = all(status == "ENABLED" for status in statuses)
        if action.status == "PAUSED":
            if not running:
                return ActionForecast(**base, currency=history.currency, model="no_change", before=Kpis(),
                                      after=Kpis(), note=f"{ref.kind} {ref.id} is not running; pausing changes nothing")
            # "before" is what still runs after the earlier pauses of this change set, so overlaps count once.
            still_running = _Figures()
            overlap = [a for a in ads if a in self.paused_ads and a in history.ads]
            for ad_id in ads:
                if ad_id in history.ads and ad_id not in self.paused_ads:
                    still_running.add(history.ads[ad_id])
            self.paused_ads.update(ads)
            note = "freed budget may be re-spent elsewhere in the campaign (not modelled)"
            if overlap:
                note += f"; {len(overlap)} ad(s) already counted by an earlier pause"
            return ActionForecast(**base, currency=history.currency, model="pause", before=still_running.kpis(),
                                  after=Kpis(), note=note)
        if running:
            return ActionForecast(**base, currency=history.currency, model="no_change", before=figures.kpis(),
                                  after=figures.kpis(), note=f"{ref.kind} {ref.id} is already running")
        if any(status != "ENABLED" for status in statuses[1:]):
            return ActionForecast(**base, currency=history.currency, model="no_change", before=Kpis(), after=Kpis(),
                                  note=f"{ref.kind} {ref.id} sits under a paused parent; enabling it changes nothing")
        if not figures.spend and not figures.conversions:
            return ActionForecast(**base, currency=history.currency, model="no_change", before=Kpis(), after=Kpis(),
                                  note=f"{ref.kind} {ref.id} has no recent history; no change forecast")
        return ActionForecast(**base, currency=history.currency, model="enable", before=Kpis(),
                              after=figures.kpis(), note="restores the window's average of the ads under it")

    def budget(self, action: SetBudget, history: _AccountHistory, base: dict[str, str]) -> ActionForecast:
        ref = action.target
        if ref.kind is EntityKind.CAMPAIGN:
            rows = self.con.execute("SELECT daily_budget, campaign_id FROM campaigns WHERE campaign_id = ? "
                                    "AND account_id = ?", [ref.id, ref.account_id]).fetchall()
            column = "campaign_id"
        else:
            rows = self.con.execute("SELECT daily_budget, campaign_id FROM ad_groups WHERE ad_group_id = ? "
                                    "AND account_id = ?", [ref.id, ref.account_id]).fetchall()
            column = "ad_group_id"
        currency = history.currency

        def unchanged(note: str, figures: _Figures | None = None) -> ActionForecast:
            kpis = (figures or _Figures()).kpis()
            return ActionForecast(**base, currency=currency, model="no_change", before=kpis, after=kpis, note=note)

        if not rows:
            return unchanged(f"unknown {ref.kind} {ref.id}; not forecast")
        current_budget, campaign_id = rows[0]
        figures = self.entity_figures(ref, history)
        if action.daily_budget.currency != currency:
            return unchanged(f"budget in {action.daily_budget.currency} on a {currency} account; not forecast", figures)
        if current_budget is None or current_budget <= 0:
            return unchanged(f"{ref.kind} {ref.id} holds no budget today; not forecast", figures)
        if not self.running(ref):
            return unchanged(f"{ref.kind} {ref.id} is not running; the budget matters once it runs", figures)
        if history.days == 0 or not figures.spend:
            return unchanged("no spend in the window; not forecast", figures)

        old, new = float(current_budget), float(action.daily_budget.amount)
        series = self.daily_series(column, ref.id, history.days)
        limited_days = 0
        new_spend_total = 0.0
        for spend, *_ in series:
            if spend >= LIMITED_THRESHOLD * old:
                limited_days += 1
                new_spend_total += spend * new / old
            else:
                new_spend_total += min(spend, new)
        share = limited_days / history.days
        ratio = (new_spend_total / history.days) / figures.spend

        conv_fit, clicks_fit, source = self.curves(series, ref, campaign_id)
        after = _Figures(figures.spend * ratio, figures.clicks * ratio ** clicks_fit.b,
                         figures.conversions * ratio ** conv_fit.b, figures.revenue * ratio ** conv_fit.b)
        if conv_fit.fitted:
            curve = f"conversions ∝ spend^{conv_fit.b:.2f} fitted on {conv_fit.days} daily points{source}"
        else:
            curve = f"too little varied data ({conv_fit.days} usable days): proportional"
        note = f"budget-limited on {limited_days} of {history.days} days; {curve}"
        return ActionForecast(**base, currency=currency, model="budget_response", before=figures.kpis(),
                              after=after.kpis(), elasticity=Decimal(f"{conv_fit.b:.4f}"),
                              budget_limited_share=Decimal(f"{share:.4f}"), note=note)

    def curves(self, series: list[tuple[float, float, float, float]], ref: EntityRef,
               campaign_id: str) -> tuple[Fit, Fit, str]:
        """Conversion and click curves of the budget holder, falling back to its campaign's (for an ad set),
        then to the account-wide curve, then to proportional (``fitted=False``)."""
        spend = [s[0] for s in series]
        conv = fit_power_curve(spend, [s[2] for s in series])
        if conv.fitted:
            return conv, fit_power_curve(spend, [s[1] for s in series]), ""
        if ref.kind is EntityKind.AD_GROUP:
            campaign_series = self.daily_series("campaign_id", campaign_id, len(series))
            campaign_spend = [s[0] for s in campaign_series]
            campaign_conv = fit_power_curve(campaign_spend, [s[2] for s in campaign_series])
            if campaign_conv.fitted:
                return (campaign_conv, fit_power_curve(campaign_spend, [s[1] for s in campaign_series]),
                        f" (campaign {campaign_id}'s curve)")
        account_conv, account_clicks = self.account_curves(ref.account_id)
        if account_conv.fitted:
            return account_conv, account_clicks, " (account-wide curve: its own spend hardly varies)"
        return conv, fit_power_curve(spend, [s[1] for s in series]), ""

    def account_curves(self, account_id: str) -> tuple[Fit, Fit]:
        """One slope shared by all campaigns of the account, each at its own level (cached per account)."""
        if account_id not in self._account_fits:
            rows = self.con.execute(
                """SELECT campaign_id, sum(cost), sum(clicks), sum(conversions) FROM performance_daily
                   WHERE account_id = ? AND day BETWEEN ? AND ? GROUP BY campaign_id, day
                   ORDER BY campaign_id, day""", [account_id, self.start, self.end]).fetchall()
            groups = [r[0] for r in rows]
            spend = [float(r[1]) for r in rows]
            self._account_fits[account_id] = (fit_power_curve(spend, [float(r[3]) for r in rows], groups),
                                              fit_power_curve(spend, [float(r[2]) for r in rows], groups))
        return self._account_fits[account_id]


def forecast(con: duckdb.DuckDBPyConnection, actions: Sequence[Action], *, window_days: int = 28,
             today: date | None = None) -> Forecast:
    """Expected daily change in spend, clicks, conversions, revenue and ROAS, per action and in total.

    ``window_days`` of history end at the warehouse's latest day, or the day before ``today`` when given.
    """
    if isinstance(window_days, bool) or not isinstance(window_days, int) or window_days < 1:
        raise BadInput(f"window_days must be a whole number of days >= 1, got {window_days!r}")
    forecaster = _Forecaster(con, window_days, today)
    per_action = [forecaster.one(action) for action in actions]

    by_currency: dict[str, list[str]] = {}
    for action in actions:
        history = forecaster.history(action.target.account_id)
        if history is not None and action.target.account_id not in by_currency.setdefault(history.currency, []):
            by_currency[history.currency].append(action.target.account_id)
    totals = []
    for currency, account_ids in by_currency.items():
        before = Kpis()
        for account_id in account_ids:
            history = forecaster.history(account_id)
            assert history is not None
            before = Kpis(**{name: getattr(before, name) + getattr(history.total.kpis(), name)
                             for name in ("spend", "clicks", "conversions", "revenue")})
        after = before
        for item in per_action:
            if item.currency == currency and item.target.split("/")[1] in account_ids:
                delta = item.delta
                after = Kpis(**{name: getattr(after, name) + getattr(delta, name)
                                for name in ("spend", "clicks", "conversions", "revenue")})
        totals.append(ForecastTotal(currency=currency, accounts=account_ids, before=before, after=after))
    return Forecast(window_start=forecaster.start, window_end=forecaster.end, window_days=window_days,
                    actions=per_action, totals=totals)
