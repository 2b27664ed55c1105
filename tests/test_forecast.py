"""The forecast: fitted curves, budget response only where budget-limited, pauses, fallbacks, determinism."""

from __future__ import annotations

import itertools
import math
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from agent.domain import AddNegativeKeyword, CreateAd, EntityRef, MetaAdCreative, Money, SetBudget, SetStatus
from agent.errors import BadInput
from tests import tiny_world as tw
from tools.forecast import ELASTICITY_MAX, ELASTICITY_MIN, fit_power_curve, forecast
from tools.warehouse.schema import connect


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    connection = tw.make(tmp_path / "warehouse.duckdb")
    yield connection
    connection.close()


def g(kind: str, entity_id: str) -> EntityRef:
    return EntityRef(platform="google", account_id=tw.GOOGLE, kind=kind, id=entity_id)


def m(kind: str, entity_id: str) -> EntityRef:
    return EntityRef(platform="meta", account_id=tw.META, kind=kind, id=entity_id)


def budget(ref: EntityRef, amount: Decimal | str) -> SetBudget:
    return SetBudget(target=ref, daily_budget=Money.of(amount, "EUR"), reason="forecast test")


def pause(ref: EntityRef) -> SetStatus:
    return SetStatus(target=ref, status="PAUSED", reason="forecast test")


def average(con: duckdb.DuckDBPyConnection, column: str, entity_id: str, account_id: str, days: int = 28) -> Decimal:
    """Window total of cost / days with account data, computed independently of the module under test."""
    total, covered = con.execute(
        f"""SELECT (SELECT coalesce(sum(cost), 0) FROM performance_daily WHERE {column} = ? AND day > ?),
                   (SELECT count(DISTINCT day) FROM performance_daily WHERE account_id = ? AND day > ?)""",
        [entity_id, tw.LAST_DAY - timedelta(days=days), account_id, tw.LAST_DAY - timedelta(days=days)]).fetchall()[0]
    return (Decimal(total) / covered).quantize(Decimal("0.01"))


# --------------------------------------------------------------------------------------------- the fit

def test_fit_recovers_the_exponent() -> None:
    spend = [20 + 3 * i for i in range(20)]
    fit = fit_power_curve(spend, [2.0 * s ** 0.6 for s in spend])
    assert fit.fitted and math.isclose(fit.b, 0.6, abs_tol=1e-9) and math.isclose(fit.a, 2.0, rel_tol=1e-9)


def test_fit_clamps_the_exponent() -> None:
    spend = [20 + 3 * i for i in range(20)]
    assert fit_power_curve(spend, [s ** 1.5 for s in spend]).b == ELASTICITY_MAX
    assert fit_power_curve(spend, [s ** 0.05 for s in spend]).b == ELASTICITY_MIN


def test_fit_falls_back_to_proportional_on_thin_or_flat_data() -> None:
    few = fit_power_curve([10, 20, 30], [1, 2, 3])
    assert not few.fitted and few.b == 1.0
    flat = fit_power_curve([50.0, 50.1, 49.9, 50.0, 50.05, 49.95, 50.0, 50.0], [1, 3, 2, 5, 1, 4, 2, 3])
    assert not flat.fitted and flat.b == 1.0
    zeros = fit_power_curve([10, 20, 30, 40, 50, 60, 70, 80], [0] * 8)  # no conversions at all
    assert not zeros.fitted


def test_grouped_fit_shares_one_slope_across_levels() -> None:
    spend = [10 + 2 * i for i in range(10)]
    small = [0.5 * s ** 0.7 for s in spend]
    big = [9.0 * (10 * s) ** 0.7 for s in spend]
    pooled = fit_power_curve(spend + [10 * s for s in spend], small + big, ["a"] * 10 + ["b"] * 10)
    assert math.isclose(pooled.b, 0.7, abs_tol=1e-9)
    # Without the groups, the level difference masquerades as a steeper slope.
    assert fit_power_curve(spend + [10 * s for s in spend], small + big).b > 0.9


# ------------------------------------------------------------------------------------- budget response

def test_budget_limited_share_and_fitted_curve(con: duckdb.DuckDBPyConnection) -> None:
    [item] = forecast(con, [budget(g("campaign", "gc-001"), "55.00")]).actions
    limited = con.execute("""SELECT count(*) FROM (SELECT day, sum(cost) AS s FROM performance_daily
                             WHERE campaign_id = 'gc-001' GROUP BY day) WHERE s >= 0.95 * 50""").fetchall()[0][0]
    assert item.model == "budget_response"
    assert item.budget_limited_share == Decimal(limited) / 28
    assert abs(item.elasticity - Decimal("0.7")) < Decimal("0.02")  # the tiny world's curve has b = 0.7
    assert item.before.spend == average(con, "campaign_id", "gc-001", tw.GOOGLE)
    assert item.delta.spend > 0 and item.delta.conversions > 0 and item.delta.clicks > 0


def test_more_budget_never_more_than_proportional(con: duckdb.DuckDBPyConnection) -> None:
    budgets = [Decimal(x) for x in ("50.00", "52.50", "55.00", "60.00", "75.00", "100.00")]
    items = [forecast(con, [budget(g("campaign", "gc-001"), b)]).actions[0] for b in budgets]
    base = items[0]
    assert base.delta.spend == 0 and base.delta.conversions == 0  # the same budget changes nothing
    for previous, current in itertools.pairwise(items):
        assert current.after.spend > previous.after.spend
        assert current.after.conversions > previous.after.conversions
    for b, item in zip(budgets, items, strict=True):
        ratio = b / Decimal("50")
        assert item.after.spend <= (base.before.spend * ratio).quantize(Decimal("0.01"))
        assert item.after.conversions / item.before.conversions <= item.after.spend / item.before.spend
    assert items[-1].after.roas < base.before.roas  # diminishing returns


def test_unconstrained_campaign_does_not_spend_more(con: duckdb.DuckDBPyConnection) -> None:
    [up] = forecast(con, [budget(g("campaign", "gc-002"), "150.00")]).actions
    assert up.budget_limited_share == 0
    assert up.delta.spend == 0 and up.delta.conversions == 0
    [down] = forecast(con, [budget(g("campaign", "gc-002"), "30.00")]).actions
    assert Decimal(0) < down.after.spend < down.before.spend
    assert down.after.spend <= Decimal("30.00")


def test_meta_adset_budget(con: duckdb.DuckDBPyConnection) -> None:
    [item] = forecast(con, [budget(m("ad_group", "mas-0002"), "30.00")]).actions
    limited = con.execute("""SELECT count(*) FROM performance_daily WHERE ad_group_id = 'mas-0002'
                             AND cost >= 0.95 * 20""").fetchall()[0][0]
    assert item.budget_limited_share == (Decimal(limited) / 28).quantize(Decimal("0.0001"))
    assert item.before.spend == average(con, "ad_group_id", "mas-0002", tw.META)
    assert item.delta.spend > 0
    assert item.after.spend / item.before.spend <= Decimal("1.5")


def test_paused_campaign_budget_is_not_forecast(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("UPDATE campaigns SET status = 'PAUSED' WHERE campaign_id = 'gc-001'")
    [item] = forecast(con, [budget(g("campaign", "gc-001"), "80.00")]).actions
    assert item.model == "no_change" and item.delta.spend == 0 and "not running" in item.note


def test_zero_history(tmp_path: Path) -> None:
    con = tw.make(tmp_path / "empty.duckdb", with_performance=False)
    result = forecast(con, [budget(g("campaign", "gc-001"), "60.00"), pause(g("ad", "gad-00001"))])
    assert result.window_end is None
    budget_item, pause_item = result.actions
    assert budget_item.model == "no_change" and budget_item.after.spend == 0 and budget_item.note
    assert pause_item.delta.spend == 0
    assert result.total is not None and result.total.before.spend == 0 and result.total.delta.spend == 0
    assert result.total.before.roas is None


def test_thin_history_falls_back_to_proportional(tmp_path: Path) -> None:
    con = tw.make(tmp_path / "thin.duckdb", with_performance=False)
    for offset in range(3):
        con.execute("INSERT INTO performance_daily VALUES (?, 'gad-00001', 'gag-0001', 'gc-001', ?, 'google', 'P1', "
                    "1000, 100, 50.00, 4.00, 160.00)", [tw.LAST_DAY - timedelta(days=offset), tw.GOOGLE])
    [item] = forecast(con, [budget(g("campaign", "gc-001"), "60.00")]).actions
    assert item.elasticity == Decimal("1.0000") and "proportional" in item.note
    assert item.after.spend == Decimal("60.00") and item.after.conversions == Decimal("4.80")


# ------------------------------------------------------------------------------------- status changes

def test_pause_removes_the_recent_average_once(con: duckdb.DuckDBPyConnection) -> None:
    result = forecast(con, [pause(g("ad", "gad-00005")), pause(g("ad_group", "gag-0002")),
                            pause(g("ad", "gad-00004"))])
    ad, group, paused_ad = result.actions
    assert ad.delta.spend == -average(con, "ad_id", "gad-00005", tw.GOOGLE)
    assert group.delta.spend == 0 and "already counted" in group.note   # gad-00005 is its only spending ad
    assert paused_ad.model == "no_change" and "not running" in paused_ad.note
    assert result.total is not None
    assert result.total.delta.spend == -average(con, "ad_group_id", "gag-0002", tw.GOOGLE)
    assert "re-spent" in ad.note


def test_enable_restores_history(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("UPDATE ads SET status = 'PAUSED' WHERE ad_id = 'gad-00005'")
    [item] = forecast(con, [SetStatus(target=g("ad", "gad-00005"), status="ENABLED", reason="back in stock")]).actions
    assert item.model == "enable" and item.delta.spend == average(con, "ad_id", "gad-00005", tw.GOOGLE)


def test_new_ads_and_negatives_forecast_no_change(con: duckdb.DuckDBPyConnection) -> None:
    create = CreateAd(target=m("ad_group", "mas-0002"), reason="new copy",
                      ad=MetaAdCreative(primary_text="Tulpen.", headline="Tulpen", link="https://x.example.de/t"))
    negative = AddNegativeKeyword(target=g("campaign", "gc-001"), text="kostenlos", reason="waste")
    for item in forecast(con, [create, negative]).actions:
        assert item.model == "no_change" and item.delta.spend == 0 and item.note


def test_totals_are_account_averages_plus_deltas(con: duckdb.DuckDBPyConnection) -> None:
    result = forecast(con, [budget(g("campaign", "gc-001"), "60.00"), pause(g("ad", "gad-00005"))])
    total = result.total
    assert total is not None and total.accounts == [tw.GOOGLE] and total.currency == "EUR"
    assert total.before.spend == average(con, "account_id", tw.GOOGLE, tw.GOOGLE)
    assert total.delta.spend == sum(a.delta.spend for a in result.actions)
    assert total.delta.roas == total.after.roas - total.before.roas


def test_window_follows_today(con: duckdb.DuckDBPyConnection) -> None:
    result = forecast(con, [pause(g("ad", "gad-00005"))], window_days=7, today=tw.LAST_DAY - timedelta(days=6))
    assert result.window_end == tw.LAST_DAY - timedelta(days=7)
    assert result.window_start == tw.LAST_DAY - timedelta(days=13)
    expected = con.execute("SELECT sum(cost) / 7 FROM performance_daily WHERE ad_id = 'gad-00005' "
                           "AND day BETWEEN ? AND ?", [result.window_start, result.window_end]).fetchall()[0][0]
    assert result.actions[0].before.spend == Decimal(expected).quantize(Decimal("0.01"))
    with pytest.raises(BadInput):
        forecast(con, [], window_days=0)


def test_deterministic(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    actions = [budget(g("campaign", "gc-001"), "57.00"), budget(m("ad_group", "mas-0002"), "25.00"),
               pause(g("ad", "gad-00001"))]
    first = forecast(con, actions).model_dump(mode="json")
    assert forecast(con, actions).model_dump(mode="json") == first
    other = tw.make(tmp_path / "copy.duckdb")
    assert forecast(other, actions).model_dump(mode="json") == first


# ------------------------------------------------------------------------------------------ demo world

def test_demo_budget_limited_campaigns_respond(demo_warehouse: Path) -> None:
    con = connect(demo_warehouse)
    last = con.execute("SELECT max(day) FROM performance_daily").fetchall()[0][0]
    shares = dict(con.execute(
        """SELECT c.campaign_id, avg(CASE WHEN d.s >= 0.95 * c.daily_budget THEN 1 ELSE 0 END)
           FROM (SELECT campaign_id, day, sum(cost) AS s FROM performance_daily WHERE day > ?
                 GROUP BY ALL) d JOIN campaigns c USING (campaign_id)
           WHERE c.platform = 'google' AND c.status = 'ENABLED' GROUP BY 1""",
        [last - timedelta(days=28)]).fetchall())
    limited = sorted(c for c, share in shares.items() if share >= 0.9)
    unconstrained = sorted(c for c, share in shares.items() if share == 0)
    assert limited and unconstrained
    budgets = dict(con.execute("SELECT campaign_id, daily_budget FROM campaigns").fetchall())
    actions = [budget(g("campaign", c), (budgets[c] * Decimal("1.1")).quantize(Decimal("0.01")))
               for c in limited + unconstrained[:2]]
    result = forecast(con, actions)
    for item in result.actions:
        campaign = item.target.rsplit("/", 1)[1]
        if campaign in limited:
            assert item.delta.spend > 0 and item.delta.conversions > 0
            assert item.after.spend <= (item.before.spend * Decimal("1.1")).quantize(Decimal("0.01")) + Decimal("0.01")
            assert item.after.conversions / item.before.conversions <= item.after.spend / item.before.spend
        else:
            assert item.delta.spend == 0
    assert forecast(con, actions).model_dump(mode="json") == result.model_dump(mode="json")
    con.close()


def test_unknown_targets_are_noted_not_raised(con: duckdb.DuckDBPyConnection) -> None:
    stranger = EntityRef(platform="google", account_id="5550001111", kind="campaign", id="gc-001")
    result = forecast(con, [budget(stranger, "60.00"), pause(g("ad", "gad-99999"))])
    unknown_account, unknown_ad = result.actions
    assert unknown_account.currency is None and "unknown account" in unknown_account.note
    assert unknown_ad.currency == "EUR" and "unknown ad" in unknown_ad.note and unknown_ad.delta.spend == 0
    assert [t.accounts for t in result.totals] == [[tw.GOOGLE]]
