"""The offline copywriter: ad copy assembled from PIM attributes, no model involved.

The ad-customizer idea: fixed sentence frames in German and English, filled with the product's name,
brand, category, price or sale price and key phrases of its description. Every frame is fitted to the
platform's limit by dropping whole optional parts or words (never cutting a word), and every variant
goes through ``check_variant`` like model-written copy; a text that fails is swapped for the next
candidate. Each variant takes a different angle (product, offer, features, brand), so they are not
near-duplicates of each other; a product with few facts yields fewer variants than asked for, and
the result says so.

Tone: the frames are neutral (infinitive calls to action, no "du" or "Sie"), so ``tone`` does not
change template copy; only the model path can follow it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from agent.domain import display_width
from agent.errors import BadInput
from graphs.copywriter.guardrails import (
    LIMITS,
    RSA_DESCRIPTIONS,
    RSA_HEADLINES,
    GuardContext,
    Violation,
    check_variant,
    detect_language,
    near_duplicate_of,
    shared_tokens,
)
from graphs.copywriter.variants import MetaCopy, ProductFacts, RsaCopy, Variant

# Words a shortened text must not end on: "Regenjacke von" is cut off, not short.
_DANGLING = {"von", "für", "mit", "und", "oder", "der", "die", "das", "den", "dem", "des", "ein", "eine", "im",
             "in", "zu", "zum", "zur", "auf", "the", "a", "an", "for", "with", "and", "or", "of", "by", "to",
             "on", "at", "–", "-", ":", "|"}
_GENDER = {"damen", "herren", "kinder", "women's", "men's", "kids", "unisex"}

# German feature words of outdoor and apparel PIMs and their English ad wording. An English ad only uses
# description phrases it can word in English; the rest of a German description stays out of it.
GLOSSARY_DE_EN: dict[str, str] = {
    "leicht": "lightweight", "atmungsaktiv": "breathable", "robust": "durable", "packbar": "packable",
    "warm": "warm", "wasserabweisend": "water-repellent", "schnelltrocknend": "quick-drying",
    "winddicht": "windproof", "wasserdicht": "waterproof", "nachhaltig produziert": "sustainably made",
    "mit recyceltem material": "made with recycled material", "bequem": "comfortable", "strapazierfähig":
    "hard-wearing", "elastisch": "stretchy", "isoliert": "insulated", "wärmend": "warming", "kompakt": "compact",
    "vielseitig": "versatile", "pflegeleicht": "easy-care", "reflektierend": "reflective",
}


def money(amount: Decimal, currency: str, language: str) -> str:
    """A price as shoppers in ``language`` read it: "129,95 €" (de) or "€129.95" (en)."""
    symbol = {"EUR": "€", "USD": "$", "GBP": "£"}.get(currency)
    number = f"{amount:,.2f}"
    if language == "de":
        number = number.replace(",", "\u2009").replace(".", ",").replace("\u2009", ".")
        return f"{number} {symbol or currency}"
    return f"{symbol}{number}" if symbol else f"{number} {currency}"


def percent(value: int, language: str) -> str:
    """A percentage: "20 %" in German typography, "20%" in English."""
    return f"{value} %" if language == "de" else f"{value}%"


def _trim_words(text: str, limit: int) -> str | None:
    """``text`` shortened to whole words within ``limit``, not ending on a dangling word; None if impossible."""
    if display_width(text) <= limit:
        return text
    words = text.split()
    while words and (display_width(" ".join(words)) > limit or words[-1].casefold() in _DANGLING):
        words.pop()
    out = " ".join(words).rstrip(",;:–-|")
    # Less than half of the text left means the words that mattered were cut: better no text at all.
    return out if out and display_width(out) * 2 >= min(limit, display_width(text)) else None


def fit(options: Sequence[str | None], limit: int, *, trim: bool = True) -> str | None:
    """The first option within ``limit``; failing that, the last option shortened at a word boundary."""
    candidates = [" ".join(o.split()) for o in options if o and o.strip()]
    for option in candidates:
        if display_width(option) <= limit:
            return option
    return _trim_words(candidates[-1], limit) if candidates and trim else None


def name_forms(product: ProductFacts) -> list[str]:
    """The product's name from longest to shortest: full, without brand, without gender, model and noun."""
    words = product.name.split()
    brand_words = product.brand.split()
    without_brand = words[len(brand_words):] if words[:len(brand_words)] == brand_words else words
    no_gender = [w for w in without_brand if w.casefold() not in _GENDER]
    forms = [product.name, " ".join(without_brand), " ".join([*brand_words, *no_gender]), " ".join(no_gender)]
    if len(no_gender) > 2:
        forms.append(" ".join([no_gender[0], no_gender[-1]]))
    return list(dict.fromkeys(f for f in forms if f))


def key_phrases(product: ProductFacts, language: str) -> list[str]:
    """Short feature phrases from the first sentence of the description, worded in ``language``.

    Only the first sentence is used and only phrases of up to three words, so a long or hostile
    description (instructions hidden in a PIM text) never turns into ad copy.
    """
    first = re.split(r"(?<=[.!?])\s", product.description.strip(), maxsplit=1)[0].rstrip(".!?")
    if ":" in first:
        first = first.split(":", 1)[1]
    parts = [p.strip(" .") for p in re.split(r",|\bund\b|\band\b|;", first) if p.strip(" .")]
    phrases = [p for p in parts if 1 <= len(p.split()) <= 3 and len(p) <= 28]
    scores = detect_language(product.description)
    source = max(scores, key=lambda lang: scores[lang]) if any(scores.values()) else language
    if source == language:
        return phrases
    if source == "de" and language == "en":
        return [GLOSSARY_DE_EN[p.casefold()] for p in phrases if p.casefold() in GLOSSARY_DE_EN]
    return []


def _join(items: Sequence[str], language: str) -> str:
    conj = " und " if language == "de" else " and "
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + conj + items[-1]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


@dataclass
class _Facts:
    """Everything the frames may say about one product, pre-formatted for one language."""

    product: ProductFacts
    language: str
    names: list[str]
    phrases: list[str]
    price: str
    sale: str | None
    saving_pct: str | None
    disclaimer: str = ""
    """The disclaimers this angle's copy calls for, as one text (see ``_drafts``)."""

    @property
    def de(self) -> bool:
        return self.language == "de"

    def name(self, limit: int) -> str | None:
        return fit(self.names, limit)

    def current(self) -> str:
        return self.sale or self.price


def _facts(product: ProductFacts, ctx: GuardContext) -> _Facts:
    lang = ctx.language
    sale = money(product.sale_price, product.currency, lang) if product.on_sale and product.sale_price else None
    pct = product.display_percent()
    return _Facts(product=product, language=lang, names=name_forms(product), phrases=key_phrases(product, lang),
                  price=money(product.price, product.currency, lang), sale=sale,
                  saving_pct=percent(pct, lang) if pct else None)


# --- Google responsive search ads -------------------------------------------------------------------

H = LIMITS["google"]["headlines"]
D = LIMITS["google"]["descriptions"]


# Sentence frames per language. ``None`` marks a frame a language cannot fill (the PIM's German
# category names do not belong in English copy).
FRAMES: dict[str, dict[str, str | None]] = {
    "de": {
        "by": "{own_name} von {brand}", "order": "Jetzt online bestellen", "discover": "Jetzt entdecken",
        "brand_cat": "{brand} {category}", "cat_by": "{category} von {brand}", "cat_buy": "{category} online kaufen",
        "shop_brand": "{brand} online kaufen", "now_for": "Jetzt für {price}", "pct_now": "{pct} Rabatt: jetzt {sale}",
        "was_now": "Statt {price} nur {sale}", "was_now_long": "Statt {price} jetzt {sale}",
        "sale_tag": "{short} im Sale", "for_price": "{short} für {price}", "price_tag": "Preis: {price}",
        "buy": "{short} kaufen", "brand_short": "{brand}: {short}",
        "discover_long": "Entdecke {short} von {brand} im Onlineshop.",
        "sale_long": "{short} jetzt zum Sale-Preis bestellen.",
        "order_long": "{short} direkt im Onlineshop bestellen.",
        "more_brand": "Mehr von {brand} online.", "pct_tag": "{pct} Rabatt", "only": "Nur {price}",
    },
    "en": {
        "by": "{own_name} by {brand}", "order": "Order online now", "discover": "Discover it now",
        "brand_cat": None, "cat_by": None, "cat_buy": None,
        "shop_brand": "Shop {brand} online", "now_for": "Now {price}", "pct_now": "{pct} off: now {sale}",
        "was_now": "Now {sale}, was {price}", "was_now_long": "Now {sale}, was {price}",
        "sale_tag": "{short} on sale", "for_price": "{short} for {price}", "price_tag": "Price: {price}",
        "buy": "Buy the {short}", "brand_short": "{brand}: {short}",
        "discover_long": "Discover the {short} by {brand} online.",
        "sale_long": "Order the {short} at its sale price.",
        "order_long": "Order the {short} from our online shop.",
        "more_brand": "More from {brand} online.", "pct_tag": "{pct} off", "only": "Only {price}",
    },
}


TEMPLATE_LANGUAGES: tuple[str, ...] = tuple(FRAMES)
"""The languages the templates write."""


def _frame(f: _Facts, key: str, **extra: str) -> str | None:
    """Frame ``key`` filled with the product's facts; None when the language has no such frame."""
    text = FRAMES[f.language].get(key)
    if text is None:
        return None
    p = f.product
    # "Nordkamm Firn Fleecejacke von Nordkamm" says the brand twice: "by" frames take the name without it.
    own_name = f.names[1] if len(f.names) > 1 and p.name.startswith(p.brand) else p.name
    values = {"name": p.name, "own_name": own_name, "brand": p.brand, "category": p.category,
              "short": f.names[-1], "price": f.price, "sale": f.sale or f.price, "pct": f.saving_pct or "", **extra}
    return text.format(**values)


def _shortest(f: _Facts, key: str, limit: int, **extra: str) -> str | None:
    """Frame ``key`` with the longest form of the product name that fits ``limit`` (down to its last word)."""
    forms = [*(f.names[1:] or f.names), f.names[-1].split()[-1]]
    return fit([_frame(f, key, short=form, **extra) for form in dict.fromkeys(forms)], limit, trim=False)


def _features(f: _Facts, count: int = 3) -> str | None:
    return _cap(_join(f.phrases[:count], f.language)) if f.phrases[:count] else None


def _disclaimer_description(f: _Facts, lead: Sequence[str | None]) -> str | None:
    """A description that carries the angle's disclaimers, led by the first of ``lead`` that fits."""
    if not f.disclaimer:
        return fit(lead, D)
    return fit([*(f"{x} {f.disclaimer}" for x in lead if x), f.disclaimer], D, trim=False)


def _rsa_angles(f: _Facts) -> list[tuple[list[str | None], list[str | None]]]:
    """Headline and description candidates of each angle; angles share as few words as possible."""
    sale = f.sale is not None
    product = (
        [f.name(H), fit([_frame(f, "brand_cat"), _frame(f, "shop_brand")], H), _frame(f, "order")],
        [fit([f"{_frame(f, 'by')}: {_join(f.phrases[:3], f.language)}." if f.phrases else None,
              f"{_frame(f, 'by')}."], D),
         _disclaimer_description(f, [f"{_frame(f, 'now_for', price=f.current())}."])],
    )
    offer = (
        [fit([_frame(f, "pct_now"), _frame(f, "was_now")], H, trim=False) if sale else
         _shortest(f, "for_price", H),
         fit([_frame(f, "was_now")] if sale else [_frame(f, "price_tag")], H, trim=False),
         _shortest(f, "sale_tag" if sale else "buy", H)],
        [fit([f"{_frame(f, 'was_now_long')}: {_frame(f, 'sale_long')}" if sale else _frame(f, "order_long"),
              _frame(f, "sale_long") if sale else _frame(f, "order_long")], D),
         _disclaimer_description(f, [])],
    )
    features = (
        [*(fit([_cap(x)], H, trim=False) for x in f.phrases[:3]), fit([_frame(f, "cat_by")], H)],
        [fit([f"{_features(f, n)}: {f.names[-1]}." for n in (3, 2, 1) if f.phrases], D),
         _disclaimer_description(f, [_frame(f, "only", price=f.current()) + "."])],
    )
    brand = (
        [_shortest(f, "brand_short", H), fit([_frame(f, "cat_buy")], H), _frame(f, "discover")],
        [fit([_frame(f, "discover_long")], D), _disclaimer_description(f, [_frame(f, "more_brand")])],
    )
    return [product, offer, features, brand]


def _paths(f: _Facts) -> tuple[str | None, str | None]:
    limit = LIMITS["google"]["path1"]
    path1 = re.sub(r"\s+", "-", f.product.category) if f.de else None
    path2 = re.sub(r"\s+", "-", f.product.brand)
    if path1 is not None and display_width(path1) > limit:
        path1 = None
    if display_width(path2) > limit or path1 is None:
        path2 = None
    return path1, path2


def _rsa(f: _Facts, heads: list[str | None], descs: list[str | None]) -> RsaCopy | None:
    headlines = list(dict.fromkeys(h for h in heads if h))[:RSA_HEADLINES[1]]
    descriptions = list(dict.fromkeys(d for d in descs if d))[:RSA_DESCRIPTIONS[1]]
    if len(headlines) < RSA_HEADLINES[0] or len(descriptions) < RSA_DESCRIPTIONS[0]:
        return None
    path1, path2 = _paths(f)
    return RsaCopy(headlines=headlines, descriptions=descriptions, path1=path1, path2=path2)


# --- Meta link ads -----------------------------------------------------------------------------------

P = LIMITS["meta"]["primary_text"]
MH = LIMITS["meta"]["headline"]
MD = LIMITS["meta"]["description"]


def _primary(f: _Facts, leads: Sequence[str | None]) -> str | None:
    tail = f" {f.disclaimer}" if f.disclaimer else ""
    return fit([f"{lead}{tail}" for lead in leads if lead], P, trim=False)


def _meta_angles(f: _Facts) -> list[tuple[str | None, str | None, str | None]]:
    """Primary text, headline and description of each angle."""
    sale = f.sale is not None
    offer = _frame(f, "was_now_long") + "." if sale else _frame(f, "now_for", price=f.price) + "."
    return [
        (_primary(f, [f"{_frame(f, 'by')}: {_join(f.phrases[:3], f.language)}." if f.phrases else None,
                      f"{_frame(f, 'by')}."]),
         f.name(MH), fit([_frame(f, "now_for", price=f.current())], MD)),
        (_primary(f, [f"{offer} {_frame(f, 'sale_long') if sale else _frame(f, 'order_long')}", offer]),
         fit([_frame(f, "brand_cat"), _frame(f, "shop_brand")], MH),
         fit([_frame(f, "pct_tag")] if sale else [_frame(f, "price_tag")], MD)),
        (_primary(f, [f"{_features(f, n)}: {f.names[-1]}." for n in (3, 2, 1) if f.phrases]),
         fit([_frame(f, "cat_by")], MH) or _shortest(f, "brand_short", MH), fit([_frame(f, "discover")], MD)),
        (_primary(f, [f"{_frame(f, 'discover_long')} {_frame(f, 'more_brand')}", _frame(f, "discover_long"),
                      _shortest(f, "discover_long", P)]),
         _shortest(f, "brand_short", MH), fit([_frame(f, "only", price=f.current())], MD)),
    ]


def _meta(texts: tuple[str | None, str | None, str | None]) -> MetaCopy | None:
    primary, headline, description = texts
    if not (primary and headline and description):
        return None
    return MetaCopy(primary_text=primary, headline=headline, description=description)


# --- assembling variants ----------------------------------------------------------------------------


def _angles(f: _Facts, platform: str) -> list[Any]:
    return _rsa_angles(f) if platform == "google" else _meta_angles(f)


def _angle_text(angle: Sequence[Any]) -> str:
    """Everything an angle's copy says, as one text (RSA angles hold lists of texts, Meta angles texts)."""
    texts = [t for part in angle for t in (part if isinstance(part, list) else [part])]
    return " ".join(t for t in texts if t)


def _drafts(f: _Facts, ctx: GuardContext) -> list[Variant | None]:
    """One draft per angle, each carrying the disclaimers its own copy calls for (a price, a discount).

    An angle is written without disclaimers first to see what it states, then again with the ones that
    calls for, until the copy calls for no further one. Making room for a disclaimer can drop the text
    that called for it, so a draft may carry a disclaimer its final copy no longer needs (harmless).
    """
    written: dict[str, list[Any]] = {}

    def angles(disclaimer: str) -> list[Any]:
        if disclaimer not in written:
            written[disclaimer] = _angles(replace(f, disclaimer=disclaimer), ctx.platform)
        return written[disclaimer]

    drafts: list[Variant | None] = []
    for i in range(len(angles(""))):
        carried: list[str] = []
        while True:
            angle = angles(" ".join(carried))[i]
            missing = [d for d in ctx.rules.disclaimers_for(ctx.language, _angle_text(angle)) if d not in carried]
            if not missing:
                break
            carried += missing
        drafts.append(_rsa(f, *angle) if ctx.platform == "google" else _meta(angle))
    return drafts


@dataclass
class TemplateResult:
    """Template variants for one brief and why fewer than requested came out, if so."""

    variants: list[Variant] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _repair(variant: Variant, violations: list[Violation]) -> Variant | None:
    """Drop the RSA texts a guardrail flagged, if the ad still has enough texts without them."""
    if not isinstance(variant, RsaCopy) or any(v.field == "ad" or v.field.startswith("path") for v in violations):
        return None
    bad = {v.field for v in violations}
    heads = [h for i, h in enumerate(variant.headlines) if f"headlines[{i}]" not in bad]
    descs = [d for i, d in enumerate(variant.descriptions) if f"descriptions[{i}]" not in bad]
    if len(heads) < RSA_HEADLINES[0] or len(descs) < RSA_DESCRIPTIONS[0]:
        return None
    return variant.model_copy(update={"headlines": heads, "descriptions": descs})


def template_variants(ctx: GuardContext, count: int,
                      check: Callable[[Variant, GuardContext], list[Violation]] = check_variant) -> TemplateResult:
    """Up to ``count`` distinct variants for the first product of ``ctx`` that pass every guardrail.

    ``ctx.language`` must be one of ``TEMPLATE_LANGUAGES`` (the graph refuses other languages up front).
    """
    if ctx.language not in FRAMES:
        raise BadInput(f"the templates write {' and '.join(FRAMES)}, not {ctx.language!r}")
    drafts = _drafts(_facts(ctx.products[0], ctx), ctx)
    result = TemplateResult()
    shared = shared_tokens(ctx)
    for number, draft in enumerate(drafts, start=1):
        if len(result.variants) >= count:
            break
        variant: Variant | None = draft
        violations: list[Violation] = []
        for _ in range(2):
            if variant is None:
                break
            violations = check(variant, ctx)
            if not violations:
                break
            variant = _repair(variant, violations)
        if draft is None:
            result.skipped.append(f"angle {number}: the product data does not fill this frame")
        elif variant is None or violations:
            result.skipped.append(f"angle {number}: {'; '.join(str(v) for v in violations) or 'too few texts'}")
        elif (dup := near_duplicate_of(variant, result.variants, shared)) is not None:
            result.skipped.append(f"angle {number}: near-duplicate of variant {dup[0] + 1} ({dup[1]:.0%} same words)")
        else:
            result.variants.append(variant)
    if len(result.variants) < count:
        result.skipped.append(f"the templates give {len(result.variants)} distinct variant(s) for "
                              f"{ctx.products[0].sku}, {count} requested")
    return result
