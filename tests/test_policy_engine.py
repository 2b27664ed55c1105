"""Table-driven tests of the policy engine under the shipped default policy."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from agent.domain import (
    AddNegativeKeyword,
    CreateAd,
    Entity,
    EntityRef,
    GoogleResponsiveSearchAd,
    MetaAdCreative,
    Money,
    SetBid,
    SetBudget,
    SetStatus,
)
from policies import EvaluationContext, PolicyEngine, PriorChange, change_kind, load_engine, parse_policy

DEFAULT = Path(__file__).resolve().parent.parent / "policies" / "default.yaml"
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)

G_CAMPAIGN = EntityRef(platform="google", account_id="1234567890", kind="campaign", id="gc-001")
G_ADGROUP = EntityRef(platform="google", account_id="1234567890", kind="ad_group", id="gag-0001")
M_CAMPAIGN = EntityRef(platform="meta", account_id="act_1001", kind="campaign", id="mc-001")
M_ADSET = EntityRef(platform="meta", account_id="act_1001", kind="ad_group", id="mas-0001")


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def campaign(ref: EntityRef = G_CAMPAIGN, *, budget: str | None = "100", status: str = "ENABLED",
             name: str = "Sommer Sale", roas: str | None = None, currency: str = "EUR") -> Entity:
    return Entity(ref=ref, name=name, status=status,
                  daily_budget=Money.of(budget, currency) if budget is not None else None,
                  target_roas=Decimal(roas) if roas else None)


def adgroup(ref: EntityRef = G_ADGROUP, *, cpc: str | None = "1.00", cpa: str | None = None,
            status: str = "ENABLED", parent: EntityRef = G_CAMPAIGN) -> Entity:
    return Entity(ref=ref, name="Zelte", status=status, parent=parent,
                  cpc_bid=eur(cpc) if cpc else None, target_cpa=eur(cpa) if cpa else None)


def budget(amount: str, ref: EntityRef = G_CAMPAIGN, currency: str = "EUR") -> SetBudget:
    return SetBudget(target=ref, reason="test budget change", daily_budget=Money.of(amount, currency))


def rsa(*headlines: str, status: str = "PAUSED") -> CreateAd:
    heads = [*headlines, "Zelte online kaufen", "Jetzt bestellen", "Versand in 24 Stunden"]
    return CreateAd(target=G_ADGROUP, reason="new ad for tents", status=status,
                    ad=GoogleResponsiveSearchAd(headlines=heads[:15], descriptions=["Zelte für jede Tour.",
                                                                                    "Kostenlose Rücksendung."],
                                                final_url="https://www.nordkamm-outdoor.example/zelte"))


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return PolicyEngine.load(DEFAULT)


@dataclass
class Case:
    id: str
    actor: str
    action: Any
    current: Entity | None
    decision: str
    codes: list[str]
    campaign: Entity | None = None
    currency: str | None = "EUR"
    now: datetime = NOW
    changes: list[PriorChange] = field(default_factory=list)
    in_run: int = 0
    message: str | None = None
    approvers: list[str] | None = None


def prior(before: str | None, after: str, hours_ago: float, ref: EntityRef = G_CAMPAIGN,
          kind: str = "set_budget") -> PriorChange:
    return PriorChange(target=ref.key(), kind=kind, before=Decimal(before) if before else None,
                       after=Decimal(after), at=NOW - timedelta(hours=hours_ago))


BERLIN_BLACK_FRIDAY = datetime(2026, 11, 28, 11, 0, tzinfo=UTC)

CASES = [
    # -- who and what --------------------------------------------------------------------------------
    Case("small budget raise is allowed", "anna", budget("105"), campaign(), "allow", ["within_policy"]),
    Case("unknown actor", "mallory", budget("105"), campaign(), "deny", ["unknown_actor"]),
    Case("actor names are exact", "Anna", budget("105"), campaign(), "deny", ["unknown_actor"]),
    Case("service may not write ads", "svc-optimizer", rsa("Zelte von Nordkamm"), None, "deny",
         ["action_not_allowed"]),
    Case("eve is Meta only", "eve", budget("105"), campaign(), "deny", ["out_of_scope"]),
    Case("eve on Meta", "eve", budget("105", M_CAMPAIGN), campaign(M_CAMPAIGN), "allow", ["within_policy"]),
    Case("removed target", "anna", SetStatus(target=G_CAMPAIGN, reason="resume it", status="PAUSED"),
         campaign(status="REMOVED"), "deny", ["target_removed"]),
    Case("run limit reached", "anna", budget("105"), campaign(), "deny", ["run_limit_exceeded"], in_run=50),
    Case("last action of the run", "anna", budget("105"), campaign(), "allow", ["within_policy"], in_run=49),
    Case("current value of another entity", "anna", budget("105"), campaign(M_CAMPAIGN), "deny",
         ["context_mismatch"]),
    Case("campaign of another account", "anna", SetBid(target=G_ADGROUP, reason="raise bid", bid_type="cpc",
                                                        amount=eur("1.10")),
         adgroup(), "deny", ["context_mismatch"], campaign=campaign(M_CAMPAIGN)),
    # -- budgets: percentages from the platform's value ----------------------------------------------
    Case("+15% needs approval", "anna", budget("115"), campaign(), "needs_approval",
         ["approval_required:budget-change-over-10pct"], approvers=["ben"]),
    Case("+35% is denied", "anna", budget("135"), campaign(), "deny", ["budget_change_exceeds_limit"],
         message="budget +35% exceeds the 20% per-change limit"),
    Case("-35% is denied too", "anna", budget("65"), campaign(), "deny", ["budget_change_exceeds_limit"],
         message="budget -35% exceeds the 20% per-change limit"),
    Case("ben cannot approve his own +15%", "ben", budget("115"), campaign(), "deny",
         ["approval_required:budget-change-over-10pct", "no_approver"]),
    Case("increase above 250 EUR under 10%", "anna", budget("3260"), campaign(budget="3000"), "needs_approval",
         ["approval_required:budget-increase-over-250"]),
    Case("cap per currency", "anna", budget("5200"), campaign(budget="4500"), "deny", ["budget_above_cap"],
         message="budget 5200.00 EUR is above the cap of 5000.00 EUR"),
    Case("minimum budget", "anna", budget("0.90"), campaign(budget="1.10"), "deny", ["budget_below_minimum"]),
    Case("cents passed as euros", "anna", budget("5000"), campaign(budget="50"), "deny", ["unit_confusion"]),
    Case("micros passed as euros", "anna", budget("50000000"), campaign(budget="50"), "deny", ["unit_confusion"]),
    Case("euros read as cents", "anna", budget("0.50"), campaign(budget="50"), "deny", ["unit_confusion"]),
    Case("wrong currency", "anna", budget("105", currency="USD"), campaign(), "deny", ["wrong_currency"]),
    Case("platform reports another currency", "anna", budget("105"), campaign(currency="USD"), "deny",
         ["wrong_currency"]),
    Case("account currency unknown", "anna", budget("105"), campaign(), "deny", ["account_currency_unknown"],
         currency=None),
    Case("currency without limits", "anna", budget("105", currency="CHF"), campaign(currency="CHF"), "deny",
         ["currency_not_covered"], currency="CHF"),
    Case("no current value", "anna", budget("105"), None, "deny", ["current_value_unknown"],
         message="cannot verify the current budget of campaign gc-001"),
    Case("current has no budget", "anna", budget("105"), campaign(budget=None), "deny", ["current_value_unknown"]),
    Case("current budget zero", "anna", budget("105"), campaign(budget="0"), "deny", ["current_value_unknown"]),
    Case("svc raising spend needs approval", "svc-optimizer", budget("105"), campaign(), "needs_approval",
         ["approval_required:service-raises-spend"], approvers=["ben"]),
    Case("svc lowering spend is allowed", "svc-optimizer", budget("95"), campaign(), "allow", ["within_policy"]),
    # -- cumulative within 24 hours ------------------------------------------------------------------
    Case("second step beyond the daily net limit", "anna", budget("132"), campaign(budget="115"), "deny",
         ["budget_daily_change_exceeds_limit"], changes=[prior("100", "115", 3)],
         message="budget would change +32% within 24 hours (100.00 EUR to 132.00 EUR), above the 30% daily limit"),
    Case("earliest change is the baseline", "anna", budget("132"), campaign(budget="121"), "deny",
         ["budget_daily_change_exceeds_limit"], changes=[prior("110", "121", 2), prior("100", "110", 5)]),
    Case("changes older than 24 hours do not count", "anna", budget("126"), campaign(budget="115"), "allow",
         ["within_policy"], changes=[prior("100", "115", 25)]),
    Case("other targets do not count", "anna", budget("126"), campaign(budget="115"), "allow", ["within_policy"],
         changes=[prior("50", "100", 2, ref=M_CAMPAIGN)]),
    Case("unknown baseline fails closed", "anna", budget("105"), campaign(), "deny", ["current_value_unknown"],
         changes=[prior(None, "100", 2)]),
    # -- status ---------------------------------------------------------------------------------------
    Case("pausing is allowed", "anna", SetStatus(target=G_CAMPAIGN, reason="out of stock", status="PAUSED"),
         campaign(), "allow", ["within_policy"]),
    Case("enabling a campaign needs approval", "anna",
         SetStatus(target=G_CAMPAIGN, reason="season starts", status="ENABLED"), campaign(status="PAUSED"),
         "needs_approval", ["approval_required:enable-campaign"]),
    Case("enabling an ad group does not", "anna",
         SetStatus(target=G_ADGROUP, reason="back in stock", status="ENABLED"), adgroup(status="PAUSED"),
         "allow", ["within_policy"]),
    Case("status without a fresh read", "anna", SetStatus(target=G_CAMPAIGN, reason="pause it", status="PAUSED"),
         None, "deny", ["current_value_unknown"]),
    Case("svc enabling raises spend", "svc-optimizer",
         SetStatus(target=G_ADGROUP, reason="back in stock", status="ENABLED"), adgroup(status="PAUSED"),
         "needs_approval", ["approval_required:service-raises-spend"]),
    # -- bids -----------------------------------------------------------------------------------------
    Case("cpc +10%", "anna", SetBid(target=G_ADGROUP, reason="raise bid", bid_type="cpc", amount=eur("1.10")),
         adgroup(), "allow", ["within_policy"]),
    Case("cpc +40%", "anna", SetBid(target=G_ADGROUP, reason="raise bid", bid_type="cpc", amount=eur("1.40")),
         adgroup(), "deny", ["bid_change_exceeds_limit"]),
    Case("cpc floor", "anna", SetBid(target=G_ADGROUP, reason="lower bid", bid_type="cpc", amount=eur("0.04")),
         adgroup(cpc="0.05"), "deny", ["bid_below_floor"]),
    Case("cpc ceiling", "anna", SetBid(target=G_ADGROUP, reason="raise bid", bid_type="cpc", amount=eur("21")),
         adgroup(cpc="18"), "deny", ["bid_above_ceiling"]),
    Case("cpc without a current bid", "anna",
         SetBid(target=G_ADGROUP, reason="raise bid", bid_type="cpc", amount=eur("1.10")),
         adgroup(cpc=None), "deny", ["current_value_unknown"]),
    Case("target cpa within limits", "anna",
         SetBid(target=G_ADGROUP, reason="tighten cpa", bid_type="target_cpa", amount=eur("18")),
         adgroup(cpa="20"), "allow", ["within_policy"]),
    Case("target roas below the policy minimum", "anna",
         SetBid(target=G_CAMPAIGN, reason="loosen roas", bid_type="target_roas", target_roas=Decimal("0.45")),
         campaign(roas="0.55"), "deny", ["bid_below_floor"]),
    Case("svc lowering target roas raises spend", "svc-optimizer",
         SetBid(target=G_CAMPAIGN, reason="loosen roas", bid_type="target_roas", target_roas=Decimal("3.2")),
         campaign(roas="3.5"), "needs_approval", ["approval_required:service-raises-spend"]),
    Case("svc raising target roas is allowed", "svc-optimizer",
         SetBid(target=G_CAMPAIGN, reason="tighten roas", bid_type="target_roas", target_roas=Decimal("3.8")),
         campaign(roas="3.5"), "allow", ["within_policy"]),
    Case("cumulative bid limit", "anna",
         SetBid(target=G_ADGROUP, reason="raise bid", bid_type="cpc", amount=eur("1.50")), adgroup(cpc="1.25"),
         "deny", ["bid_daily_change_exceeds_limit"], changes=[prior("1.00", "1.25", 1, G_ADGROUP, "set_bid:cpc")]),
    # -- ads and brand rules -------------------------------------------------------------------------
    Case("clean paused ad", "anna", rsa("Zelte von Nordkamm"), None, "allow", ["within_policy"]),
    Case("ad going live needs approval", "anna", rsa("Zelte von Nordkamm", status="ENABLED"), None,
         "needs_approval", ["approval_required:publish-new-ad"]),
    Case("do-not-say term", "anna", rsa("Garantiert trocken"), None, "deny", ["brand_do_not_say"]),
    Case("do-not-say hidden by a zero-width space", "anna", rsa("Garan\u200btiert trocken"), None, "deny",
         ["brand_do_not_say"]),
    Case("forbidden claim", "anna", rsa("Nr. 1 für Zelte"), None, "deny", ["brand_forbidden_claim"]),
    Case("competitor name", "anna", rsa("Besser als Alpinfux"), None, "deny", ["brand_competitor"]),
    Case("meta ad with a forbidden claim", "eve",
         CreateAd(target=M_ADSET, reason="new meta ad",
                  ad=MetaAdCreative(primary_text="Die günstigste Jacke der Saison", headline="Jacken",
                                    link="https://www.nordkamm-outdoor.example/jacken")),
         None, "deny", ["brand_forbidden_claim"]),
    Case("negative keyword", "anna", AddNegativeKeyword(target=G_CAMPAIGN, reason="irrelevant", text="gratis"),
         campaign(), "allow", ["within_policy"]),
    # -- blackouts in the policy's timezone ----------------------------------------------------------
    Case("budget on Black Friday", "anna", budget("105"), campaign(), "needs_approval",
         ["blackout:black-friday-2026"], now=BERLIN_BLACK_FRIDAY),
    Case("pausing on Black Friday", "anna", SetStatus(target=G_CAMPAIGN, reason="out of stock", status="PAUSED"),
         campaign(), "allow", ["within_policy"], now=BERLIN_BLACK_FRIDAY),
    Case("last Cyber Monday minute in Berlin", "anna", budget("105"), campaign(), "needs_approval",
         ["blackout:black-friday-2026"], now=datetime(2026, 11, 30, 22, 59, tzinfo=UTC)),
    Case("Tuesday in Berlin, still Monday in UTC", "anna", budget("105"), campaign(), "allow",
         ["within_policy"], now=datetime(2026, 11, 30, 23, 1, tzinfo=UTC)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_evaluate(engine: PolicyEngine, case: Case) -> None:
    ctx = EvaluationContext(actor=case.actor, now=case.now, current=case.current, campaign=case.campaign,
                            account_currency=case.currency, changes_today=case.changes,
                            actions_in_run=case.in_run)
    verdict = engine.evaluate(case.action, ctx)
    assert verdict.decision == case.decision, verdict.explain()
    assert verdict.codes == case.codes, verdict.explain()
    assert verdict.policy_version == engine.version
    assert verdict.action_key == case.action.idempotency_key
    assert all(r.message for r in verdict.reasons)
    if case.message:
        assert case.message in verdict.explain()
    if case.approvers is not None:
        assert verdict.approvers == case.approvers
    if verdict.decision != "needs_approval":
        assert verdict.approvers == []
    assert verdict.allowed is (case.decision == "allow")


def test_version_is_the_sha256_of_the_file(engine: PolicyEngine) -> None:
    assert engine.version == hashlib.sha256(DEFAULT.read_bytes()).hexdigest()


def test_the_requester_is_never_listed_as_approver(engine: PolicyEngine) -> None:
    ctx = EvaluationContext(actor="ben", now=NOW, current=campaign(status="PAUSED"), account_currency="EUR")
    verdict = engine.evaluate(SetStatus(target=G_CAMPAIGN, reason="season", status="ENABLED"), ctx)
    assert verdict.decision == "deny" and "ben" not in verdict.approvers


@pytest.mark.parametrize("build", [
    lambda: SetBudget.model_construct(target=G_CAMPAIGN, reason="bypassed validation", kind="set_budget",
                                      idempotency_key="key-nan-0001",
                                      daily_budget=Money.model_construct(amount=Decimal("NaN"), currency="EUR")),
    lambda: SetBudget.model_construct(target=G_CAMPAIGN, reason="bypassed validation", kind="set_budget",
                                      idempotency_key="key-neg-0001",
                                      daily_budget=Money.model_construct(amount=Decimal("-50"), currency="EUR")),
    lambda: SetBudget.model_construct(target=G_CAMPAIGN, reason="bypassed validation", kind="set_budget",
                                      idempotency_key="key-inf-0001",
                                      daily_budget=Money.model_construct(amount=Decimal("Infinity"), currency="EUR")),
    lambda: SetBudget.model_construct(target=G_CAMPAIGN, reason="bypassed validation", kind="set_budget",
                                      idempotency_key="key-frac-001",
                                      daily_budget=Money.model_construct(amount=Decimal("100.001"), currency="EUR")),
    lambda: SetBudget.model_construct(target=G_CAMPAIGN, reason="bypassed validation", kind="set_budget",
                                      idempotency_key="key-float-01",
                                      daily_budget=Money.model_construct(amount=float("nan"), currency="EUR")),
    lambda: SetStatus.model_construct(target=G_CAMPAIGN, reason="bypassed validation", kind="set_status",
                                      idempotency_key="key-rem-0001", status="REMOVED"),
    lambda: {"kind": "set_status", "target": G_CAMPAIGN.model_dump(), "reason": "raw dict",
             "idempotency_key": "key-raw-0001", "status": "REMOVED"},
    lambda: {"kind": "delete_campaign", "target": G_CAMPAIGN.model_dump(), "reason": "raw dict"},
    lambda: "set_budget gc-001 1000000",
    lambda: None,
])
def test_actions_that_bypassed_validation_are_denied(engine: PolicyEngine, build: Any) -> None:
    ctx = EvaluationContext(actor="ben", now=NOW, current=campaign(), account_currency="EUR")
    verdict = engine.evaluate(build(), ctx)
    assert verdict.decision == "deny"
    assert verdict.codes == ["invalid_action"]


def test_a_valid_raw_dict_is_judged_like_the_action(engine: PolicyEngine) -> None:
    action = budget("105")
    ctx = EvaluationContext(actor="anna", now=NOW, current=campaign(), account_currency="EUR")
    assert engine.evaluate(action.model_dump(mode="json"), ctx).decision == "allow"  # type: ignore[arg-type]


def test_a_context_that_bypassed_validation_is_denied(engine: PolicyEngine) -> None:
    naive = EvaluationContext.model_construct(actor="anna", now=datetime(2026, 12, 4, 12), current=campaign(),
                                              campaign=None, account_currency="EUR", changes_today=[],
                                              actions_in_run=0)
    assert engine.evaluate(budget("105"), naive).codes == ["invalid_context"]
    negative = EvaluationContext.model_construct(actor="anna", now=NOW, current=campaign(), campaign=None,
                                                 account_currency="EUR", changes_today=[], actions_in_run=-5)
    assert engine.evaluate(budget("105"), negative).codes == ["invalid_context"]
    bad_current = EvaluationContext.model_construct(
        actor="anna", now=NOW, campaign=None, account_currency="EUR", changes_today=[], actions_in_run=0,
        current=Entity.model_construct(ref=G_CAMPAIGN, name="x", status="ENABLED", parent=None,
                                       daily_budget=Money.model_construct(amount=Decimal("NaN"), currency="EUR")))
    assert engine.evaluate(budget("105"), bad_current).codes == ["invalid_context"]


def test_deny_all_engine_denies_everything() -> None:
    engine = PolicyEngine.deny_all("broken file")
    ctx = EvaluationContext(actor="anna", now=NOW, current=campaign(), account_currency="EUR")
    verdict = engine.evaluate(budget("101"), ctx)
    assert verdict.decision == "deny" and verdict.codes == ["policy_unavailable"]
    assert "broken file" in verdict.explain()
    assert engine.check_approval(approver="ben", requester="anna", now=NOW, requested_at=NOW).codes == [
        "policy_unavailable"]
    assert engine.approvers() == [] and not engine.available


def test_load_engine_never_raises(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("schema_version: 1\nname: x\nlimits: [\n")
    engine = load_engine(broken)
    assert not engine.available
    verdict = engine.evaluate(budget("101"), EvaluationContext(actor="anna", now=NOW, current=campaign(),
                                                               account_currency="EUR"))
    assert verdict.codes == ["policy_unavailable"] and "broken.yaml:4: YAML syntax error" in verdict.explain()
    assert not load_engine(tmp_path / "missing.yaml").available
    assert load_engine(DEFAULT).available


def test_an_engine_bug_fails_closed(engine: PolicyEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError

    monkeypatch.setattr(engine, "_check_kind", boom)
    ctx = EvaluationContext(actor="anna", now=NOW, current=campaign(), account_currency="EUR")
    assert engine.evaluate(budget("101"), ctx).codes == ["evaluation_error"]


APPROVALS = [
    ("ben approves anna", "ben", "anna", NOW, NOW - timedelta(hours=2), "allow", ["approval_valid"]),
    ("ben approves svc", "ben", "svc-optimizer", NOW, NOW - timedelta(hours=23), "allow", ["approval_valid"]),
    ("own run", "ben", "ben", NOW, NOW, "deny", ["self_approval"]),
    ("own run, other spelling", "ben", " BEN ", NOW, NOW, "deny", ["self_approval"]),
    ("not an approver", "anna", "ben", NOW, NOW, "deny", ["not_an_approver"]),
    ("service identity", "svc-optimizer", "anna", NOW, NOW, "deny", ["service_cannot_approve"]),
    ("unknown approver", "mallory", "anna", NOW, NOW, "deny", ["unknown_approver"]),
    ("expired", "ben", "anna", NOW, NOW - timedelta(hours=24, minutes=1), "deny", ["approval_expired"]),
    ("dated in the future", "ben", "anna", NOW, NOW + timedelta(minutes=5), "deny", ["approval_time_invalid"]),
    ("naive time", "ben", "anna", datetime(2026, 12, 4, 12), NOW, "deny", ["approval_time_invalid"]),
]


@pytest.mark.parametrize(("approver", "requester", "now", "requested_at", "decision", "codes"),
                         [a[1:] for a in APPROVALS], ids=[a[0] for a in APPROVALS])
def test_check_approval(engine: PolicyEngine, approver: str, requester: str, now: datetime,
                        requested_at: datetime, decision: str, codes: list[str]) -> None:
    verdict = engine.check_approval(approver=approver, requester=requester, now=now, requested_at=requested_at)
    assert verdict.decision == decision, verdict.explain()
    assert verdict.codes == codes
    assert verdict.policy_version == engine.version


def test_introspection(engine: PolicyEngine) -> None:
    assert engine.approvers() == ["ben"]
    assert engine.allowed_kinds("svc-optimizer") == ["add_negative_keyword", "set_bid", "set_budget", "set_status"]
    assert engine.allowed_kinds("nobody") == []
    assert "Nordkamm" in engine.brand_rules.brand_names
    assert "Alpinfux" in engine.brand_rules.competitors
    assert engine.brand_rules.violations("Zelte von Nordkamm") == []


def test_change_kind_keeps_bid_types_apart() -> None:
    assert change_kind(budget("100")) == "set_budget"
    bid = SetBid(target=G_ADGROUP, reason="raise bid", bid_type="target_cpa", amount=eur("10"))
    assert change_kind(bid) == "set_bid:target_cpa"


SCOPED = DEFAULT.read_text().replace(
    '''    scope:
      - accounts: ["act_1001"]
''', '''    scope:
      - accounts: ["1234567890"]
        campaign_ids: ["gc-002"]
        campaign_names: ["Sommer.*"]
''')


@pytest.mark.parametrize(("target_campaign", "given", "decision"), [
    (campaign(name="Sommer Sale"), True, "allow"),
    (campaign(name="Sale Sommer"), True, "deny"),       # the whole name must match
    (campaign(EntityRef(platform="google", account_id="1234567890", kind="campaign", id="gc-002"),
              name="Search | Zelte"), True, "allow"),
    (campaign(EntityRef(platform="google", account_id="1234567890", kind="campaign", id="gc-003"),
              name="Search | Jacken"), True, "deny"),
    (campaign(name="Sommer Sale"), False, "deny"),      # the scope needs the campaign to decide
])
def test_campaign_scope(target_campaign: Entity, given: bool, decision: str) -> None:
    assert DEFAULT.read_text() != SCOPED
    loaded = parse_policy(SCOPED.encode(), "scoped.yaml")
    engine = PolicyEngine(loaded)
    action = SetBid(target=G_ADGROUP, reason="raise bid", bid_type="cpc", amount=eur("1.10"))
    ctx = EvaluationContext(actor="eve", now=NOW, current=adgroup(parent=target_campaign.ref),
                            campaign=target_campaign if given else None, account_currency="EUR")
    verdict = engine.evaluate(action, ctx)
    assert verdict.decision == decision, verdict.explain()
    if decision == "deny":
        assert verdict.codes == ["out_of_scope"]
