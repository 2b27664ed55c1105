"""Copy guardrails: every rule catches its violation, clean copy passes, telemetry stays off."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agent.amounts import find_amounts, find_percents, parse_number, states_discount
from agent.settings import DEFAULT_POLICY
from graphs.copywriter.guardrails import GuardContext, check_variant, near_duplicate_of, shared_tokens
from graphs.copywriter.prompts import rules_block
from graphs.copywriter.variants import MetaCopy, ProductFacts, RsaCopy
from policies.engine import load_engine

DISCLAIMERS = "Solange der Vorrat reicht. Alle Preise inkl. MwSt."
JACKET = ProductFacts(sku="NK-1", name="Nordkamm Fjord Damen Regenjacke", brand="Nordkamm", category="Regenjacken",
                      price=Decimal("89.99"), sale_price=Decimal("71.95"), currency="EUR",
                      description="Nordkamm Fjord Damen Regenjacke: leicht, atmungsaktiv und robust.",
                      url="https://www.nordkamm-outdoor.example/p/nk-1")
CLEAN_HEADLINES = ["Fjord Damen Regenjacke", "Leicht und atmungsaktiv", "Jetzt 71,95 € statt 89,99 €"]
CLEAN_DESCRIPTIONS = ["Die Fjord Regenjacke von Nordkamm: leicht, robust und atmungsaktiv.",
                      f"Jetzt 20 % sparen. {DISCLAIMERS}"]


@pytest.fixture(scope="module")
def rules():
    """The demo policy's brand rules, as the policy engine compiles them."""
    return load_engine(DEFAULT_POLICY).brand_rules


def rsa(headline: str | None = None, description: str | None = None) -> RsaCopy:
    """Clean copy with one headline (or description) replaced by the text under test."""
    heads = [*CLEAN_HEADLINES[:2], headline] if headline is not None else CLEAN_HEADLINES
    descs = [description, CLEAN_DESCRIPTIONS[1]] if description is not None else CLEAN_DESCRIPTIONS
    return RsaCopy(headlines=heads, descriptions=descs)


def codes(variant, rules, platform="google", language="de", product=JACKET) -> set[str]:
    return {v.code for v in check_variant(variant, GuardContext.build([product], rules, platform, language))}


def test_clean_copy_passes(rules) -> None:
    assert check_variant(rsa(), GuardContext.build([JACKET], rules, "google", "de")) == []
    meta = MetaCopy(primary_text=f"Die Fjord Regenjacke von Nordkamm: leicht und robust. {DISCLAIMERS}",
                    headline="Fjord Damen Regenjacke", description="Jetzt für 71,95 €")
    assert check_variant(meta, GuardContext.build([JACKET], rules, "meta", "de")) == []


@pytest.mark.parametrize(("headline", "expected"), [
    ("Fjord Regenjacke für alle Touren", "too_long"),                # 32 characters
    ("防水ジャケット北欧デザイン軽量モデル", "too_long"),                  # 17 double-width = 34
    ("Garantiert trocken", "do_not_say"),
    ("100% wasserdicht", "do_not_say"),
    ("100 % Wasser-dicht", "do_not_say"),
    ("Nr. 1 für Regenjacken", "forbidden_claim"),
    ("Nur 59,99 €", "wrong_price"),
    ("Nur €59.99", "wrong_price"),
    ("Jetzt 69.99 EUR", "wrong_price"),
    ("Nur 71,95 $", "wrong_price"),                                   # right number, wrong currency
    ("Jetzt -30 % auf Jacken", "wrong_percentage"),
    ("30% Rabatt", "wrong_percentage"),
    ("Besser als Alpinfux", "competitor"),
    ("Nicht wie Bergwelt-Outdoor", "competitor"),
    ("Nordkam Regenjacke", "brand_spelling"),
    ("NordKamm Regenjacke", "brand_spelling"),
    ("Nord Kamm Regenjacke", "brand_spelling"),
    ("Fragen? info@nordkamm.example", "personal_data"),
    ("Ruf an: 089 1234567", "phone_number"),
    ("Regenjacke im Sale 😀", "emoji_or_symbol"),
    ("★ Regenjacke ★", "emoji_or_symbol"),
    ("Fl@sche für Touren", "emoji_or_symbol"),
    ("Regenjacke!!", "repeated_punctuation"),
    ("Regenjacke!", "exclamation"),
    ("KLICK HIER", "click_here"),
    ("Jetzt hier klicken", "click_here"),
    ("Click here for jackets", "click_here"),
    ("SUPER Regenjacke", "gimmicky_caps"),
    ("ReGeNjAcKe", "gimmicky_caps"),
    ("Die beste Regenjacke", "superlative"),
    ("Best jacket", "superlative"),
    ("#1 Regenjacke", "superlative"),
    ("R e g e n", "spaced_letters"),
])
def test_each_violation_is_caught(rules, headline: str, expected: str) -> None:
    assert expected in codes(rsa(headline=headline), rules)


def test_width_counts_double_width_scripts_twice_and_umlauts_once(rules) -> None:
    umlauts = "Grüße für Füße: Größe ÄÖÜ äöü"
    assert len(umlauts) == 29
    decomposed = "Gru\u0308ße fu\u0308r Fu\u0308ße: Gro\u0308ße ÄÖÜ äöü"  # combining marks fold into one character
    cjk = "防水ジャケット北欧デザイン軽量"                          # 15 characters, 30 wide
    over = cjk + "型"
    assert "too_long" not in codes(rsa(headline=umlauts), rules)
    assert "too_long" not in codes(rsa(headline=decomposed), rules)
    assert "too_long" not in codes(rsa(headline=cjk), rules)
    found = check_variant(rsa(headline=over), GuardContext.build([JACKET], rules, "google", "de"))
    message = next(v.message for v in found if v.code == "too_long")
    assert "32 characters" in message and "double-width" in message


def test_meta_limits(rules) -> None:
    ok = MetaCopy(primary_text=f"Die Fjord Regenjacke von Nordkamm. {DISCLAIMERS}", headline="Fjord Regenjacke",
                  description="Jetzt für 71,95 €")
    assert "too_long" not in codes(ok, rules, "meta")
    for field, text in (("primary_text", DISCLAIMERS + " " + "Leicht und robust. " * 5),
                        ("headline", "Fjord Damen Regenjacke leicht und atmungsaktiv"),
                        ("description", "Jetzt die Fjord Regenjacke sehen")):
        found = check_variant(ok.model_copy(update={field: text}), GuardContext.build([JACKET], rules, "meta", "de"))
        assert any(v.code == "too_long" and v.field == field for v in found), (field, found)


def test_structure_and_disclaimers(rules) -> None:
    two = RsaCopy(headlines=CLEAN_HEADLINES[:2], descriptions=CLEAN_DESCRIPTIONS)
    assert "ad_structure" in codes(two, rules)
    dup = RsaCopy(headlines=[*CLEAN_HEADLINES, CLEAN_HEADLINES[0].upper().lower()], descriptions=CLEAN_DESCRIPTIONS)
    assert "ad_structure" in codes(dup, rules)
    assert "missing_disclaimer" in codes(rsa(description=None).model_copy(
        update={"descriptions": [CLEAN_DESCRIPTIONS[0], "Jetzt 20 % sparen."]}), rules)
    assert "ad_structure" in codes(MetaCopy(primary_text="x", headline="y", description="z"), rules, "google")


def test_wrong_language(rules) -> None:
    english = rsa(description="Discover the lightweight rain jacket for your next hike in the mountains.")
    assert "wrong_language" in codes(english, rules, language="de")
    assert "wrong_language" not in codes(rsa(), rules, language="de")
    # An English ad carries the English disclaimers: mandated text, no evidence against it.
    en = RsaCopy(headlines=["Fjord rain jacket", "Light and breathable", "Now €71.95, was €89.99"],
                 descriptions=["The Fjord rain jacket by Nordkamm is light and tough.",
                               "Save 20% now. While stocks last. All prices incl. VAT."])
    assert codes(en, rules, language="en") == set()
    assert "wrong_language" in codes(en, rules, language="de")
    # Mandated disclaimers of every language (a plain policy entry) are no evidence either.
    german_everywhere = {"required_disclaimers": [DISCLAIMERS]}
    en_de = en.model_copy(update={"descriptions": [en.descriptions[0], f"Save 20% now. {DISCLAIMERS}"]})
    assert codes(en_de, german_everywhere, language="en") == set()


def missing(primary: str, language: str, rules) -> list[str]:
    """The disclaimers a Meta ad with ``primary`` text lacks, as the guardrail names them."""
    ad = MetaCopy(primary_text=primary, headline="Fjord Damen Regenjacke",
                  description="Jetzt entdecken" if language == "de" else "Discover it now")
    found = check_variant(ad, GuardContext.build([JACKET], rules, "meta", language))
    return [v.message.removeprefix("lacks the required disclaimer ") for v in found if v.code == "missing_disclaimer"]


@pytest.mark.parametrize(("language", "primary", "lacks"), [
    # A price calls for the VAT note of the ad's language, and only that one.
    ("de", "Die Fjord Regenjacke von Nordkamm für 89,99 €.", ["'Alle Preise inkl. MwSt.'"]),
    ("de", "Die Fjord Regenjacke von Nordkamm für nur 89,99 im Onlineshop.", ["'Alle Preise inkl. MwSt.'"]),
    ("de", "Die Fjord Regenjacke von Nordkamm für 89,99 €. Alle Preise inkl. MwSt.", []),
    ("en", "The Fjord rain jacket by Nordkamm for €89.99.", ["'All prices incl. VAT.'"]),
    ("en", "The Fjord rain jacket by Nordkamm for €89.99. Alle Preise inkl. MwSt.", ["'All prices incl. VAT.'"]),
    ("en", "The Fjord rain jacket by Nordkamm for €89.99. All prices incl. VAT.", []),
    # No price, no discount: no disclaimer.
    ("de", "Die Fjord Regenjacke von Nordkamm: leicht und robust.", []),
    ("en", "The Fjord rain jacket by Nordkamm: light and tough.", []),
    ("de", "Die Fjord Regenjacke von Nordkamm aus 100 % recyceltem Material.", []),   # a share, not a discount
    ("fr", "La veste de pluie Fjord de Nordkamm pour 89,99 €.", []),                # no disclaimer covers fr
    # A discount (percentage off, sale, struck price) calls for the stock note.
    ("de", "Die Fjord Regenjacke von Nordkamm jetzt mit 20 % Rabatt.", ["'Solange der Vorrat reicht.'"]),
    ("de", "Die Fjord Regenjacke von Nordkamm jetzt -20 %.", ["'Solange der Vorrat reicht.'"]),
    ("de", "Die Fjord Regenjacke von Nordkamm im Sale.", ["'Solange der Vorrat reicht.'"]),
    ("de", "Statt 89,99 € jetzt 71,95 €.", ["'Alle Preise inkl. MwSt.'", "'Solange der Vorrat reicht.'"]),
    ("de", "Statt 89,99 € jetzt 71,95 €. Alle Preise inkl. MwSt. Solange der Vorrat reicht.", []),
    ("en", "The Fjord rain jacket by Nordkamm, now 20% off.", ["'While stocks last.'"]),
    ("en", "Now €71.95, was €89.99.", ["'All prices incl. VAT.'", "'While stocks last.'"]),
    ("en", "Now €71.95, was €89.99. All prices incl. VAT. While stocks last.", []),
])
def test_disclaimers_follow_language_and_content(rules, language: str, primary: str, lacks: list[str]) -> None:
    assert missing(primary, language, rules) == lacks


def test_plain_disclaimers_apply_to_every_ad() -> None:
    rules = {"required_disclaimers": ["Solange der Vorrat reicht."]}
    assert missing("The Fjord rain jacket by Nordkamm: light and tough.", "en", rules) == [
        "'Solange der Vorrat reicht.'"]


def test_a_disclaimer_that_mentions_a_price_does_not_call_for_itself(rules) -> None:
    # Conditions look at what the ad says, not at the mandated text it carries.
    odd = {"required_disclaimers": [{"text": "Versand ab 4,95 € im Sale.", "when": "discount_stated"}]}
    assert missing("Die Fjord Regenjacke von Nordkamm: leicht und robust.", "de", odd) == []


def test_the_bulk_prompt_names_the_disclaimers_of_its_language(rules) -> None:
    de, en = rules_block(rules, "de"), rules_block(rules, "en")
    assert '"Alle Preise inkl. MwSt." (if the ad states a price)' in de
    assert '"Solange der Vorrat reicht." (if the ad states a discount or sale)' in de
    assert "VAT" not in de and "MwSt" not in en and '"While stocks last." (if the ad states a discount' in en
    assert "disclaimer" not in rules_block(rules, "fr")


def test_true_prices_and_discount_pass(rules) -> None:
    for text in ("Statt 89,99 € nur 71,95 €", "Now €71.95", "Spare 18,04 €", "-20 %", "20 Prozent Rabatt"):
        assert not codes(rsa(headline=text), rules) & {"wrong_price", "wrong_percentage"}, text
    regular = JACKET.model_copy(update={"sale_price": None})
    assert "wrong_percentage" in codes(rsa(headline="-20 %"), rules, product=regular)
    assert "wrong_price" in codes(rsa(headline="Jetzt 71,95 €"), rules, product=regular)


@pytest.mark.parametrize(("raw", "language", "value"), [
    ("1.299,00", "de", "1299.00"), ("1,299.00", "en", "1299.00"), ("1.299", "de", "1299"), ("1.299", "en", "1.299"),
    ("49,99", "de", "49.99"), ("49.99", "de", "49.99"), ("1,299", "en", "1299"), ("1,5", "en", "1.5"),
])
def test_parse_number(raw: str, language: str, value: str) -> None:
    assert parse_number(raw, language) == Decimal(value)


def test_find_amounts_and_percents() -> None:
    text = "Ab 24.12. nur 49,99 statt €59.99 oder 49,- € für 0,75 l"
    assert [(a, c) for _, a, c in find_amounts(text)] == [(Decimal("59.99"), "EUR"), (Decimal("49"), "EUR"),
                                                          (Decimal("49.99"), None)]
    assert [v for _, v in find_percents("-20 % und 20% und 20 Prozent und 12,5 %")] == [
        Decimal(20), Decimal(20), Decimal(20), Decimal("12.5")]


def test_near_duplicates_ignore_shared_facts(rules) -> None:
    ctx = GuardContext.build([JACKET], rules, "google", "de")
    ignore = shared_tokens(ctx)
    base = rsa()
    reworded = RsaCopy(headlines=["Fjord Damen Regenjacke", "Leicht und atmungsaktiv!", "Jetzt 71,95 € statt 89,99 €"],
                       descriptions=CLEAN_DESCRIPTIONS)
    other = RsaCopy(headlines=["Nordkamm Regenjacken", "Robust für jede Tour", "20 % Rabatt"],
                    descriptions=["Jetzt entdecken und online bestellen.", DISCLAIMERS])
    assert near_duplicate_of(reworded, [base], ignore) is not None
    assert near_duplicate_of(other, [base], ignore) is None


def test_guardrails_telemetry_and_tracing_stay_off(rules) -> None:
    from guardrails import settings as guardrails_settings
    from guardrails.utils.hub_telemetry_utils import HubTelemetry

    from graphs.copywriter.guardrails import build_guard

    guard = build_guard()
    check_variant(rsa(headline="Nur 59,99 €"), GuardContext.build([JACKET], rules, "google", "de"))
    assert guard._allow_metrics_collection is False
    assert HubTelemetry()._enabled is False
    assert guardrails_settings.disable_tracing is True


def test_no_telemetry_without_a_guardrailsrc(tmp_path) -> None:
    """In a fresh process whose HOME has no ~/.guardrailsrc (guardrails' default: metrics on), nothing is exported."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    probe = """
import opentelemetry.exporter.otlp.proto.http.trace_exporter as otlp
sent = []
otlp.OTLPSpanExporter.export = lambda self, spans: sent.append(len(spans))
from decimal import Decimal
from guardrails.utils.hub_telemetry_utils import HubTelemetry
from graphs.copywriter.guardrails import BrandRules, GuardContext, check_variant
from graphs.copywriter.variants import ProductFacts, RsaCopy
p = ProductFacts(sku="S", name="Fjord", brand="Nordkamm", category="Jacken", price=Decimal("10"), url="https://a.example/p")
ctx = GuardContext.build([p], BrandRules(), "google", "de")
for _ in range(3):
    check_variant(RsaCopy(headlines=["Fjord", "Jacke", "Nordkamm"], descriptions=["a b", "c d"]), ctx)
provider = HubTelemetry()._tracer_provider
if provider is not None:
    provider.force_flush()
print(HubTelemetry()._enabled, sent)
"""
    env = {**os.environ, "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False []"
    assert not (tmp_path / ".guardrailsrc").exists()


@pytest.mark.parametrize(("text", "discount"), [
    ("Jetzt -30 % auf Jacken", True), ("20 % Rabatt", True), ("Jetzt 20 % günstiger", True), ("20% off", True),
    ("Statt 89,99 € nur 71,95 €", True), ("Spare 18,04 €", True), ("Now €71.95, was €89.99", True),
    ("Regenjacke im Sale", True), ("Sale-Preis", True), ("Reduziert: Fjord Regenjacke", True),
    ("100 % Merinowolle", False), ("Nur 71,95 €", False), ("Tents for sale", False), ("Salewa Jacke", False),
    ("Platz sparen im Rucksack", False), ("2-3 % Steigung", False),
])
def test_what_counts_as_a_discount(text: str, discount: bool) -> None:
    assert states_discount(text, "de") is discount
