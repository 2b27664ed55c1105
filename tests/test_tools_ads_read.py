"""Ad read tools on the sandbox platform; expected values from the test's own SQL over the warehouse."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from agent.errors import Ambiguous, BadInput, NotFound
from tools.ads_read import (
    ListAdGroupsArgs,
    ListAdsArgs,
    ListCampaignsArgs,
    list_ad_groups,
    list_ads,
    list_campaigns,
)
from tools.deps import ToolDeps
from tools.registry import REGISTRY, all_tools, to_langchain


@pytest.fixture
def deps(demo_runtime: Any) -> ToolDeps:
    return ToolDeps.from_runtime(demo_runtime)


def _rows(con: Any, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _spend(con: Any, column: str, entity_id: str, days: int) -> tuple[Decimal, int]:
    """Spend and clicks over the ``days`` days ending on the newest day, summed in Python."""
    rows = _rows(con, "SELECT * FROM performance_daily")
    last = max(r["day"] for r in rows)
    window = [r for r in rows if r[column] == entity_id and last - timedelta(days=days) < r["day"] <= last]
    return sum((r["cost"] for r in window), Decimal(0)), sum(r["clicks"] for r in window)


def test_list_ad_accounts(deps: ToolDeps, demo_runtime: Any) -> None:
    all_tools()
    result = REGISTRY.get("list_ad_accounts").invoke(deps, {})
    expected = _rows(demo_runtime.warehouse, "SELECT * FROM accounts ORDER BY account_id")
    assert [(a.account_id, a.platform, a.currency, a.served_by) for a in result.accounts] == [
        (r["account_id"], r["platform"], r["currency"], "sandbox") for r in expected]


def test_campaigns_with_budget_targets_and_kpis(deps: ToolDeps, demo_runtime: Any) -> None:
    con = demo_runtime.warehouse
    expected = _rows(con, "SELECT * FROM campaigns ORDER BY account_id, campaign_id")
    result = list_campaigns(deps, ListCampaignsArgs(limit=100))
    assert result.total == len(expected)
    assert [r.id for r in result.rows] == [e["campaign_id"] for e in expected]
    assert result.by_status == {s: sum(1 for e in expected if e["status"] == s) for s in {e["status"]
                                                                                         for e in expected}}
    first, row = expected[0], result.rows[0]
    assert (row.name, row.status, row.daily_budget, row.target_roas) == (
        first["name"], first["status"], first["daily_budget"], first["target_roas"])
    for window, kpis in ((7, row.kpi_7d), (30, row.kpi_30d)):
        spend, clicks = _spend(con, "campaign_id", first["campaign_id"], window)
        assert (kpis.spend, kpis.clicks) == (spend, clicks)
    assert row.kpi_30d.spend > row.kpi_7d.spend


def test_campaign_filters_and_preview(deps: ToolDeps, demo_runtime: Any) -> None:
    con = demo_runtime.warehouse
    meta = [r["campaign_id"] for r in _rows(con, "SELECT campaign_id FROM campaigns WHERE account_id = 'act_1001' "
                                                 "ORDER BY campaign_id")]
    result = list_campaigns(deps, ListCampaignsArgs(account_id="act_1001", limit=2))
    assert result.total == len(meta)
    assert [r.id for r in result.rows] == meta[:2]
    assert result.truncated is (len(meta) > 2)
    named = list_campaigns(deps, ListCampaignsArgs(name_contains="sOMMER"))
    assert [r.name for r in named.rows] == [r["name"] for r in _rows(
        con, "SELECT name FROM campaigns WHERE lower(name) LIKE '%sommer%' ORDER BY account_id, campaign_id")]
    with pytest.raises(NotFound, match="unknown account 'act_9'; known accounts: 1234567890, act_1001"):
        list_campaigns(deps, ListCampaignsArgs(account_id="act_9"))
    dashed = list_campaigns(deps, ListCampaignsArgs(account_id="123-456-7890", limit=1))
    assert dashed.rows[0].account_id == "1234567890"


def test_ad_groups_of_a_campaign_by_name(deps: ToolDeps, demo_runtime: Any) -> None:
    con = demo_runtime.warehouse
    campaign = _rows(con, "SELECT * FROM campaigns WHERE name = 'Sommer Sale'")[0]
    expected = _rows(con, "SELECT * FROM ad_groups WHERE campaign_id = ? ORDER BY ad_group_id",
                     [campaign["campaign_id"]])
    result = list_ad_groups(deps, ListAdGroupsArgs(campaign="sommer sale", limit=100))
    assert [r.id for r in result.rows] == [e["ad_group_id"] for e in expected]
    assert all(r.campaign_id == campaign["campaign_id"] for r in result.rows)
    assert [r.cpc_bid for r in result.rows] == [e["cpc_bid"] for e in expected]
    spend, clicks = _spend(con, "ad_group_id", expected[0]["ad_group_id"], 7)
    assert (result.rows[0].kpi_7d.spend, result.rows[0].kpi_7d.clicks) == (spend, clicks)


def test_ambiguous_and_unknown_names_are_model_readable(deps: ToolDeps, demo_runtime: Any) -> None:
    con = demo_runtime.warehouse
    original = _rows(con, "SELECT * FROM campaigns WHERE name = 'Sommer Sale'")[0]
    con.execute("INSERT INTO campaigns SELECT 'gc-999', account_id, platform, name, 'PAUSED', daily_budget, currency, "
                "bidding_strategy, target_roas, target_cpa, category, paused_by FROM campaigns WHERE campaign_id = ?",
                [original["campaign_id"]])
    with pytest.raises(Ambiguous, match="2 campaigns are named 'Sommer Sale'") as info:
        list_ad_groups(deps, ListAdGroupsArgs(campaign="Sommer Sale"))
    assert info.value.candidates == [original["campaign_id"], "gc-999"]
    by_id = list_ad_groups(deps, ListAdGroupsArgs(campaign="gc-999"))
    assert by_id.total == 0
    text = to_langchain(REGISTRY.get("list_ads"), deps).invoke({"campaign": "Sommer"})
    assert text.startswith("error: no campaign with id or name 'Sommer'; did you mean: ")


def test_ads_by_sku_and_status(deps: ToolDeps, demo_runtime: Any) -> None:
    con = demo_runtime.warehouse
    sku = _rows(con, "SELECT sku FROM ads WHERE sku IS NOT NULL GROUP BY sku HAVING count(*) > 1 "
                     "ORDER BY sku")[0]["sku"]
    expected = _rows(con, "SELECT * FROM ads WHERE sku = ? ORDER BY account_id, ad_id", [sku])
    result = list_ads(deps, ListAdsArgs(sku=sku, limit=100))
    assert [r.id for r in result.rows] == [e["ad_id"] for e in expected]
    assert all(r.sku == sku for r in result.rows)
    assert [r.final_url for r in result.rows] == [e["final_url"] for e in expected]
    paused = _rows(con, "SELECT ad_id, paused_by FROM ads WHERE status = 'PAUSED' ORDER BY account_id, ad_id")
    result = list_ads(deps, ListAdsArgs(status="PAUSED", limit=100))
    assert [(r.id, r.paused_by) for r in result.rows] == [(p["ad_id"], p["paused_by"]) for p in paused][:100]
    assert result.by_status == {"PAUSED": len(paused)}


def test_ads_of_an_ad_group_within_a_campaign(deps: ToolDeps, demo_runtime: Any) -> None:
    con = demo_runtime.warehouse
    group = _rows(con, "SELECT * FROM ad_groups ORDER BY ad_group_id LIMIT 1")[0]
    expected = [r["ad_id"] for r in _rows(con, "SELECT ad_id FROM ads WHERE ad_group_id = ? ORDER BY ad_id",
                                          [group["ad_group_id"]])]
    result = list_ads(deps, ListAdsArgs(campaign=group["campaign_id"], ad_group=group["name"]))
    assert [r.id for r in result.rows] == expected
    in_campaign = list_ads(deps, ListAdsArgs(campaign=group["campaign_id"], limit=100))
    assert in_campaign.total == len(_rows(con, "SELECT ad_id FROM ads WHERE campaign_id = ?",
                                          [group["campaign_id"]]))


def test_listing_ads_needs_a_narrowing_argument_and_a_known_sku(deps: ToolDeps) -> None:
    with pytest.raises(BadInput, match="at least one of campaign, ad_group, sku or status"):
        list_ads(deps, ListAdsArgs(account_id="act_1001"))
    with pytest.raises(NotFound, match="unknown sku: NOPE-7"):
        list_ads(deps, ListAdsArgs(sku="NOPE-7"))
