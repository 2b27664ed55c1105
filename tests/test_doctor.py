"""``adpilot doctor``: plain report, offline-safe, secrets never printed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.cli import main
from agent.cli.doctor import check_meta, check_mistral, run_checks
from agent.settings import load_settings

REPO = Path(__file__).resolve().parent.parent
KEY = "test-mistral-key-not-real"
TOKEN = "test-meta-access-token"


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    """Same filters and matching as the Meta adapter tests."""
    return {"filter_headers": ["authorization", "cookie", "set-cookie"],
            "filter_query_parameters": ["access_token", "appsecret_proof", "input_token", "client_secret"],
            "match_on": ["method", "scheme", "host", "port", "path", "query", "body"]}


@pytest.fixture(scope="module")
def vcr_cassette_dir() -> str:
    """Cassettes live in the top-level cassettes/ folder."""
    return str(REPO / "cassettes")


def test_nothing_configured_runs_no_network_check(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["doctor", "--home", str(home)])
    out = capsys.readouterr().out
    assert code == 0
    assert "not needed" in out
    assert "deterministic planner" in out  # Mistral skipped, with what happens instead
    assert "every account uses the sandbox" in out


def test_offline_is_reported_not_hung(home: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    # --block-network makes every connection fail, exactly like a machine without network.
    monkeypatch.setenv("MISTRAL_API_KEY", KEY)
    monkeypatch.setenv("META_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("ADPILOT_PLATFORMS", '{"act_1001": "meta"}')
    code = main(["doctor", "--home", str(home), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["network"].startswith("offline")
    checks = {c["item"]: c for c in report["checks"]}
    assert checks["mistral"]["status"] == "warn" and "offline" in checks["mistral"]["detail"]
    assert checks["meta"]["status"] == "warn" and "offline" in checks["meta"]["detail"]
    assert code == 0  # offline is not a failure
    assert KEY not in json.dumps(report) and TOKEN not in json.dumps(report)


def test_a_broken_policy_fails_with_a_plain_line(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text("version: [unclosed\n")
    monkeypatch.setenv("ADPILOT_POLICY_FILE", str(bad))
    code = main(["doctor", "--home", str(home), "--json"])
    report = json.loads(capsys.readouterr().out)
    policy = next(c for c in report["checks"] if c["item"] == "policy")
    assert code == 1 and policy["status"] == "fail"
    assert str(bad) in policy["detail"] or "policy.yaml" in policy["detail"]


def test_the_default_policy_loads(home: Path) -> None:
    _, checks = run_checks(load_settings(home=home), probe=lambda host, port: False)
    assert next(c for c in checks if c.item == "policy").status == "ok"


def test_missing_google_credentials_say_what_to_create(home: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADPILOT_PLATFORMS", '{"1234567890": "google_ads"}')
    monkeypatch.setenv("ADPILOT_GOOGLE_ADS_YAML", str(tmp_path / "nope.yaml"))
    code = main(["doctor", "--home", str(home)])
    out = capsys.readouterr().out
    assert code == 1
    assert "google-ads.yaml" in out


def test_bad_flag_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--no-such-flag"]) == 2


def _models(*ids: str) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return httpx.Response(401, json={"message": "Unauthorized"})
        return httpx.Response(200, json={"object": "list", "data": [{"id": i, "object": "model"} for i in ids]})

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_mistral_models_served_or_not(home: Path) -> None:
    settings = load_settings(home=home, mistral_api_key=KEY)
    everything = _models("mistral-large-latest", "open-mixtral-8x22b", "codestral-latest", "mistral-small-latest")
    assert check_mistral(settings, True, everything).status == "ok"
    # Mixtral gone, the configured fallback served: a warning, not a failure.
    fallback = check_mistral(settings, True, _models("mistral-large-latest", "codestral-latest",
                                                     "mistral-small-latest"))
    assert fallback.status == "warn" and "fallback mistral-small-latest" in fallback.detail
    missing = check_mistral(settings, True, _models("mistral-small-latest"))
    assert missing.status == "fail" and "planner mistral-large-latest not served" in missing.detail
    refused = check_mistral(load_settings(home=home, mistral_api_key="wrong"), True, everything)
    assert refused.status == "fail" and "refused the key" in refused.detail


@pytest.mark.vcr("meta/token.yaml")
def test_meta_token_days_to_expiry(home: Path) -> None:
    settings = load_settings(home=home, meta_app_id="1234", meta_app_secret="test-meta-app-secret",
                             meta_access_token=TOKEN)
    check = check_meta(settings, True, now=datetime(2026, 12, 4, 12, 0, tzinfo=UTC))
    assert check.status == "ok"
    assert check.detail == "token valid, expires in 12 days"
