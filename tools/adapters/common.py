"""What the Google Ads and Meta adapters do alike: results, before/after values, checks, KPI windows.

Both adapters report an action's before and after values in one form, so the audit log and the CLI
compare them the same way whichever platform ran the action. Only logic that is the same on both
platforms lives here; how a platform stores a bid or a ROAS target stays in its own adapter. The
sandbox builds its failed results with ``failed_result`` too; its before/after values carry the
currency and come from its own tables, so the rest is not for it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from agent.domain import (
    Account,
    Action,
    ActionResult,
    CreateAd,
    Entity,
    EntityKind,
    EntityRef,
    Money,
    Platform,
    SetBid,
    SetBudget,
    SetStatus,
)
from agent.errors import BadInput
from tools.adapters.ledger import AppliedLedger


def failed_result(action: Action, code: str, message: str, before: dict[str, Any] | None = None) -> ActionResult:
    """A ``failed`` result for ``action`` with the platform's (or adpilot's) error code."""
    return ActionResult(idempotency_key=action.idempotency_key, status="failed", error_code=code,
                        message=message, before=before)


def validation_result(action: Action, *, ok: bool, accepted: str, error_code: str | None, message: str,
                      before: dict[str, Any] | None) -> ActionResult:
    """A dry run's result: ``validated`` with the ``accepted`` note, else ``failed`` with the platform's message."""
    return ActionResult(idempotency_key=action.idempotency_key, status="validated" if ok else "failed",
                        message=accepted if ok else message, error_code=error_code, before=before)


def applied_result(action: Action, *, before: dict[str, Any] | None, after: dict[str, Any],
                   intended: dict[str, Any], created_id: str | None) -> ActionResult:
    """An ``applied`` result; its message names the read-back values when they are not the ``intended`` ones.

    The platform accepted the change either way, so a mismatch is reported, not turned into a failure.
    """
    message = action.describe()
    if intended and any(after.get(k) != v for k, v in intended.items()):
        message += f"; read-back shows {after}, not {intended}"
    return ActionResult(idempotency_key=action.idempotency_key, status="applied", message=message,
                        before=before, after=after, created_id=created_id)


def earlier_result(ledger: AppliedLedger, platform_name: str, action: Action, *,
                   validate_only: bool) -> ActionResult | None:
    """What an earlier apply of the same idempotency key returned (as ``already_applied``), else None.

    A dry run never answers from the ledger: validating an applied key asks the platform again.
    """
    return None if validate_only else ledger.get(platform_name, action.idempotency_key)


def money_value(money: Money | None) -> str | None:
    """An amount as before/after values show it: a plain decimal string with the currency's digits."""
    return None if money is None else f"{money.amount:.{money.exponent}f}"


def changed_values(action: Action, entity: Entity) -> dict[str, Any]:
    """The entity's values that ``action`` changes (before and after use the same keys)."""
    if isinstance(action, SetBudget):
        return {"daily_budget": money_value(entity.daily_budget)}
    if isinstance(action, SetStatus):
        return {"status": entity.status}
    if isinstance(action, SetBid):
        if action.bid_type == "cpc":
            return {"cpc_bid": money_value(entity.cpc_bid)}
        if action.bid_type == "target_cpa":
            return {"target_cpa": money_value(entity.target_cpa)}
        return {"target_roas": None if entity.target_roas is None else str(entity.target_roas)}
    if isinstance(action, CreateAd):
        return {"id": entity.ref.id, "status": entity.status}
    return {}


def read_back_values(action: Action, entity: Entity | None) -> dict[str, Any]:
    """``changed_values`` of the entity as read back after applying, or a marker when the read found nothing."""
    return changed_values(action, entity) if entity else {"read_back": "missing"}


def intended_values(action: Action) -> dict[str, Any]:
    """What a budget or status change should leave behind, in ``changed_values`` form; empty for other actions.

    Bids are left to each adapter: the platforms store them differently, so what reads back differs too.
    """
    if isinstance(action, SetBudget):
        return {"daily_budget": money_value(action.daily_budget)}
    if isinstance(action, SetStatus):
        return {"status": action.status}
    return {}


def currency_mismatch(action: Action, account: Account) -> ActionResult | None:
    """A failed result when the action's amount is not in the account's currency, else None."""
    money = getattr(action, "daily_budget", None) or getattr(action, "amount", None)
    if isinstance(money, Money) and money.currency != account.currency:
        return failed_result(action, "CURRENCY_MISMATCH",
                             f"amount in {money.currency}, but account {account.account_id} bills in "
                             f"{account.currency}")
    return None


def ids_by_account_and_kind(refs: Iterable[EntityRef], platform: Platform,
                            label: str) -> dict[tuple[str, EntityKind], set[str]]:
    """The ids to read, grouped as the platforms read them: per account and kind.

    ``label`` names the platform in the ``BadInput`` raised for a ref of another platform.
    """
    wanted: dict[tuple[str, EntityKind], set[str]] = defaultdict(set)
    for ref in refs:
        if ref.platform is not platform:
            raise BadInput(f"{ref} is not a {label} entity")
        wanted[(ref.account_id, ref.kind)].add(ref.id)
    return wanted


def local_today(timezone: str) -> date:
    """Today's date in an account's time zone (the platforms' reporting days start at its midnight)."""
    return datetime.now(ZoneInfo(timezone)).date()


def check_window_days(window_days: int) -> None:
    """Raise ``BadInput`` unless ``window_days`` is a KPI window the platforms report (1 to 365 days)."""
    if not 1 <= window_days <= 365:
        raise BadInput("window_days must be between 1 and 365")


def complete_days(today: date, window_days: int) -> tuple[date, date]:
    """First and last day of the last ``window_days`` complete days before ``today`` (today is still running)."""
    return today - timedelta(days=window_days), today - timedelta(days=1)
