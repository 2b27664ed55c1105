"""Property tests: whatever the inputs, the policy gate only lets through what the policy allows."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from agent.domain import (
    ACTION_KINDS,
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
from policies import EvaluationContext, PolicyEngine, PriorChange, change_kind, parse_policy

DEFAULT = Path(__file__).resolve().parent.parent / "policies" / "default.yaml"
ENGINE = PolicyEngine.load(DEFAULT)
POLICY = ENGINE.policy
assert POLICY is not None
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ACCOUNTS = {"google": ["1234567890", "9999999999"], "meta": ["act_1001", "act_2002"]}
ACTORS = ["anna", "ben", "eve", "svc-optimizer"]

# Amounts a model or a buggy caller might send: sane values, units confused with cents and micros,
# zero, negatives, huge, NaN and infinities, too many decimals.
SANE = st.decimals(min_value=Decimal("0.05"), max_value=Decimal("300"), places=2)
AMOUNTS = st.one_of(
    SANE, SANE,
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("10000"), places=2),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("10000"), places=2).map(lambda d: d * 100),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("10000"), places=2).map(lambda d: d * 1_000_000),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from([Decimal(0), Decimal("-1"), Decimal("-0.01"), Decimal("1e30"), Decimal("1e8"),
                     Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), Decimal("0.001")]),
)
CURRENCIES = st.sampled_from(["EUR", "EUR", "EUR", "USD", "CHF", "JPY"])


# Target kinds each action kind accepts; other kinds are drawn too, less often, to hit domain refusals.
TARGET_KINDS = {
    "set_budget": ("campaign", "ad_group"), "set_status": ("campaign", "ad_group", "ad", "keyword"),
    "set_bid": ("campaign", "ad_group", "keyword"), "create_ad": ("ad_group",),
    "add_negative_keyword": ("campaign", "ad_group"),
}


@st.composite
def refs(draw: st.DrawFn, kinds: tuple[str, ...] = ("campaign", "ad_group", "ad", "keyword")) -> EntityRef:
    platform = draw(st.sampled_from(["google", "google", "meta"]))
    account = draw(st.sampled_from([ACCOUNTS[platform][0]] * 3 + ACCOUNTS[platform][1:]))
    if draw(st.integers(0, 9)) == 0:
        kinds = ("campaign", "ad_group", "ad", "keyword")
    return EntityRef(platform=platform, account_id=account, kind=draw(st.sampled_from(kinds)),
                     id=draw(st.sampled_from(["gc-001", "x-1", "mas-0001"])))


def money(amount: Decimal, currency: str) -> Money:
    """A Money, built without validation when validation refuses it (as a buggy caller might)."""
    try:
        return Money(amount=amount, currency=currency)
    except ValidationError:
        return Money.model_construct(amount=amount, currency=currency)


def build(cls: Any, **fields: Any) -> Any:
    """The action, or an unvalidated copy of it when the domain refuses it."""
    fields.setdefault("reason", "property test")
    try:
        return cls(**fields)
    except (ValidationError, ArithmeticError):  # a constructed NaN Money trips Decimal comparisons
        return cls.model_construct(idempotency_key="prop-key-0001", **fields)


@st.composite
def actions(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(ACTION_KINDS))
    target = draw(refs(TARGET_KINDS[kind]))
    if kind == "set_budget":
        return build(SetBudget, target=target, daily_budget=money(draw(AMOUNTS), draw(CURRENCIES)))
    if kind == "set_status":
        return build(SetStatus, target=target, status=draw(st.sampled_from(["ENABLED", "PAUSED", "REMOVED",
                                                                              "ARCHIVED"])))
    if kind == "set_bid":
        bid_type = draw(st.sampled_from(["cpc", "target_cpa", "target_roas"]))
        if bid_type == "target_roas":
            return build(SetBid, target=target, bid_type=bid_type, target_roas=draw(AMOUNTS))
        return build(SetBid, target=target, bid_type=bid_type, amount=money(draw(AMOUNTS), draw(CURRENCIES)))
    if kind == "create_ad":
        text = draw(st.sampled_from(["Zelte von Nordkamm", "Garantiert trocken", "Besser als Alpinfux",
                                     "Nr. 1 für Zelte", "Jacken im Sale"]))
        ad: Any = (GoogleResponsiveSearchAd(headlines=[text, "Jetzt bestellen", "Versand in 24 Stunden"],
                                            descriptions=["Zelte für jede Tour.", "Kostenlose Rücksendung."],
                                            final_url="https://www.nordkamm-outdoor.example/")
                   if target.platform == "google" else
                   MetaAdCreative(primary_text=text, headline="Neu", link="https://www.nordkamm-outdoor.example/"))
        return build(CreateAd, target=target, ad=ad, status=draw(st.sampled_from(["ENABLED", "PAUSED"])))
    return build(AddNegativeKeyword, target=target, text=draw(st.sampled_from(["gratis", "gebraucht"])))


@st.composite
def contexts(draw: st.DrawFn, action: Any, actors: st.SearchStrategy[str]) -> EvaluationContext:
    target = getattr(action, "target", None)
    current = None
    if target is not None and draw(st.integers(0, 3)) > 0:
        # Usually near the proposed value (so limits decide), sometimes anywhere.
        values = [v for v in (getattr(getattr(action, "daily_budget", None), "amount", None),
                              getattr(getattr(action, "amount", None), "amount", None),
                              getattr(action, "target_roas", None)) if isinstance(v, Decimal)]
        near = values[0] if values and values[0].is_finite() and 0 < values[0] < 10_000 else None

        def value(low: str, high: str) -> Decimal | None:
            if near is not None and draw(st.booleans()):
                factor = draw(st.decimals(min_value=Decimal("0.75"), max_value=Decimal("1.3"), places=2))
                return max(Decimal("0.01"), (near * factor).quantize(Decimal("0.01")))
            return draw(st.none() | st.decimals(min_value=Decimal(low), max_value=Decimal(high), places=2))

        budget, cpc, roas = value("0.01", "6000"), value("0.01", "30"), value("0.1", "30")
        current = Entity(ref=target, name=draw(st.sampled_from(["Sommer Sale", "Search | Zelte"])),
                         status=draw(st.sampled_from(["ENABLED", "ENABLED", "PAUSED", "REMOVED"])),
                         daily_budget=Money.of(budget, "EUR") if budget is not None else None,
                         cpc_bid=Money.of(cpc, "EUR") if cpc is not None else None,
                         target_cpa=Money.of(cpc, "EUR") if cpc is not None else None,
                         target_roas=roas)
    return EvaluationContext(actor=draw(actors), now=NOW, current=current,
                             account_currency=draw(st.sampled_from(["EUR", "EUR", "USD", None])),
                             actions_in_run=draw(st.integers(min_value=0, max_value=60)))


ANY_ACTOR = st.one_of(st.sampled_from([*ACTORS, "Anna", "ben ", "mallory", "", "svc_optimizer"]), st.text(max_size=12))


def _valid(action: Any) -> bool:
    try:
        type(action).model_validate(action.model_dump(warnings=False))
    except (ValidationError, ValueError, TypeError, ArithmeticError):
        return False
    return True


@PROPS
@given(data=st.data())
def test_what_passes_respects_every_rule(data: st.DataObject) -> None:
    action = data.draw(actions())
    ctx = data.draw(contexts(action, ANY_ACTOR))
    verdict = ENGINE.evaluate(action, ctx)
    assert verdict.reasons and verdict.policy_version == ENGINE.version
    if verdict.decision == "deny":
        return
    # Anything not denied must satisfy every rule, checked here independently of the engine.
    assert _valid(action)
    actor = POLICY.actors[ctx.actor]
    assert action.kind in {k for r in actor.roles for k in POLICY.roles[r].actions}
    assert any(action.target.account_id in grant.accounts for grant in actor.scope)
    assert ctx.actions_in_run < POLICY.limits.max_actions_per_run
    assert ctx.current is None or ctx.current.status != "REMOVED"
    if isinstance(action, SetBudget):
        assert ctx.current is not None and ctx.current.daily_budget is not None
        new, cur = action.daily_budget.amount, ctx.current.daily_budget.amount
        assert action.daily_budget.currency == ctx.account_currency == "EUR"
        assert POLICY.limits.currencies["EUR"].min_daily_budget <= new <= POLICY.limits.currencies[
            "EUR"].max_daily_budget
        assert abs(new - cur) <= cur * POLICY.limits.budget.max_change_pct / 100
    if isinstance(action, SetBid) and action.bid_type == "cpc":
        assert ctx.current is not None and ctx.current.cpc_bid is not None and action.amount is not None
        assert action.amount.currency == ctx.account_currency == "EUR"
        caps = POLICY.limits.currencies["EUR"]
        assert caps.cpc_floor <= action.amount.amount <= caps.cpc_ceiling
        assert abs(action.amount.amount - ctx.current.cpc_bid.amount) <= (
            ctx.current.cpc_bid.amount * POLICY.limits.bid.max_change_pct / 100)
    if isinstance(action, SetStatus):
        assert action.status in ("ENABLED", "PAUSED") and ctx.current is not None
    if isinstance(action, CreateAd):
        texts = (action.ad.headlines if isinstance(action.ad, GoogleResponsiveSearchAd) else [action.ad.primary_text])
        assert all(not ENGINE.brand_rules.violations(t) for t in texts)
    if verdict.decision == "needs_approval":
        assert verdict.approvers and ctx.actor not in verdict.approvers


@functools.cache
def _whitelist_engine(allowed: frozenset[str]) -> PolicyEngine:
    text = DEFAULT.read_text().replace(
        "    actions: [set_budget, set_status, set_bid, create_ad, add_negative_keyword]",
        f"    actions: [{', '.join(sorted(allowed))}]", 1)
    engine = PolicyEngine(parse_policy(text.encode(), "whitelist.yaml"))
    assert engine.allowed_kinds("anna") == sorted(allowed)
    return engine


@st.composite
def whitelist_policies(draw: st.DrawFn) -> tuple[PolicyEngine, set[str]]:
    allowed = frozenset(draw(st.sets(st.sampled_from(ACTION_KINDS))))
    return _whitelist_engine(allowed), set(allowed)


@PROPS
@given(data=st.data())
def test_nothing_outside_the_whitelist_is_ever_allowed(data: st.DataObject) -> None:
    engine, allowed = data.draw(whitelist_policies())
    action = data.draw(actions())
    ctx = data.draw(contexts(action, st.just("anna")))  # anna holds campaign_manager only
    verdict = engine.evaluate(action, ctx)
    if getattr(action, "kind", None) not in allowed:
        assert verdict.decision == "deny"


@PROPS
@given(amount=AMOUNTS, currency=CURRENCIES, current=st.decimals(min_value=Decimal("1"), max_value=Decimal("5000"),
                                                                places=2))
def test_bad_amounts_are_denied(amount: Decimal, currency: str, current: Decimal) -> None:
    ref = EntityRef(platform="google", account_id="1234567890", kind="campaign", id="gc-001")
    action = build(SetBudget, target=ref, daily_budget=money(amount, currency))
    entity = Entity(ref=ref, name="Sommer Sale", status="ENABLED", daily_budget=Money.of(current, "EUR"))
    verdict = ENGINE.evaluate(action, EvaluationContext(actor="ben", now=NOW, current=entity, campaign=entity,
                                                        account_currency="EUR"))
    sane = (amount.is_finite() and 0 < amount <= Decimal("1e8") and amount == amount.quantize(Decimal("0.01"))
            and currency == "EUR")
    if not sane:
        assert verdict.decision == "deny"
    elif amount >= current * 100 or amount * 100 <= current:
        assert verdict.codes == ["unit_confusion"]
    if verdict.decision != "deny":
        assert abs(amount - current) <= current * Decimal("0.2")


@PROPS
@given(cents_or_micros=st.sampled_from([100, 1_000_000]),
       current=st.decimals(min_value=Decimal("1"), max_value=Decimal("5000"), places=2))
def test_a_budget_in_minor_units_is_never_applied(cents_or_micros: int, current: Decimal) -> None:
    ref = EntityRef(platform="meta", account_id="act_1001", kind="ad_group", id="mas-0001")
    entity = Entity(ref=ref, name="Zelte", status="ENABLED", daily_budget=Money.of(current, "EUR"))
    action = SetBudget(target=ref, reason="same budget, wrong unit", daily_budget=Money.of(current * cents_or_micros
                                                                                            if current * cents_or_micros
                                                                                            <= Decimal("1e8")
                                                                                            else Decimal("1e8"), "EUR"))
    verdict = ENGINE.evaluate(action, EvaluationContext(actor="anna", now=NOW, current=entity,
                                                        account_currency="EUR"))
    assert verdict.decision == "deny"


@PROPS
@given(steps=st.lists(st.decimals(min_value=Decimal("-20"), max_value=Decimal("20"), places=1), min_size=1,
                      max_size=15),
       gaps=st.lists(st.integers(min_value=1, max_value=120), min_size=15, max_size=15),
       actor=st.sampled_from(["anna", "ben", "svc-optimizer"]),
       start=st.decimals(min_value=Decimal("20"), max_value=Decimal("3000"), places=2))
def test_splitting_cannot_beat_the_daily_limit(steps: list[Decimal], gaps: list[int], actor: str,
                                               start: Decimal) -> None:
    """Apply every step the policy does not deny (treating approvals as granted) within 24 hours: the
    net change never exceeds the daily limit."""
    ref = EntityRef(platform="google", account_id="1234567890", kind="campaign", id="gc-001")
    value, history = start, []
    at = NOW - timedelta(hours=23)
    daily = POLICY.limits.budget.max_daily_change_pct
    for step, gap in zip(steps, gaps, strict=False):
        at += timedelta(minutes=gap)
        new = (value * (1 + step / 100)).quantize(Decimal("0.01"))
        assume(new > 0)
        entity = Entity(ref=ref, name="Sommer Sale", status="ENABLED", daily_budget=Money.of(value, "EUR"))
        action = SetBudget(target=ref, reason="one more small step", daily_budget=Money.of(new, "EUR"))
        verdict = ENGINE.evaluate(action, EvaluationContext(actor=actor, now=at, current=entity,
                                                            account_currency="EUR", changes_today=history))
        if verdict.decision != "deny":
            history.append(PriorChange(target=ref.key(), kind=change_kind(action), before=value, after=new, at=at))
            value = new
        assert abs(value - start) <= start * daily / 100


@PROPS
@given(name=st.sampled_from(ACTORS) | st.text(max_size=10), spelling=st.sampled_from([str, str.upper, " {} ".format]),
       age=st.integers(min_value=0, max_value=48 * 60))
def test_nobody_approves_their_own_run(name: str, spelling: Any, age: int) -> None:
    verdict = ENGINE.check_approval(approver=name, requester=spelling(name), now=NOW,
                                    requested_at=NOW - timedelta(minutes=age))
    assert verdict.decision == "deny"


@PROPS
@given(approver=st.sampled_from(ACTORS) | st.text(max_size=10), requester=st.sampled_from(ACTORS),
       age=st.integers(min_value=-600, max_value=48 * 60))
def test_only_fresh_approvals_by_a_second_approver_count(approver: str, requester: str, age: int) -> None:
    verdict = ENGINE.check_approval(approver=approver, requester=requester, now=NOW,
                                    requested_at=NOW - timedelta(minutes=age))
    if verdict.allowed:
        assert approver in ENGINE.approvers() and approver != requester
        assert 0 <= age <= 24 * 60


@PROPS
@given(data=st.data())
def test_an_actor_never_acts_outside_its_scope(data: st.DataObject) -> None:
    action = data.draw(actions())
    actor = data.draw(st.sampled_from(ACTORS))
    ctx = data.draw(contexts(action, st.just(actor)))
    target = getattr(action, "target", None)
    scope = {a for grant in POLICY.actors[actor].scope for a in grant.accounts}
    if target is not None and target.account_id not in scope:
        assert ENGINE.evaluate(action, ctx).decision == "deny"


@PROPS
@given(data=st.data())
def test_a_deny_all_engine_denies_everything(data: st.DataObject) -> None:
    engine = PolicyEngine.deny_all("cannot read policy")
    action = data.draw(actions())
    ctx = data.draw(contexts(action, ANY_ACTOR))
    assert engine.evaluate(action, ctx).codes == ["policy_unavailable"]
