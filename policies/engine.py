"""The policy engine: a pure function from (action, context) to a verdict.

No I/O happens in ``evaluate``: everything it needs (the platform's fresh read of the target, the
changes already applied in the last 24 hours, the run's action count) arrives in the
``EvaluationContext``. The planner calls it when an action is proposed and the executor calls it
again right before each platform call.

Fail closed everywhere: an unknown actor, a kind no role whitelists, a target outside the actor's
scope, a current value that cannot be verified, an action that bypassed validation, or an error
inside the engine itself are all ``deny``. Percentages are computed only from ``ctx.current`` (the
platform's value), never from a baseline a model or caller supplies.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from agent.domain import (
    Action,
    AddNegativeKeyword,
    CreateAd,
    Entity,
    EntityKind,
    GoogleResponsiveSearchAd,
    Money,
    SetBid,
    SetBudget,
    SetStatus,
)
from policies.loader import LoadedPolicy, PolicyLoadError, load_policy
from policies.model import ApprovalRule, BrandRules, CurrencyLimits, Policy, Reason

__all__ = [
    "EvaluationContext",
    "PolicyEngine",
    "PolicyLoadError",
    "PriorChange",
    "Reason",
    "Verdict",
    "change_kind",
    "load_engine",
]

UNAVAILABLE_VERSION = "unavailable"
DAY = timedelta(hours=24)

_ACTION = TypeAdapter(Action)


class Verdict(BaseModel):
    """The engine's decision on one action (or one approval)."""

    model_config = ConfigDict(frozen=True)

    decision: Literal["allow", "deny", "needs_approval"]
    reasons: list[Reason] = Field(min_length=1)
    policy_version: str = Field(description="sha256 of the policy file that decided, to replay the decision.")
    action_key: str = Field(description="The action's idempotency key ('' for approval checks).")
    approvers: list[str] = Field(default_factory=list, description="Who may approve, when needs_approval.")

    @property
    def allowed(self) -> bool:
        """True only for ``allow``."""
        return self.decision == "allow"

    @property
    def codes(self) -> list[str]:
        """The reason codes, for tests and machines."""
        return [r.code for r in self.reasons]

    def explain(self) -> str:
        """The reasons as one line."""
        return "; ".join(r.message for r in self.reasons)


class PriorChange(BaseModel):
    """A change already applied to a target (from the audit log), for the 24-hour cumulative limit."""

    model_config = ConfigDict(frozen=True)

    target: str = Field(description="EntityRef.key() of the changed entity.")
    kind: str = Field(description="change_kind(action): set_budget, set_bid:cpc, set_bid:target_roas...")
    before: Decimal | None = Field(description="Value before the change (main currency unit or ratio).")
    after: Decimal | None = Field(description="Value after the change.")
    at: datetime = Field(description="When it was applied (timezone-aware).")

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("at must be timezone-aware")
        return value.astimezone(UTC)


class EvaluationContext(BaseModel):
    """Everything ``evaluate`` may know besides the action itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    actor: str = Field(description="Who proposes or executes the action.")
    now: datetime = Field(description="Evaluation time, timezone-aware.")
    current: Entity | None = Field(default=None, description="The target read fresh from the platform.")
    campaign: Entity | None = Field(default=None, description="The campaign containing the target.")
    account_currency: str | None = Field(default=None, description="Currency of the target's account.")
    changes_today: list[PriorChange] = Field(default_factory=list,
                                             description="Changes applied in the last 24 hours.")
    actions_in_run: int = Field(default=0, ge=0, description="Actions of this run evaluated before this one.")

    @field_validator("now")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("now must be timezone-aware")
        return value.astimezone(UTC)


def change_kind(action: SetBudget | SetBid | SetStatus | CreateAd | AddNegativeKeyword) -> str:
    """The ``PriorChange.kind`` to record for ``action``: bid types are kept apart (a CPC in euros and a
    ROAS ratio must never be compared)."""
    if isinstance(action, SetBid):
        return f"set_bid:{action.bid_type}"
    return action.kind


@dataclass(frozen=True)
class _Measure:
    """One numeric value an action changes: what it is called, the limits that bound it."""

    label: str              # "budget", "CPC bid", "target CPA", "target ROAS"
    code: str               # reason-code prefix: "budget" or "bid"
    new: Decimal
    currency: str | None    # None for ratios (target ROAS)
    current: Decimal | None
    current_currency: str | None
    floor: Decimal | None
    ceiling: Decimal | None
    max_change_pct: Decimal
    max_daily_change_pct: Decimal


@dataclass(frozen=True)
class _Change:
    """The verified numbers of a budget or bid action, for approval rules."""

    new: Decimal
    current: Decimal
    pct: Decimal
    currency: str | None
    raises_spend: bool


def _pct(new: Decimal, base: Decimal) -> Decimal:
    return (new - base) / base * 100


def _fmt_pct(value: Decimal) -> str:
    """``+35%``, ``-12.5%``, ``0%``: signed, at most one decimal."""
    text = _fmt_limit(value.quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN).copy_abs())
    return "0%" if text == "0" else f"{'+' if value > 0 else '-'}{text}%"


def _fmt_limit(value: Decimal) -> str:
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _fmt_ratio(value: Decimal) -> str:
    return _fmt_limit(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN)) if value >= 10 else _fmt_limit(
        value.quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN))


def _fmt_value(value: Decimal, currency: str | None) -> str:
    if currency is None:
        return _fmt_limit(value)
    try:
        return str(Money(amount=value, currency=currency))
    except ValueError:
        return f"{value:f} {currency}"


def _fold(name: str) -> str:
    return name.strip().casefold()


def _deny(code: str, message: str) -> Reason:
    return Reason(code=code, message=message)


class PolicyEngine:
    """A compiled policy. ``evaluate`` and ``check_approval`` are pure and never raise."""

    def __init__(self, loaded: LoadedPolicy | None, *, unavailable: str | None = None) -> None:
        self._loaded = loaded
        self.load_error = unavailable
        self.version = loaded.version if loaded else UNAVAILABLE_VERSION
        self.brand_rules: BrandRules = loaded.policy.brand if loaded else BrandRules()
        self._tz = ZoneInfo(loaded.policy.timezone) if loaded else UTC

    # -- construction -----------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path) -> PolicyEngine:
        """Compile the policy at ``path``; raises ``PolicyLoadError`` ("file:line: message")."""
        return cls(load_policy(path))

    @classmethod
    def deny_all(cls, reason: str) -> PolicyEngine:
        """An engine that denies every action: what runs when the policy cannot be loaded."""
        return cls(None, unavailable=" ".join(str(reason).split()) or "no policy loaded")

    # -- introspection ----------------------------------------------------------------------------

    @property
    def available(self) -> bool:
        """False for a deny-all engine."""
        return self._loaded is not None

    @property
    def policy(self) -> Policy | None:
        """The validated policy (None for a deny-all engine)."""
        return self._loaded.policy if self._loaded else None

    @property
    def source(self) -> str:
        """Where the policy was read from."""
        return self._loaded.source if self._loaded else ""

    def approvers(self) -> list[str]:
        """Actors who may approve (persons holding a role with ``approve: true``), sorted."""
        policy = self.policy
        if policy is None:
            return []
        approving = {name for name, role in policy.roles.items() if role.approve}
        return sorted(name for name, actor in policy.actors.items()
                      if actor.kind == "person" and approving & set(actor.roles))

    def allowed_kinds(self, actor: str) -> list[str]:
        """The action kinds ``actor``'s roles whitelist (empty for unknown actors)."""
        policy = self.policy
        found = policy.actors.get(actor) if policy else None
        if policy is None or found is None:
            return []
        return sorted({kind for role in found.roles if role in policy.roles for kind in policy.roles[role].actions})

    # -- verdicts ---------------------------------------------------------------------------------

    def _verdict(self, decision: Literal["allow", "deny", "needs_approval"], reasons: list[Reason], key: str,
                 approvers: list[str] | None = None) -> Verdict:
        return Verdict(decision=decision, reasons=reasons, policy_version=self.version, action_key=key,
                       approvers=approvers or [])

    def evaluate(self, action: Action, ctx: EvaluationContext) -> Verdict:
        """Decide ``action`` in ``ctx``: allow, deny or needs_approval, with reasons. Never raises."""
        key = _key_of(action)
        try:
            return self._evaluate(action, ctx, key)
        except Exception as exc:  # the gate fails closed: an engine bug must deny, not allow
            return self._verdict("deny", [_deny("evaluation_error",
                                                f"the policy could not evaluate this action ({type(exc).__name__})")],
                                 key)

    def _evaluate(self, raw_action: Any, raw_ctx: Any, key: str) -> Verdict:
        policy = self.policy
        if policy is None:
            return self._verdict("deny", [_deny(
                "policy_unavailable", f"no valid policy is loaded, so nothing may change: {self.load_error}")], key)
        action = _revalidate_action(raw_action)
        if isinstance(action, Reason):
            return self._verdict("deny", [action], key)
        ctx = _revalidate_context(raw_ctx)
        if isinstance(ctx, Reason):
            return self._verdict("deny", [ctx], key)

        actor = policy.actors.get(ctx.actor)
        if actor is None:
            return self._verdict("deny", [_deny("unknown_actor",
                                                f"{ctx.actor!r} is not an actor in policy {policy.name!r}")], key)
        if action.kind not in self.allowed_kinds(ctx.actor):
            roles = ", ".join(actor.roles)
            return self._verdict("deny", [_deny("action_not_allowed",
                                                f"{ctx.actor}'s roles ({roles}) do not allow {action.kind}")], key)
        mismatch = _context_mismatch(action, ctx)
        if mismatch:
            return self._verdict("deny", [mismatch], key)
        if not self._in_scope(ctx.actor, action, ctx):
            return self._verdict("deny", [_deny("out_of_scope",
                                                f"{action.target.key()} is outside {ctx.actor}'s scope")], key)
        for entity, what in ((ctx.current, "the target"), (ctx.campaign, "its campaign")):
            if entity is not None and entity.status == "REMOVED":
                return self._verdict("deny", [_deny("target_removed",
                                                    f"{what} {entity.ref.id} is removed and cannot be changed")], key)
        if ctx.actions_in_run >= policy.limits.max_actions_per_run:
            return self._verdict("deny", [_deny(
                "run_limit_exceeded",
                f"this would be action {ctx.actions_in_run + 1} of the run; the limit is "
                f"{policy.limits.max_actions_per_run} actions per run")], key)

        reasons, change = self._check_kind(action, ctx, policy)
        if reasons:
            return self._verdict("deny", reasons, key)

        needs = self._approval_reasons(action, ctx, policy, change)
        denied_by_blackout = [r for r in needs if r.code.startswith("blackout_deny")]
        if denied_by_blackout:
            return self._verdict("deny", denied_by_blackout, key)
        if needs:
            approvers = [a for a in self.approvers() if _fold(a) != _fold(ctx.actor)]
            if not approvers:
                return self._verdict("deny", [*needs, _deny("no_approver",
                                                            "it needs approval but nobody else may approve it")], key)
            return self._verdict("needs_approval", needs, key, approvers)
        return self._verdict("allow", [Reason(code="within_policy",
                                              message=f"{ctx.actor} may {action.describe()} under policy "
                                                      f"{policy.name!r}")], key)

    # -- scope --------------------------------------------------------------------------------------

    def _in_scope(self, actor_name: str, action: Any, ctx: EvaluationContext) -> bool:
        policy = self.policy
        assert policy is not None
        target = action.target
        if ctx.campaign is not None:
            campaign_id: str | None = ctx.campaign.ref.id
            campaign_name: str | None = ctx.campaign.name
        else:
            campaign_id = target.id if target.kind is EntityKind.CAMPAIGN else None
            campaign_name = None
        for grant in policy.actors[actor_name].scope:
            if target.account_id not in grant.accounts:
                continue
            if not grant.restricts_campaigns:
                return True
            if campaign_id is not None and campaign_id in grant.campaign_ids:
                return True
            if campaign_name is not None and any(_fullmatch(p, campaign_name) for p in grant.campaign_names):
                return True
        return False

    # -- per-kind checks --------------------------------------------------------------------------

    def _check_kind(self, action: Any, ctx: EvaluationContext, policy: Policy) -> tuple[list[Reason], _Change | None]:
        if isinstance(action, SetBudget | SetBid):
            measure = self._measure(action, ctx, policy)
            if isinstance(measure, Reason):
                return [measure], None
            return self._check_measure(measure, action, ctx, policy)
        if isinstance(action, SetStatus):
            if ctx.current is None:
                return [_deny("current_value_unknown",
                              f"cannot verify the current status of {action.target.kind} {action.target.id}")], None
            if action.status not in ("ENABLED", "PAUSED"):
                return [_deny("invalid_status", f"status {action.status!r} can never be set")], None
            return [], None
        if isinstance(action, CreateAd):
            texts = (list(action.ad.headlines) + list(action.ad.descriptions)
                     + [action.ad.path1 or "", action.ad.path2 or ""]
                     if isinstance(action.ad, GoogleResponsiveSearchAd)
                     else [action.ad.primary_text, action.ad.headline, action.ad.description])
            found: list[Reason] = []
            for text in texts:
                for reason in self.brand_rules.violations(text):
                    if reason not in found:
                        found.append(reason)
            return found, None
        if isinstance(action, AddNegativeKeyword):
            return [], None
        return [_deny("action_not_allowed", f"unknown action kind {getattr(action, 'kind', '?')!r}")], None

    def _measure(self, action: SetBudget | SetBid, ctx: EvaluationContext, policy: Policy) -> _Measure | Reason:
        """What the action changes, its current value from the platform and the limits that apply."""
        current = ctx.current
        if isinstance(action, SetBudget):
            money = action.daily_budget
            caps = self._caps(money.currency, ctx)
            if isinstance(caps, Reason):
                return caps
            now = current.daily_budget if current else None
            return _Measure("budget", "budget", money.amount, money.currency,
                            now.amount if now else None, now.currency if now else None,
                            caps.min_daily_budget, caps.max_daily_budget,
                            policy.limits.budget.max_change_pct, policy.limits.budget.max_daily_change_pct)
        bid = policy.limits.bid
        if action.bid_type == "target_roas":
            assert action.target_roas is not None
            return _Measure("target ROAS", "bid", action.target_roas, None,
                            current.target_roas if current else None, None,
                            bid.target_roas_min, bid.target_roas_max, bid.max_change_pct, bid.max_daily_change_pct)
        assert action.amount is not None
        caps = self._caps(action.amount.currency, ctx)
        if isinstance(caps, Reason):
            return caps
        if action.bid_type == "cpc":
            now = current.cpc_bid if current else None
            label, floor, ceiling = "CPC bid", caps.cpc_floor, caps.cpc_ceiling
        else:
            now = current.target_cpa if current else None
            label, floor, ceiling = "target CPA", caps.target_cpa_floor, caps.target_cpa_ceiling
        return _Measure(label, "bid", action.amount.amount, action.amount.currency,
                        now.amount if now else None, now.currency if now else None,
                        floor, ceiling, bid.max_change_pct, bid.max_daily_change_pct)

    def _caps(self, currency: str, ctx: EvaluationContext) -> CurrencyLimits | Reason:
        policy = self.policy
        assert policy is not None
        if ctx.account_currency is None:
            return _deny("account_currency_unknown", "cannot verify the account's currency")
        if currency != ctx.account_currency.strip().upper():
            return _deny("wrong_currency",
                         f"wrong currency: the amount is in {currency} but the account bills in {ctx.account_currency}")
        caps = policy.limits.currencies.get(currency)
        if caps is None:
            return _deny("currency_not_covered",
                         f"the policy sets no limits for {currency}, so it allows nothing in it")
        return caps

    def _check_measure(self, m: _Measure, action: SetBudget | SetBid, ctx: EvaluationContext,
                       policy: Policy) -> tuple[list[Reason], _Change | None]:
        what = f"{action.target.kind} {action.target.id}"
        if m.current is None:
            return [_deny("current_value_unknown", f"cannot verify the current {m.label} of {what}")], None
        if m.currency is not None and m.current_currency != m.currency:
            return [_deny("wrong_currency", f"wrong currency: the platform reports the {m.label} in "
                                            f"{m.current_currency}, the action is in {m.currency}")], None
        if not m.current.is_finite() or m.current <= 0:
            return [_deny("current_value_unknown",
                          f"cannot verify the current {m.label} of {what} (the platform reports {m.current})")], None
        new, cur = m.new, m.current
        if not new.is_finite() or new <= 0:
            return [_deny("invalid_amount", f"{m.label} {new} is not a usable amount")], None
        factor = policy.limits.unit_confusion_factor
        shown_new, shown_cur = _fmt_value(new, m.currency), _fmt_value(cur, m.currency)
        # Micros are 10^6 and cents 10^2 times the unit: a jump of that order is a unit mix-up, not a plan.
        ratio = max(new / cur, cur / new)
        if ratio >= factor:
            side = "above" if new > cur else "below"
            return [_deny("unit_confusion",
                          f"{m.label} {shown_new} is {_fmt_ratio(ratio)}x {side} the current {shown_cur}: "
                          f"cents or micros passed as whole units?")], None
        if m.ceiling is not None and new >= m.ceiling * factor:
            return [_deny("unit_confusion",
                          f"{m.label} {shown_new} is {_fmt_ratio(new / m.ceiling)}x the cap of "
                          f"{_fmt_value(m.ceiling, m.currency)}: cents or micros passed as whole units?")], None
        reasons: list[Reason] = []
        if m.ceiling is not None and new > m.ceiling:
            code = "budget_above_cap" if m.code == "budget" else "bid_above_ceiling"
            reasons.append(_deny(code, f"{m.label} {shown_new} is above the cap of "
                                       f"{_fmt_value(m.ceiling, m.currency)}"))
        if m.floor is not None and new < m.floor:
            code = "budget_below_minimum" if m.code == "budget" else "bid_below_floor"
            reasons.append(_deny(code, f"{m.label} {shown_new} is below the floor of "
                                       f"{_fmt_value(m.floor, m.currency)}"))
        pct = _pct(new, cur)
        if abs(pct) > m.max_change_pct:
            reasons.append(_deny(f"{m.code}_change_exceeds_limit",
                                 f"{m.label} {_fmt_pct(pct)} exceeds the {_fmt_limit(m.max_change_pct)}% "
                                 f"per-change limit ({shown_cur} to {shown_new})"))
        start = _day_start(action, ctx, cur)
        if start is None or start <= 0:
            reasons.append(_deny("current_value_unknown",
                                 f"cannot verify the {m.label} of {what} 24 hours ago from the recorded changes"))
        else:
            net = _pct(new, start)
            # From an unchanged day start the per-change reason already says it all.
            said = start == cur and abs(pct) > m.max_change_pct
            if abs(net) > m.max_daily_change_pct and not said:
                reasons.append(_deny(f"{m.code}_daily_change_exceeds_limit",
                                     f"{m.label} would change {_fmt_pct(net)} within 24 hours "
                                     f"({_fmt_value(start, m.currency)} to {shown_new}), above the "
                                     f"{_fmt_limit(m.max_daily_change_pct)}% daily limit"))
        raises = new < cur if m.label == "target ROAS" else new > cur
        return reasons, _Change(new=new, current=cur, pct=pct, currency=m.currency, raises_spend=raises)

    # -- approvals and blackouts --------------------------------------------------------------------

    def _approval_reasons(self, action: Any, ctx: EvaluationContext, policy: Policy,
                          change: _Change | None) -> list[Reason]:
        reasons: list[Reason] = []
        for rule in policy.approvals.rules:
            if _rule_matches(rule, action, ctx, policy, change):
                reasons.append(Reason(code=f"approval_required:{rule.id}",
                                      message=f"needs approval: {rule.description}" + _numbers(change)))
        local_day = ctx.now.astimezone(self._tz).date()
        for blackout in policy.blackouts:
            if action.kind in blackout.kinds and blackout.start <= local_day <= blackout.end:
                if blackout.effect == "deny":
                    reasons.append(_deny(f"blackout_deny:{blackout.id}",
                                         f"{action.kind} is not allowed during {blackout.description} "
                                         f"({blackout.start} to {blackout.end})"))
                else:
                    reasons.append(Reason(code=f"blackout:{blackout.id}",
                                          message=f"needs approval: {action.kind} during {blackout.description} "
                                                  f"({blackout.start} to {blackout.end})"))
        return reasons

    # -- approvals ----------------------------------------------------------------------------------

    def check_approval(self, *, approver: str, requester: str, now: datetime, requested_at: datetime) -> Verdict:
        """May ``approver`` approve the run ``requester`` asked for at ``requested_at``? Four-eyes, role, expiry."""
        try:
            return self._check_approval(approver, requester, now, requested_at)
        except Exception as exc:  # fail closed, as in evaluate
            return self._verdict("deny", [_deny("evaluation_error",
                                                f"the policy could not check this approval ({type(exc).__name__})")],
                                 "")

    def _check_approval(self, approver: Any, requester: Any, now: Any, requested_at: Any) -> Verdict:
        policy = self.policy
        if policy is None:
            return self._verdict("deny", [_deny(
                "policy_unavailable", f"no valid policy is loaded, so nobody may approve: {self.load_error}")], "")
        reasons: list[Reason] = []
        actor = policy.actors.get(approver) if isinstance(approver, str) else None
        if actor is None:
            reasons.append(_deny("unknown_approver", f"{approver!r} is not an actor in policy {policy.name!r}"))
        elif actor.kind == "service":
            reasons.append(_deny("service_cannot_approve", f"{approver} is a service identity and cannot approve"))
        elif approver not in self.approvers():
            reasons.append(_deny("not_an_approver", f"{approver} does not hold a role that may approve"))
        if not isinstance(requester, str) or not isinstance(approver, str) or _fold(approver) == _fold(requester):
            reasons.append(_deny("self_approval", f"{approver} cannot approve their own run (four-eyes rule)"))
        if not _aware(now) or not _aware(requested_at):
            reasons.append(_deny("approval_time_invalid", "approval times must be timezone-aware"))
        elif requested_at > now:
            reasons.append(_deny("approval_time_invalid", "the approval request is dated in the future"))
        else:
            expiry = timedelta(hours=float(policy.approvals.expiry_hours))
            if now - requested_at > expiry:
                age = (now - requested_at).total_seconds() / 3600
                reasons.append(_deny("approval_expired",
                                     f"the request is {age:.1f} hours old; approvals expire after "
                                     f"{_fmt_limit(policy.approvals.expiry_hours)} hours"))
        if reasons:
            return self._verdict("deny", reasons, "")
        return self._verdict("allow", [Reason(code="approval_valid",
                                              message=f"{approver} may approve {requester}'s run")], "")


def load_engine(path: Path) -> PolicyEngine:
    """The engine for ``path``; never raises: a policy that cannot be loaded gives a deny-all engine."""
    try:
        return PolicyEngine.load(path)
    except PolicyLoadError as exc:
        return PolicyEngine.deny_all(f"the policy cannot be loaded: {exc.message}")


# -- helpers ------------------------------------------------------------------------------------------


def _key_of(action: Any) -> str:
    key = action.get("idempotency_key") if isinstance(action, dict) else getattr(action, "idempotency_key", "")
    return key[:128] if isinstance(key, str) else ""


def _dump(value: Any) -> Any:
    return value.model_dump(mode="python", warnings=False) if isinstance(value, BaseModel) else value


def _revalidate_action(action: Any) -> Any:
    """Validate the action again from its data: an action built with ``model_construct`` (or a raw
    dict) skipped the domain checks, and must not reach a platform on the engine's word."""
    try:
        return _ACTION.validate_python(_dump(action))
    except (ValueError, TypeError, AttributeError, ArithmeticError) as exc:
        return _deny("invalid_action", f"the action is invalid: {_first_error(exc)}")


def _revalidate_context(ctx: Any) -> EvaluationContext | Reason:
    try:
        return EvaluationContext.model_validate(_dump(ctx))
    except (ValueError, TypeError, AttributeError, ArithmeticError) as exc:
        return _deny("invalid_context", f"the evaluation context is invalid: {_first_error(exc)}")


def _first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{where}: {str(first.get('msg', '')).removeprefix('Value error, ')}"
    return " ".join(str(exc).split()) or type(exc).__name__


def _aware(value: Any) -> bool:
    return isinstance(value, datetime) and value.tzinfo is not None and value.utcoffset() is not None


def _fullmatch(pattern: str, text: str) -> bool:
    return re.fullmatch(pattern, text) is not None


def _context_mismatch(action: Any, ctx: EvaluationContext) -> Reason | None:
    """The context must describe the action's own target; otherwise its numbers prove nothing."""
    target = action.target
    if ctx.current is not None and ctx.current.ref != target:
        return _deny("context_mismatch", f"the current value given is for {ctx.current.ref.key()}, "
                                         f"not for the target {target.key()}")
    campaign = ctx.campaign
    if campaign is not None:
        ref = campaign.ref
        if (ref.kind is not EntityKind.CAMPAIGN or ref.platform != target.platform
                or ref.account_id != target.account_id
                or (target.kind is EntityKind.CAMPAIGN and ref != target)):
            return _deny("context_mismatch", f"{ref.key()} is not the campaign of {target.key()}")
        parent = ctx.current.parent if ctx.current is not None else None
        if parent is not None and parent.kind is EntityKind.CAMPAIGN and parent != ref:
            return _deny("context_mismatch", f"{target.key()} belongs to {parent.key()}, not {ref.key()}")
    return None


def _day_start(action: Any, ctx: EvaluationContext, current: Decimal) -> Decimal | None:
    """The value 24 hours ago: the ``before`` of the earliest recorded change since then, else the
    current value. A recorded change without a ``before`` makes it unknowable (None)."""
    key, kind = action.target.key(), change_kind(action)
    kinds = {kind, action.kind}
    since = ctx.now - DAY
    recent = sorted((c for c in ctx.changes_today if c.target == key and c.kind in kinds and c.at > since),
                    key=lambda c: c.at)
    if not recent:
        return current
    before = recent[0].before
    return before if before is not None and before.is_finite() else None


def _raises_spend(action: Any, ctx: EvaluationContext, change: _Change | None) -> bool:
    if change is not None:
        return change.raises_spend
    if isinstance(action, SetStatus):
        return action.status == "ENABLED" and (ctx.current is None or ctx.current.status != "ENABLED")
    if isinstance(action, CreateAd):
        return action.status == "ENABLED"
    return False


def _over(limits: dict[str, Decimal], value: Decimal, currency: str | None) -> bool:
    # An amount in a currency the rule does not price is treated as over: unknown means ask.
    if currency is None or currency not in limits:
        return True
    return value > limits[currency]


_CONDITIONS: dict[str, Callable[[Any, Any, EvaluationContext, Policy, _Change | None], bool]] = {
    "kinds": lambda v, a, c, p, ch: a.kind in v,
    "actors": lambda v, a, c, p, ch: c.actor in v,
    "roles": lambda v, a, c, p, ch: bool(set(v) & set(p.actors[c.actor].roles)),
    "target_kinds": lambda v, a, c, p, ch: a.target.kind in v,
    "status": lambda v, a, c, p, ch: getattr(a, "status", None) == v,
    "change_pct_above": lambda v, a, c, p, ch: ch is not None and abs(ch.pct) > v,
    "increase_above": lambda v, a, c, p, ch: ch is not None and ch.raises_spend and _over(
        v, abs(ch.new - ch.current), ch.currency),
    "amount_above": lambda v, a, c, p, ch: ch is not None and _over(v, ch.new, ch.currency),
    "raises_spend": lambda v, a, c, p, ch: _raises_spend(a, c, ch),
}


def _rule_matches(rule: ApprovalRule, action: Any, ctx: EvaluationContext, policy: Policy,
                  change: _Change | None) -> bool:
    when = rule.when
    for name in when.model_fields_set:
        value = getattr(when, name)
        if value is not None and not _CONDITIONS[name](value, action, ctx, policy, change):
            return False
    return True


def _numbers(change: _Change | None) -> str:
    if change is None:
        return ""
    return (f" ({_fmt_value(change.current, change.currency)} to {_fmt_value(change.new, change.currency)}, "
            f"{_fmt_pct(change.pct)})")
