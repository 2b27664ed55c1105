"""The messages the bulk model gets: the versioned copy prompt, the request, and repair rounds.

The prompt text lives in ``agent/prompts/copy_bulk.md`` (versioned, its hash recorded with every
call); this module only fills it. PIM text goes in as data and is redacted of personal data first,
so a customer e-mail pasted into a product description never reaches a model.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from agent.models.prompts import Prompt
from agent.privacy import redact_text
from graphs.copywriter.guardrails import LIMITS, BrandRules, Violation
from graphs.copywriter.state import Brief
from graphs.copywriter.templates import money, percent
from graphs.copywriter.variants import Variant

LANGUAGE_NAMES = {"de": "German", "en": "English", "fr": "French", "es": "Spanish", "it": "Italian", "nl": "Dutch"}
PLATFORM_NAMES = {"google": "Google responsive search", "meta": "Meta link"}


def product_block(brief: Brief) -> str:
    """The PIM facts of the brief's products, one product per paragraph."""
    lines = []
    for p in brief.products:
        facts = [f"name: {p.name}", f"brand: {p.brand}", f"category: {p.category}",
                 f"price: {money(p.price, p.currency, brief.language)}"]
        if p.on_sale and p.sale_price is not None:
            pct = p.display_percent()
            facts += [f"sale price: {money(p.sale_price, p.currency, brief.language)}",
                      f"saving: {money(p.price - p.sale_price, p.currency, brief.language)}",
                      f"discount: {percent(pct, brief.language) if pct else ''}"]
        facts.append(f"description: {redact_text(' '.join(p.description.split()))}")
        lines.append("\n".join(facts))
    return "\n\n".join(lines)


_CONDITIONS = {"always": "", "price_stated": " (if the ad states a price)",
               "discount_stated": " (if the ad states a discount or sale)"}


def rules_block(rules: BrandRules, language: str) -> str:
    """The brand rules as the model should read them, with the disclaimers ads in ``language`` may need."""
    disclaimers = [json.dumps(" ".join(d.text.split()), ensure_ascii=False) + _CONDITIONS[d.when]
                   for d in rules.required_disclaimers if d.covers(language)]
    parts = [("Spell brand names exactly", [json.dumps(v, ensure_ascii=False) for v in rules.brand_names]),
             ("Never name competitors", [json.dumps(v, ensure_ascii=False) for v in rules.competitors]),
             ("Never use", [json.dumps(v, ensure_ascii=False) for v in rules.do_not_say]),
             ("Required disclaimers, word for word", disclaimers)]
    lines = [f"- {label}: {'; '.join(values)}" for label, values in parts if values]
    if rules.forbidden_claims:
        lines.append(f"- Forbidden claims (regular expressions): {'; '.join(rules.forbidden_claims)}")
    return "\n".join(lines) or "- none"


def brand_notes(passages: Iterable[Any]) -> str:
    """Brand knowledge passages as bullet text (``none`` when there are none)."""
    texts = [" ".join(str(getattr(p, "text", p)).split()) for p in passages]
    return "\n".join(f"- {t}" for t in texts if t) or "none"


def request_text(brief: Brief) -> str:
    """The human turn: how many variants, the limits that apply, the tone."""
    limits = ", ".join(f"{name} {limit}" for name, limit in LIMITS[brief.platform].items())
    tone = f" Tone: {brief.tone}." if brief.tone else ""
    return (f"Write {brief.variants} clearly different {PLATFORM_NAMES[brief.platform]} ad variants in "
            f"{LANGUAGE_NAMES.get(brief.language, brief.language)} for {brief.products[0].name}. "
            f"Character limits: {limits}.{tone}")


def initial_messages(prompt: Prompt, brief: Brief, rules: BrandRules, passages: Sequence[Any]) -> list[BaseMessage]:
    """System prompt (the versioned copy prompt, filled in) and the request."""
    system = prompt.render(brand=brief.products[0].brand,
                           language=LANGUAGE_NAMES.get(brief.language, brief.language),
                           platform=PLATFORM_NAMES[brief.platform], product=product_block(brief),
                           brand_notes=brand_notes(passages), rules=rules_block(rules, brief.language))
    return [SystemMessage(content=system), HumanMessage(content=request_text(brief))]


def repair_messages(base: list[BaseMessage], failing: Sequence[tuple[Variant, list[Violation]]],
                    parse_error: str | None = None) -> list[BaseMessage]:
    """The conversation for a repair round: the failing variants with the validators' messages.

    Only the failing variants go back (the passing ones are kept as they are), each with every
    violation, so one round can fix them all; the model returns exactly as many variants.
    """
    blocks = []
    for number, (variant, violations) in enumerate(failing, start=1):
        listed = "\n".join(f"  - {v}" for v in violations)
        blocks.append(f"Variant {number}: {json.dumps(variant.model_dump(), ensure_ascii=False)}\n{listed}")
    problem = f"Your last answer could not be used: {parse_error}\n\n" if parse_error else ""
    text = (f"{problem}These variants break the rules; the checker says:\n\n" + "\n\n".join(blocks) +
            f"\n\nRewrite exactly {len(failing)} variant(s) so that every rule holds. Keep what was fine; change "
            "only what the checker names. Return them in the same order.") if failing else (
        f"{problem}Return the variants again in the requested structure.")
    return [*base, HumanMessage(content=text)]
