"""The sandbox ad platform: the ``AdPlatform`` protocol served from the warehouse tables.

The sandbox is what ``adpilot demo``, the tests and every dry run on an unconnected account talk to,
so it must refuse what Google Ads and Meta refuse (PLATFORM-FACTS.md); a change set that passes here
and fails on the real platform would make the sandbox worse than useless. It enforces:

* unknown ids, or an id on another account or platform → ``NOT_FOUND``;
* REMOVED entities (or entities under a REMOVED campaign / ad group) cannot change →
  ``OPERATION_NOT_PERMITTED_FOR_REMOVED_RESOURCE`` (Google's name for it);
* statuses ENABLED / PAUSED only → ``INVALID_STATUS``; negative keywords have no status;
* budgets: the account's currency (``CURRENCY_MISMATCH``), a whole minor unit
  (``NON_MULTIPLE_OF_MINIMUM_CURRENCY_UNIT``), at least the minimum daily budget
  (``BUDGET_BELOW_PER_DAY_MINIMUM``; 1.00 in the account currency unless configured per platform or
  account); on Meta either the campaign (CBO) or its ad sets hold a budget, never both
  (``BUDGET_LEVEL_CONFLICT``); a Meta ad set's budget changes at most 4 times in any hour
  (``ADSET_BUDGET_CHANGE_LIMIT``, Meta's error 17; the clock is injectable);
* bids: CPC above zero on Google ad groups and keywords (``BID_TOO_SMALL``, ``OPERATION_NOT_SUPPORTED``),
  target ROAS 0.01–1000 (``INVALID_TARGET_ROAS``), targets on campaigns;
* ads: the content is re-validated (``INVALID_AD``) and at most 3 enabled responsive search ads per
  Google ad group (``RESOURCE_COUNT_LIMIT_EXCEEDED``);
* negative keywords on Google only, no duplicates at the same level (``DUPLICATE_NEGATIVE_KEYWORD``).

``validate`` checks a batch as if it were applied in order (two budget changes to one Meta ad set in
one batch count twice) and changes nothing. ``apply`` applies each action in its own transaction, so
a failing action leaves the others applied (Google's partial failure), and records every mutation in
``sandbox_mutations`` with JSON before/after values under its idempotency key; a key applied before
returns ``already_applied`` with the stored values and changes nothing.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb
from pydantic import ValidationError

from agent.domain import (
    Account,
    Action,
    ActionResult,
    AddNegativeKeyword,
    CreateAd,
    Entity,
    EntityKind,
    EntityRef,
    GoogleResponsiveSearchAd,
    KpiTotals,
    MetaAdCreative,
    Money,
    Platform,
    SetBid,
    SetBudget,
    SetStatus,
)
from agent.errors import BadInput, ConfigError, NotFound
from tools.adapters.common import failed_result

DEFAULT_MIN_DAILY_BUDGET = Decimal("1.00")
META_ADSET_BUDGET_CHANGES_PER_HOUR = 4
MAX_ENABLED_RSAS_PER_AD_GROUP = 3
TARGET_ROAS_MIN = Decimal("0.01")
TARGET_ROAS_MAX = Decimal("1000")
SETTABLE_STATUSES = ("ENABLED", "PAUSED")
READABLE_STATUSES = ("ENABLED", "PAUSED", "REMOVED")


class ErrorCode:
    """The ``error_code`` values the sandbox returns (named after the real platforms' errors where they exist)."""

    NOT_FOUND = "NOT_FOUND"
    REMOVED = "OPERATION_NOT_PERMITTED_FOR_REMOVED_RESOURCE"
    INVALID_STATUS = "INVALID_STATUS"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    NON_MULTIPLE = "NON_MULTIPLE_OF_MINIMUM_CURRENCY_UNIT"
    BELOW_MINIMUM = "BUDGET_BELOW_PER_DAY_MINIMUM"
    BUDGET_LEVEL_CONFLICT = "BUDGET_LEVEL_CONFLICT"
    ADSET_BUDGET_CHANGE_LIMIT = "ADSET_BUDGET_CHANGE_LIMIT"
    BID_TOO_SMALL = "BID_TOO_SMALL"
    INVALID_TARGET_ROAS = "INVALID_TARGET_ROAS"
    NOT_SUPPORTED = "OPERATION_NOT_SUPPORTED"
    INVALID_AD = "INVALID_AD"
    RSA_LIMIT = "RESOURCE_COUNT_LIMIT_EXCEEDED"
    DUPLICATE_NEGATIVE = "DUPLICATE_NEGATIVE_KEYWORD"
    KEY_CONFLICT = "IDEMPOTENCY_KEY_CONFLICT"
    INTERNAL = "INTERNAL_ERROR"


# kind → (table, id column, column holding the parent id)
_TABLES: dict[EntityKind, tuple[str, str, str | None]] = {
    EntityKind.CAMPAIGN: ("campaigns", "campaign_id", None),
    EntityKind.AD_GROUP: ("ad_groups", "ad_group_id", "campaign_id"),
    EntityKind.AD: ("ads", "ad_id", "ad_group_id"),
    EntityKind.KEYWORD: ("keywords", "keyword_id", "ad_group_id"),
}
_KPI_COLUMNS: dict[EntityKind, str] = {
    EntityKind.ACCOUNT: "account_id",
    EntityKind.CAMPAIGN: "campaign_id",
    EntityKind.AD_GROUP: "ad_group_id",
    EntityKind.AD: "ad_id",
}
_NEW_ID_PREFIX: dict[tuple[str, Platform], str] = {
    ("ads", Platform.GOOGLE): "gad-",
    ("ads", Platform.META): "mad-",
    ("keywords", Platform.GOOGLE): "gkw-",
}


class _Reject(Exception):
    """An action the platform refuses; becomes a ``failed`` ActionResult, never escapes this module."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = " ".join(message.split())


@dataclass
class _Pending:
    """Effects of earlier actions of the same validate batch that are not in the tables (nothing is written)."""

    budget_changes: Counter[str] = field(default_factory=Counter)
    enabled_rsas: Counter[str] = field(default_factory=Counter)
    negatives: set[tuple[str, str, str]] = field(default_factory=set)


@dataclass
class _Plan:
    """What applying one action would do: SQL statements plus the values recorded before and after."""

    before: dict[str, Any] | None
    after: dict[str, Any]
    statements: list[tuple[str, list[Any]]]
    created_id: str | None = None


def _utc_naive(moment: datetime) -> datetime:
    """DuckDB TIMESTAMP columns hold naive UTC; an aware clock value is converted, never reinterpreted."""
    if moment.tzinfo is None:
        raise ValueError("the sandbox clock must return timezone-aware datetimes")
    return moment.astimezone(UTC).replace(tzinfo=None)


def _amount(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


class SandboxPlatform:
    """An ``AdPlatform`` on the warehouse tables that enforces the real platforms' rules."""

    name = "sandbox"

    def __init__(self, con: duckdb.DuckDBPyConnection, *, min_daily_budget: dict[str, Money] | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        """``min_daily_budget`` maps a platform ("google", "meta") or an account id to its minimum daily
        budget (an account id wins); unlisted ones get 1.00 in the account currency. ``clock`` returns the
        current aware datetime (tests move it to exercise Meta's hourly budget-change limit)."""
        self._con = con
        self._min_daily_budget = dict(min_daily_budget or {})
        self._clock = clock or (lambda: datetime.now(UTC))

    # ----------------------------------------------------------------------------------------- reads

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cursor = self._con.execute(sql, list(params))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def list_accounts(self) -> list[Account]:
        """Every account in the warehouse."""
        return [Account(platform=r["platform"], account_id=r["account_id"], name=r["name"],
                        currency=r["currency"], timezone=r["timezone"])
                for r in self._rows("SELECT * FROM accounts ORDER BY account_id")]

    def _account(self, account_id: str) -> Account | None:
        rows = self._rows("SELECT * FROM accounts WHERE account_id = ?", [account_id])
        if not rows:
            return None
        r = rows[0]
        return Account(platform=r["platform"], account_id=r["account_id"], name=r["name"],
                       currency=r["currency"], timezone=r["timezone"])

    def _require_account(self, account_id: str) -> Account:
        account = self._account(account_id)
        if account is None:
            raise NotFound(f"unknown account {account_id!r}")
        return account

    def list_entities(self, account_id: str, kind: EntityKind, *, parent_id: str | None = None,
                      status: str | None = None) -> list[Entity]:
        """Entities of one kind in an account (ordered by id), optionally under one direct parent and with one
        status (ENABLED, PAUSED or REMOVED)."""
        account = self._require_account(account_id)
        kind = EntityKind(kind)
        if kind not in _TABLES:
            raise BadInput(f"cannot list {kind} entities; use list_accounts for accounts")
        table, id_col, parent_col = _TABLES[kind]
        where, params = ["account_id = ?"], [account_id]
        if status is not None:
            wanted = status.strip().upper()
            if wanted not in READABLE_STATUSES:
                raise BadInput(f"unknown status {status!r} (use ENABLED, PAUSED or REMOVED)")
            where.append("status = ?")
            params.append(wanted)
        if parent_id is not None:
            if parent_col is None:
                raise BadInput("campaigns sit directly under the account; parent_id does not apply")
            if kind is EntityKind.KEYWORD:
                # Campaign-level negatives have no ad group: their parent is the campaign.
                where.append("(ad_group_id = ? OR (ad_group_id IS NULL AND campaign_id = ?))")
                params.extend([parent_id, parent_id])
            else:
                where.append(f"{parent_col} = ?")
                params.append(parent_id)
        rows = self._rows(f"SELECT * FROM {table} WHERE {' AND '.join(where)} ORDER BY {id_col}", params)
        return [self._entity(account, kind, row) for row in rows]

    def _fetch(self, account: Account, kind: EntityKind, entity_id: str) -> dict[str, Any] | None:
        if kind not in _TABLES:
            return None
        table, id_col, _ = _TABLES[kind]
        rows = self._rows(f"SELECT * FROM {table} WHERE {id_col} = ? AND account_id = ?",
                          [entity_id, account.account_id])
        return rows[0] if rows else None

    def _lookup(self, ref: EntityRef) -> tuple[Account, dict[str, Any]]:
        """The account and row of ``ref``, or ``_Reject(NOT_FOUND)`` naming what is missing."""
        account = self._account(ref.account_id)
        if account is None:
            raise _Reject(ErrorCode.NOT_FOUND, f"unknown account {ref.account_id!r}")
        if account.platform != ref.platform:
            raise _Reject(ErrorCode.NOT_FOUND,
                          f"account {ref.account_id} is a {account.platform} account, not {ref.platform}")
        row = self._fetch(account, ref.kind, ref.id)
        if row is None:
            raise _Reject(ErrorCode.NOT_FOUND, f"no {ref.kind} {ref.id!r} in account {ref.account_id}")
        return account, row

    def get_entity(self, ref: EntityRef) -> Entity:
        """The current state of one entity; raises ``NotFound`` when it does not exist."""
        try:
            account, row = self._lookup(ref)
        except _Reject as exc:
            raise NotFound(exc.message) from None
        return self._entity(account, ref.kind, row)

    def read_back(self, refs: Sequence[EntityRef]) -> dict[EntityRef, Entity]:
        """Fresh reads of the given entities; raises ``NotFound`` if any of them does not exist."""
        return {ref: self.get_entity(ref) for ref in refs}

    def _entity(self, account: Account, kind: EntityKind, row: dict[str, Any]) -> Entity:
        """Map a warehouse row to an ``Entity``; money is always in the account's currency."""
        platform = Platform(account.platform)

        def ref(ref_kind: EntityKind, entity_id: str) -> EntityRef:
            return EntityRef(platform=platform, account_id=account.account_id, kind=ref_kind, id=entity_id)

        def money(value: Decimal | None) -> Money | None:
            return None if value is None else Money(amount=value, currency=account.currency)

        if kind is EntityKind.CAMPAIGN:
            return Entity(ref=ref(kind, row["campaign_id"]), name=row["name"], status=row["status"],
                          parent=ref(EntityKind.ACCOUNT, account.account_id),
                          daily_budget=money(row["daily_budget"]), target_cpa=money(row["target_cpa"]),
                          target_roas=row["target_roas"], paused_by=row["paused_by"])
        if kind is EntityKind.AD_GROUP:
            return Entity(ref=ref(kind, row["ad_group_id"]), name=row["name"], status=row["status"],
                          parent=ref(EntityKind.CAMPAIGN, row["campaign_id"]),
                          daily_budget=money(row["daily_budget"]), cpc_bid=money(row["cpc_bid"]),
                          paused_by=row["paused_by"])
        if kind is EntityKind.AD:
            headlines = list(row["headlines"] or [])
            return Entity(ref=ref(kind, row["ad_id"]), name=headlines[0] if headlines else row["ad_id"],
                          status=row["status"], parent=ref(EntityKind.AD_GROUP, row["ad_group_id"]),
                          sku=row["sku"], ad=_ad_content(row), paused_by=row["paused_by"])
        parent = (ref(EntityKind.AD_GROUP, row["ad_group_id"]) if row["ad_group_id"]
                  else ref(EntityKind.CAMPAIGN, row["campaign_id"]))
        # "-text" is how Google Ads Editor writes a negative keyword.
        name = f"-{row['text']}" if row["negative"] else row["text"]
        return Entity(ref=ref(kind, row["keyword_id"]), name=name, status=row["status"], parent=parent,
                      cpc_bid=money(row["cpc_bid"]))

    def latest_day(self) -> date | None:
        """The last day with performance data (KPI windows end here, not at the wall clock)."""
        return self._con.execute("SELECT max(day) FROM performance_daily").fetchall()[0][0]

    def read_kpis(self, account_id: str, kind: EntityKind, ids: Sequence[str],
                  window_days: int) -> dict[str, KpiTotals]:
        """Totals per id over the ``window_days`` days ending at the warehouse's latest day.

        Every requested id gets an entry (zeros without data); an id that is not in the account raises
        ``NotFound``.
        """
        account = self._require_account(account_id)
        kind = EntityKind(kind)
        if kind not in _KPI_COLUMNS:
            raise BadInput(f"performance is kept per ad; {kind} KPIs are not available")
        if isinstance(window_days, bool) or not isinstance(window_days, int) or window_days < 1:
            raise BadInput(f"window_days must be a whole number of days >= 1, got {window_days!r}")
        wanted = list(dict.fromkeys(ids))
        if kind is EntityKind.ACCOUNT:
            unknown = [i for i in wanted if i != account_id]
        else:
            table, id_col, _ = _TABLES[kind]
            known = {r[0] for r in self._con.execute(
                f"SELECT {id_col} FROM {table} WHERE account_id = ? AND list_contains(?, {id_col})",
                [account_id, wanted]).fetchall()}
            unknown = [i for i in wanted if i not in known]
        if unknown:
            raise NotFound(f"no {kind} {unknown[0]!r} in account {account_id}")
        totals = {i: KpiTotals(currency=account.currency) for i in wanted}
        last = self.latest_day()
        if last is None or not wanted:
            return totals
        column = _KPI_COLUMNS[kind]
        rows = self._con.execute(
            f"""SELECT {column}, sum(impressions), sum(clicks), sum(cost), sum(conversions), sum(conversion_value)
                FROM performance_daily
                WHERE account_id = ? AND list_contains(?, {column}) AND day > ? AND day <= ?
                GROUP BY 1""",
            [account_id, wanted, last - timedelta(days=window_days), last]).fetchall()
        for key, impressions, clicks, cost, conversions, value in rows:
            totals[key] = KpiTotals(impressions=int(impressions), clicks=int(clicks), cost=Decimal(cost),
                                    conversions=Decimal(conversions), conversion_value=Decimal(value),
                                    currency=account.currency)
        return totals

    # ------------------------------------------------------------------------------------- mutations

    def validate(self, actions: Sequence[Action]) -> list[ActionResult]:
        """Check each action as the platform would, in order, without changing anything."""
        self._check_minimum_settings(actions)
        pending = _Pending()
        results: list[ActionResult] = []
        for action in actions:
            stored = self._stored(action)
            if stored is not None:
                results.append(stored if not stored.ok else stored.model_copy(update={
                    "status": "validated",
                    "message": "already applied under this idempotency key; applying again changes nothing"}))
                continue
            try:
                plan = self._plan(action, pending)
            except _Reject as exc:
                results.append(failed_result(action, exc.code, exc.message))
                continue
            results.append(ActionResult(idempotency_key=action.idempotency_key, status="validated",
                                        message=action.describe(), before=plan.before, after=plan.after))
        return results

    def apply(self, actions: Sequence[Action], *, actor: str | None = None) -> list[ActionResult]:
        """Apply each action in its own transaction (a failure leaves the others applied).

        ``actor`` becomes ``paused_by`` on a pause. A key applied before returns ``already_applied``.
        """
        self._check_minimum_settings(actions)
        return [self._apply_one(action, actor) for action in actions]

    def _apply_one(self, action: Action, actor: str | None) -> ActionResult:
        key = action.idempotency_key
        self._con.begin()
        try:
            stored = self._stored(action)
            if stored is not None:
                self._con.rollback()
                return stored
            plan = self._plan(action, _Pending(), actor=actor)
            for sql, params in plan.statements:
                self._con.execute(sql, params)
            self._con.execute(
                "INSERT INTO sandbox_mutations VALUES (?, ?, ?, ?, ?, ?, ?)",
                [key, action.kind, action.target.key(), json.dumps(plan.before), json.dumps(plan.after),
                 plan.created_id, _utc_naive(self._clock())])
            self._con.commit()
        except _Reject as exc:
            self._con.rollback()
            return failed_result(action, exc.code, exc.message)
        except duckdb.Error as exc:
            # The sandbox's storage failing is this platform's internal error: reported on the action,
            # like Google's INTERNAL_ERROR, so the other actions of the batch still get their results.
            self._con.rollback()
            return failed_result(action, ErrorCode.INTERNAL, f"sandbox storage error: {' '.join(str(exc).split())}")
        except BaseException:
            # A bug must surface as itself, but never leave the shared connection inside a transaction.
            self._con.rollback()
            raise
        message = action.describe() + (f" (new id {plan.created_id})" if plan.created_id else "")
        return ActionResult(idempotency_key=key, status="applied", message=message, before=plan.before,
                            after=plan.after, created_id=plan.created_id)

    def _stored(self, action: Action) -> ActionResult | None:
        """The result of an earlier apply of this idempotency key, if any."""
        rows = self._rows("SELECT * FROM sandbox_mutations WHERE idempotency_key = ?", [action.idempotency_key])
        if not rows:
            return None
        row = rows[0]
        if row["action_kind"] != action.kind or row["target"] != action.target.key():
            return failed_result(action, ErrorCode.KEY_CONFLICT,
                                 f"idempotency key already used for {row['action_kind']} on {row['target']}")
        return ActionResult(idempotency_key=action.idempotency_key, status="already_applied",
                            message=f"already applied at {row['applied_at']:%Y-%m-%d %H:%M:%S} UTC; nothing changed",
                            before=json.loads(row["before_json"]) if row["before_json"] else None,
                            after=json.loads(row["after_json"]) if row["after_json"] else None,
                            created_id=row["created_id"])

    def _check_minimum_settings(self, actions: Sequence[Action]) -> None:
        """A configured minimum in another currency than its account is a configuration error: raise it before
        anything is validated or applied, not halfway through a batch."""
        for action in actions:
            if isinstance(action, SetBudget):
                account = self._account(action.target.account_id)
                if account is not None:
                    self._minimum(account)

    def _minimum(self, account: Account) -> Money:
        configured = self._min_daily_budget.get(account.account_id) or self._min_daily_budget.get(account.platform)
        if configured is None:
            return Money(amount=DEFAULT_MIN_DAILY_BUDGET, currency=account.currency)
        if configured.currency != account.currency:
            raise ConfigError(f"minimum daily budget {configured} does not match the {account.currency} "
                              f"currency of account {account.account_id}")
        return configured

    def _plan(self, action: Action, pending: _Pending, *, actor: str | None = None) -> _Plan:
        account, row = self._lookup(action.target)
        self._refuse_removed(action.target, row)
        if isinstance(action, SetBudget):
            return self._plan_budget(action, account, row, pending)
        if isinstance(action, SetStatus):
            return self._plan_status(action, row, pending, actor)
        if isinstance(action, SetBid):
            return self._plan_bid(action, account, row)
        if isinstance(action, CreateAd):
            return self._plan_create_ad(action, account, row, pending)
        if isinstance(action, AddNegativeKeyword):
            return self._plan_negative(action, account, row, pending)
        raise _Reject(ErrorCode.NOT_SUPPORTED, f"unknown action kind {getattr(action, 'kind', action)!r}")

    def _refuse_removed(self, ref: EntityRef, row: dict[str, Any]) -> None:
        """REMOVED is permanent on both platforms, and a removed campaign or ad group takes its children with it."""
        if row["status"] == "REMOVED":
            raise _Reject(ErrorCode.REMOVED, f"{ref.kind} {ref.id} is REMOVED and cannot be changed")
        ancestors: list[tuple[str, str, str]] = []
        if ref.kind in (EntityKind.AD, EntityKind.KEYWORD) and row.get("ad_group_id"):
            ancestors.append(("ad group", "ad_groups", row["ad_group_id"]))
        if ref.kind is not EntityKind.CAMPAIGN:
            ancestors.append(("campaign", "campaigns", row["campaign_id"]))
        for label, table, entity_id in ancestors:
            id_col = "ad_group_id" if table == "ad_groups" else "campaign_id"
            found = self._con.execute(f"SELECT status FROM {table} WHERE {id_col} = ?", [entity_id]).fetchall()
            if found and found[0][0] == "REMOVED":
                raise _Reject(ErrorCode.REMOVED, f"{ref.kind} {ref.id} belongs to the REMOVED {label} {entity_id} "
                                                 "and cannot be changed")

    def _check_money(self, money: Money, account: Account, what: str) -> None:
        if money.currency != account.currency:
            raise _Reject(ErrorCode.CURRENCY_MISMATCH,
                          f"{what} {money} is not in the account currency {account.currency} "
                          f"of account {account.account_id}")
        quantum = Decimal(1).scaleb(-money.exponent)
        if money.amount != money.amount.quantize(quantum):
            raise _Reject(ErrorCode.NON_MULTIPLE, f"{what} {money.amount} is not a whole {quantum} {money.currency}")

    def _plan_budget(self, action: SetBudget, account: Account, row: dict[str, Any], pending: _Pending) -> _Plan:
        budget = action.daily_budget
        self._check_money(budget, account, "daily budget")
        minimum = self._minimum(account)
        if budget.amount < minimum.amount:
            raise _Reject(ErrorCode.BELOW_MINIMUM, f"daily budget {budget} is below the minimum of {minimum} per day")
        ref = action.target
        if ref.kind is EntityKind.CAMPAIGN:
            table, id_col = "campaigns", "campaign_id"
            if ref.platform is Platform.META:
                funded = self._con.execute(
                    "SELECT ad_group_id FROM ad_groups WHERE campaign_id = ? AND daily_budget IS NOT NULL "
                    "AND status <> 'REMOVED' ORDER BY 1 LIMIT 1", [ref.id]).fetchall()
                if funded:
                    raise _Reject(ErrorCode.BUDGET_LEVEL_CONFLICT,
                                  f"campaign {ref.id} funds its ad sets individually (e.g. {funded[0][0]}); "
                                  "a campaign budget (CBO) and ad-set budgets are mutually exclusive")
        else:
            table, id_col = "ad_groups", "ad_group_id"
            cbo = self._con.execute("SELECT daily_budget FROM campaigns WHERE campaign_id = ?",
                                    [row["campaign_id"]]).fetchall()
            if cbo and cbo[0][0] is not None:
                raise _Reject(ErrorCode.BUDGET_LEVEL_CONFLICT,
                              f"campaign {row['campaign_id']} has a campaign budget (CBO); its ad set {ref.id} "
                              "cannot also have one")
            self._check_adset_rate(ref, pending)
        before = {"daily_budget": _amount(row["daily_budget"]), "currency": account.currency}
        after = {"daily_budget": str(budget.amount), "currency": account.currency}
        return _Plan(before=before, after=after,
                     statements=[(f"UPDATE {table} SET daily_budget = ? WHERE {id_col} = ?", [budget.amount, ref.id])])

    def _check_adset_rate(self, ref: EntityRef, pending: _Pending) -> None:
        """Meta blocks an ad set's budget after 4 changes in an hour (error 17); count over a sliding hour."""
        now = _utc_naive(self._clock())
        recent = [r[0] for r in self._con.execute(
            "SELECT applied_at FROM sandbox_mutations WHERE action_kind = 'set_budget' AND target = ? "
            "AND applied_at > ? ORDER BY applied_at DESC", [ref.key(), now - timedelta(hours=1)]).fetchall()]
        if len(recent) + pending.budget_changes[ref.key()] >= META_ADSET_BUDGET_CHANGES_PER_HOUR:
            limit = META_ADSET_BUDGET_CHANGES_PER_HOUR
            # With changes pending in this batch the earliest retry is an hour after the oldest change counted.
            oldest = recent[limit - 1] if len(recent) >= limit else (recent[-1] if recent else now)
            retry = oldest + timedelta(hours=1)
            raise _Reject(ErrorCode.ADSET_BUDGET_CHANGE_LIMIT,
                          f"Meta error 17: the budget of ad set {ref.id} may change at most {limit} times per hour; "
                          f"next change possible after {retry:%Y-%m-%d %H:%M} UTC")
        pending.budget_changes[ref.key()] += 1

    def _plan_status(self, action: SetStatus, row: dict[str, Any], pending: _Pending, actor: str | None) -> _Plan:
        ref = action.target
        if action.status not in SETTABLE_STATUSES:
            raise _Reject(ErrorCode.INVALID_STATUS, f"status {action.status!r} cannot be set (use ENABLED or PAUSED)")
        table, id_col, _ = _TABLES[ref.kind]
        if ref.kind is EntityKind.KEYWORD:
            if row["negative"]:
                raise _Reject(ErrorCode.NOT_SUPPORTED, f"negative keyword {ref.id} has no status; it can only be "
                                                       "removed, which adpilot never does")
            return _Plan(before={"status": row["status"]}, after={"status": action.status},
                         statements=[(f"UPDATE {table} SET status = ? WHERE {id_col} = ?", [action.status, ref.id])])
        current = row["status"]
        if (ref.kind is EntityKind.AD and action.status == "ENABLED" and current != "ENABLED"
                and row["format"] == "google_rsa"):
            self._check_rsa_room(row["ad_group_id"], pending)
        # Re-pausing keeps the original attribution: who paused it first is who paused it.
        unchanged = action.status == current
        paused_by = row["paused_by"] if unchanged else (actor if action.status == "PAUSED" else None)
        return _Plan(before={"status": current, "paused_by": row["paused_by"]},
                     after={"status": action.status, "paused_by": paused_by},
                     statements=[(f"UPDATE {table} SET status = ?, paused_by = ? WHERE {id_col} = ?",
                                  [action.status, paused_by, ref.id])])

    def _check_rsa_room(self, ad_group_id: str, pending: _Pending) -> None:
        enabled = self._con.execute(
            "SELECT count(*) FROM ads WHERE ad_group_id = ? AND format = 'google_rsa' AND status = 'ENABLED'",
            [ad_group_id]).fetchall()[0][0]
        if enabled + pending.enabled_rsas[ad_group_id] >= MAX_ENABLED_RSAS_PER_AD_GROUP:
            raise _Reject(ErrorCode.RSA_LIMIT, f"ad group {ad_group_id} already has "
                                               f"{MAX_ENABLED_RSAS_PER_AD_GROUP} enabled responsive search ads")
        pending.enabled_rsas[ad_group_id] += 1

    def _plan_bid(self, action: SetBid, account: Account, row: dict[str, Any]) -> _Plan:
        ref = action.target
        if action.bid_type == "target_roas":
            roas = action.target_roas
            if roas is None or not TARGET_ROAS_MIN <= roas <= TARGET_ROAS_MAX:
                raise _Reject(ErrorCode.INVALID_TARGET_ROAS,
                              f"target ROAS {roas} is outside {TARGET_ROAS_MIN}–{TARGET_ROAS_MAX}")
        else:
            if action.amount is None:
                raise _Reject(ErrorCode.BID_TOO_SMALL, f"{action.bid_type} needs an amount")
            self._check_money(action.amount, account, action.bid_type)
            if action.amount.amount <= 0:
                raise _Reject(ErrorCode.BID_TOO_SMALL, f"{action.bid_type} must be above zero")
        if action.bid_type == "cpc":
            if ref.platform is not Platform.GOOGLE:
                raise _Reject(ErrorCode.NOT_SUPPORTED, "Meta ad sets bid through bid strategies, not manual CPC")
            if ref.kind is EntityKind.CAMPAIGN:
                raise _Reject(ErrorCode.NOT_SUPPORTED, "manual CPC bids belong to ad groups and keywords")
            if ref.kind is EntityKind.KEYWORD and row["negative"]:
                raise _Reject(ErrorCode.NOT_SUPPORTED, f"negative keyword {ref.id} has no bid")
            table, id_col, _ = _TABLES[ref.kind]
            assert action.amount is not None
            return _Plan(before={"cpc_bid": _amount(row["cpc_bid"]), "currency": account.currency},
                         after={"cpc_bid": str(action.amount.amount), "currency": account.currency},
                         statements=[(f"UPDATE {table} SET cpc_bid = ? WHERE {id_col} = ?",
                                      [action.amount.amount, ref.id])])
        if ref.kind is not EntityKind.CAMPAIGN:
            raise _Reject(ErrorCode.NOT_SUPPORTED, f"the sandbox keeps {action.bid_type} on campaigns only")
        if action.bid_type == "target_cpa":
            assert action.amount is not None
            value: Decimal = action.amount.amount
            before = {"target_cpa": _amount(row["target_cpa"]), "currency": account.currency}
            after = {"target_cpa": str(value), "currency": account.currency}
        else:
            assert action.target_roas is not None
            value = action.target_roas
            before, after = {"target_roas": _amount(row["target_roas"])}, {"target_roas": str(value)}
        return _Plan(before=before, after=after,
                     statements=[(f"UPDATE campaigns SET {action.bid_type} = ? WHERE campaign_id = ?",
                                  [value, ref.id])])

    def _plan_create_ad(self, action: CreateAd, account: Account, row: dict[str, Any], pending: _Pending) -> _Plan:
        ref = action.target
        platform = Platform(account.platform)
        model = GoogleResponsiveSearchAd if platform is Platform.GOOGLE else MetaAdCreative
        try:
            # Re-validated here: an action built with model_construct skips the domain validators.
            ad = model.model_validate(action.ad.model_dump())
        except ValidationError as exc:
            first = exc.errors()[0]
            message = str(first.get("msg", "invalid ad")).removeprefix("Value error, ")
            raise _Reject(ErrorCode.INVALID_AD, message) from None
        if action.status not in SETTABLE_STATUSES:
            raise _Reject(ErrorCode.INVALID_STATUS, f"status {action.status!r} cannot be set (use ENABLED or PAUSED)")
        if isinstance(ad, GoogleResponsiveSearchAd) and action.status == "ENABLED":
            self._check_rsa_room(ref.id, pending)
        new_id = self._next_id("ads", "ad_id", _NEW_ID_PREFIX[("ads", platform)])
        if isinstance(ad, GoogleResponsiveSearchAd):
            headlines, descriptions, primary, url = list(ad.headlines), list(ad.descriptions), None, ad.final_url
        else:
            headlines, descriptions, primary, url = [ad.headline], [ad.description], ad.primary_text, ad.link
        created_at = _utc_naive(self._clock())
        after = {"ad_id": new_id, "ad_group_id": ref.id, "status": action.status, "sku": action.sku,
                 "ad": ad.model_dump(mode="json")}
        return _Plan(before=None, after=after, created_id=new_id, statements=[(
            "INSERT INTO ads (ad_id, ad_group_id, campaign_id, account_id, platform, sku, format, headlines, "
            "descriptions, primary_text, final_url, status, paused_by, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
            [new_id, ref.id, row["campaign_id"], account.account_id, platform.value, action.sku, ad.format,
             headlines, descriptions, primary, url, action.status, created_at])])

    def _plan_negative(self, action: AddNegativeKeyword, account: Account, row: dict[str, Any],
                       pending: _Pending) -> _Plan:
        ref = action.target
        if account.platform != Platform.GOOGLE:
            raise _Reject(ErrorCode.NOT_SUPPORTED, "negative keywords exist on Google Ads only")
        text = " ".join(action.text.split())
        if not text or len(text) > 80 or len(text.split()) > 10:
            raise _Reject(ErrorCode.NOT_SUPPORTED, "a negative keyword has 1 to 80 characters and at most 10 words")
        if ref.kind is EntityKind.CAMPAIGN:
            campaign_id, ad_group_id = ref.id, None
            level = "ad_group_id IS NULL AND campaign_id = ?"
        else:
            campaign_id, ad_group_id = row["campaign_id"], ref.id
            level = "ad_group_id = ?"
        duplicate = self._con.execute(
            f"SELECT keyword_id FROM keywords WHERE negative AND {level} AND match_type = ? "
            "AND lower(text) = lower(?) AND status <> 'REMOVED'", [ref.id, action.match_type, text]).fetchall()
        signature = (ref.key(), action.match_type, text.casefold())
        if duplicate or signature in pending.negatives:
            existing = f" ({duplicate[0][0]})" if duplicate else ""
            raise _Reject(ErrorCode.DUPLICATE_NEGATIVE, f"{ref.kind} {ref.id} already has the negative "
                                                        f"{action.match_type} keyword {text!r}{existing}")
        pending.negatives.add(signature)
        new_id = self._next_id("keywords", "keyword_id", _NEW_ID_PREFIX[("keywords", Platform.GOOGLE)])
        after = {"keyword_id": new_id, "text": text, "match_type": action.match_type, "level": str(ref.kind),
                 "parent_id": ref.id}
        return _Plan(before=None, after=after, created_id=new_id, statements=[(
            "INSERT INTO keywords (keyword_id, ad_group_id, campaign_id, account_id, text, match_type, negative, "
            "status, cpc_bid) VALUES (?, ?, ?, ?, ?, ?, TRUE, 'ENABLED', NULL)",
            [new_id, ad_group_id, campaign_id, account.account_id, text, action.match_type])])

    def _next_id(self, table: str, id_col: str, prefix: str) -> str:
        """The next id in the warehouse's own style (``gad-00001``): one past the highest number in use."""
        pattern = re.compile(rf"^{re.escape(prefix)}(\d+)$")
        highest, width = 0, 5
        for (existing,) in self._con.execute(f"SELECT {id_col} FROM {table} WHERE starts_with({id_col}, ?)",
                                             [prefix]).fetchall():
            match = pattern.match(existing)
            if match:
                highest = max(highest, int(match.group(1)))
                width = max(width, len(match.group(1)))
        return f"{prefix}{highest + 1:0{width}d}"


def _ad_content(row: dict[str, Any]) -> GoogleResponsiveSearchAd | MetaAdCreative | None:
    """The ad's content as a domain object; None when the stored row does not form a valid ad (then the
    entity still reads, so a bad row never hides the rest of an account)."""
    headlines = list(row["headlines"] or [])
    descriptions = list(row["descriptions"] or [])
    try:
        if row["format"] == "google_rsa":
            return GoogleResponsiveSearchAd(headlines=headlines, descriptions=descriptions, final_url=row["final_url"])
        if row["format"] == "meta_link":
            return MetaAdCreative(primary_text=row["primary_text"] or "", headline=headlines[0] if headlines else "",
                                  description=descriptions[0] if descriptions else "", link=row["final_url"])
    except ValidationError:
        return None
    return None
