"""Ad read tools: accounts, campaigns, ad groups / ad sets and ads with status, budget, bids and KPIs.

Everything goes through the ``AdPlatform`` protocol (``deps.platform_for(account_id)``), so the same
tool reads the sandbox today and a real Google Ads or Meta account once one is configured.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Generic, TypeVar

from pydantic import BaseModel, Field

from agent.domain import Entity, EntityKind, EntityStatus, KpiTotals
from agent.errors import Ambiguous, BadInput, NotFound
from tools.deps import ToolDeps
from tools.pim import require_skus
from tools.registry import limit_field, tool

KPI_WINDOWS = (7, 30)
RATIO = Decimal("0.0001")


class Kpis(BaseModel):
    """Performance over a window of complete days; ratios are null when their denominator is zero."""

    spend: Decimal = Field(description="Ad cost.")
    impressions: int = Field(description="Impressions.")
    clicks: int = Field(description="Clicks.")
    conversions: Decimal = Field(description="Conversions.")
    revenue: Decimal = Field(description="Conversion value.")
    roas: Decimal | None = Field(default=None, description="revenue / spend.")
    cpa: Decimal | None = Field(default=None, description="spend / conversions.")
    ctr: Decimal | None = Field(default=None, description="clicks / impressions.")
    cvr: Decimal | None = Field(default=None, description="conversions / clicks.")


def kpis_of(totals: KpiTotals) -> Kpis:
    """Round a platform's raw totals into the model-facing KPI object."""

    def ratio(value: Decimal | None) -> Decimal | None:
        return None if value is None else value.quantize(RATIO, rounding=ROUND_HALF_EVEN)

    cvr = Decimal(totals.conversions) / totals.clicks if totals.clicks else None
    return Kpis(spend=totals.cost, impressions=totals.impressions, clicks=totals.clicks,
                conversions=totals.conversions, revenue=totals.conversion_value, roas=ratio(totals.roas),
                cpa=ratio(totals.cpa), ctr=ratio(totals.ctr), cvr=ratio(cvr))


class EntityRow(BaseModel):
    """Fields every listed entity has."""

    platform: str = Field(description="google or meta.")
    account_id: str = Field(description="Ad account id.")
    id: str = Field(description="Entity id.")
    name: str = Field(description="Name (for ads: the first headline).")
    status: str = Field(description="ENABLED, PAUSED or REMOVED.")
    paused_by: str | None = Field(default=None, description="Who paused it (stock_guard, a person), if known.")
    kpi_7d: Kpis = Field(description="KPIs over the last 7 days.")
    kpi_30d: Kpis = Field(description="KPIs over the last 30 days.")


class CampaignRow(EntityRow):
    """A campaign."""

    daily_budget: Decimal | None = Field(default=None,
                                         description="Daily budget (None for Meta campaigns budgeted per ad set).")
    currency: str | None = Field(default=None, description="Currency of the budget and targets.")
    target_roas: Decimal | None = Field(default=None, description="ROAS target (ratio), if any.")
    target_cpa: Decimal | None = Field(default=None, description="CPA target, if any.")


class AdGroupRow(EntityRow):
    """A Google ad group or Meta ad set."""

    campaign_id: str | None = Field(default=None, description="Parent campaign id.")
    daily_budget: Decimal | None = Field(default=None, description="Meta ad-set daily budget, if any.")
    cpc_bid: Decimal | None = Field(default=None, description="Google manual CPC bid, if any.")
    currency: str | None = Field(default=None, description="Currency of budget and bid.")


class AdRow(EntityRow):
    """An ad."""

    ad_group_id: str | None = Field(default=None, description="Parent ad group / ad set id.")
    sku: str | None = Field(default=None, description="Product the ad advertises.")
    final_url: str | None = Field(default=None, description="Landing page.")


RowT = TypeVar("RowT", bound=EntityRow)


class EntityPreview(BaseModel, Generic[RowT]):
    """A preview of matching entities."""

    rows: list[RowT] = Field(description="The first matches, by account and id.")
    total: int = Field(description="How many entities match in all.")
    by_status: dict[str, int] = Field(description="Matches per status.")
    truncated: bool = Field(description="True when there are more matches than rows.")


class AdAccount(BaseModel):
    """An ad account."""

    platform: str = Field(description="google or meta.")
    account_id: str = Field(description="Ad account id.")
    name: str = Field(description="Account name.")
    currency: str = Field(description="Account currency.")
    timezone: str = Field(description="Account time zone.")
    served_by: str = Field(description="sandbox, google_ads or meta.")


class AccountList(BaseModel):
    """Every ad account adpilot can reach."""

    accounts: list[AdAccount] = Field(description="Accounts by id.")


class ListAdAccountsArgs(BaseModel):
    """list_ad_accounts takes no arguments."""


@tool("read")
def list_ad_accounts(deps: ToolDeps, args: ListAdAccountsArgs) -> AccountList:
    """List the Google Ads and Meta ad accounts adpilot can reach, with currency and time zone."""
    found: dict[str, AdAccount] = {}
    for account_id in deps.account_ids():
        platform = deps.platform_for(account_id)
        for acc in platform.list_accounts():
            if acc.account_id == account_id:
                found[account_id] = AdAccount(platform=acc.platform, account_id=acc.account_id, name=acc.name,
                                            currency=acc.currency, timezone=acc.timezone, served_by=platform.name)
    return AccountList(accounts=[found[a] for a in sorted(found)])


def _accounts(deps: ToolDeps, account_id: str | None) -> list[str]:
    known = deps.account_ids()
    if account_id is None:
        return known
    wanted = account_id.strip()
    if wanted in known:
        return [wanted]
    # People write Google customer ids with dashes (123-456-7890); the platforms do not.
    if wanted.replace("-", "") in known:
        return [wanted.replace("-", "")]
    raise NotFound(f"unknown account {account_id!r}; known accounts: {', '.join(known)}")


def _resolve(deps: ToolDeps, accounts: Sequence[str], kind: EntityKind, value: str) -> list[Entity]:
    """Entities of ``kind`` whose id equals ``value`` or whose name equals it (case-insensitive)."""
    wanted = value.strip()
    candidates = [e for a in accounts for e in deps.platform_for(a).list_entities(a, kind)]
    by_id = [e for e in candidates if e.ref.id == wanted]
    if by_id:
        return by_id
    by_name = [e for e in candidates if e.name.casefold() == wanted.casefold()]
    if len(by_name) > 1:
        listed = [f"{e.ref.id} {e.name!r} ({e.ref.account_id}, {e.status})" for e in by_name]
        raise Ambiguous(f"{len(by_name)} {kind}s are named {wanted!r}: {'; '.join(listed)}; use an id",
                        candidates=[e.ref.id for e in by_name])
    if not by_name:
        similar = [f"{e.ref.id} {e.name!r}" for e in candidates if wanted.casefold() in e.name.casefold()][:5]
        hint = f"; did you mean: {'; '.join(similar)}" if similar else ""
        raise NotFound(f"no {kind} with id or name {wanted!r}{hint}")
    return by_name


def _kpis(deps: ToolDeps, kind: EntityKind, entities: Sequence[Entity]) -> dict[tuple[str, int], dict[str, Kpis]]:
    """KPIs per (account, window) and id, one platform call per account and window."""
    by_account: dict[str, list[str]] = {}
    for e in entities:
        by_account.setdefault(e.ref.account_id, []).append(e.ref.id)
    out: dict[tuple[str, int], dict[str, Kpis]] = {}
    for account_id, ids in by_account.items():
        platform = deps.platform_for(account_id)
        for window in KPI_WINDOWS:
            raw = platform.read_kpis(account_id, kind, ids, window)
            out[(account_id, window)] = {i: kpis_of(t) for i, t in raw.items()}
    return out


def _base(e: Entity, kpis: dict[tuple[str, int], dict[str, Kpis]]) -> dict[str, object]:
    return {"platform": str(e.ref.platform), "account_id": e.ref.account_id, "id": e.ref.id, "name": e.name,
            "status": e.status, "paused_by": e.paused_by,
            "kpi_7d": kpis[(e.ref.account_id, 7)][e.ref.id], "kpi_30d": kpis[(e.ref.account_id, 30)][e.ref.id]}


def _preview(matches: list[Entity], limit: int) -> tuple[list[Entity], dict[str, int]]:
    ordered = sorted(matches, key=lambda e: (e.ref.account_id, e.ref.id))
    return ordered[:limit], dict(sorted(Counter(e.status for e in matches).items()))


StatusArg = EntityStatus | None
STATUS_HELP = "Only entities with this status: ENABLED, PAUSED or REMOVED."
ACCOUNT_HELP = "Only this ad account id (e.g. 1234567890 or act_1001); omit for all accounts."


class ListCampaignsArgs(BaseModel):
    """Arguments of list_campaigns."""

    account_id: str | None = Field(default=None, max_length=64, description=ACCOUNT_HELP)
    status: StatusArg = Field(default=None, description=STATUS_HELP)
    name_contains: str | None = Field(default=None, max_length=200,
                                      description="Only campaigns whose name contains this (case-insensitive).")
    limit: int = limit_field("campaigns")


@tool("read")
def list_campaigns(deps: ToolDeps, args: ListCampaignsArgs) -> EntityPreview[CampaignRow]:
    """List campaigns with status, daily budget, ROAS / CPA targets and 7- and 30-day KPIs."""
    matches = [e for a in _accounts(deps, args.account_id)
               for e in deps.platform_for(a).list_entities(a, EntityKind.CAMPAIGN, status=args.status)]
    if args.name_contains:
        matches = [e for e in matches if args.name_contains.casefold() in e.name.casefold()]
    shown, by_status = _preview(matches, args.limit)
    kpis = _kpis(deps, EntityKind.CAMPAIGN, shown)
    rows = []
    for e in shown:
        money = e.daily_budget or e.target_cpa
        rows.append(CampaignRow(**_base(e, kpis), daily_budget=e.daily_budget.amount if e.daily_budget else None,
                                currency=money.currency if money else None, target_roas=e.target_roas,
                                target_cpa=e.target_cpa.amount if e.target_cpa else None))
    return EntityPreview[CampaignRow](rows=rows, total=len(matches), by_status=by_status,
                                      truncated=len(matches) > len(rows))


class ListAdGroupsArgs(BaseModel):
    """Arguments of list_ad_groups."""

    account_id: str | None = Field(default=None, max_length=64, description=ACCOUNT_HELP)
    campaign: str | None = Field(default=None, max_length=200,
                                 description="Only in this campaign: its id or exact name.")
    status: StatusArg = Field(default=None, description=STATUS_HELP)
    name_contains: str | None = Field(default=None, max_length=200,
                                      description="Only ad groups whose name contains this (case-insensitive).")
    limit: int = limit_field("ad groups")


@tool("read")
def list_ad_groups(deps: ToolDeps, args: ListAdGroupsArgs) -> EntityPreview[AdGroupRow]:
    """List Google ad groups and Meta ad sets with status, CPC bid or ad-set budget and 7- and 30-day KPIs.

    A campaign name that fits several campaigns is an error listing them; use the id then.
    """
    accounts = _accounts(deps, args.account_id)
    if args.campaign is not None:
        parents = _resolve(deps, accounts, EntityKind.CAMPAIGN, args.campaign)
        matches = [e for p in parents for e in deps.platform_for(p.ref.account_id).list_entities(
            p.ref.account_id, EntityKind.AD_GROUP, parent_id=p.ref.id, status=args.status)]
    else:
        matches = [e for a in accounts
                   for e in deps.platform_for(a).list_entities(a, EntityKind.AD_GROUP, status=args.status)]
    if args.name_contains:
        matches = [e for e in matches if args.name_contains.casefold() in e.name.casefold()]
    shown, by_status = _preview(matches, args.limit)
    kpis = _kpis(deps, EntityKind.AD_GROUP, shown)
    rows = []
    for e in shown:
        money = e.daily_budget or e.cpc_bid
        rows.append(AdGroupRow(**_base(e, kpis), campaign_id=e.parent.id if e.parent else None,
                               daily_budget=e.daily_budget.amount if e.daily_budget else None,
                               cpc_bid=e.cpc_bid.amount if e.cpc_bid else None,
                               currency=money.currency if money else None))
    return EntityPreview[AdGroupRow](rows=rows, total=len(matches), by_status=by_status,
                                     truncated=len(matches) > len(rows))


class ListAdsArgs(BaseModel):
    """Arguments of list_ads."""

    account_id: str | None = Field(default=None, max_length=64, description=ACCOUNT_HELP)
    campaign: str | None = Field(default=None, max_length=200,
                                 description="Only in this campaign: its id or exact name.")
    ad_group: str | None = Field(default=None, max_length=200,
                                 description="Only in this ad group / ad set: its id or exact name.")
    sku: str | None = Field(default=None, max_length=64, description="Only ads advertising this product SKU.")
    status: StatusArg = Field(default=None, description=STATUS_HELP)
    limit: int = limit_field("ads")


@tool("read")
def list_ads(deps: ToolDeps, args: ListAdsArgs) -> EntityPreview[AdRow]:
    """List ads with status, product SKU, first headline, landing page and 7- and 30-day KPIs.

    Narrow by campaign, ad group (ids or exact names), product SKU or status (at least one). An
    ambiguous name is an error listing the candidates; use query_performance to rank ads by KPIs.
    """
    accounts = _accounts(deps, args.account_id)
    sku = args.sku.strip() if args.sku is not None else None
    # (account, ad group) pairs to list ads under; None means every ad of the accounts.
    parents: list[tuple[str, str]] | None = None
    if args.ad_group is not None:
        groups = _resolve(deps, accounts, EntityKind.AD_GROUP, args.ad_group)
        if args.campaign is not None:
            campaign_ids = {c.ref.id for c in _resolve(deps, accounts, EntityKind.CAMPAIGN, args.campaign)}
            groups = [g for g in groups if g.parent is not None and g.parent.id in campaign_ids]
        parents = [(g.ref.account_id, g.ref.id) for g in groups]
    elif args.campaign is not None:
        parents = [(g.ref.account_id, g.ref.id) for c in _resolve(deps, accounts, EntityKind.CAMPAIGN, args.campaign)
                   for g in deps.platform_for(c.ref.account_id).list_entities(
                       c.ref.account_id, EntityKind.AD_GROUP, parent_id=c.ref.id)]
    elif sku is not None:
        require_skus(deps.warehouse, [sku])
        # The platforms cannot filter ads by product, and listing every ad of a large account costs
        # seconds: the warehouse's copy of the ads says which ad groups to ask; the platform still
        # answers for each ad's current state.
        marks = ", ".join("?" for _ in accounts)
        parents = [(a, g) for a, g in deps.warehouse.query(
            f"SELECT DISTINCT account_id, ad_group_id FROM ads WHERE sku = ? AND account_id IN ({marks}) "
            "ORDER BY 1, 2", [sku, *accounts])]
    elif args.status is None:
        raise BadInput("list_ads needs at least one of campaign, ad_group, sku or status "
                       "(an account can have tens of thousands of ads)")
    if parents is None:
        matches = [e for a in accounts
                   for e in deps.platform_for(a).list_entities(a, EntityKind.AD, status=args.status)]
    else:
        matches = [e for a, g in parents
                   for e in deps.platform_for(a).list_entities(a, EntityKind.AD, parent_id=g, status=args.status)]
    if sku is not None:
        matches = [e for e in matches if e.sku == sku]
    shown, by_status = _preview(matches, args.limit)
    kpis = _kpis(deps, EntityKind.AD, shown)
    rows = [AdRow(**_base(e, kpis), ad_group_id=e.parent.id if e.parent else None, sku=e.sku,
                  final_url=_final_url(e)) for e in shown]
    return EntityPreview[AdRow](rows=rows, total=len(matches), by_status=by_status,
                                truncated=len(matches) > len(rows))


def _final_url(e: Entity) -> str | None:
    if e.ad is None:
        return None
    return getattr(e.ad, "final_url", None) or getattr(e.ad, "link", None)
