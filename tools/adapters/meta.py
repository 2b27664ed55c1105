"""Meta adapter (facebook-business SDK, Graph Marketing API): campaigns, ad sets and ads.

Reads use the multi-id lookup (``GET /?ids=a,b,c``, up to 50 ids a call) and the edges of an ad
account. Mutations go out as Graph batch requests of at most 50 calls; a dry run sends the same
batch with ``execution_options=["validate_only"]``. Rate limits: error codes 4, 17, 613 and
80000-80014 are retried after the wait that the ``x-business-use-case-usage`` header's
``estimated_time_to_regain_access`` (minutes) names, else with exponential backoff; the batch
items that hit a limit are resent, the others keep their results. Budgets and bids are converted
to the currency's minor unit (EUR cents) only here. Meta's ACTIVE is adpilot's ENABLED; adpilot
never sets ARCHIVED or DELETED (both read as REMOVED).

The SDK is always initialised with ``crash_log=False``: its default installs a ``sys.excepthook``
that posts crash reports to Meta. The access token travels as a query parameter inside the SDK's
session and never reaches a message this module produces.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from agent.domain import (
    Account,
    Action,
    ActionResult,
    CreateAd,
    DomainError,
    Entity,
    EntityKind,
    EntityRef,
    KpiTotals,
    MetaAdCreative,
    Money,
    Platform,
    SetBid,
    SetBudget,
    SetStatus,
)
from agent.errors import BadInput, ConfigError, NotFound, PlatformError
from agent.settings import Settings
from tools.adapters.common import (
    applied_result,
    changed_values,
    check_window_days,
    complete_days,
    currency_mismatch,
    earlier_result,
    failed_result,
    ids_by_account_and_kind,
    intended_values,
    local_today,
    read_back_values,
    validation_result,
)
from tools.adapters.ledger import AppliedLedger
from tools.adapters.retry import RetryAfter, RetryPolicy

log = logging.getLogger(__name__)

MAX_BATCH = 50
MAX_IDS_PER_READ = 50
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, *range(80000, 80015)})
AUTH_CODES = frozenset({102, 190, 10, *range(200, 300)})
USAGE_HEADER = "x-business-use-case-usage"
#: a token expiring within this many days makes the adapter warn (and the doctor say so)
TOKEN_WARN_DAYS = 7

_FIELDS: dict[EntityKind, str] = {
    EntityKind.CAMPAIGN: "id,name,status,daily_budget,bid_strategy",
    EntityKind.AD_GROUP: "id,name,status,campaign_id,daily_budget,bid_amount,bid_strategy,bid_constraints",
    EntityKind.AD: "id,name,status,adset_id,creative{object_story_spec}",
}
_EDGES = {EntityKind.CAMPAIGN: "campaigns", EntityKind.AD_GROUP: "adsets", EntityKind.AD: "ads"}
_LEVELS = {EntityKind.CAMPAIGN: "campaign", EntityKind.AD_GROUP: "adset", EntityKind.AD: "ad"}
_TO_DOMAIN = {"ACTIVE": "ENABLED", "PAUSED": "PAUSED", "ARCHIVED": "REMOVED", "DELETED": "REMOVED"}
_TO_META = {"ENABLED": "ACTIVE", "PAUSED": "PAUSED"}
# Purchases are what adpilot optimises for; Meta reports them under one of these action types.
CONVERSION_ACTION_TYPES = ("purchase", "offsite_conversion.fb_pixel_purchase", "omni_purchase")


@dataclass(frozen=True)
class TokenStatus:
    """What ``debug_token`` says about the access token (never the token itself)."""

    valid: bool
    expires_at: datetime | None  # None: never expires (system-user tokens)
    scopes: tuple[str, ...]

    def days_left(self, now: datetime) -> float | None:
        """Days until expiry, None for a token that does not expire."""
        return None if self.expires_at is None else (self.expires_at - now).total_seconds() / 86400


@dataclass
class _Call:
    """One Graph call inside a batch, tied to the action it serves."""

    action_index: int
    method: str
    path: str
    params: dict[str, Any]
    name: str | None = None
    depends_on: str | None = None


class RedactTokens(logging.Filter):
    """Masks credentials in log records: urllib3 logs each request line (query included) at DEBUG,
    and the SDK sends the access token and app secret proof as query parameters."""

    PATTERN = re.compile(r"(access_token|appsecret_proof|input_token)=[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drop it."""
        record.msg = self.PATTERN.sub(r"\1=[FILTERED]", str(record.msg))
        if isinstance(record.args, tuple):
            record.args = tuple(self.PATTERN.sub(r"\1=[FILTERED]", a) if isinstance(a, str) else a
                                for a in record.args)
        return True


def install_log_redaction() -> None:
    """Put ``RedactTokens`` on the loggers that see Graph URLs (once)."""
    for name in ("urllib3.connectionpool", "requests"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())


def usage_wait(headers: Any) -> float | None:
    """Seconds to wait according to ``x-business-use-case-usage`` (None when it names no wait).

    ``headers`` is a mapping (a plain response) or the ``[{"name", "value"}]`` list of a batch item.
    """
    value: str | None = None
    if isinstance(headers, list):
        for item in headers:
            if isinstance(item, dict) and str(item.get("name", "")).lower() == USAGE_HEADER:
                value = item.get("value")
    elif headers is not None:
        value = {str(k).lower(): v for k, v in dict(headers).items()}.get(USAGE_HEADER)
    if not value:
        return None
    try:
        usage = json.loads(value)
    except ValueError:
        return None
    minutes = [float(entry.get("estimated_time_to_regain_access") or 0)
               for entries in usage.values() if isinstance(entries, list) for entry in entries
               if isinstance(entry, dict)]
    wait = max(minutes, default=0.0) * 60
    return wait or None


def _error_of(body: Any) -> dict[str, Any]:
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return {}
    return body.get("error", {}) if isinstance(body, dict) else {}


def _auth_error(message: str) -> PlatformError:
    return PlatformError(f"Meta refused the access token: {message.rstrip('.')}. Create a new token "
                         "(system-user tokens do not expire) and run `adpilot doctor`", code="AUTH")


def _minor(value: Any, currency: str) -> Money | None:
    if value in (None, "", "0", 0):
        return None
    return Money.from_minor(int(value), currency)


class MetaPlatform:
    """``AdPlatform`` on the Meta Marketing API."""

    name = "meta"

    def __init__(self, api: Any, accounts: Sequence[Account], *, ledger: AppliedLedger | None = None,
                 retry: RetryPolicy | None = None, page_id: str | None = None,
                 today: Callable[[str], date] | None = None, now: Callable[[], datetime] | None = None,
                 max_batch: int = MAX_BATCH, discover: Sequence[str] = ()) -> None:
        if not 1 <= max_batch <= MAX_BATCH:
            raise ConfigError(f"max_batch must be 1..{MAX_BATCH}")
        install_log_redaction()
        self._api = api
        self._accounts = {a.account_id: a for a in accounts}
        self._discover = [a for a in discover if a not in self._accounts]
        self._ledger = ledger or AppliedLedger()
        self._retry = retry or RetryPolicy()
        self._page_id = page_id
        self._today = today or local_today
        self._now = now or (lambda: datetime.now(UTC))
        self._max_batch = max_batch
        self._token_checked = False
        self._created: dict[int, str] = {}  # action index → id of the ad it created (current apply)
        self._creatives: dict[str, str] = {}  # batch name → id of a creative created (current apply)
        #: Graph HTTP requests made (a batch counts once); the bench reports it
        self.round_trips = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> MetaPlatform:
        """The adapter for every account that settings route to ``meta`` (token from META_ACCESS_TOKEN)."""
        from facebook_business.api import FacebookAdsApi

        ids = [a for a, choice in settings.platforms.items() if choice == "meta"]
        if not ids:
            raise ConfigError("no account is routed to meta: set ADPILOT_PLATFORMS, e.g. '{\"act_1001\": \"meta\"}'")
        if settings.meta_access_token is None:
            raise ConfigError("no Meta access token: set META_ACCESS_TOKEN (and META_APP_ID / META_APP_SECRET)")
        bad = [a for a in ids if not a.startswith("act_")]
        if bad:
            raise ConfigError(f"Meta ad account ids start with act_: {', '.join(bad)}")
        secret = settings.meta_app_secret.get_secret_value() if settings.meta_app_secret else None
        # crash_log=False: the default installs an excepthook that sends crash reports to Meta.
        api = FacebookAdsApi.init(settings.meta_app_id, secret, settings.meta_access_token.get_secret_value(),
                                  api_version=settings.meta_api_version, timeout=30, crash_log=False)
        return cls(api, [], ledger=AppliedLedger.under(settings.home), page_id=settings.meta_page_id, discover=ids)

    # ----------------------------------------------------------------- HTTP plumbing

    def _classify(self, exc: Exception) -> RetryAfter | None:
        code = getattr(exc, "api_error_code", lambda: None)()
        if code in RATE_LIMIT_CODES:
            return RetryAfter(usage_wait(exc.http_headers()))
        if getattr(exc, "api_transient_error", lambda: False)():
            return RetryAfter(None)
        return None

    def _call(self, method: str, path: Sequence[str], params: dict[str, Any] | None = None) -> Any:
        """One Graph call with retries; returns the decoded JSON body."""
        from facebook_business.exceptions import FacebookRequestError

        def once() -> Any:
            self.round_trips += 1
            return self._api.call(method, tuple(path), params=params or {})

        try:
            response = self._retry.run(once, self._classify)
        except FacebookRequestError as exc:
            raise _platform_error(exc) from None
        except Exception as exc:
            # Transport errors (requests' ConnectionError, a test's vcrpy CannotOverwriteExistingCassette...)
            # quote the full URL, and the SDK puts the access token in the URL: only the type may surface,
            # and ``from None`` keeps the original out of tracebacks and logs.
            raise PlatformError(f"Meta is unreachable or the call failed ({type(exc).__name__})",
                                code="UNREACHABLE", retryable=isinstance(exc, OSError)) from None
        return response.json()

    def _paged(self, path: Sequence[str], params: dict[str, Any]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        params = {**params, "limit": 500}
        while True:
            body = self._call("GET", path, params)
            rows.extend(body.get("data", []))
            after = body.get("paging", {}).get("cursors", {}).get("after")
            if not after or not body.get("paging", {}).get("next"):
                return rows
            params = {**params, "after": after}

    def check_token(self) -> TokenStatus:
        """``debug_token`` on the configured access token: validity, expiry, scopes."""
        token = self._api._session.access_token
        data = self._call("GET", ("debug_token",), {"input_token": token}).get("data", {})
        expires = int(data.get("expires_at") or 0)
        return TokenStatus(valid=bool(data.get("is_valid")),
                           expires_at=datetime.fromtimestamp(expires, UTC) if expires else None,
                           scopes=tuple(data.get("scopes", ())))

    def _ensure_token(self) -> None:
        if self._token_checked:
            return
        status = self.check_token()
        if not status.valid:
            raise _auth_error("the token is invalid or expired")
        days = status.days_left(self._now())
        if days is not None and days < TOKEN_WARN_DAYS:
            log.warning("the Meta access token expires in %.1f days; replace it soon", days)
        self._token_checked = True

    # ----------------------------------------------------------------- accounts and reads

    def _ensure_accounts(self) -> None:
        if not self._discover:
            return
        body = self._call("GET", ("",), {"ids": ",".join(self._discover), "fields": "name,currency,timezone_name"})
        for account_id in self._discover:
            data = body.get(account_id)
            if data is None:
                raise PlatformError(f"Meta ad account {account_id} is not visible to this token", code="NOT_FOUND")
            self._accounts[account_id] = Account(platform=Platform.META, account_id=account_id,
                                                 name=data.get("name") or account_id, currency=data["currency"],
                                                 timezone=data.get("timezone_name") or "Europe/Berlin")
        self._discover = []

    def _account(self, account_id: str) -> Account:
        self._ensure_accounts()
        if account_id not in self._accounts:
            raise NotFound(f"unknown Meta ad account {account_id!r}")
        return self._accounts[account_id]

    def list_accounts(self) -> list[Account]:
        """Every account this adapter serves."""
        self._ensure_accounts()
        return list(self._accounts.values())

    def _entity(self, account: Account, kind: EntityKind, data: dict[str, Any]) -> Entity:
        def ref(k: EntityKind, i: Any) -> EntityRef:
            return EntityRef(platform=Platform.META, account_id=account.account_id, kind=k, id=str(i))

        status = _TO_DOMAIN.get(str(data.get("status")), "PAUSED")
        cur = account.currency
        if kind is EntityKind.CAMPAIGN:
            return Entity(ref=ref(kind, data["id"]), name=data.get("name", ""), status=status,
                          daily_budget=_minor(data.get("daily_budget"), cur))
        if kind is EntityKind.AD_GROUP:
            floor = (data.get("bid_constraints") or {}).get("roas_average_floor")
            bid = _minor(data.get("bid_amount"), cur)
            cost_cap = data.get("bid_strategy") == "COST_CAP"
            return Entity(ref=ref(kind, data["id"]), name=data.get("name", ""), status=status,
                          parent=ref(EntityKind.CAMPAIGN, data["campaign_id"]) if data.get("campaign_id") else None,
                          daily_budget=_minor(data.get("daily_budget"), cur),
                          cpc_bid=None if cost_cap else bid, target_cpa=bid if cost_cap else None,
                          target_roas=Decimal(int(floor)) / 10000 if floor else None)
        link = ((data.get("creative") or {}).get("object_story_spec") or {}).get("link_data") or {}
        content: MetaAdCreative | None = None
        if link.get("link") and link.get("message") and link.get("name"):
            try:
                content = MetaAdCreative(primary_text=link["message"], headline=link["name"],
                                         description=link.get("description", ""), link=link["link"])
            except (ValueError, DomainError):
                content = None
        return Entity(ref=ref(kind, data["id"]), name=data.get("name", ""), status=status,
                      parent=ref(EntityKind.AD_GROUP, data["adset_id"]) if data.get("adset_id") else None, ad=content)

    def _read_ids(self, account: Account, kind: EntityKind, ids: Iterable[str]) -> dict[str, Entity]:
        if kind not in _FIELDS:
            raise BadInput(f"Meta has no {kind} entities")
        wanted = sorted({i for i in ids if i.isdigit()})
        out: dict[str, Entity] = {}
        for offset in range(0, len(wanted), MAX_IDS_PER_READ):
            chunk = wanted[offset:offset + MAX_IDS_PER_READ]
            try:
                body = self._call("GET", ("",), {"ids": ",".join(chunk), "fields": _FIELDS[kind]})
            except PlatformError as exc:
                if exc.code != "100":
                    raise
                # An unknown id fails the whole multi-id read: fall back to one read per id.
                body = {}
                for one in chunk:
                    try:
                        body.update(self._call("GET", ("",), {"ids": one, "fields": _FIELDS[kind]}))
                    except PlatformError as inner:
                        if inner.code != "100":
                            raise
            for key, data in body.items():
                out[key] = self._entity(account, kind, data)
        return out

    def list_entities(self, account_id: str, kind: EntityKind, *, parent_id: str | None = None,
                      status: str | None = None) -> list[Entity]:
        """Campaigns, ad sets (``ad_group``) or ads of an account, optionally under one parent / with one status."""
        account = self._account(account_id)
        if kind not in _EDGES:
            raise BadInput(f"Meta has no {kind} entities")
        if status is not None and status not in ("ENABLED", "PAUSED", "REMOVED"):
            raise BadInput(f"unknown status {status!r} (use ENABLED, PAUSED or REMOVED)")
        if parent_id is not None:
            if kind is EntityKind.CAMPAIGN or not parent_id.isdigit():
                raise BadInput(f"{parent_id!r} is not a parent of {kind} entities")
            path = (parent_id, _EDGES[kind])
        else:
            path = (account_id, _EDGES[kind])
        rows = self._paged(path, {"fields": _FIELDS[kind]})
        entities = [self._entity(account, kind, row) for row in rows]
        return [e for e in entities if status is None or e.status == status]

    def get_entity(self, ref: EntityRef) -> Entity:
        """One entity's current state; ``NotFound`` when Meta does not return it."""
        found = self.read_back([ref])
        if ref not in found:
            raise NotFound(f"no {ref.kind} {ref.id} in Meta account {ref.account_id}")
        return found[ref]

    def read_back(self, refs: Sequence[EntityRef]) -> dict[EntityRef, Entity]:
        """Fresh reads: one multi-id call per account, kind and 50 ids."""
        wanted = ids_by_account_and_kind(refs, Platform.META, "Meta")
        out: dict[EntityRef, Entity] = {}
        for (account_id, kind), ids in wanted.items():
            account = self._account(account_id)
            for entity in self._read_ids(account, kind, ids).values():
                out[entity.ref] = entity
        return out

    def read_kpis(self, account_id: str, kind: EntityKind, ids: Sequence[str],
                  window_days: int) -> dict[str, KpiTotals]:
        """Totals per id from the insights edge over the last ``window_days`` complete days."""
        check_window_days(window_days)
        if kind not in _LEVELS:
            raise BadInput(f"no performance data for {kind} entities on Meta")
        account = self._account(account_id)
        level = _LEVELS[kind]
        today = self._today(account.timezone)
        totals = {i: KpiTotals(currency=account.currency) for i in ids}
        wanted = sorted({i for i in ids if i.isdigit()})
        if not wanted:
            return totals
        since, until = complete_days(today, window_days)
        rows = self._paged((account_id, "insights"), {
            "level": level, "fields": f"{level}_id,impressions,clicks,spend,actions,action_values",
            "time_range": {"since": since.isoformat(), "until": until.isoformat()},
            "filtering": [{"field": f"{level}.id", "operator": "IN", "value": wanted}]})
        for row in rows:
            key = str(row.get(f"{level}_id"))
            if key not in totals:
                continue
            totals[key] = KpiTotals(impressions=int(row.get("impressions", 0)), clicks=int(row.get("clicks", 0)),
                                    cost=Decimal(str(row.get("spend", "0"))),
                                    conversions=_action_total(row.get("actions")),
                                    conversion_value=_action_total(row.get("action_values")),
                                    currency=account.currency)
        return totals

    # ----------------------------------------------------------------- mutations

    def validate(self, actions: Sequence[Action]) -> list[ActionResult]:
        """Validate-only: every update goes out with ``execution_options=["validate_only"]``."""
        return self._run(actions, validate_only=True)

    def apply(self, actions: Sequence[Action], *, actor: str | None = None) -> list[ActionResult]:
        """Apply in batches of 50; before values read first, after values read back.

        ``actor`` is not sent: Meta's activity log records the token's user.
        """
        return self._run(actions, validate_only=False)

    def _run(self, actions: Sequence[Action], *, validate_only: bool) -> list[ActionResult]:
        results: dict[int, ActionResult] = {}
        todo: list[int] = []
        self._ensure_accounts()
        for i, action in enumerate(actions):
            target = action.target
            if target.platform is not Platform.META:
                results[i] = failed_result(action, "WRONG_PLATFORM", f"{target} is not a Meta entity")
                continue
            if target.account_id not in self._accounts:
                results[i] = failed_result(action, "UNKNOWN_ACCOUNT", f"unknown Meta ad account {target.account_id!r}")
                continue
            if target.kind not in _FIELDS:
                results[i] = failed_result(action, "UNSUPPORTED", f"Meta has no {target.kind} entities")
                continue
            done = earlier_result(self._ledger, self.name, action, validate_only=validate_only)
            if done is not None:
                results[i] = done
            else:
                todo.append(i)
        if todo and not validate_only:
            self._ensure_token()
        refs = [actions[i].target for i in todo]
        before_reads = self.read_back(refs) if refs else {}
        calls: list[_Call] = []
        befores: dict[int, dict[str, Any] | None] = {}
        for i in todo:
            planned = self._plan(actions[i], i, before_reads, validate_only)
            if isinstance(planned, ActionResult):
                results[i] = planned
            else:
                calls.extend(planned)
                entity = before_reads.get(actions[i].target)
                befores[i] = (None if isinstance(actions[i], CreateAd) or entity is None
                              else changed_values(actions[i], entity))
        outcomes = self._execute(calls)
        ok_indices = sorted({c.action_index for c in calls} - {i for i, (ok, _, _) in outcomes.items() if not ok})
        if validate_only:
            for i in sorted({c.action_index for c in calls}):
                ok, code, message = outcomes.get(i, (True, None, ""))
                results[i] = validation_result(actions[i], ok=ok,
                                               accepted="valid: Meta accepted the request (validate_only)",
                                               error_code=code, message=message, before=befores.get(i))
            return [results[i] for i in sorted(results)]
        created = self._created
        after_refs = []
        for i in ok_indices:
            action = actions[i]
            if isinstance(action, CreateAd):
                after_refs.append(EntityRef(platform=Platform.META, account_id=action.target.account_id,
                                            kind=EntityKind.AD, id=created.get(i, "0")))
            else:
                after_refs.append(action.target)
        after_reads = self.read_back(after_refs) if after_refs else {}
        for i in sorted({c.action_index for c in calls}):
            action = actions[i]
            ok, code, message = outcomes.get(i, (True, None, ""))
            if not ok:
                results[i] = failed_result(action, code or "FAILED", message, befores.get(i))
                continue
            created_id = created.get(i)
            ref = (EntityRef(platform=Platform.META, account_id=action.target.account_id, kind=EntityKind.AD,
                             id=created_id) if created_id else action.target)
            after = read_back_values(action, after_reads.get(ref))
            results[i] = applied_result(action, before=befores.get(i), after=after, intended=_intended(action),
                                        created_id=created_id)
            self._ledger.record(self.name, action.target.account_id, action.fingerprint(), results[i])
        return [results[i] for i in sorted(results)]

    def _plan(self, action: Action, index: int, reads: dict[EntityRef, Entity],
              validate_only: bool) -> list[_Call] | ActionResult:
        target = action.target
        account = self._accounts[target.account_id]  # unknown accounts were turned away in _run
        entity = reads.get(target)
        if entity is None:
            return failed_result(action, "NOT_FOUND",
                                 f"no {target.kind} {target.id} in Meta account {target.account_id}")
        if entity.status == "REMOVED":
            return failed_result(action, "OPERATION_NOT_PERMITTED_FOR_REMOVED_RESOURCE",
                                 f"{target.kind} {target.id} is archived or deleted and cannot be changed")
        mismatch = currency_mismatch(action, account)
        if mismatch is not None:
            return mismatch
        extra: dict[str, Any] = {"execution_options": ["validate_only"]} if validate_only else {}
        if isinstance(action, SetBudget):
            if target.kind is EntityKind.CAMPAIGN and entity.daily_budget is None:
                return failed_result(action, "NO_CAMPAIGN_BUDGET", f"campaign {target.id} has no campaign budget "
                                     "(its ad sets hold the budgets): change an ad set's budget instead")
            return [_Call(index, "POST", target.id, {"daily_budget": action.daily_budget.to_minor(), **extra})]
        if isinstance(action, SetStatus):
            if target.kind is EntityKind.KEYWORD:
                return failed_result(action, "UNSUPPORTED", "Meta has no keywords")
            return [_Call(index, "POST", target.id, {"status": _TO_META[action.status], **extra})]
        if isinstance(action, SetBid):
            if target.kind is not EntityKind.AD_GROUP:
                return failed_result(action, "UNSUPPORTED", "on Meta, bids and targets belong to ad sets")
            if action.bid_type == "target_roas":
                floor = int((action.target_roas or Decimal(0)) * 10000)
                return [_Call(index, "POST", target.id, {"bid_constraints": {"roas_average_floor": floor}, **extra})]
            assert action.amount is not None  # guaranteed by SetBid's validator
            return [_Call(index, "POST", target.id, {"bid_amount": action.amount.to_minor(), **extra})]
        if isinstance(action, CreateAd):
            if not self._page_id:
                return failed_result(action, "NO_PAGE", "creating Meta ads needs the Facebook page that publishes "
                                     "them: set ADPILOT_META_PAGE_ID")
            ad = action.ad
            assert isinstance(ad, MetaAdCreative)  # guaranteed by CreateAd's validator for Meta targets
            link_data = {"message": ad.primary_text, "name": ad.headline, "link": ad.link}
            if ad.description:
                link_data["description"] = ad.description
            creative = _Call(index, "POST", f"{account.account_id}/adcreatives",
                             {"name": f"adpilot {action.idempotency_key[:12]}",
                              "object_story_spec": {"page_id": self._page_id, "link_data": link_data}, **extra},
                             name=f"creative{index}")
            if validate_only:
                return [creative]  # the ad itself needs the creative's id, which a dry run never gets
            ad_call = _Call(index, "POST", f"{account.account_id}/ads",
                            {"name": ad.headline[:100], "adset_id": target.id, "status": _TO_META[action.status],
                             "creative": {"creative_id": f"{{result=creative{index}:$.id}}"}},
                            depends_on=f"creative{index}")
            return [creative, ad_call]
        return failed_result(action, "UNSUPPORTED", f"{action.kind} does not exist on Meta")

    def _execute(self, calls: list[_Call]) -> dict[int, tuple[bool, str | None, str]]:
        """Send ``calls`` in batches; per action: (ok, error code, message). Rate-limited items are resent."""
        outcomes: dict[int, tuple[bool, str | None, str]] = {}
        self._created, self._creatives = {}, {}
        pending = list(calls)
        attempt = 0
        while pending:
            retry: list[_Call] = []
            waits: list[float] = []
            for chunk in _chunks(pending, self._max_batch):
                for call, response in zip(chunk, self._send_batch(chunk), strict=True):
                    ok, code, message, wait, limited = _item_outcome(response)
                    # An ad whose creative was rate limited never ran: it is resent with the creative.
                    limited = limited or (response is None and any(r.name == call.depends_on for r in retry))
                    if limited:
                        retry.append(call)
                        if wait:
                            waits.append(wait)
                        continue
                    if ok and call.path.endswith("/ads"):
                        body = json.loads(response.get("body") or "{}")
                        self._created[call.action_index] = str(body.get("id", ""))
                    previous = outcomes.get(call.action_index, (True, None, ""))
                    outcomes[call.action_index] = previous if not previous[0] else (ok, code, message)
            attempt += 1
            if not retry:
                break
            if attempt >= self._retry.max_attempts:
                for call in retry:
                    outcomes[call.action_index] = (False, "RATE_LIMITED", "Meta rate limit: not applied, try later")
                break
            delay = max(waits) if waits else self._retry.backoff(attempt - 1)
            if delay > self._retry.max_hint:
                for call in retry:
                    outcomes[call.action_index] = (False, "RATE_LIMITED",
                                                   f"Meta rate limit: blocked for {delay / 60:.0f} min, not applied")
                break
            self._retry.waits.append(delay)
            self._retry.sleep(delay)
            # A creative that went through keeps its result; resend its dependent ad alone with the id filled in.
            pending = [_resolved(c, self._creatives) for c in retry]
        return outcomes

    def _send_batch(self, chunk: list[_Call]) -> list[dict[str, Any] | None]:
        batch: list[dict[str, Any]] = []
        for call in chunk:
            params = {k: (json.dumps(v, separators=(",", ":"), sort_keys=True) if isinstance(v, (dict, list)) else v)
                      for k, v in call.params.items()}
            entry: dict[str, Any] = {"method": call.method, "relative_url": call.path,
                                     "body": "&".join(f"{k}={_quote(v)}" for k, v in params.items())}
            if call.name:
                entry["name"] = call.name
                entry["omit_response_on_success"] = False
            if call.depends_on:
                entry["depends_on"] = call.depends_on
            batch.append(entry)
        responses = self._call("POST", ("",), {"batch": batch})
        if not isinstance(responses, list) or len(responses) != len(chunk):
            raise PlatformError("Meta returned a malformed batch response", code="BAD_RESPONSE")
        self._creatives.update({
            call.name: str(json.loads(r.get("body") or "{}").get("id", ""))
            for call, r in zip(chunk, responses, strict=True)
            if call.name and isinstance(r, dict) and r.get("code") == 200})
        return responses


def _quote(value: Any) -> str:
    from urllib.parse import quote

    return quote(str(value), safe="")


def _resolved(call: _Call, creatives: dict[str, str]) -> _Call:
    if call.depends_on and call.depends_on in creatives:
        params = {**call.params, "creative": {"creative_id": creatives[call.depends_on]}}
        return _Call(call.action_index, call.method, call.path, params)
    return call


def _chunks(items: list[_Call], size: int) -> list[list[_Call]]:
    """Batches of at most ``size`` calls that never split a creative from the ad that needs it."""
    out: list[list[_Call]] = [[]]
    for position, call in enumerate(items):
        following = items[position + 1] if position + 1 < len(items) else None
        needs_pair = call.name is not None and following is not None and following.depends_on == call.name
        if len(out[-1]) + (2 if needs_pair else 1) > size and not call.depends_on:
            out.append([])
        out[-1].append(call)
    return [c for c in out if c]


def _item_outcome(response: dict[str, Any] | None) -> tuple[bool, str | None, str, float | None, bool]:
    """(ok, error code, message, wait seconds, rate limited) of one batch item."""
    if response is None:
        return False, "NOT_EXECUTED", "not executed: the request it depends on failed", None, False
    if response.get("code") == 200:
        return True, None, "", None, False
    error = _error_of(response.get("body"))
    code = error.get("code")
    if code in RATE_LIMIT_CODES:
        return False, str(code), "rate limited", usage_wait(response.get("headers")), True
    if code in AUTH_CODES:
        raise _auth_error(str(error.get("message", "authentication failed")))
    message = error.get("error_user_msg") or error.get("message") or f"HTTP {response.get('code')}"
    subcode = error.get("error_subcode")
    return False, str(code if code is not None else response.get("code")), (
        f"{message} (code {code}{f', subcode {subcode}' if subcode else ''})"), None, False


def _platform_error(exc: Any) -> PlatformError:
    code = exc.api_error_code()
    message = exc.api_error_message() or f"HTTP {exc.http_status()}"
    if code in AUTH_CODES:
        return _auth_error(message)
    if code in RATE_LIMIT_CODES:
        wait = usage_wait(exc.http_headers())
        return PlatformError(f"Meta rate limit (code {code}): {message}", code=str(code), retryable=True,
                             retry_after=wait)
    return PlatformError(f"Meta rejected the request (code {code}): {message}", code=str(code))


def _intended(action: Action) -> dict[str, Any]:
    """The values an action should leave behind, in ``changed_values`` form (empty for creations).

    Meta keeps a ROAS floor in ten-thousandths, so the target is compared at that precision. A bid
    amount is not compared: it reads back as ``cpc_bid`` or ``target_cpa`` depending on the ad set's
    bid strategy, not on the ``bid_type`` it was set with.
    """
    if isinstance(action, SetBid):
        if action.bid_type == "target_roas":
            return {"target_roas": str(Decimal(int((action.target_roas or 0) * 10000)) / 10000)}
        return {}
    return intended_values(action)


def _action_total(entries: Any) -> Decimal:
    if not isinstance(entries, list):
        return Decimal(0)
    by_type = {e.get("action_type"): e.get("value") for e in entries if isinstance(e, dict)}
    for action_type in CONVERSION_ACTION_TYPES:
        if action_type in by_type:
            return Decimal(str(by_type[action_type]))
    return Decimal(0)
