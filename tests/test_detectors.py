"""Each optimizer detector on the demo world finds exactly the planted situations.

Expected sets come from this file's own SQL over the warehouse (not from the detectors' code and not from
``PLANTED``); the detectors read live state through the sandbox platform, so the tests also change that state
through the platform and check that the detectors follow it.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import duckdb
import pytest
from pydantic import ValidationError

from agent.domain import Entity, EntityRef, SetBudget, SetStatus
from graphs.optimizer.common import BudgetBounds
from graphs.optimizer.detectors import DETECTORS
from graphs.optimizer.findings import Finding
from tools.adapters.sandbox import SandboxPlatform
from tools.warehouse.schema import connect

ACCOUNTS = ["1234567890", "act_1001"]
# The window every detector defaults to: 28 days ending at the latest day with data (2026-11-23).
WINDOW = "day BETWEEN (SELECT max(day) FROM performance_daily) - 27 AND (SELECT max(day) FROM performance_daily)"


@dataclass
class World:
    con: duckdb.DuckDBPyConnection
    sandbox: SandboxPlatform

    def platform_for(self, account_id: str) -> SandboxPlatform:
        return self.sandbox

    def run(self, name: str, accounts: list[str] | None = None, **params: object) -> list[Finding]:
        detector = DETECTORS[name]
        return detector.detect(self.con, self.platform_for, detector.params(**params),
                               accounts=accounts or ACCOUNTS, bounds=BudgetBounds())

    def q(self, sql: str, params: list[object] | None = None) -> list[tuple]:
        return self.con.execute(sql, params or []).fetchall()


@pytest.fixture
def world(demo_warehouse: Path) -> Iterator[World]:
    con = connect(demo_warehouse)
    yield World(con, SandboxPlatform(con))
    con.close()


def _by_target(findings: list[Finding]) -> dict[str, Finding]:
    targets = [f.action.target.id for f in findings]
    assert len(targets) == len(set(targets)), "one finding per entity"
    return {f.action.target.id: f for f in findings}


# ----------------------------------------------------------------------------------------------- stock guard

def test_stock_guard_finds_exactly_out_of_stock_running_and_its_own_pauses(world: World) -> None:
    running_oos = {r[0] for r in world.q("""SELECT a.ad_id FROM ads a JOIN inventory i ON i.sku = a.sku
        WHERE a.status = 'ENABLED' AND i.stock = 0""")}
    guard_restocked = {r[0] for r in world.q("""SELECT a.ad_id FROM ads a JOIN inventory i ON i.sku = a.sku
        WHERE a.status = 'PAUSED' AND a.paused_by = 'stock_guard' AND i.stock > 0""")}
    person_paused = {r[0] for r in world.q("SELECT ad_id FROM ads WHERE status = 'PAUSED' AND paused_by <> "
                                           "'stock_guard'")}
    assert running_oos and guard_restocked and person_paused  # the world plants all three

    found = _by_target(world.run("stock_guard"))
    pauses = {i for i, f in found.items() if isinstance(f.action, SetStatus) and f.action.status == "PAUSED"}
    enables = {i for i, f in found.items() if isinstance(f.action, SetStatus) and f.action.status == "ENABLED"}
    assert pauses == running_oos
    assert enables == guard_restocked
    assert not person_paused & set(found)
    some = found[sorted(pauses)[0]]
    assert some.evidence["stock"] == 0 and "out of stock (0 units" in some.action.reason

    # Applied under the guard's marker, a rerun proposes nothing.
    results = world.sandbox.apply([f.action for f in found.values()], actor="stock_guard")
    assert all(r.status == "applied" for r in results)
    assert world.run("stock_guard") == []


def test_stock_guard_never_reenables_what_a_person_paused(world: World) -> None:
    ad_id, sku = world.q("""SELECT a.ad_id, a.sku FROM ads a JOIN inventory i ON i.sku = a.sku
        WHERE a.status = 'ENABLED' AND i.stock = 0 ORDER BY 1 LIMIT 1""")[0]
    target = next(f.action.target for f in world.run("stock_guard") if f.action.target.id == ad_id)
    # A person pauses it first (through the platform); then the product comes back.
    world.sandbox.apply([SetStatus(target=target, status="PAUSED", reason="paused by hand")], actor="anna")
    assert ad_id not in _by_target(world.run("stock_guard"))
    world.con.execute("UPDATE inventory SET stock = 40 WHERE sku = ?", [sku])
    assert ad_id not in _by_target(world.run("stock_guard"))


def test_stock_guard_recognises_only_its_own_marker(world: World) -> None:
    guard_restocked = {r[0] for r in world.q("""SELECT a.ad_id FROM ads a JOIN inventory i ON i.sku = a.sku
        WHERE a.status = 'PAUSED' AND a.paused_by = 'stock_guard' AND i.stock > 0""")}
    found = world.run("stock_guard", pause_marker="nightly_stock")
    assert not guard_restocked & {f.action.target.id for f in found if f.action.status == "ENABLED"}


class _LiveOverride:
    """The sandbox, except that one entity reads differently (as if the platform changed since the sync)."""

    def __init__(self, sandbox: SandboxPlatform, ref_id: str, **changes: object) -> None:
        self.sandbox, self.ref_id, self.changes = sandbox, ref_id, changes

    def _patch(self, entity: Entity) -> Entity:
        return entity.model_copy(update=self.changes) if entity.ref.id == self.ref_id else entity

    def read_back(self, refs: list[EntityRef]) -> dict[EntityRef, Entity]:
        return {r: self._patch(e) for r, e in self.sandbox.read_back(refs).items()}

    def get_entity(self, ref: EntityRef) -> Entity:
        return self._patch(self.sandbox.get_entity(ref))


def test_detectors_decide_on_live_state_not_the_warehouse_copy(world: World) -> None:
    ad_id = world.q("""SELECT a.ad_id FROM ads a JOIN inventory i ON i.sku = a.sku
        WHERE a.status = 'ENABLED' AND i.stock = 0 ORDER BY 1 LIMIT 1""")[0][0]
    live = _LiveOverride(world.sandbox, ad_id, status="PAUSED", paused_by="anna")
    detector = DETECTORS["stock_guard"]
    found = detector.detect(world.con, lambda _a: live, detector.params(), accounts=ACCOUNTS)
    assert ad_id not in {f.action.target.id for f in found}


# ------------------------------------------------------------------------------------------- ROAS rebalance

_HOLDERS = f"""
WITH h AS (SELECT campaign_id AS holder, campaign_id, daily_budget FROM campaigns WHERE daily_budget IS NOT NULL
           UNION ALL
           SELECT ad_group_id, campaign_id, daily_budget FROM ad_groups WHERE daily_budget IS NOT NULL),
     p AS (SELECT CASE WHEN c.daily_budget IS NOT NULL THEN p.campaign_id ELSE p.ad_group_id END AS holder,
                  p.cost, p.conversion_value, p.conversions
           FROM performance_daily p JOIN campaigns c USING (campaign_id) WHERE {WINDOW})
SELECT h.holder, h.daily_budget, c.target_roas, sum(p.conversion_value) / sum(p.cost) AS roas,
       sum(p.cost) / (28 * h.daily_budget) AS utilisation
FROM h JOIN p USING (holder) JOIN campaigns c ON c.campaign_id = h.campaign_id
GROUP BY h.holder, h.daily_budget, c.target_roas
"""


def test_roas_rebalance_moves_budget_from_below_target_to_limited_above_target(world: World) -> None:
    holders = world.q(_HOLDERS)
    below = {r[0] for r in holders if r[3] < r[2]}
    limited_above = {r[0] for r in holders if r[3] > r[2] and r[4] >= Decimal("0.95")}
    budgets = {r[0]: r[1] for r in holders}
    assert below and limited_above

    found = _by_target(world.run("roas_rebalance"))
    decreased = {i for i, f in found.items() if f.evidence["change"] < 0}
    increased = {i for i, f in found.items() if f.evidence["change"] > 0}
    assert decreased == below
    assert increased == limited_above
    total_change = Decimal(0)
    for holder, finding in found.items():
        action = finding.action
        assert isinstance(action, SetBudget)
        before, after = budgets[holder], action.daily_budget.amount
        assert abs(after - before) <= before * Decimal("0.20")  # the policy's per-action limit
        assert after >= 1 and after == after.quantize(Decimal("0.01"))
        total_change += after - before
        assert re.search(r"ROAS \d+\.\d\d over 28 days vs target 3\.50", action.reason)
    assert total_change == 0  # total daily budget unchanged, to the cent
    worst = found[min(below, key=lambda h: next(r[3] for r in holders if r[0] == h))]
    assert worst.evidence["roas"] < 1

    world.sandbox.apply([f.action for f in found.values()], actor="svc-optimizer")
    # The receivers now have room in their budgets: they are no longer budget-limited, so nothing moves.
    assert world.run("roas_rebalance") == []


def test_roas_rebalance_respects_a_smaller_policy_step(world: World) -> None:
    detector = DETECTORS["roas_rebalance"]
    found = detector.detect(world.con, world.platform_for, detector.params(), accounts=ACCOUNTS,
                            bounds=BudgetBounds(max_change_pct=Decimal(5)))
    budgets = {r[0]: r[1] for r in world.q(_HOLDERS)}
    assert found
    for finding in found:
        before = budgets[finding.action.target.id]
        assert abs(finding.action.daily_budget.amount - before) <= before * Decimal("0.05")
    assert sum(f.evidence["change"] for f in found) == 0


def test_roas_rebalance_stays_inside_the_accounts_it_is_given(world: World) -> None:
    assert world.run("roas_rebalance", accounts=["act_1001"]) == []


# ------------------------------------------------------------------------------------------------ CPA guard

_CPA = f"""
SELECT c.campaign_id, sum(p.cost) / nullif(sum(p.conversions), 0) AS cpa, sum(p.conversions) AS conversions,
       any_value(c.target_cpa) AS target
FROM performance_daily p JOIN campaigns c USING (campaign_id)
WHERE {WINDOW} AND c.status = 'ENABLED' GROUP BY c.campaign_id
"""


def test_cpa_guard_flags_high_cpa_with_enough_conversions_only(world: World) -> None:
    rows = world.q(_CPA)
    meaningful = {r[0] for r in rows if r[2] >= 15 and r[1] > r[3]}
    too_few = {r[0] for r in rows if r[2] < 15 and r[1] is not None and r[1] > r[3]}
    assert meaningful and too_few
    found = _by_target(world.run("cpa_guard"))
    assert set(found) == meaningful
    finding = found[sorted(meaningful)[0]]
    assert finding.evidence["conversions"] >= 15 and finding.evidence["cpa"] > finding.evidence["target_cpa"]
    assert isinstance(finding.action, SetBudget)
    assert finding.evidence["budget_after"] == finding.evidence["budget_before"] * Decimal("0.8")
    # Lowering the bar for evidence brings in the campaign with too few conversions.
    assert set(_by_target(world.run("cpa_guard", min_conversions=1))) == meaningful | too_few


def test_cpa_guard_at_ad_group_level_pauses_google_ad_groups(world: World) -> None:
    rows = world.q(f"""SELECT p.ad_group_id FROM performance_daily p JOIN campaigns c USING (campaign_id)
        JOIN ad_groups g ON g.ad_group_id = p.ad_group_id
        WHERE {WINDOW} AND g.status = 'ENABLED' GROUP BY p.ad_group_id
        HAVING sum(p.conversions) >= 4 AND sum(p.cost) / sum(p.conversions) > any_value(c.target_cpa)""")
    # Ad groups collect fewer conversions than their campaign: judge them on a lower bar.
    found = _by_target(world.run("cpa_guard", level="ad_group", min_conversions=4))
    assert set(found) == {r[0] for r in rows}
    google = [f for f in found.values() if f.action.target.platform == "google"]
    assert google and all(isinstance(f.action, SetStatus) and f.action.status == "PAUSED" for f in google)


# ----------------------------------------------------------------------------------------- creative refresh

def test_creative_refresh_flags_ads_far_below_their_ad_group(world: World) -> None:
    per_ad = world.q(f"""SELECT a.ad_id, a.ad_group_id, a.status, coalesce(sum(p.impressions), 0),
        coalesce(sum(p.clicks), 0) FROM ads a LEFT JOIN performance_daily p ON p.ad_id = a.ad_id AND {WINDOW}
        GROUP BY a.ad_id, a.ad_group_id, a.status""")
    expected = set()
    for ad_id, group, status, impressions, clicks in per_ad:
        peers = [(i, c) for other, g, _s, i, c in per_ad if g == group and other != ad_id]
        peer_impressions, peer_clicks = sum(i for i, _ in peers), sum(c for _, c in peers)
        if status != "ENABLED" or impressions < 500 or peer_impressions < 200 or peer_clicks == 0:
            continue
        if clicks / impressions < 0.5 * peer_clicks / peer_impressions:
            expected.add(ad_id)
    assert expected
    found = _by_target(world.run("creative_refresh"))
    assert set(found) == expected
    for finding in found.values():
        assert finding.action.status == "PAUSED"
        assert finding.brief is not None and finding.brief.problem == "low_ctr"
        assert finding.brief.ad_group.id and finding.brief.current_text
        assert finding.evidence["ctr"] < finding.evidence["peer_ctr"] / 2
    world.sandbox.apply([f.action for f in found.values()], actor="svc-optimizer")
    assert world.run("creative_refresh") == []


# ------------------------------------------------------------------------------------------- price mismatch

def test_price_mismatch_flags_ads_stating_a_price_the_pim_does_not_have(world: World) -> None:
    rows = world.q("""SELECT a.ad_id, array_to_string(a.headlines || a.descriptions, ' | ') || ' | '
        || coalesce(a.primary_text, ''), p.price, p.sale_price FROM ads a JOIN products p USING (sku)
        WHERE a.status = 'ENABLED'""")
    expected = set()
    for ad_id, text, price, sale in rows:
        for euros, cents in re.findall(r"(\d+),(\d\d) €", text):
            if Decimal(f"{euros}.{cents}") not in {price, sale}:
                expected.add(ad_id)
    assert expected
    found = _by_target(world.run("price_mismatch"))
    assert set(found) == expected
    for finding in found.values():
        assert finding.evidence["stated_price"] != finding.evidence["pim_price"]
        assert finding.brief is not None and finding.brief.problem == "price_mismatch"
        assert f"{finding.evidence['pim_price']:.2f}" in finding.action.reason
    world.sandbox.apply([f.action for f in found.values()], actor="svc-optimizer")
    assert world.run("price_mismatch") == []


def test_price_parsing_reads_german_and_english_notation() -> None:
    from graphs.optimizer.detectors.price_mismatch import stated_prices

    assert stated_prices("Nur 1.299,95 € statt 1.499,00 EUR") == [Decimal("1299.95"), Decimal("1499.00")]
    assert stated_prices("Now €189.95, was € 1,200") == [Decimal("189.95"), Decimal("1200")]
    assert stated_prices("Versand in 24 Stunden, 30 Tage Rückgabe") == []


# -------------------------------------------------------------------------------------------- budget pacing

def test_budget_pacing_scales_down_exactly_the_capped_scope(world: World) -> None:
    last = world.q("SELECT max(day) FROM performance_daily")[0][0]
    days_left = calendar.monthrange(last.year, last.month)[1] - last.day
    mtd = world.q("SELECT sum(cost) FROM performance_daily WHERE account_id = 'act_1001' AND day >= ?",
                  [last.replace(day=1)])[0][0]
    meta_budgets = dict(world.q("""SELECT ad_group_id, daily_budget FROM ad_groups WHERE account_id = 'act_1001'
        AND daily_budget IS NOT NULL UNION ALL SELECT campaign_id, daily_budget FROM campaigns
        WHERE account_id = 'act_1001' AND daily_budget IS NOT NULL"""))
    daily = sum(meta_budgets.values())
    # A cap 10 % below what the month would spend at today's budgets.
    cap = (mtd + days_left * daily * Decimal("0.9")).quantize(Decimal("0.01"))
    generous = world.q("SELECT sum(cost) FROM performance_daily WHERE campaign_id = 'gc-001'")[0][0] * 10

    found = _by_target(world.run("budget_pacing", caps=[{"account": "act_1001", "monthly": cap},
                                                         {"campaign": "gc-001", "monthly": generous}]))
    assert set(found) == set(meta_budgets)
    for holder, finding in found.items():
        expected = (meta_budgets[holder] * (cap - mtd) / (days_left * daily)).quantize(Decimal("0.01"),
                                                                                        rounding=ROUND_DOWN)
        assert finding.action.daily_budget.amount == expected
    assert mtd + days_left * sum(f.action.daily_budget.amount for f in found.values()) <= cap

    world.sandbox.apply([f.action for f in found.values()], actor="svc-optimizer")
    assert world.run("budget_pacing", caps=[{"account": "act_1001", "monthly": cap}]) == []


def test_budget_pacing_steps_at_most_the_policy_limit(world: World) -> None:
    found = world.run("budget_pacing", caps=[{"campaign": "gc-014", "monthly": 1}])
    assert [f.action.target.id for f in found] == ["gc-014"]
    assert found[0].evidence["budget_after"] == found[0].evidence["budget_before"] * Decimal("0.8")


# ----------------------------------------------------------------------------------------------- parameters

def test_parameters_are_strict() -> None:
    with pytest.raises(ValidationError, match="extra"):
        DETECTORS["cpa_guard"].params(min_conversion=3)
    with pytest.raises(ValidationError, match="back_in_stock_min"):
        DETECTORS["stock_guard"].params(out_of_stock_max=5, back_in_stock_min=2)
    with pytest.raises(ValidationError, match="exactly one"):
        DETECTORS["budget_pacing"].params(caps=[{"account": "x", "campaign": "y", "monthly": 10}])
