"""DSGVO helpers: redact personal data before anything reaches a prompt, a log or the audit trail."""

from __future__ import annotations

import hashlib
import re
from typing import Any

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("email", re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")),
    ("iban", re.compile(r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){3,7}(?:\s?[A-Z0-9]{1,3})?\b")),
    # International or national phone numbers with at least 7 digits; keeps prices and dates alone.
    # Not followed by a word character either, so hex hashes that start with 0 and digits stay intact.
    ("phone", re.compile(r"(?<![\w.,])(?:(?:\+|00)\d[\d\s/\-()]{6,}\d|0\d{2,5}[\s/\-]?\d{3,}[\d\s\-]*\d)(?!\w)")),
    ("bearer", re.compile(r"(?i)bearer\s+[A-Za-z0-9._\-]{8,}")),
    ("token", re.compile(r"(?i)(access_token|appsecret_proof|api[_-]?key|developer[_-]?token)[=:]\s*[^\s&,\"']+")),
]

SECRET_KEYS = {"authorization", "api_key", "access_token", "app_secret", "appsecret_proof", "developer_token",
               "refresh_token", "client_secret", "password", "mistral_api_key", "meta_access_token"}


def contains_personal_data(text: str) -> list[str]:
    """The kinds of personal data found in ``text`` (empty when none)."""
    return [name for name, pattern in _PATTERNS if pattern.search(text)]


def redact_text(text: str) -> str:
    """``text`` with emails, IBANs, phone numbers and credentials replaced by ``[redacted:<kind>]``."""
    for name, pattern in _PATTERNS:
        text = pattern.sub(f"[redacted:{name}]", text)
    return text


def redact(value: Any) -> Any:
    """Recursively redact strings in dicts and lists; values under secret-looking keys are dropped."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: ("[redacted:secret]" if str(k).lower() in SECRET_KEYS else redact(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def fingerprint(text: str) -> str:
    """A SHA-256 hash that identifies a prompt without storing it."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
