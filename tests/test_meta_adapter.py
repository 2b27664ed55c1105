"""Meta adapter against recorded Graph API traffic (cassettes/meta/*.yaml, replayed by pytest-recording).

The real facebook-business SDK builds every request; vcrpy replays the responses and fails on a
request that is not in the cassette. Requests are matched on method, URL and body, so the tests
also pin what the adapter sends (minor units, ``execution_options``, batch layout).
"""

from __future__ import annotations

import math
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from agent.domain import (
    Account,
    Action,
    CreateAd,
    EntityKind,
    EntityRef,
    MetaAdCreative,
    Money,
    SetBid,
    SetBudget,
    SetStatus,
)
from agent.errors import ConfigError, PlatformError
from agent.settings import load_settings
from tools.adapters.base import AdPlatform
from tools.adapters.ledger import AppliedLedger
from tools.adapters.meta import MAX_BATCH, MetaPlatform, RedactTokens, usage_wait
from tools.adapters.retry import RetryPolicy

REPO = Path(__file__).resolve().parent.parent
ACT = "act_1001"
ACCOUNT = Account(platform="meta", account_id=ACT, name="Blumen Shop DE", currency="EUR")
# Stand-ins: the cassettes hold no token, the filters strip these from every recorded request.
TOKEN = "test-meta-access-token"
APP_SECRET = "test-meta-app-secret"
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    """Replay from cassettes/meta, match bodies too, and scrub every credential-bearing parameter."""
    return {
        "filter_headers": ["authorization", "cookie", "set-cookie"],
        "filter_query_parameters": ["access_token", "appsecret_proof", "input_token", "client_secret"],
        "match_on": ["method", "scheme", "host", "port", "path", "query", "body"],
        "decode_compressed_response": True,
    }


@pytest.fixture(scope="module")
def vcr_cassette_dir() -> str:
    """Cassettes live in the top-level cassettes/ folder."""
    return str(REPO / "cassettes")


def ref(kind: str, entity_id: str) -> EntityRef:
    """A Meta entity in the test account."""
    return EntityRef(platform="meta", account_id=ACT, kind=kind, id=entity_id)


def change_set() -> list[Action]:
    """The change set of the success cassette (fixed keys, as recorded)."""
    return [
        SetBudget(target=ref("ad_group", "230001"), reason="best ROAS ad set", idempotency_key="meta-budget-230001",
                  daily_budget=Money.of("25.00", "EUR")),
        SetStatus(target=ref("campaign", "120002"), reason="season is over", idempotency_key="meta-pause-120002",
                  status="PAUSED"),
        SetBid(target=ref("ad_group", "230001"), reason="floor the return", idempotency_key="meta-roas-230001",
               bid_type="target_roas", target_roas=Decimal("2.5")),
        CreateAd(target=ref("ad_group", "230001"), reason="new summer copy", idempotency_key="meta-ad-230001",
                 ad=MetaAdCreative(primary_text="Frische Sommersträuße, direkt vom Gärtner.",
                                   headline="Sommerblumen online", description="Lieferung in 24 h",
                                   link="https://www.example-flowers.de/sommer")),
    ]


def two_budgets() -> list[Action]:
    """Two ad-set budget changes; the validation and partial-failure cassettes reject the second."""
    return [
        SetBudget(target=ref("ad_group", "230001"), reason="more budget", idempotency_key="meta-two-230001",
                  daily_budget=Money.of("25.00", "EUR")),
        SetBudget(target=ref("ad_group", "230002"), reason="less budget", idempotency_key="meta-two-230002",
                  daily_budget=Money.of("0.50", "EUR")),
    ]


def make_api() -> Any:
    """A FacebookAdsApi instance (not the global default: no init, hence no crash reporter either)."""
    from facebook_business.api import FacebookAdsApi
    from facebook_business.session import FacebookSession

    return FacebookAdsApi(FacebookSession("1234", APP_SECRET, TOKEN, timeout=5), api_version="v24.0")


def make_platform(*, discover: bool = False, sleeps: list[float] | None = None,
                  ledger: AppliedLedger | None = None, page_id: str | None = "4242") -> MetaPlatform:
    """A platform with instant sleeps and a fixed clock."""
    waits = sleeps if sleeps is not None else []
    return MetaPlatform(make_api(), [] if discover else [ACCOUNT], discover=[ACT] if discover else (),
                        ledger=ledger, retry=RetryPolicy(sleep=waits.append), page_id=page_id,
                        today=lambda tz: date(2026, 12, 1), now=lambda: NOW)


def test_protocol_is_implemented() -> None:
    platform = make_platform()
    assert isinstance(platform, AdPlatform)
    assert platform.name == "meta"


@pytest.mark.vcr("meta/success.yaml")
def test_dry_run_then_apply_of_the_same_change_set(vcr: Any, tmp_path: Path) -> None:
    platform = make_platform(discover=True, ledger=AppliedLedger(tmp_path / "ledger.sqlite"))
    assert [(a.account_id, a.currency) for a in platform.list_accounts()] == [(ACT, "EUR")]

    campaigns = platform.list_entities(ACT, EntityKind.CAMPAIGN)
    assert {c.ref.id: c.status for c in campaigns} == {"120001": "ENABLED", "120002": "ENABLED",
                                                       "120003": "REMOVED"}
    kpis = platform.read_kpis(ACT, EntityKind.CAMPAIGN, ["120001"], 7)
    assert kpis["120001"].cost == Decimal("123.45")
    assert kpis["120001"].conversions == Decimal("9")
    assert kpis["120001"].conversion_value == Decimal("540.00")

    dry = platform.validate(change_set())
    assert [r.status for r in dry] == ["validated"] * 4
    assert dry[0].before == {"daily_budget": "20.00"}  # 2000 cents

    applied = platform.apply(change_set())
    assert [r.status for r in applied] == ["applied"] * 4
    budget, pause, roas, ad = applied
    assert (budget.before, budget.after) == ({"daily_budget": "20.00"}, {"daily_budget": "25.00"})
    assert (pause.before, pause.after) == ({"status": "ENABLED"}, {"status": "PAUSED"})
    assert roas.after == {"target_roas": "2.5"}
    assert ad.created_id == "340009" and ad.after == {"id": "340009", "status": "PAUSED"}
    # One Graph request per batch: discovery, list, insights; validate: 2 reads + 1 batch;
    # apply: token check + 2 reads + 1 batch + 3 read-backs.
    assert platform.round_trips == 3 + 3 + 7

    again = platform.apply(change_set())  # the cassette has nothing left: any call would fail
    assert [r.status for r in again] == ["already_applied"] * 4
    assert vcr.all_played  # every recorded interaction was requested


@pytest.mark.vcr("meta/validation_error.yaml")
def test_validation_error_is_mapped_to_its_action(vcr: Any) -> None:
    ok, bad = make_platform().validate(two_budgets())
    assert ok.status == "validated"
    assert bad.status == "failed" and bad.error_code == "100"
    assert "budget" in bad.message.lower()
    assert vcr.all_played  # every recorded interaction was requested


@pytest.mark.vcr("meta/partial_failure.yaml")
def test_partial_failure_applies_the_valid_item(vcr: Any, tmp_path: Path) -> None:
    ledger = AppliedLedger(tmp_path / "ledger.sqlite")
    ok, bad = make_platform(ledger=ledger).apply(two_budgets())
    assert ok.status == "applied" and ok.after == {"daily_budget": "25.00"}
    assert bad.status == "failed" and bad.before == {"daily_budget": "10.00"}
    assert ledger.get("meta", "meta-two-230001") is not None
    assert ledger.get("meta", "meta-two-230002") is None
    assert vcr.all_played  # every recorded interaction was requested


@pytest.mark.vcr("meta/rate_limit.yaml")
def test_rate_limits_back_off_as_the_usage_header_says(vcr: Any) -> None:
    sleeps: list[float] = []
    platform = make_platform(sleeps=sleeps)
    entity = platform.get_entity(ref("ad_group", "230001"))  # 613 on the first read, then success
    assert entity.daily_budget == Money.of("20.00", "EUR")
    result = platform.validate(two_budgets()[:1])  # batch item hits code 17, resent alone
    assert result[0].status == "validated"
    # estimated_time_to_regain_access is in minutes: 1 → 60 s, 2 → 120 s.
    assert sleeps == [60.0, 120.0]
    assert vcr.all_played  # every recorded interaction was requested


@pytest.mark.vcr("meta/auth_error.yaml")
def test_expired_token_is_a_plain_error_and_not_retried(vcr: Any) -> None:
    sleeps: list[float] = []
    with pytest.raises(PlatformError) as info:
        make_platform(sleeps=sleeps).list_entities(ACT, EntityKind.CAMPAIGN)
    assert info.value.code == "AUTH"
    assert "Session has expired" in info.value.message
    assert TOKEN not in info.value.message
    assert sleeps == []
    assert vcr.all_played  # every recorded interaction was requested


@pytest.mark.vcr("meta/token.yaml")
def test_token_check_reports_expiry(vcr: Any) -> None:
    status = make_platform().check_token()
    assert status.valid
    assert status.days_left(NOW) == pytest.approx(12.5, abs=0.01)
    assert "ads_management" in status.scopes
    assert vcr.all_played  # every recorded interaction was requested


def test_usage_header_parsing() -> None:
    header = '{"1001": [{"type": "ads_management", "call_count": 100, "estimated_time_to_regain_access": 5}]}'
    assert usage_wait({"X-Business-Use-Case-Usage": header}) == 300.0
    assert usage_wait([{"name": "x-business-use-case-usage", "value": header}]) == 300.0
    assert usage_wait({"x-business-use-case-usage": '{"1001": [{"estimated_time_to_regain_access": 0}]}'}) is None
    assert usage_wait({}) is None


def test_urllib3_request_lines_are_logged_without_tokens(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    make_platform()  # installs the redaction
    with caplog.at_level(logging.DEBUG, logger="urllib3.connectionpool"):
        logging.getLogger("urllib3.connectionpool").debug(
            '%s://%s:%s "%s %s %s" %s %s', "https", "graph.facebook.com", 443, "GET",
            f"/v24.0/?ids=1&access_token={TOKEN}&appsecret_proof=abc123", "HTTP/1.1", 200, 10)
    assert TOKEN not in caplog.text and "abc123" not in caplog.text
    assert "access_token=[FILTERED]" in caplog.text
    assert any(isinstance(f, RedactTokens) for f in logging.getLogger("urllib3.connectionpool").filters)


@pytest.mark.vcr("meta/success.yaml")
def test_a_request_outside_the_cassette_never_shows_the_token() -> None:
    platform = make_platform()
    with pytest.raises(PlatformError) as info:  # no interaction for this id: vcrpy refuses the request
        platform.list_entities(ACT, EntityKind.AD, parent_id="999999")
    assert info.value.code == "UNREACHABLE"
    assert TOKEN not in str(info.value) and info.value.__cause__ is None and info.value.__suppress_context__


def test_from_settings_never_installs_the_crash_reporter(tmp_path: Path) -> None:
    hook = sys.excepthook
    settings = load_settings(home=tmp_path, platforms={ACT: "meta"}, meta_app_id="1234",
                             meta_access_token=TOKEN, meta_app_secret=APP_SECRET)
    platform = MetaPlatform.from_settings(settings)
    assert sys.excepthook is hook
    assert platform.name == "meta"
    with pytest.raises(ConfigError, match="no Meta access token"):
        MetaPlatform.from_settings(load_settings(home=tmp_path, platforms={ACT: "meta"}))
    with pytest.raises(ConfigError, match="start with act_"):
        MetaPlatform.from_settings(load_settings(home=tmp_path, platforms={"1001": "meta"}, meta_access_token=TOKEN))


def test_runtime_routes_a_meta_account_to_the_meta_adapter(tmp_path: Path) -> None:
    from agent.runtime import Runtime

    settings = load_settings(home=tmp_path, platforms={ACT: "meta"}, meta_access_token=TOKEN)
    assert isinstance(Runtime(settings).platform_for(ACT), MetaPlatform)


class _CountingApi:
    """Counts Graph requests and answers batches of budget updates (round-trip arithmetic only)."""

    def __init__(self) -> None:
        self.requests = 0
        self._session = type("S", (), {"access_token": TOKEN})()

    def call(self, method: str, path: tuple[str, ...], params: dict[str, Any] | None = None) -> Any:
        self.requests += 1
        params = params or {}
        if "batch" in params:
            body = [{"code": 200, "headers": [], "body": '{"success": true}'} for _ in params["batch"]]
        elif path == ("debug_token",):
            body = {"data": {"is_valid": True, "expires_at": 0, "scopes": ["ads_management"]}}
        else:
            body = {i: {"id": i, "name": i, "status": "ACTIVE", "daily_budget": "2500"}
                    for i in params["ids"].split(",")}
        return type("R", (), {"json": lambda self: body})()


@pytest.mark.parametrize("n", [1, 50, 51, 500])
def test_round_trips_for_n_budget_changes(n: int) -> None:
    api = _CountingApi()
    platform = MetaPlatform(api, [ACCOUNT])
    actions = [SetBudget(target=ref("ad_group", str(230000 + i)), reason="scale winners",
                         daily_budget=Money.of("25", "EUR")) for i in range(n)]
    assert all(r.status == "applied" for r in platform.apply(actions))
    chunks = math.ceil(n / MAX_BATCH)
    # token check + reads (50 ids each) + batches (50 calls each) + read-backs
    assert api.requests == platform.round_trips == 1 + chunks + chunks + chunks
