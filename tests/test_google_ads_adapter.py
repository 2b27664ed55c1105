"""Google Ads adapter against recorded gRPC traffic (cassettes/google_ads/*.json).

Every test runs the real google-ads SDK (request serialisation, metadata / logging / exception
interceptors, ``GoogleAdsException`` mapping) against an in-process gRPC server that replays a
cassette and fails on any request that differs from the recording. No network is used.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from agent.domain import (
    Account,
    Action,
    AddNegativeKeyword,
    CreateAd,
    EntityKind,
    EntityRef,
    GoogleResponsiveSearchAd,
    Money,
    SetBid,
    SetBudget,
    SetStatus,
)
from agent.errors import ConfigError, NotFound, PlatformError
from agent.settings import load_settings
from tools.adapters.base import AdPlatform
from tools.adapters.google_ads import MAX_OPERATIONS_PER_REQUEST, GoogleAdsPlatform
from tools.adapters.google_ads_cassette import CassetteReplayer, FakeGoogleAdsServer
from tools.adapters.ledger import AppliedLedger
from tools.adapters.retry import RetryPolicy

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes" / "google_ads"
CID = "1234567890"
MANAGER = "9876543210"
ACCOUNT = Account(platform="google", account_id=CID, name="Blumen Shop DE", currency="EUR")


def ref(kind: str, entity_id: str | int) -> EntityRef:
    """A Google entity in the test account."""
    return EntityRef(platform="google", account_id=CID, kind=kind, id=str(entity_id))


def change_set() -> list[Action]:
    """The change set of the success cassette: one action of every kind (fixed keys, as recorded)."""
    return [
        SetBudget(target=ref("campaign", 111), reason="best ROAS in the account", idempotency_key="gads-budget-111",
                  daily_budget=Money.of("25.00", "EUR")),
        SetStatus(target=ref("campaign", 222), reason="season is over", idempotency_key="gads-pause-222",
                  status="PAUSED"),
        SetBid(target=ref("ad_group", 333), reason="impression share lost to rank", idempotency_key="gads-bid-333",
               bid_type="cpc", amount=Money.of("0.85", "EUR")),
        CreateAd(target=ref("ad_group", 333), reason="new summer copy", idempotency_key="gads-ad-333",
                 ad=GoogleResponsiveSearchAd(
                     headlines=["Sommerblumen online", "Frische Sträuße", "Lieferung in 24 h"],
                     descriptions=["Frische Blumen, direkt vom Gärtner.", "Jetzt Sommersträuße entdecken."],
                     final_url="https://www.example-flowers.de/sommer", path1="sommer")),
        AddNegativeKeyword(target=ref("campaign", 111), reason="searchers want free things",
                           idempotency_key="gads-neg-111", text="gratis", match_type="PHRASE"),
    ]


def validation_set() -> list[Action]:
    """Two budget changes; Google rejects the second in the validation-error cassette."""
    return [
        SetBudget(target=ref("campaign", 111), reason="more budget", idempotency_key="gads-val-111",
                  daily_budget=Money.of("25.00", "EUR")),
        SetBudget(target=ref("campaign", 222), reason="more budget", idempotency_key="gads-val-222",
                  daily_budget=Money.of("30.01", "EUR")),
    ]


def partial_set() -> list[Action]:
    """Two budget changes; the second fails in the partial-failure cassette."""
    return [
        SetBudget(target=ref("campaign", 111), reason="more budget", idempotency_key="gads-pf-111",
                  daily_budget=Money.of("25.00", "EUR")),
        SetBudget(target=ref("campaign", 444), reason="more budget", idempotency_key="gads-pf-444",
                  daily_budget=Money.of("30.00", "EUR")),
    ]


def client_factory(login_customer_id: str | None) -> Any:
    """A real GoogleAdsClient that needs no OAuth refresh (the fake server ignores credentials)."""
    from google.ads.googleads.client import GoogleAdsClient
    from google.auth.credentials import AnonymousCredentials

    return GoogleAdsClient(credentials=AnonymousCredentials(), developer_token="test-developer-token",
                           login_customer_id=login_customer_id, use_proto_plus=True, version="v26")


class Replay:
    """A cassette played through a fake server; the platform under test and its sleeps."""

    def __init__(self, replayer: CassetteReplayer, server: FakeGoogleAdsServer, sleeps: list[float]) -> None:
        self.replayer = replayer
        self.server = server
        self.sleeps = sleeps

    def platform(self, *, discover: bool = False, ledger: AppliedLedger | None = None) -> GoogleAdsPlatform:
        """A platform through the manager account, with a fixed clock and instant sleeps."""
        return GoogleAdsPlatform(client_factory, [] if discover else [ACCOUNT], discover=[CID] if discover else (),
                                 login_customer_ids={CID: MANAGER}, ledger=ledger,
                                 retry=RetryPolicy(sleep=self.sleeps.append), today=lambda tz: date(2026, 12, 1))


@pytest.fixture
def cassette(request: pytest.FixtureRequest) -> Iterator[Replay]:
    """Replay ``cassettes/google_ads/<name>.json`` (name by indirect parametrisation)."""
    name = request.param
    replayer = CassetteReplayer(CASSETTES / f"{name}.json")
    sleeps: list[float] = []
    with FakeGoogleAdsServer(replayer) as server, server.patched_channels():
        replay = Replay(replayer, server, sleeps)
        yield replay
    assert not server.errors, server.errors
    replayer.assert_all_played()


def test_protocol_is_implemented() -> None:
    platform = GoogleAdsPlatform(client_factory, [ACCOUNT])
    assert isinstance(platform, AdPlatform)
    assert platform.name == "google_ads"


@pytest.mark.parametrize("cassette", ["success"], indirect=True)
def test_dry_run_then_apply_of_the_same_change_set(cassette: Replay, tmp_path: Path) -> None:
    platform = cassette.platform(discover=True, ledger=AppliedLedger(tmp_path / "ledger.sqlite"))

    accounts = platform.list_accounts()
    assert [(a.account_id, a.currency, a.timezone) for a in accounts] == [(CID, "EUR", "Europe/Berlin")]

    enabled = platform.list_entities(CID, EntityKind.CAMPAIGN, status="ENABLED")
    assert {e.ref.id: e.daily_budget for e in enabled} == {"111": Money.of("20.00", "EUR"),
                                                         "222": Money.of("20.00", "EUR")}
    assert enabled[0].target_roas == Decimal("3.5")

    kpis = platform.read_kpis(CID, EntityKind.CAMPAIGN, ["111", "222"], 7)
    assert kpis["111"].cost == Decimal("251.30")  # 251,300,000 micros
    assert kpis["111"].clicks == 480
    assert kpis["111"].conversion_value == Decimal("1260.5")

    dry = platform.validate(change_set())
    assert [r.status for r in dry] == ["validated"] * 5
    assert dry[0].before == {"daily_budget": "20.00"}
    assert dry[1].before == {"status": "ENABLED"}

    applied = platform.apply(change_set())
    assert [r.status for r in applied] == ["applied"] * 5
    budget, pause, bid, ad, negative = applied
    assert (budget.before, budget.after) == ({"daily_budget": "20.00"}, {"daily_budget": "25.00"})
    assert (pause.before, pause.after) == ({"status": "ENABLED"}, {"status": "PAUSED"})
    assert (bid.before, bid.after) == ({"cpc_bid": "0.50"}, {"cpc_bid": "0.85"})
    assert ad.created_id == "777" and ad.after == {"id": "777", "status": "PAUSED"}
    assert negative.created_id == "555"
    assert "read-back shows" not in budget.message


@pytest.mark.parametrize("cassette", ["success"], indirect=True)
def test_mutations_are_sent_in_micros_one_request_per_service(cassette: Replay) -> None:
    platform = cassette.platform(discover=True)
    platform.list_accounts()
    platform.list_entities(CID, EntityKind.CAMPAIGN, status="ENABLED")
    platform.read_kpis(CID, EntityKind.CAMPAIGN, ["111", "222"], 7)
    platform.validate(change_set())
    platform.apply(change_set())
    recorded = cassette.replayer.interactions
    budget_ops = [i["request"] for i in recorded if i["method"].endswith("MutateCampaignBudgets")]
    assert budget_ops[-1]["operations"][0]["update"]["amount_micros"] == "25000000"
    assert budget_ops[-1]["partial_failure"] is True and budget_ops[0]["validate_only"] is True
    # Manager account: every request carried the login-customer-id of the MCC.
    assert all(i.get("metadata", {}).get("login-customer-id") == MANAGER for i in recorded)
    # 1 discovery + 1 list + 1 KPI; validate: 2 reads + 5 mutates; apply: 2 reads + 5 mutates + 3 read-backs.
    assert platform.calls.round_trips == 3 + 7 + 10


@pytest.mark.parametrize("cassette", ["success"], indirect=True)
def test_an_applied_key_is_never_sent_twice(cassette: Replay, tmp_path: Path) -> None:
    ledger_path = tmp_path / "ledger.sqlite"
    platform = cassette.platform(discover=True, ledger=AppliedLedger(ledger_path))
    platform.list_accounts()
    platform.list_entities(CID, EntityKind.CAMPAIGN, status="ENABLED")
    platform.read_kpis(CID, EntityKind.CAMPAIGN, ["111", "222"], 7)
    platform.validate(change_set())
    platform.apply(change_set())
    # A new process (new adapter, same home): the cassette has no interaction left, so any call would fail.
    again = cassette.platform(ledger=AppliedLedger(ledger_path)).apply(change_set())
    assert [r.status for r in again] == ["already_applied"] * 5
    assert again[0].after == {"daily_budget": "25.00"}


@pytest.mark.parametrize("cassette", ["validation_error"], indirect=True)
def test_validation_error_is_mapped_to_its_action(cassette: Replay) -> None:
    first, second = cassette.platform().validate(validation_set())
    assert first.status == "validated"
    assert second.status == "failed"
    assert second.error_code == "NON_MULTIPLE_OF_MINIMUM_CURRENCY_UNIT"
    assert "multiple of the currency" in second.message


@pytest.mark.parametrize("cassette", ["partial_failure"], indirect=True)
def test_partial_failure_commits_the_valid_operation(cassette: Replay, tmp_path: Path) -> None:
    ledger = AppliedLedger(tmp_path / "ledger.sqlite")
    ok, failed = cassette.platform(ledger=ledger).apply(partial_set())
    assert ok.status == "applied" and ok.after == {"daily_budget": "25.00"}
    assert failed.status == "failed" and failed.error_code == "CAMPAIGN_BUDGET_REMOVED"
    assert failed.before == {"daily_budget": "20.00"} and failed.after is None
    # Only the applied key is recorded: the failed one may be retried.
    assert ledger.get("google_ads", "gads-pf-111") is not None
    assert ledger.get("google_ads", "gads-pf-444") is None


@pytest.mark.parametrize("cassette", ["rate_limit"], indirect=True)
def test_transient_errors_are_retried_honouring_retry_delay(cassette: Replay) -> None:
    platform = cassette.platform()
    entity = platform.get_entity(ref("campaign", 111))
    assert entity.name == "Sommer Sale"
    # 7 s from QuotaErrorDetails.retry_delay, then exponential backoff (second retry: 2 s) after TRANSIENT_ERROR.
    assert cassette.sleeps == [7.0, 2.0]
    assert platform.calls.round_trips == 3


@pytest.mark.parametrize("cassette", ["auth_error"], indirect=True)
def test_authentication_error_is_not_retried_and_reads_plainly(cassette: Replay) -> None:
    platform = cassette.platform()
    with pytest.raises(PlatformError) as info:
        platform.validate(change_set()[:1])
    assert info.value.code == "AUTH"
    assert "OAUTH_TOKEN_EXPIRED" in info.value.message
    assert "test-developer-token" not in info.value.message
    assert cassette.sleeps == []


def test_unknown_ids_and_accounts_fail_without_a_call() -> None:
    platform = GoogleAdsPlatform(client_factory, [ACCOUNT])
    with pytest.raises(NotFound):
        platform.list_entities("5550001111", EntityKind.CAMPAIGN)
    with pytest.raises(NotFound):
        platform.list_entities(CID, EntityKind.AD_GROUP, parent_id="1 OR 1=1")


def test_from_settings_needs_an_account_and_credentials(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no account is routed to google_ads"):
        GoogleAdsPlatform.from_settings(load_settings(home=tmp_path))
    settings = load_settings(home=tmp_path, platforms={CID: "google_ads"},
                             google_ads_yaml=tmp_path / "missing-google-ads.yaml")
    with pytest.raises(ConfigError, match="no Google Ads credentials"):
        GoogleAdsPlatform.from_settings(settings)


def test_runtime_builds_the_adapter_lazily_from_google_ads_yaml(tmp_path: Path) -> None:
    from agent.runtime import Runtime

    yaml_path = tmp_path / "google-ads.yaml"
    yaml_path.write_text("developer_token: stand-in\nclient_id: stand-in\nclient_secret: stand-in\n"
                         "refresh_token: stand-in\nuse_proto_plus: true\n")
    settings = load_settings(home=tmp_path, platforms={CID: "google_ads"}, google_ads_yaml=yaml_path,
                             google_ads_login_customer_ids={CID: "987-654-3210"})
    platform = Runtime(settings).platform_for(CID)
    assert isinstance(platform, GoogleAdsPlatform)  # built without contacting Google
    # The first real call refreshes the OAuth token; offline that is a plain error, not a traceback.
    with pytest.raises(PlatformError) as info:
        platform.list_accounts()
    assert info.value.code in ("UNREACHABLE", "AUTH")
    assert "stand-in" not in info.value.message


def _synthetic_responder(method: str, request: dict[str, Any], metadata: dict[str, str]) -> dict[str, Any]:
    """Answers any budget read or mutate, so round trips can be counted for large N."""
    if method.endswith("SearchStream"):
        ids = request["query"].split(" IN (")[1].split(")")[0].split(", ")
        rows = [{"campaign": {"resource_name": f"customers/{CID}/campaigns/{i}", "id": i, "name": f"c{i}",
                              "status": "ENABLED", "bidding_strategy_type": "MANUAL_CPC",
                              "campaign_budget": f"customers/{CID}/campaignBudgets/{i}"},
                 "campaign_budget": {"amount_micros": "20000000"}} for i in ids]
        return {"responses": [{"results": rows}]}
    return {"response": {"results": [{"resource_name": op["update"]["resource_name"]} for op in request["operations"]]}}


@pytest.mark.parametrize("n", [1, 25, 2_500])
def test_round_trips_for_n_budget_changes(n: int) -> None:
    actions = [SetBudget(target=ref("campaign", 1000 + i), reason="scale winners", daily_budget=Money.of("21", "EUR"))
               for i in range(n)]
    with FakeGoogleAdsServer(_synthetic_responder) as server, server.patched_channels():
        platform = GoogleAdsPlatform(client_factory, [ACCOUNT], max_operations_per_request=1_000)
        results = platform.apply(actions)
    assert all(r.status == "applied" for r in results)
    reads = math.ceil(n / 1_000)  # GAQL IN-lists hold 1,000 ids
    mutates = math.ceil(n / 1_000)
    assert platform.calls.round_trips == reads + mutates + reads
    assert MAX_OPERATIONS_PER_REQUEST == 10_000
