"""Google Ads adapter (google-ads SDK, API v26): GAQL reads, batched mutations, validate-only dry runs.

How one ``apply`` of N actions talks to the API:

1. one GAQL ``search_stream`` per entity kind reads the targets' current state (``before`` values, and
   the resource names the mutations need: a campaign's budget, an ad's ad group);
2. operations are grouped per service (budgets, campaigns, ad groups, ad group ads, ad group
   criteria, campaign criteria) and sent in mutate requests of at most 10,000 operations with
   ``partial_failure=True``; each failure is mapped back to its action through
   ``error.location.field_path_elements[0].index``;
3. one GAQL per kind reads the changed entities back (``after`` values).

So N budget changes in one account cost 3 round trips (while N <= 10,000), not 3 N. ``validate``
does steps 1 and 2 with ``validate_only=True``. Money crosses this module's boundary as ``Money``
and is converted to micros only here. Status is only ever set to ENABLED or PAUSED.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from agent.domain import (
    Account,
    Action,
    ActionResult,
    AddNegativeKeyword,
    CreateAd,
    DomainError,
    Entity,
    EntityKind,
    EntityRef,
    GoogleResponsiveSearchAd,
    KpiTotals,
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
    money_value,
    read_back_values,
    validation_result,
)
from tools.adapters.ledger import AppliedLedger
from tools.adapters.retry import RetryAfter, RetryPolicy

API_VERSION = "v26"
#: Google's hard limit (``TOO_MANY_MUTATE_OPERATIONS`` above it).
MAX_OPERATIONS_PER_REQUEST = 10_000
#: ids per GAQL ``IN (...)`` list; keeps queries well below the query length limit.
MAX_IDS_PER_QUERY = 1_000
FAILURE_METADATA_KEY = f"google.ads.googleads.{API_VERSION}.errors.googleadsfailure-bin"

ClientFactory = Callable[[str | None], Any]
"""Builds a ``GoogleAdsClient`` for a manager (login) customer id, or None for direct access."""

# gRPC codes after which a request was certainly not executed: safe to resend even a create.
_NOT_EXECUTED_CODES = frozenset({"UNAVAILABLE", "RESOURCE_EXHAUSTED"})
# Codes after which the request may or may not have run: resent only when it holds no create.
_AMBIGUOUS_CODES = frozenset({"DEADLINE_EXCEEDED", "INTERNAL"})
_AUTH_CATEGORIES = frozenset({"authentication_error", "authorization_error"})


@dataclass(frozen=True)
class _Service:
    """A mutate RPC: the service, its client method and the operation type it takes."""

    name: str
    method: str
    operation: str


_BUDGETS = _Service("CampaignBudgetService", "mutate_campaign_budgets", "CampaignBudgetOperation")
_CAMPAIGNS = _Service("CampaignService", "mutate_campaigns", "CampaignOperation")
_AD_GROUPS = _Service("AdGroupService", "mutate_ad_groups", "AdGroupOperation")
_AD_GROUP_ADS = _Service("AdGroupAdService", "mutate_ad_group_ads", "AdGroupAdOperation")
_AD_GROUP_CRITERIA = _Service("AdGroupCriterionService", "mutate_ad_group_criteria", "AdGroupCriterionOperation")
_CAMPAIGN_CRITERIA = _Service("CampaignCriterionService", "mutate_campaign_criteria", "CampaignCriterionOperation")
SERVICE_ORDER: tuple[_Service, ...] = (_BUDGETS, _CAMPAIGNS, _AD_GROUPS, _AD_GROUP_ADS, _AD_GROUP_CRITERIA,
                                       _CAMPAIGN_CRITERIA)

_QUERIES: dict[EntityKind, tuple[str, str]] = {
    # kind: (GAQL without WHERE, id field)
    EntityKind.CAMPAIGN: (
        "SELECT campaign.id, campaign.name, campaign.status, campaign.bidding_strategy_type, "
        "campaign.campaign_budget, campaign_budget.amount_micros, campaign_budget.explicitly_shared, "
        "campaign.target_cpa.target_cpa_micros, campaign.target_roas.target_roas, "
        "campaign.maximize_conversions.target_cpa_micros, campaign.maximize_conversion_value.target_roas "
        "FROM campaign", "campaign.id"),
    EntityKind.AD_GROUP: (
        "SELECT ad_group.id, ad_group.name, ad_group.status, campaign.id, ad_group.cpc_bid_micros, "
        "ad_group.target_cpa_micros, ad_group.target_roas FROM ad_group", "ad_group.id"),
    EntityKind.AD: (
        "SELECT ad_group_ad.ad.id, ad_group_ad.resource_name, ad_group_ad.status, ad_group.id, "
        "ad_group_ad.ad.final_urls, ad_group_ad.ad.responsive_search_ad.headlines, "
        "ad_group_ad.ad.responsive_search_ad.descriptions, ad_group_ad.ad.responsive_search_ad.path1, "
        "ad_group_ad.ad.responsive_search_ad.path2 FROM ad_group_ad", "ad_group_ad.ad.id"),
    EntityKind.KEYWORD: (
        "SELECT ad_group_criterion.criterion_id, ad_group_criterion.resource_name, ad_group_criterion.status, "
        "ad_group_criterion.keyword.text, ad_group_criterion.keyword.match_type, "
        "ad_group_criterion.cpc_bid_micros, ad_group.id FROM ad_group_criterion "
        "WHERE ad_group_criterion.type = 'KEYWORD' AND ad_group_criterion.negative = FALSE",
        "ad_group_criterion.criterion_id"),
}
_PARENT_FIELD = {EntityKind.AD_GROUP: "campaign.id", EntityKind.AD: "ad_group.id", EntityKind.KEYWORD: "ad_group.id"}
_KPI_FROM = {EntityKind.CAMPAIGN: ("campaign", "campaign.id"), EntityKind.AD_GROUP: ("ad_group", "ad_group.id"),
             EntityKind.AD: ("ad_group_ad", "ad_group_ad.ad.id"),
             EntityKind.KEYWORD: ("keyword_view", "ad_group_criterion.criterion_id")}
_STATUSES = ("ENABLED", "PAUSED", "REMOVED")
# Which campaign field holds a target for each bidding strategy (adpilot never switches strategies).
_CAMPAIGN_TARGET_FIELDS: dict[tuple[str, str], str] = {
    ("target_cpa", "TARGET_CPA"): "target_cpa.target_cpa_micros",
    ("target_cpa", "MAXIMIZE_CONVERSIONS"): "maximize_conversions.target_cpa_micros",
    ("target_roas", "TARGET_ROAS"): "target_roas.target_roas",
    ("target_roas", "MAXIMIZE_CONVERSION_VALUE"): "maximize_conversion_value.target_roas",
}


@dataclass
class _Read:
    """One entity as read by GAQL, with what the mutations need beyond the domain ``Entity``."""

    entity: Entity
    resource_name: str
    budget_resource: str | None = None
    budget_shared: bool = False
    bidding_strategy: str | None = None


@dataclass
class _Planned:
    """One action turned into one operation on one service."""

    index: int  # position in the caller's action list
    action: Action
    service: _Service
    operation: Any
    is_create: bool
    before: dict[str, Any] | None


@dataclass
class _Outcome:
    """What the API said about one planned operation."""

    ok: bool
    resource_name: str = ""
    message: str = ""
    error_code: str | None = None


@dataclass
class _CallCount:
    """How many round trips the adapter made, in total and per RPC (tests and the bench read it)."""

    round_trips: int = 0
    by_method: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def _digits(value: str, what: str) -> str:
    # Ids go into GAQL text: only digits may get there, which also rules out query injection.
    if not value.isdigit():
        raise NotFound(f"{what} {value!r} is not a Google Ads id (digits only)")
    return value


def _amount(micros: int | None, currency: str) -> Money | None:
    if not micros:
        return None
    try:
        return Money.from_micros(int(micros), currency)
    except DomainError:
        # A bid in fractions of a cent exists on Google (e.g. 0.125 EUR): round to the currency's unit
        # for display; the exact micros stay on the platform.
        return Money(amount=(Decimal(int(micros)) / 1_000_000).quantize(Decimal("0.01")), currency=currency)


def _error_code(error: Any) -> tuple[str, str]:
    """(category, name) of a ``GoogleAdsError``'s code, e.g. ("quota_error", "RESOURCE_TEMPORARILY_EXHAUSTED")."""
    code = error.error_code
    category = type(code).pb(code).WhichOneof("error_code") or "unknown"
    value = getattr(code, category, None)
    return category, getattr(value, "name", str(value))


def _operation_index(error: Any) -> int | None:
    elements = list(error.location.field_path_elements)
    if elements and elements[0].field_name == "operations" and "index" in elements[0]:
        return int(elements[0].index)
    return None


def _calls_of(exc: Exception) -> list[Any]:
    """The gRPC call objects behind an exception, wherever the SDK layers put them.

    A unary call fails as a ``grpc.RpcError`` (or a ``GoogleAdsException`` holding it in ``.error``);
    a failing ``search_stream`` is remapped by google-api-core into a ``GoogleAPICallError`` that keeps
    the call in ``.response``.
    """
    return [c for c in (exc, getattr(exc, "error", None), getattr(exc, "response", None)) if c is not None]


def _grpc_code(exc: Exception) -> str | None:
    status = getattr(exc, "grpc_status_code", None)
    if status is not None:
        return str(status.name)
    for call in _calls_of(exc):
        code = getattr(call, "code", None)
        if callable(code):
            try:
                return str(code().name)
            except Exception:  # an RpcError that is not a Call has no code
                continue
    return None


class GoogleAdsPlatform:
    """``AdPlatform`` on the Google Ads API."""

    name = "google_ads"

    def __init__(self, client_factory: ClientFactory, accounts: Sequence[Account], *,
                 login_customer_ids: dict[str, str] | None = None, ledger: AppliedLedger | None = None,
                 retry: RetryPolicy | None = None, today: Callable[[str], date] | None = None,
                 max_operations_per_request: int = MAX_OPERATIONS_PER_REQUEST,
                 discover: Sequence[str] = ()) -> None:
        if not 1 <= max_operations_per_request <= MAX_OPERATIONS_PER_REQUEST:
            raise ConfigError(f"max_operations_per_request must be 1..{MAX_OPERATIONS_PER_REQUEST}")
        self._factory = client_factory
        self._accounts: dict[str, Account] = {a.account_id: a for a in accounts}
        self._discover = [a for a in discover if a not in self._accounts]
        self._logins = {k.replace("-", ""): v.replace("-", "") for k, v in (login_customer_ids or {}).items()}
        self._clients: dict[str | None, Any] = {}
        self._ledger = ledger or AppliedLedger()
        self._retry = retry or RetryPolicy()
        self._today = today or local_today
        self._max_ops = max_operations_per_request
        self.calls = _CallCount()

    # ----------------------------------------------------------------- construction

    @classmethod
    def from_settings(cls, settings: Settings) -> GoogleAdsPlatform:
        """The adapter for every account that settings route to ``google_ads``.

        Credentials come from ``settings.google_ads_yaml``, else the ``GOOGLE_ADS_*`` environment,
        else ``~/google-ads.yaml`` (the SDK's own lookup). Nothing is contacted until the first call.
        """
        ids = [a.replace("-", "") for a, choice in settings.platforms.items() if choice == "google_ads"]
        if not ids:
            raise ConfigError("no account is routed to google_ads: set ADPILOT_PLATFORMS, "
                              "e.g. '{\"1234567890\": \"google_ads\"}'")
        config = load_google_ads_config(settings.google_ads_yaml)

        def factory(login_customer_id: str | None) -> Any:
            from google.ads.googleads.client import GoogleAdsClient
            from google.auth.exceptions import RefreshError, TransportError

            data = {**config, "use_proto_plus": True}
            if login_customer_id:
                data["login_customer_id"] = login_customer_id
            # Building the client refreshes the OAuth token, so credential and network problems surface here.
            # The SDK's messages may quote the token endpoint's answer: only the type is shown.
            try:
                return GoogleAdsClient.load_from_dict(data, version=API_VERSION)
            except TransportError as exc:
                raise PlatformError(f"Google's OAuth endpoint is unreachable ({type(exc).__name__}); check the "
                                    "network", code="UNREACHABLE", retryable=True) from None
            except (RefreshError, ValueError) as exc:
                raise PlatformError(f"Google Ads credentials were refused ({type(exc).__name__}); "
                                    "run `adpilot doctor` and check google-ads.yaml", code="AUTH") from None

        return cls(factory, [], login_customer_ids=settings.google_ads_login_customer_ids,
                   ledger=AppliedLedger.under(settings.home), discover=ids)

    def _client(self, account_id: str) -> Any:
        login = self._logins.get(account_id)
        if login not in self._clients:
            self._clients[login] = self._factory(login)
        return self._clients[login]

    # ----------------------------------------------------------------- RPC plumbing

    def _classify(self, has_create: bool) -> Callable[[Exception], RetryAfter | None]:
        def classify(exc: Exception) -> RetryAfter | None:
            code = _grpc_code(exc)
            failure = _failure_of(exc)
            delay: float | None = None
            transient = False
            if failure is not None:
                for error in failure.errors:
                    category, name = _error_code(error)
                    if category in _AUTH_CATEGORIES:
                        return None
                    if (category, name) == ("internal_error", "TRANSIENT_ERROR"):
                        transient = True
                    elif (category, name) == ("quota_error", "RESOURCE_TEMPORARILY_EXHAUSTED"):
                        transient = True
                        hint = error.details.quota_error_details.retry_delay
                        seconds = hint.total_seconds() if isinstance(hint, timedelta) else 0.0
                        delay = max(delay or 0.0, seconds) or None
                    elif (category, name) == ("quota_error", "RESOURCE_EXHAUSTED"):
                        return None  # the daily quota: waiting seconds does not help
            elif code in _NOT_EXECUTED_CODES or code in _AMBIGUOUS_CODES:
                transient = True
            if not transient:
                return None
            if has_create and code in _AMBIGUOUS_CODES:
                # The request may have created things already: resending could create them twice.
                return None
            return RetryAfter(delay)

        return classify

    def _rpc(self, label: str, call: Callable[[], Any], *, has_create: bool = False) -> Any:
        def counted() -> Any:
            self.calls.round_trips += 1
            self.calls.by_method[label] += 1
            return call()

        try:
            return self._retry.run(counted, self._classify(has_create))
        except PlatformError:
            raise
        except Exception as exc:
            raise _platform_error(exc) from None

    def _search(self, account_id: str, query: str) -> list[Any]:
        client = self._client(account_id)
        service = client.get_service("GoogleAdsService")

        def run() -> list[Any]:
            # Consume the stream inside the retried call: a stream can fail after its first batch.
            return [row for batch in service.search_stream(customer_id=account_id, query=query)
                    for row in batch.results]

        return self._rpc("GoogleAdsService.SearchStream", run)

    # ----------------------------------------------------------------- accounts and reads

    def _ensure_accounts(self) -> None:
        while self._discover:
            account_id = self._discover[0]
            rows = self._search(account_id, "SELECT customer.id, customer.descriptive_name, "
                                            "customer.currency_code, customer.time_zone FROM customer")
            if not rows:
                raise PlatformError(f"Google Ads account {account_id} returned no customer row")
            customer = rows[0].customer
            self._accounts[account_id] = Account(platform=Platform.GOOGLE, account_id=account_id,
                                                 name=customer.descriptive_name or account_id,
                                                 currency=customer.currency_code,
                                                 timezone=customer.time_zone or "Europe/Berlin")
            self._discover.pop(0)

    def _account(self, account_id: str) -> Account:
        self._ensure_accounts()
        account = self._accounts.get(account_id.replace("-", ""))
        if account is None:
            raise NotFound(f"unknown Google Ads account {account_id!r}")
        return account

    def list_accounts(self) -> list[Account]:
        """Every account this adapter serves (described by the API on first use)."""
        self._ensure_accounts()
        return list(self._accounts.values())

    def _read(self, account: Account, kind: EntityKind, *, ids: Iterable[str] | None = None,
              parent_id: str | None = None, status: str | None = None) -> list[_Read]:
        if kind not in _QUERIES:
            raise BadInput(f"cannot list {kind} entities on Google Ads")
        base, id_field = _QUERIES[kind]
        conditions: list[str] = []
        if parent_id is not None:
            if kind not in _PARENT_FIELD:
                raise BadInput(f"{kind} entities have no parent filter")
            conditions.append(f"{_PARENT_FIELD[kind]} = {_digits(parent_id, 'parent id')}")
        if status is not None:
            if status not in _STATUSES:
                raise BadInput(f"unknown status {status!r} (use ENABLED, PAUSED or REMOVED)")
            conditions.append(f"{_status_field(kind)} = '{status}'")
        id_chunks: list[list[str] | None] = [None]
        if ids is not None:
            unique = sorted({_digits(i, f"{kind} id") for i in ids}, key=int)
            if not unique:
                return []
            id_chunks = [unique[i:i + MAX_IDS_PER_QUERY] for i in range(0, len(unique), MAX_IDS_PER_QUERY)]
        reads: list[_Read] = []
        for chunk in id_chunks:
            where = [*conditions, f"{id_field} IN ({', '.join(chunk)})"] if chunk else conditions
            joiner = " AND " if " WHERE " in base else " WHERE "
            query = base + (joiner + " AND ".join(where) if where else "")
            reads.extend(_to_read(account, kind, row) for row in self._search(account.account_id, query))
        return reads

    def list_entities(self, account_id: str, kind: EntityKind, *, parent_id: str | None = None,
                      status: str | None = None) -> list[Entity]:
        """Entities of one kind (campaign, ad_group, ad, keyword) in an account, via one GAQL query."""
        account = self._account(account_id)
        return [r.entity for r in self._read(account, kind, parent_id=parent_id, status=status)]

    def get_entity(self, ref: EntityRef) -> Entity:
        """One entity's current state; ``NotFound`` when the API does not return it."""
        found = self.read_back([ref])
        if ref not in found:
            raise NotFound(f"no {ref.kind} {ref.id} in Google Ads account {ref.account_id}")
        return found[ref]

    def read_back(self, refs: Sequence[EntityRef]) -> dict[EntityRef, Entity]:
        """Fresh reads of the given entities: one GAQL query per account and kind."""
        return {ref: read.entity for ref, read in self._read_refs(refs).items()}

    def _read_refs(self, refs: Iterable[EntityRef]) -> dict[EntityRef, _Read]:
        wanted = ids_by_account_and_kind(refs, Platform.GOOGLE, "Google Ads")
        out: dict[EntityRef, _Read] = {}
        for (account_id, kind), ids in wanted.items():
            account = self._account(account_id)
            valid = {i for i in ids if i.isdigit()}  # a non-numeric id cannot exist: it is simply not found
            for read in self._read(account, kind, ids=valid):
                out[read.entity.ref.model_copy(update={"account_id": account_id})] = read
        return out

    def read_kpis(self, account_id: str, kind: EntityKind, ids: Sequence[str],
                  window_days: int) -> dict[str, KpiTotals]:
        """Totals per id over the last ``window_days`` complete days (account time zone), via GAQL."""
        check_window_days(window_days)
        if kind not in _KPI_FROM:
            raise BadInput(f"no performance data for {kind} entities")
        account = self._account(account_id)
        resource, id_field = _KPI_FROM[kind]
        today = self._today(account.timezone)
        start, end = complete_days(today, window_days)
        totals = {i: KpiTotals(currency=account.currency) for i in ids}
        unique = sorted({_digits(i, f"{kind} id") for i in ids}, key=int)
        for offset in range(0, len(unique), MAX_IDS_PER_QUERY):
            chunk = unique[offset:offset + MAX_IDS_PER_QUERY]
            query = (f"SELECT {id_field}, metrics.impressions, metrics.clicks, metrics.cost_micros, "
                     f"metrics.conversions, metrics.conversions_value FROM {resource} "
                     f"WHERE {id_field} IN ({', '.join(chunk)}) "
                     f"AND segments.date BETWEEN '{start.isoformat()}' AND '{end.isoformat()}'")
            for row in self._search(account.account_id, query):
                key = str(_field(row, id_field))
                if key not in totals:
                    continue  # an id asked for in another spelling (leading zeros): not what the caller named
                m = row.metrics
                prev = totals[key]
                totals[key] = KpiTotals(
                    impressions=prev.impressions + int(m.impressions), clicks=prev.clicks + int(m.clicks),
                    cost=prev.cost + (Decimal(int(m.cost_micros)) / 1_000_000).quantize(Decimal("0.01")),
                    conversions=prev.conversions + Decimal(repr(float(m.conversions))),
                    conversion_value=prev.conversion_value + Decimal(repr(float(m.conversions_value))),
                    currency=account.currency)
        return totals

    # ----------------------------------------------------------------- mutations

    def validate(self, actions: Sequence[Action]) -> list[ActionResult]:
        """Validate-only: the API checks every operation (``validate_only=True``) and changes nothing."""
        return self._run(actions, validate_only=True)

    def apply(self, actions: Sequence[Action], *, actor: str | None = None) -> list[ActionResult]:
        """Apply with ``partial_failure=True``; before values read first, after values read back.

        ``actor`` is not sent: Google Ads records the credentials' user in its own change history.
        """
        return self._run(actions, validate_only=False)

    def _run(self, actions: Sequence[Action], *, validate_only: bool) -> list[ActionResult]:
        results: list[ActionResult | None] = [None] * len(actions)
        pending: dict[str, list[tuple[int, Action]]] = defaultdict(list)
        for i, action in enumerate(actions):
            if action.target.platform is not Platform.GOOGLE:
                results[i] = failed_result(action, "WRONG_PLATFORM", f"{action.target} is not a Google Ads entity")
                continue
            done = earlier_result(self._ledger, self.name, action, validate_only=validate_only)
            if done is not None:
                results[i] = done
                continue
            pending[action.target.account_id.replace("-", "")].append((i, action))
        for account_id, items in pending.items():
            try:
                account = self._account(account_id)
            except NotFound as exc:
                for i, action in items:
                    results[i] = failed_result(action, "UNKNOWN_ACCOUNT", exc.message)
                continue
            for i, result in self._run_account(account, items, validate_only=validate_only):
                results[i] = result
                if result.status == "applied":
                    self._ledger.record(self.name, account_id, actions[i].fingerprint(), result)
        return [r for r in results if r is not None]

    def _run_account(self, account: Account, items: list[tuple[int, Action]], *,
                     validate_only: bool) -> list[tuple[int, ActionResult]]:
        client = self._client(account.account_id)
        reads = self._read_refs(_refs_to_read(items))
        planned: list[_Planned] = []
        out: list[tuple[int, ActionResult]] = []
        for i, action in items:
            plan = _plan(client, account, action, i, reads)
            if isinstance(plan, ActionResult):
                out.append((i, plan))
            else:
                planned.append(plan)
        outcomes = self._mutate(client, account.account_id, planned, validate_only=validate_only)
        if validate_only:
            for plan in planned:
                o = outcomes[plan.index]
                out.append((plan.index, validation_result(
                    plan.action, ok=o.ok, accepted="valid: Google Ads accepted the operation (validate_only)",
                    error_code=o.error_code, message=o.message, before=plan.before)))
            return out
        done = [p for p in planned if outcomes[p.index].ok]
        after_reads = self._read_refs(_after_refs(account, done, outcomes))
        for plan in planned:
            o = outcomes[plan.index]
            if not o.ok:
                out.append((plan.index, failed_result(plan.action, o.error_code or "FAILED", o.message,
                                                      plan.before)))
                continue
            created_id = o.resource_name.rsplit("~", 1)[-1] if plan.is_create else None
            after = _after_values(plan.action, account, after_reads, created_id)
            out.append((plan.index, applied_result(plan.action, before=plan.before, after=after,
                                                   intended=_intended(plan.action), created_id=created_id)))
        return out

    def _mutate(self, client: Any, customer_id: str, planned: list[_Planned], *,
                validate_only: bool) -> dict[int, _Outcome]:
        outcomes: dict[int, _Outcome] = {}
        for service in SERVICE_ORDER:
            mine = [p for p in planned if p.service is service]
            for offset in range(0, len(mine), self._max_ops):
                chunk = mine[offset:offset + self._max_ops]
                outcomes.update(self._mutate_chunk(client, customer_id, service, chunk, validate_only=validate_only))
        return outcomes

    def _mutate_chunk(self, client: Any, customer_id: str, service: _Service, chunk: list[_Planned], *,
                      validate_only: bool) -> dict[int, _Outcome]:
        svc = client.get_service(service.name)
        request = {"customer_id": customer_id, "operations": [p.operation for p in chunk],
                   "partial_failure": not validate_only, "validate_only": validate_only}
        try:
            response = self._rpc(f"{service.name}.{service.method}",
                                 lambda: getattr(svc, service.method)(request=request),
                                 has_create=any(p.is_create for p in chunk))
        except _RequestFailed as failed:
            outcomes = _map_errors(chunk, failed.errors)
            for plan in chunk:
                if plan.index not in outcomes:
                    # validate_only checks every operation, so one without an error is valid; when applying,
                    # a request rejected as a whole ran none of its operations.
                    outcomes[plan.index] = _Outcome(ok=True) if validate_only else _Outcome(
                        ok=False, error_code="NOT_EXECUTED",
                        message="not executed: another operation in the same request was rejected")
            return outcomes
        except PlatformError as exc:
            if exc.code == "AUTH":
                raise  # nothing further will work either: stop the run with the plain message
            # The request failed as a whole: none of its operations ran; other requests keep their results.
            return {p.index: _Outcome(ok=False, error_code=exc.code or "FAILED", message=exc.message) for p in chunk}
        if validate_only:
            return {p.index: _Outcome(ok=True) for p in chunk}
        errors = _partial_failure_errors(client, response)
        outcomes = _map_errors(chunk, errors) if errors else {}
        for position, plan in enumerate(chunk):
            if plan.index not in outcomes:
                name = response.results[position].resource_name if position < len(response.results) else ""
                outcomes[plan.index] = _Outcome(ok=bool(name), resource_name=name,
                                                message="" if name else "no result for this operation",
                                                error_code=None if name else "NO_RESULT")
        return outcomes


class _RequestFailed(Exception):
    """A mutate request rejected as a whole with operation-level errors (validate_only or bad operations)."""

    def __init__(self, errors: list[Any]) -> None:
        super().__init__("request failed")
        self.errors = errors


def _failure_of(exc: Exception) -> Any | None:
    """The ``GoogleAdsFailure`` behind an exception, also for the raw RpcErrors the SDK leaves unwrapped."""
    failure = getattr(exc, "failure", None)
    if failure is not None:
        return failure
    for call in _calls_of(exc):
        trailing = getattr(call, "trailing_metadata", None)
        if not callable(trailing):
            continue
        try:
            metadata = trailing() or ()
        except Exception:  # an RpcError without call state
            continue
        for key, value in metadata:
            if key == FAILURE_METADATA_KEY:
                from google.ads.googleads.v26.errors.types.errors import GoogleAdsFailure

                return GoogleAdsFailure.deserialize(value)
    return None


def _platform_error(exc: Exception) -> Exception:
    """Map an SDK / gRPC exception to what the adapter raises (never with credentials in the text)."""
    failure = _failure_of(exc)
    code = _grpc_code(exc)
    if failure is not None and failure.errors:
        first = failure.errors[0]
        category, name = _error_code(first)
        if category in _AUTH_CATEGORIES:
            return PlatformError(f"Google Ads refused the credentials: {name} ({first.message}). Check the developer "
                                 "token, the refresh token and login_customer_id; `adpilot doctor` helps.",
                                 code="AUTH")
        if category == "quota_error":
            return PlatformError(f"Google Ads quota: {name} ({first.message})", code=name, retryable=True)
        if any(_operation_index(e) is not None for e in failure.errors):
            return _RequestFailed(list(failure.errors))
        return PlatformError(f"Google Ads rejected the request: {name} ({first.message})", code=name)
    if code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        return PlatformError("Google Ads refused the credentials (gRPC " + code + "); run `adpilot doctor`",
                             code="AUTH")
    if code is not None:
        return PlatformError(f"Google Ads is unreachable or failing (gRPC {code}); try again later",
                             code=code, retryable=code in _NOT_EXECUTED_CODES | _AMBIGUOUS_CODES)
    if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
        return PlatformError(f"Google Ads is unreachable ({type(exc).__name__})", code="UNREACHABLE", retryable=True)
    return exc


def _status_field(kind: EntityKind) -> str:
    return {EntityKind.CAMPAIGN: "campaign.status", EntityKind.AD_GROUP: "ad_group.status",
            EntityKind.AD: "ad_group_ad.status", EntityKind.KEYWORD: "ad_group_criterion.status"}[kind]


def _field(row: Any, path: str) -> Any:
    value = row
    for part in path.split("."):
        value = getattr(value, part)
    return value


def _to_read(account: Account, kind: EntityKind, row: Any) -> _Read:
    cur = account.currency

    def ref(k: EntityKind, i: Any) -> EntityRef:
        return EntityRef(platform=Platform.GOOGLE, account_id=account.account_id, kind=k, id=str(i))

    if kind is EntityKind.CAMPAIGN:
        c = row.campaign
        strategy = c.bidding_strategy_type.name
        target_cpa = c.target_cpa.target_cpa_micros or c.maximize_conversions.target_cpa_micros
        target_roas = c.target_roas.target_roas or c.maximize_conversion_value.target_roas
        entity = Entity(ref=ref(kind, c.id), name=c.name, status=c.status.name,
                        daily_budget=_amount(row.campaign_budget.amount_micros, cur),
                        target_cpa=_amount(target_cpa, cur),
                        target_roas=Decimal(repr(target_roas)) if target_roas else None)
        return _Read(entity, c.resource_name or f"customers/{account.account_id}/campaigns/{c.id}",
                     budget_resource=c.campaign_budget or None,
                     budget_shared=bool(row.campaign_budget.explicitly_shared),
                     bidding_strategy=strategy)
    if kind is EntityKind.AD_GROUP:
        g = row.ad_group
        entity = Entity(ref=ref(kind, g.id), name=g.name, status=g.status.name,
                        parent=ref(EntityKind.CAMPAIGN, row.campaign.id),
                        cpc_bid=_amount(g.cpc_bid_micros, cur), target_cpa=_amount(g.target_cpa_micros, cur),
                        target_roas=Decimal(repr(g.target_roas)) if g.target_roas else None)
        return _Read(entity, g.resource_name or f"customers/{account.account_id}/adGroups/{g.id}")
    if kind is EntityKind.AD:
        a = row.ad_group_ad
        rsa = a.ad.responsive_search_ad
        content: GoogleResponsiveSearchAd | None
        try:
            content = GoogleResponsiveSearchAd(headlines=[h.text for h in rsa.headlines],
                                               descriptions=[d.text for d in rsa.descriptions],
                                               final_url=a.ad.final_urls[0] if a.ad.final_urls else "",
                                               path1=rsa.path1 or None, path2=rsa.path2 or None)
        except (ValueError, DomainError):
            content = None  # not an RSA (or one adpilot's stricter model rejects): shown without content
        headline = content.headlines[0] if content else f"ad {a.ad.id}"
        entity = Entity(ref=ref(kind, a.ad.id), name=headline, status=a.status.name,
                        parent=ref(EntityKind.AD_GROUP, row.ad_group.id), ad=content)
        return _Read(entity, a.resource_name)
    k = row.ad_group_criterion
    entity = Entity(ref=ref(kind, k.criterion_id), name=k.keyword.text, status=k.status.name,
                    parent=ref(EntityKind.AD_GROUP, row.ad_group.id), cpc_bid=_amount(k.cpc_bid_micros, cur))
    return _Read(entity, k.resource_name)


def _refs_to_read(items: list[tuple[int, Action]]) -> list[EntityRef]:
    refs = []
    for _, action in items:
        refs.append(action.target.model_copy(update={"account_id": action.target.account_id.replace("-", "")}))
    return refs


def _after_refs(account: Account, done: list[_Planned], outcomes: dict[int, _Outcome]) -> list[EntityRef]:
    refs = []
    for plan in done:
        if isinstance(plan.action, AddNegativeKeyword):
            continue  # negatives are not entities adpilot lists; the mutate result names the new criterion
        if isinstance(plan.action, CreateAd):
            created = outcomes[plan.index].resource_name.rsplit("~", 1)[-1]
            refs.append(EntityRef(platform=Platform.GOOGLE, account_id=account.account_id, kind=EntityKind.AD,
                                  id=created))
        else:
            refs.append(plan.action.target.model_copy(update={"account_id": account.account_id}))
    return refs


def _intended(action: Action) -> dict[str, Any]:
    """The values an action should leave behind, in ``changed_values`` form (empty for creations).

    Google reads a bid back under the key it was set with, so bids are compared too.
    """
    if isinstance(action, SetBid):
        if action.bid_type == "target_roas":
            return {"target_roas": str(action.target_roas)}
        return {"cpc_bid" if action.bid_type == "cpc" else "target_cpa": money_value(action.amount)}
    return intended_values(action)


def _after_values(action: Action, account: Account, reads: dict[EntityRef, _Read],
                  created_id: str | None) -> dict[str, Any]:
    if isinstance(action, AddNegativeKeyword):
        return {"negative_keyword": action.text, "match_type": action.match_type}
    if isinstance(action, CreateAd):
        ref = EntityRef(platform=Platform.GOOGLE, account_id=account.account_id, kind=EntityKind.AD,
                        id=created_id or "0")
    else:
        ref = action.target.model_copy(update={"account_id": account.account_id})
    read = reads.get(ref)
    return read_back_values(action, read.entity if read else None)


def _plan(client: Any, account: Account, action: Action, index: int,
          reads: dict[EntityRef, _Read]) -> _Planned | ActionResult:
    """Turn one action into one operation, or a failed result when it cannot be sent at all."""
    target = action.target.model_copy(update={"account_id": account.account_id})
    read = reads.get(target)
    if read is None:
        return failed_result(action, "NOT_FOUND",
                             f"no {target.kind} {target.id} in Google Ads account {account.account_id}")
    entity = read.entity
    if entity.status == "REMOVED":
        return failed_result(action, "OPERATION_NOT_PERMITTED_FOR_REMOVED_RESOURCE",
                             f"{target.kind} {target.id} is removed; removed entities cannot be changed")
    mismatch = currency_mismatch(action, account)
    if mismatch is not None:
        return mismatch
    before = None if isinstance(action, (CreateAd, AddNegativeKeyword)) else changed_values(action, entity)
    enums = client.enums
    kind = target.kind

    def op(service: _Service, rn: str, fields: dict[str, Any], *, create: bool = False) -> _Planned:
        operation = client.get_type(service.operation)
        message = operation.create if create else operation.update
        if not create:
            message.resource_name = rn
        for path, value in fields.items():
            holder = message
            *parents, leaf = path.split(".")
            for part in parents:
                holder = getattr(holder, part)
            if isinstance(value, list):
                getattr(holder, leaf).extend(value)
            else:
                setattr(holder, leaf, value)
            if not create:
                operation.update_mask.paths.append(path)
        return _Planned(index, action, service, operation, create, before)

    if isinstance(action, SetBudget):
        if not read.budget_resource:
            return failed_result(action, "NO_BUDGET", f"campaign {target.id} has no campaign budget")
        if read.budget_shared:
            return failed_result(action, "SHARED_BUDGET", f"campaign {target.id} uses a shared budget; changing it "
                                 "would change every campaign that shares it, so adpilot refuses")
        return op(_BUDGETS, read.budget_resource, {"amount_micros": action.daily_budget.to_micros()})
    if isinstance(action, SetStatus):
        if kind is EntityKind.CAMPAIGN:
            return op(_CAMPAIGNS, read.resource_name, {"status": enums.CampaignStatusEnum[action.status]})
        if kind is EntityKind.AD_GROUP:
            return op(_AD_GROUPS, read.resource_name, {"status": enums.AdGroupStatusEnum[action.status]})
        if kind is EntityKind.AD:
            return op(_AD_GROUP_ADS, read.resource_name, {"status": enums.AdGroupAdStatusEnum[action.status]})
        return op(_AD_GROUP_CRITERIA, read.resource_name,
                  {"status": enums.AdGroupCriterionStatusEnum[action.status]})
    if isinstance(action, SetBid):
        value: Any = action.amount.to_micros() if action.amount is not None else float(action.target_roas or 0)
        if kind is EntityKind.CAMPAIGN:
            if action.bid_type == "cpc":
                return failed_result(action, "BIDDING_STRATEGY_MISMATCH",
                                     "a manual CPC bid belongs to an ad group or keyword, not a campaign")
            path = _CAMPAIGN_TARGET_FIELDS.get((action.bid_type, read.bidding_strategy or ""))
            if path is None:
                return failed_result(action, "BIDDING_STRATEGY_MISMATCH",
                                     f"campaign {target.id} bids with {read.bidding_strategy}; a {action.bid_type} "
                                     "target needs a matching strategy, and adpilot does not switch strategies")
            return op(_CAMPAIGNS, read.resource_name, {path: value})
        if kind is EntityKind.AD_GROUP:
            path = {"cpc": "cpc_bid_micros", "target_cpa": "target_cpa_micros", "target_roas": "target_roas"}[
                action.bid_type]
            return op(_AD_GROUPS, read.resource_name, {path: value})
        if action.bid_type != "cpc":
            return failed_result(action, "BIDDING_STRATEGY_MISMATCH", "keywords take manual CPC bids only")
        return op(_AD_GROUP_CRITERIA, read.resource_name, {"cpc_bid_micros": value})
    if isinstance(action, CreateAd):
        ad = action.ad
        assert isinstance(ad, GoogleResponsiveSearchAd)  # guaranteed by CreateAd's validator for Google targets
        text_asset = client.get_type("AdTextAsset")
        headlines = [type(text_asset)(text=h) for h in ad.headlines]
        descriptions = [type(text_asset)(text=d) for d in ad.descriptions]
        fields: dict[str, Any] = {
            "ad_group": read.resource_name, "status": enums.AdGroupAdStatusEnum[action.status],
            "ad.final_urls": [ad.final_url], "ad.responsive_search_ad.headlines": headlines,
            "ad.responsive_search_ad.descriptions": descriptions}
        if ad.path1:
            fields["ad.responsive_search_ad.path1"] = ad.path1
        if ad.path2:
            fields["ad.responsive_search_ad.path2"] = ad.path2
        return op(_AD_GROUP_ADS, "", fields, create=True)
    assert isinstance(action, AddNegativeKeyword)
    keyword = {"negative": True, "keyword.text": action.text,
               "keyword.match_type": enums.KeywordMatchTypeEnum[action.match_type]}
    if kind is EntityKind.CAMPAIGN:
        return op(_CAMPAIGN_CRITERIA, "", {"campaign": read.resource_name, **keyword}, create=True)
    return op(_AD_GROUP_CRITERIA, "", {"ad_group": read.resource_name, **keyword}, create=True)


def _partial_failure_errors(client: Any, response: Any) -> list[Any]:
    status = response.partial_failure_error
    if not status or not status.details:
        return []
    failure_type = type(client.get_type("GoogleAdsFailure"))
    errors: list[Any] = []
    for detail in status.details:
        errors.extend(failure_type.deserialize(detail.value).errors)
    return errors


def _map_errors(chunk: list[_Planned], errors: list[Any]) -> dict[int, _Outcome]:
    """Errors → the failing operations' actions; errors without an index fail the whole chunk."""
    by_position: dict[int, list[Any]] = defaultdict(list)
    request_level: list[Any] = []
    for error in errors:
        position = _operation_index(error)
        (by_position[position] if position is not None else request_level).append(error)
    outcomes: dict[int, _Outcome] = {}
    for position, plan in enumerate(chunk):
        mine = by_position.get(position, []) + request_level
        if mine:
            names = [_error_code(e)[1] for e in mine]
            message = "; ".join(f"{n}: {e.message}" for n, e in zip(names, mine, strict=True))
            outcomes[plan.index] = _Outcome(ok=False, error_code=names[0], message=message)
    return outcomes


def load_google_ads_config(path: Path | None = None) -> dict[str, Any]:
    """The google-ads configuration dict: ``path``, else ``GOOGLE_ADS_*`` variables, else ``~/google-ads.yaml``.

    Raises ``ConfigError`` with a plain instruction when nothing usable is found. The returned dict
    holds secrets: never log or print it.
    """
    from google.ads.googleads import config as gconfig

    try:
        if path is not None:
            data = gconfig.load_from_yaml_file(str(Path(path).expanduser()))
        elif os.environ.get("GOOGLE_ADS_DEVELOPER_TOKEN") or os.environ.get("GOOGLE_ADS_CONFIGURATION_FILE_PATH"):
            data = gconfig.load_from_env()
        else:
            data = gconfig.load_from_yaml_file(None)
    except FileNotFoundError:
        raise ConfigError("no Google Ads credentials: create ~/google-ads.yaml (or set ADPILOT_GOOGLE_ADS_YAML, "
                          "or the GOOGLE_ADS_* variables)") from None
    except (ValueError, OSError) as exc:
        raise ConfigError(f"Google Ads configuration is unusable: {type(exc).__name__}: "
                          f"{_first_line_without_secrets(exc)}") from None
    missing = [k for k in ("developer_token",) if not data.get(k)]
    has_oauth = all(data.get(k) for k in ("client_id", "client_secret", "refresh_token"))
    has_service = bool(data.get("json_key_file_path"))
    if missing or not (has_oauth or has_service or data.get("use_application_default_credentials")):
        needed = ", ".join(missing + ([] if has_oauth or has_service else ["client_id/client_secret/refresh_token"]))
        raise ConfigError(f"Google Ads configuration lacks {needed}")
    return dict(data)


def _first_line_without_secrets(exc: Exception) -> str:
    # The SDK's config errors name keys, not values; cut at the first line to be safe with YAML dumps.
    return str(exc).splitlines()[0][:200] if str(exc) else ""
