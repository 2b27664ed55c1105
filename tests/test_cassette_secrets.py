"""No secret ever lands in cassettes/: every file there is scanned for credentials.

``tests/test_platform_cassette_secrets.py`` scans the recordings for platform credentials; this
scan adds every other file under cassettes/ (re-record scripts, READMEs), the header names vcrpy
recorded, and — while ``cassettes/record_mistral.py`` re-records — the literal value of the live key.
The scanner is tested on planted secrets too, so a broken pattern cannot pass silently.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"
_PLACEHOLDER = r"(?!(?:redacted|dummy|filtered|test|fake|stand-in|x{3,}|\*{3,}|\.\.\.)\b)"
PATTERNS: dict[str, re.Pattern[str]] = {
    "bearer token": re.compile(r"(?i)\bbearer\s+" + _PLACEHOLDER + r"[A-Za-z0-9._~+/=-]{8,}"),
    "api key": re.compile(r"(?i)\b(?:x-)?api[_-]?key[\"']?\s*[:=]\s*[\"']?" + _PLACEHOLDER + r"[A-Za-z0-9._-]{16,}"),
    "access_token": re.compile(r"(?i)access_token=" + _PLACEHOLDER + r"[^&\s\"'<]{4,}"),
    "appsecret_proof": re.compile(r"(?i)appsecret_proof=" + _PLACEHOLDER + r"[^&\s\"'<]{4,}"),
    "developer token": re.compile(r"(?i)developer[-_]?token[\"']?\s*[:=]\s*[\"']?" + _PLACEHOLDER
                                  + r"[A-Za-z0-9_-]{10,}"),
    "meta access token": re.compile(r"\bEAA[A-Za-z0-9]{30,}"),
    "google oauth token": re.compile(r"\bya29\.[A-Za-z0-9_-]{20,}|\b1//[A-Za-z0-9_-]{30,}"),
    "client secret": re.compile(r"(?i)client_secret[\"']?\s*[:=]\s*[\"']?" + _PLACEHOLDER + r"[A-Za-z0-9_-]{12,}"),
}
SECRET_HEADERS = {"authorization", "x-api-key", "developer-token", "cookie", "set-cookie", "proxy-authorization"}
LIVE_SECRETS = ("ADPILOT_RECORD_MISTRAL_API_KEY", "MISTRAL_API_KEY", "META_ACCESS_TOKEN", "META_APP_SECRET")


def find_secrets(text: str) -> list[str]:
    """The kinds of credential found in ``text``."""
    found = [kind for kind, pattern in PATTERNS.items() if pattern.search(text)]
    for name in LIVE_SECRETS:
        value = os.environ.get(name)
        if value and len(value) >= 8 and value in text:
            found.append(f"the value of {name}")
    return found


def secret_headers(text: str) -> list[str]:
    """Credential-carrying headers recorded in a vcrpy cassette."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return []
    if not isinstance(data, dict) or not isinstance(data.get("interactions"), list):
        return []
    names = set()
    for interaction in data["interactions"]:
        for side in ("request", "response"):
            headers = (interaction.get(side) or {}).get("headers") or {}
            names |= {str(name).lower() for name in headers if str(name).lower() in SECRET_HEADERS}
    return sorted(names)


def cassette_files() -> list[Path]:
    """Every file under cassettes/, recordings and helpers alike."""
    return sorted(p for p in CASSETTES.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def test_there_are_mistral_cassettes_to_scan() -> None:
    assert any(p.suffix == ".yaml" and p.parent.name == "mistral" for p in cassette_files())


@pytest.mark.parametrize("path", cassette_files(), ids=lambda p: str(p.relative_to(CASSETTES)))
def test_no_secret_in_cassette_file(path: Path) -> None:
    text = path.read_text(encoding="utf-8", errors="replace")
    assert find_secrets(text) == [], f"{path.relative_to(CASSETTES)} holds a credential"
    if path.suffix in (".yaml", ".yml"):
        assert secret_headers(text) == [], f"{path.relative_to(CASSETTES)} records a credential header"


@pytest.mark.parametrize(("text", "kind"), [
    ("Authorization: Bearer sk9f8a7s6d5f4g3h2j1k", "bearer token"),
    ('{"api_key": "0123456789abcdefABCDEF"}', "api key"),
    ("https://graph.facebook.com/v24.0/act_1/campaigns?access_token=EAAB123&limit=5", "access_token"),
    ("?appsecret_proof=9f86d081884c7d659a2feaa0c55ad015", "appsecret_proof"),
    ("developer-token: AbCdEfGhIjKlMnOp", "developer token"),
    ("token EAABsbCS1iHgBAKZCZBxyz0123456789abcdefghij", "meta access token"),
    ("ya29.a0AfH6SMBx0123456789abcdefghijk", "google oauth token"),
])
def test_the_scanner_finds_planted_secrets(text: str, kind: str) -> None:
    assert kind in find_secrets(text)


def test_the_scanner_finds_the_live_key_and_recorded_auth_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADPILOT_RECORD_MISTRAL_API_KEY", "q7Wm2Lx9Pz")
    assert find_secrets('{"note": "q7Wm2Lx9Pz"}') == ["the value of ADPILOT_RECORD_MISTRAL_API_KEY"]
    cassette = ("interactions:\n- request:\n    headers:\n      authorization:\n      - Bearer x\n"
                "  response:\n    headers: {}\nversion: 1\n")
    assert secret_headers(cassette) == ["authorization"]


def test_the_scanner_accepts_placeholders() -> None:
    assert find_secrets("access_token=REDACTED&appsecret_proof=DUMMY; Bearer test-dummy-key") == []
