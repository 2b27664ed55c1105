"""Redaction of personal data and secrets before prompts, logs and the audit trail."""

from __future__ import annotations

import hashlib

import pytest

from agent.privacy import contains_personal_data, redact, redact_text


@pytest.mark.parametrize(("text", "kind"), [
    ("Schreib an anna.mueller@example.de bitte", "email"),
    ("Ruf an: +49 30 1234567", "phone"),
    ("Tel. 0171-2345678", "phone"),
    ("030 1234567", "phone"),
    ("IBAN DE89 3704 0044 0532 0130 00", "iban"),
    ("Authorization: Bearer abcdefghijklmnop", "bearer"),
    ("https://graph.example/x?access_token=EAAB123", "token"),
])
def test_personal_data_is_redacted(text: str, kind: str) -> None:
    assert kind in contains_personal_data(text)
    assert f"[redacted:{kind}]" in redact_text(text)


@pytest.mark.parametrize("text", ["Nur 49,99 €", "2026-11-24", "gc-014", "NK-10077", "ROAS 3.50", "+10%",
                                  "0412993a7b", "sha 0a1234567f"])
def test_ordinary_text_is_kept(text: str) -> None:
    assert redact_text(text) == text


def test_hashes_survive_redaction() -> None:
    digests = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(3000)]
    assert [redact_text(d) for d in digests] == digests


def test_redact_drops_secret_keys_recursively() -> None:
    data = {"api_key": "sk-123", "nested": [{"Authorization": "Bearer x"}, "mail: a@b.de"], "n": 3}
    assert redact(data) == {"api_key": "[redacted:secret]",
                            "nested": [{"Authorization": "[redacted:secret]"}, "mail: [redacted:email]"], "n": 3}
