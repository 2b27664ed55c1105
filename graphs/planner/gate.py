"""The policy gate: builds the evaluation context from fresh platform reads and the audit trail.

Called twice per action: when it is proposed (and at review), and by the executor right before the
platform call. The baseline for percentage and cumulative limits is always the platform's current
value and the audit log's applied changes, never anything a model or a caller supplied.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from agent.domain import Action, Entity, EntityKind, SetBid, SetBudget
from agent.errors import AdpilotError
from graphs.planner.context import PlannerContext
from policies.engine import EvaluationContext, PriorChange, Reason, Verdict, change_kind

# Applied changes older than this cannot count towards a daily limit.
HISTORY_WINDOW = timedelta(hours=48)


def tracked_value(action: Action, entity: Entity | None) -> Decimal | None:
    """The number a budget or bid action changes, read from an entity snapshot."""
    if entity is None:
        return None
    if isinstance(action, SetBudget):
        return entity.daily_budget.amount if entity.daily_budget else None
    if isinstance(action, SetBid):
        if action.bid_type == "cpc":
            return entity.cpc_bid.amount if entity.cpc_bid else None
        if action.bid_type == "target_cpa":
            return entity.target_cpa.amount if entity.target_cpa else None
        return entity.target_roas
    return None


def read_current(ctx: PlannerContext, action: Action) -> Entity | None:
    """The action's target, read fresh from its platform; None when it does not exist or cannot be read."""
    platform = ctx.runtime.platform_for(action.target.account_id)
    try:
        return platform.get_entity(action.target)
    except AdpilotError:
        return None


def campaign_of(ctx: PlannerContext, entity: Entity | None) -> Entity | None:
    """The campaign containing ``entity``, walking parents on the entity's platform."""
    if entity is None:
        return None
    platform = ctx.runtime.platform_for(entity.ref.account_id)
    current: Entity | None = entity
    for _ in range(4):
        if current is None or current.ref.kind is EntityKind.CAMPAIGN:
            return current
        try:
            current = platform.get_entity(current.parent) if current.parent else None
        except AdpilotError:
            return None
    return None


def account_currency(ctx: PlannerContext, account_id: str) -> str | None:
    """The account's currency as its platform reports it."""
    try:
        accounts = ctx.runtime.platform_for(account_id).list_accounts()
    except AdpilotError:
        return None
    return next((a.currency for a in accounts if a.account_id == account_id), None)


def applied_changes(ctx: PlannerContext, now: datetime) -> list[PriorChange]:
    """Budget and bid changes applied in the last 48 hours, from the audit log (all runs, all actors)."""
    changes: list[PriorChange] = []
    for record in ctx.runtime.audit.records(event="platform_apply", since=now - HISTORY_WINDOW):
        payload = record.payload
        if payload.get("status") != "applied" or not payload.get("change_kind"):
            continue
        at = datetime.fromisoformat(record.ts)
        changes.append(PriorChange(target=payload["target"], kind=payload["change_kind"],
                                   before=_dec(payload.get("before_value")), after=_dec(payload.get("after_value")),
                                   at=at))
    return changes


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def evaluate(ctx: PlannerContext, action: Action, *, actor: str, actions_in_run: int,
             pending: list[PriorChange] | None = None) -> tuple[Verdict, Entity | None]:
    """The policy's verdict on ``action`` now, and the fresh entity it was judged against.

    ``pending`` are changes this run has already decided to make to other (or the same) entities
    but that are not applied yet, so that several actions in one run cannot add up past a limit.
    """
    now = ctx.clock()
    current = read_current(ctx, action)
    context = EvaluationContext(
        actor=actor, now=now, current=current, campaign=campaign_of(ctx, current),
        account_currency=account_currency(ctx, action.target.account_id),
        changes_today=[*applied_changes(ctx, now), *(pending or [])], actions_in_run=actions_in_run)
    return ctx.engine.evaluate(action, context), current


def pending_change(action: Action, current: Entity | None, at: datetime) -> PriorChange | None:
    """The change ``action`` would make, as a PriorChange for the next actions' cumulative checks."""
    if not isinstance(action, SetBudget | SetBid):
        return None
    after = action.daily_budget.amount if isinstance(action, SetBudget) else (
        action.target_roas if action.bid_type == "target_roas" else action.amount.amount if action.amount else None)
    return PriorChange(target=action.target.key(), kind=change_kind(action), before=tracked_value(action, current),
                       after=after, at=at)


def denial(message: str, key: str, version: str) -> Verdict:
    """A deny verdict produced by the gate itself (e.g. an action that failed validation)."""
    return Verdict(decision="deny", reasons=[Reason(code="invalid_action", message=message)],
                   policy_version=version, action_key=key)
