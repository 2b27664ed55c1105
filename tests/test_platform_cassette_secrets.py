"""Every cassette (all APIs) is scanned for credentials before it can be committed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"

# What a leaked credential looks like on the wire or in a recording.
SECRET_PATTERNS: dict[str, re.Pattern[str]] = {
    "Meta access token in a URL or body": re.compile(r"access_token=(?!&|$|\s|')[^&\s']+"),
    "Meta app secret proof": re.compile(r"appsecret_proof=[0-9a-f]{16,}"),
    "debug_token input": re.compile(r"input_token=[^&\s']+"),
    "Meta user / page token": re.compile(r"\bEAA[A-Za-z0-9]{20,}"),
    "Google OAuth access token": re.compile(r"\bya29\.[\w\-]{10,}"),
    "Google refresh token": re.compile(r"\b1//[\w\-]{20,}"),
    "Google Ads developer token": re.compile(
        r"developer[-_]token['\"]?\s*[:=]\s*['\"]?(?!REDACTED|\[?FILTERED)\w{8,}", re.I),
    "refresh token field": re.compile(r"refresh_token['\"]?\s*[:=]\s*['\"]?\w{8,}", re.I),
    "client secret field": re.compile(r"client_secret['\"]?\s*[:=]\s*['\"]?\w{8,}", re.I),
    "bearer token": re.compile(r"Bearer\s+[A-Za-z0-9._\-]{12,}"),
    "Authorization header value": re.compile(r"(?im)^\s*-?\s*authorization:\s*\n?\s*-\s*(?!\[?FILTERED)\S+"),
    "test stand-in credential": re.compile(r"test-(?:meta-access-token|meta-app-secret|developer-token)"),
}


def cassette_files() -> list[Path]:
    """Every recorded file under cassettes/ (README and the re-record script are not recordings)."""
    return sorted(p for p in CASSETTES.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml", ".json"))


def test_there_are_cassettes_to_scan() -> None:
    names = {p.parent.name for p in cassette_files()}
    assert {"google_ads", "meta"} <= names


@pytest.mark.parametrize("path", cassette_files(), ids=lambda p: str(p.relative_to(CASSETTES)))
def test_cassette_holds_no_secret(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    leaks = [what for what, pattern in SECRET_PATTERNS.items() if pattern.search(text)]
    assert not leaks, f"{path.relative_to(CASSETTES)}: {', '.join(leaks)}"


def test_the_scanner_catches_what_it_claims() -> None:
    samples = {
        "uri: https://graph.facebook.com/v24.0/act_1?access_token=EAAB1234567890abcdefghij": "Meta access token",
        "uri: https://graph.facebook.com/?appsecret_proof=0123456789abcdef0123": "Meta app secret proof",
        '{"developer-token": "AbCdEfGh12345678"}': "Google Ads developer token",
        "refresh_token: 1//0gAbCdEfGhIjKlMnOpQrStUv": "Google refresh token",
        "authorization:\n      - Bearer abcdefghijklmnop": "bearer token",
    }
    for text, what in samples.items():
        assert any(p.search(text) for p in SECRET_PATTERNS.values()), what
    clean = "uri: https://graph.facebook.com/v24.0/?ids=230001&fields=id\nauthorization:\n- FILTERED"
    assert not any(p.search(clean) for p in SECRET_PATTERNS.values())
