"""Tier 2: the copywriter against the real ``ChatMistralAI`` client, replayed from a cassette.

``cassettes/mistral/test_copy_bulk_structured_output.yaml`` holds the bulk tier's structured-output
call (the ``RsaVariants`` schema as a forced tool) and the repair round the guardrails asked for.
Re-record with ``python cassettes/record_copy.py`` (``--stand-in`` offline; provenance in
cassettes/README.md). The assertions hold for any faithful recording: they check what was sent and
that the guardrails' verdicts and the repair loop match what the model answered.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from vcr.record_mode import RecordMode

from agent.domain import EntityRef
from agent.models import ModelRouter, load_prompt
from agent.settings import DEFAULT_POLICY, load_settings
from graphs.copywriter.context import CopyContext
from graphs.copywriter.graph import write_copy
from graphs.copywriter.guardrails import GuardContext, check_variant
from graphs.copywriter.state import Brief
from graphs.copywriter.variants import ProductFacts, RsaCopy
from policies.engine import load_engine
from tests.mistral_cassettes import API_KEY, BASE_URL, CASSETTES, mistral_vcr_config

BULK_MODEL = "mistral-small-latest"  # the bulk tier's configured fallback: served by the public API today

PRODUCT = ProductFacts(sku="NK-10000", name="Nordkamm Fjord Damen Regenjacke", brand="Nordkamm",
                       category="Regenjacken", price=Decimal("89.99"), sale_price=Decimal("71.95"), currency="EUR",
                       description="Nordkamm Fjord Damen Regenjacke: leicht, atmungsaktiv und robust. "
                                   "Ideal für Touren in den Alpen und im Norden.",
                       url="https://www.nordkamm-outdoor.example/p/nk-10000")
BRIEF = Brief(products=[PRODUCT], platform="google", language="de", variants=2,
              target=EntityRef(platform="google", account_id="1234567890", kind="ad_group", id="gag-0001"))


@pytest.fixture(scope="module")
def vcr_cassette_dir() -> str:
    """The copywriter's cassette sits with the other Mistral cassettes."""
    return CASSETTES


@pytest.fixture(scope="module")
def vcr_config(vcr_config: dict[str, Any]) -> dict[str, Any]:
    """Body matching: a change in what the copywriter sends fails the test."""
    return mistral_vcr_config(vcr_config)


@pytest.mark.vcr
def test_copy_bulk_structured_output(vcr: Any, tmp_path: Path) -> None:
    rules = load_engine(DEFAULT_POLICY).brand_rules
    settings = load_settings(home=tmp_path / "home", mistral_api_key=API_KEY, mistral_base_url=BASE_URL,
                             bulk_model=BULK_MODEL, requests_per_second=0, tokens_per_second=0, max_retries=0)
    router = ModelRouter(settings)
    out = write_copy([BRIEF], CopyContext(rules=rules, router=router, prompt=load_prompt("copy_bulk"),
                                          run_id="t2-copy"))
    requests = [json.loads(r.body) for r in vcr.requests]
    if vcr.record_mode == RecordMode.NONE:
        assert vcr.all_played and vcr.play_count == len(requests)
    assert len(requests) == out.model_calls and 1 <= out.model_calls <= 3

    first = requests[0]
    assert first["model"] == BULK_MODEL and first["temperature"] == settings.bulk_temperature
    assert first["tool_choice"] == "any" and [t["function"]["name"] for t in first["tools"]] == ["RsaVariants"]
    system, user = first["messages"][0]["content"], first["messages"][1]["content"]
    assert "Nordkamm Fjord Damen Regenjacke" in system and "71,95 €" in system
    assert "Solange der Vorrat reicht." in system and "Alpinfux" in system      # the brand rules travel along
    assert user.startswith("Write 2 clearly different Google responsive search ad variants in German")

    # Every violation the repair loop fixed was sent back to the model in the validator's own words.
    later = " ".join(m["content"] for r in requests[1:] for m in r["messages"][-1:])
    repaired = [v for r in out.reports for v in r.repaired]
    assert all(v.message in later for v in repaired)
    if len(requests) > 1:
        assert repaired or any(r.status == "dropped" for r in out.reports)

    # What ships passes every guardrail and starts paused; what does not ship says why.
    ctx = GuardContext.build([PRODUCT], rules, "google", "de")
    for action in out.actions:
        copy = RsaCopy(headlines=action.ad.headlines, descriptions=action.ad.descriptions, path1=action.ad.path1,
                       path2=action.ad.path2)
        assert check_variant(copy, ctx) == [] and action.status == "PAUSED"
    assert all(r.reason for r in out.reports if r.status == "dropped")
    assert len(out.actions) == sum(r.status == "accepted" for r in out.reports) >= 1
