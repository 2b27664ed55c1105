"""Copy guardrails: every rule an ad variant must pass before it may become a ``create_ad`` action.

The rules are guardrails-ai custom validators (``@register_validator``), run by one ``Guard`` per
thread over the whole variant. ``check_variant`` is the only entry point; the bulk-model path and the
template path both call it, so a template can never ship copy a model would not be allowed to.

Rule families (``Violation.code``):

* platform limits: ``too_long`` (width as the platforms count it: CJK two, umlauts/accents/ß one),
  ``ad_structure`` (headline / description counts, empty or duplicate texts, path2 without path1);
* brand rules from the policy: ``do_not_say``, ``forbidden_claim`` (regexes), ``competitor``,
  ``brand_spelling``, ``missing_disclaimer``;
* facts: ``wrong_price`` and ``wrong_percentage`` (every amount and percentage must be the PIM's price,
  sale price, saving or true discount), ``personal_data``;
* ``wrong_language`` (a light offline stop-word heuristic, see ``detect_language``);
* editorial pre-flight (Google's rules, applied to Meta too): ``gimmicky_caps``, ``repeated_punctuation``,
  ``exclamation``, ``emoji_or_symbol``, ``spaced_letters``, ``phone_number``, ``click_here``,
  ``superlative``.

guardrails-ai's hub telemetry is switched off on every Guard (``allow_metrics_collection=False``) and
its OpenTelemetry tracing is disabled, so neither copy nor PIM data leaves the process.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable
from decimal import Decimal
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agent.amounts import find_amounts, find_percents
from agent.domain import display_width
from agent.errors import ConfigError
from agent.privacy import contains_personal_data
from graphs.copywriter.variants import MetaCopy, PlatformName, ProductFacts, RsaCopy, Variant
from policies.model import Disclaimer, disclaimer_texts, disclaimers_for

# guardrails' default validator service runs each call on an asyncio loop it creates, and refuses to
# inside a running loop (it then warns and falls back). Our validators are pure CPU functions, so the
# sequential service is the correct one, and measured twice as fast (3 ms vs 6 ms per call).
os.environ.setdefault("GUARDRAILS_RUN_SYNC", "true")

from guardrails import Guard, OnFailAction
from guardrails import settings as guardrails_settings  # must follow the environment default above
from guardrails.classes.validation.validation_result import FailResult, PassResult
from guardrails.validator_base import register_validator

# ---------------------------------------------------------------------------------------------------
# Inputs and outputs


class Violation(BaseModel):
    """One broken rule: which rule, where, and a message the model (or a person) can act on."""

    model_config = ConfigDict(frozen=True)

    code: str = Field(description="Rule id, e.g. too_long, forbidden_claim, wrong_price.")
    field: str = Field(description='Where: "headlines[2]", "primary_text", or "ad" for the whole variant.')
    message: str = Field(description="What is wrong, in one line.")

    def __str__(self) -> str:
        return f"{self.field}: {self.message} [{self.code}]"


class BrandRules(BaseModel):
    """The brand rules the copy guardrails enforce (same fields as ``PolicyEngine.brand_rules``)."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    do_not_say: list[str] = Field(default_factory=list, description="Words and phrases never to use.")
    forbidden_claims: list[str] = Field(default_factory=list, description="Regexes of claims never to make.")
    required_disclaimers: list[Disclaimer] = Field(
        default_factory=list, description="Texts an ad must contain, by language and by what it states.")
    competitors: list[str] = Field(default_factory=list, description="Competitor names never to mention.")
    brand_names: list[str] = Field(default_factory=list, description="Correct spellings of the brand names.")

    def disclaimers_for(self, language: str, text: str) -> list[str]:
        """The disclaimers an ad in ``language`` whose copy is ``text`` must carry."""
        return disclaimers_for(self.required_disclaimers, language, text)

    def disclaimer_texts(self, language: str) -> list[str]:
        """Every disclaimer ads in ``language`` may have to carry: mandated text, not the writer's words."""
        return disclaimer_texts(self.required_disclaimers, language)


LIMITS: dict[PlatformName, dict[str, int]] = {
    # PLATFORM-FACTS.md: RSA headlines 30, descriptions 90, paths 15; Meta primary 125, headline 40,
    # description 30 (Meta calls these recommendations; we enforce them so nothing is truncated).
    "google": {"headlines": 30, "descriptions": 90, "path1": 15, "path2": 15},
    "meta": {"primary_text": 125, "headline": 40, "description": 30},
}
RSA_HEADLINES = (3, 15)
RSA_DESCRIPTIONS = (2, 4)


class GuardContext(BaseModel):
    """What a variant is checked against: the PIM products it advertises, the brand rules, the target."""

    model_config = ConfigDict(frozen=True)

    products: list[ProductFacts] = Field(min_length=1, description="The products the ad advertises.")
    rules: BrandRules = Field(default_factory=BrandRules)
    platform: PlatformName
    language: str = Field(default="de", description="ISO 639-1 code of the language the copy must be in.")

    @classmethod
    def build(cls, products: Iterable[ProductFacts], rules: Any, platform: PlatformName,
              language: str) -> GuardContext:
        """A context from any object with the ``BrandRules`` fields (e.g. the policy engine's)."""
        brand = rules if isinstance(rules, BrandRules) else BrandRules.model_validate(rules or {})
        return cls(products=list(products), rules=brand, platform=platform, language=language.lower())

    def brand_names(self) -> list[str]:
        """The policy's brand spellings plus every product's PIM brand."""
        names = list(self.rules.brand_names) + [p.brand for p in self.products]
        return list(dict.fromkeys(n for n in names if n.strip()))

    def pim_text(self) -> str:
        """All PIM text of the products: words found here are facts, not misspellings or gimmicks."""
        return " ".join(f"{p.name} {p.brand} {p.category} {p.description}" for p in self.products)


# ---------------------------------------------------------------------------------------------------
# Tokenising (amounts and percentages: ``agent.amounts``)

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")


def _words(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFC", text))


# ---------------------------------------------------------------------------------------------------
# Language heuristic

def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STOPWORDS: dict[str, frozenset[str]] = {
    "de": _wordset("""der die das den dem des ein eine einen einem einer eines und oder aber mit für von zu zum
        zur im in auf aus bei nach über unter vor ist sind wird werden war hat haben nicht kein keine auch nur
        noch schon jetzt hier dein deine deinen dich dir du ihr ihre sie wir unser unsere unseren euch sich
        mehr sehr so wie was wenn dass als bis ab statt jede jeden jeder alle allen entdecke entdecken kaufen
        bestellen sparen neu neue neuen günstig versandkostenfrei heute online damit perfekt ideal"""),
    "en": _wordset("""the a an and or but with for from to of in on at by is are be been was were has have had
        not no also only just now here your you yours our we us they their it its this that these those more
        very so as if when than into up out all every new get shop buy order save discover today free perfect
        ideal made great"""),
    "fr": _wordset("""le la les un une des et ou mais avec pour de du au aux en dans sur par est sont être
        pas ne plus très votre vos nous notre nos vous ce cette ces qui que tout tous maintenant ici achetez
        découvrez nouveau nouvelle livraison gratuite"""),
    "es": _wordset("""el la los las un una unos unas y o pero con para por de del al en sobre es son ser no
        más muy tu tus su sus nuestro nuestra nosotros este esta estos que todo todos ahora aquí compra
        descubre nuevo nueva envío gratis"""),
    "it": _wordset("""il lo la i gli le un una uno e o ma con per da di del della in su è sono essere non più
        molto tuo tua tuoi suo sua nostro nostra questo questa che tutto tutti ora qui acquista scopri nuovo
        nuova spedizione gratuita"""),
    "nl": _wordset("""de het een en of maar met voor van naar in op bij is zijn wordt niet geen ook alleen nu
        hier je jouw jij uw ons onze wij dit dat deze die meer zeer zo als koop ontdek nieuw nieuwe gratis
        verzending"""),
}


def detect_language(text: str) -> dict[str, int]:
    """Stop-word hits per language (de, en, fr, es, it, nl) in ``text``.

    Limits, by design of a dependency-free offline check: it needs a few function words, so a single
    headline ("Trail Runner X2") is inconclusive and passes; product and brand names are never
    evidence; closely related languages share words ("in", "die"); languages outside the list are not
    checked at all. It catches the failure that matters in bulk copy: a whole variant written in the
    wrong language.
    """
    tokens = [w.casefold() for w in _words(text)]
    return {lang: sum(1 for t in tokens if t in words) for lang, words in _STOPWORDS.items()}


# ---------------------------------------------------------------------------------------------------
# Small helpers used by the rules


def _limit_for(platform: PlatformName, field: str) -> int | None:
    return LIMITS[platform].get(field.split("[", 1)[0])


@lru_cache(maxsize=256)
def _compile_claims(patterns: tuple[str, ...]) -> list[tuple[str, re.Pattern[str]]]:
    compiled = []
    for pattern in patterns:
        try:
            compiled.append((pattern, re.compile(pattern, re.IGNORECASE)))
        except re.error as exc:
            raise ConfigError(f"brand rule forbidden_claims: invalid regex {pattern!r}: {exc}") from exc
    return compiled


def plain(text: str) -> str:
    """Text as a reader sees it: compatibility-folded (full-width letters) and without invisible format
    characters, so "garan\u200btiert" cannot slip past a check (the policy gate folds the same way)."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text) if unicodedata.category(ch) != "Cf")


@lru_cache(maxsize=4096)
def _squash(text: str) -> str:
    # Case, spaces and hyphens do not change what a phrase says: "100 % Wasser-dicht" is "100% wasserdicht".
    return re.sub(r"[\s\-‐‑–]+", "", plain(text)).casefold()


@lru_cache(maxsize=65536)
def _damerau(a: str, b: str) -> int:
    """Optimal-string-alignment edit distance (a swapped pair of letters counts one)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def _allowed_spelling_tolerance(name: str) -> int:
    letters = len(name.replace(" ", ""))
    return 0 if letters < 5 else 1 if letters < 9 else 2


def _fmt(value: Decimal) -> str:
    return f"{value:.2f}"


# ---------------------------------------------------------------------------------------------------
# The rules. Each returns (field, message) pairs; a validator wraps each one for guardrails.

Finding = tuple[str, str]
Fields = list[tuple[str, str]]
Rule = Callable[[Fields, GuardContext], list[Finding]]


def rule_too_long(fields: Fields, ctx: GuardContext) -> list[Finding]:
    """Platform length limits, counting width as the platforms do."""
    out = []
    for field, text in fields:
        limit = _limit_for(ctx.platform, field)
        width = display_width(text.strip())
        if limit is not None and width > limit:
            wide = " (double-width characters count two)" if width != len(text.strip()) else ""
            out.append((field, f"{width} characters{wide}, the limit is {limit}: {text.strip()!r}"))
    return out


def rule_ad_structure(fields: Fields, ctx: GuardContext) -> list[Finding]:
    """Counts, empty and duplicate texts."""
    out = [(field, "is empty") for field, text in fields if not text.strip()]
    if ctx.platform == "google":
        headlines = [t for f, t in fields if f.startswith("headlines[")]
        descriptions = [t for f, t in fields if f.startswith("descriptions[")]
        for what, texts, (low, high) in (("headlines", headlines, RSA_HEADLINES),
                                         ("descriptions", descriptions, RSA_DESCRIPTIONS)):
            if not low <= len(texts) <= high:
                out.append(("ad", f"a responsive search ad needs {low} to {high} {what}, got {len(texts)}"))
            seen: set[str] = set()
            for i, text in enumerate(texts):
                key = " ".join(text.casefold().split())
                if key and key in seen:
                    out.append((f"{what}[{i}]", f"repeats another {what[:-1]}: {text!r}"))
                seen.add(key)
        names = {f for f, _ in fields}
        if "path2" in names and "path1" not in names:
            out.append(("path2", "path2 requires path1"))
    return out


def rule_do_not_say(fields: Fields, ctx: GuardContext) -> list[Finding]:
    """Terms the brand never uses: anywhere in the text, ignoring case, spaces and hyphens (so inflections
    and compounds count too, and everything the policy gate would refuse is caught here first)."""
    out = []
    for field, text in fields:
        squashed = _squash(text)
        for term in ctx.rules.do_not_say:
            if _squash(term) and _squash(term) in squashed:
                out.append((field, f"uses {term!r}, which the brand rules forbid"))
    return out


def rule_forbidden_claim(fields: Fields, ctx: GuardContext) -> list[Finding]:
    """Claims the brand must not make (the policy's regexes, case-insensitive)."""
    out = []
    for field, text in fields:
        for pattern, regex in _compile_claims(tuple(ctx.rules.forbidden_claims)):
            if m := regex.search(plain(text)):
                out.append((field, f"makes the forbidden claim {m.group(0)!r} (rule {pattern!r})"))
    return out


def rule_competitor(fields: Fields, ctx: GuardContext) -> list[Finding]:
    """Competitors are never named, however they are spaced or hyphenated ("Alpin-Fux")."""
    out = []
    for field, text in fields:
        squashed = _squash(text)
        for name in ctx.rules.competitors:
            if _squash(name) and _squash(name) in squashed:
                out.append((field, f"names the competitor {name!r}"))
    return out


@lru_cache(maxsize=64)
def _pim_words(pim_text: str) -> frozenset[str]:
    return frozenset(w.casefold() for w in _words(pim_text))


def rule_brand_spelling(fields: Fields, ctx: GuardContext) -> list[Finding]:
    """Brand names exactly as the brand writes them: no case changes, split or merged words, or typos."""
    pim_words = _pim_words(ctx.pim_text())
    out = []
    for field, text in fields:
        tokens = [(m.group(0), m.start(), m.end()) for m in _WORD.finditer(unicodedata.normalize("NFC", text))]
        for brand in ctx.brand_names():
            target = brand.replace(" ", "").replace("-", "").casefold()
            size = len(brand.split())
            tolerance = _allowed_spelling_tolerance(brand)
            for width in dict.fromkeys((size, max(1, size - 1), size + 1)):
                hit = next((written for written, joined in _windows(text, tokens, width)
                            if written != brand and _looks_like(written, joined, target, width == size, tolerance,
                                                                pim_words)), None)
                if hit is not None:
                    out.append((field, f"writes the brand as {hit!r}; the spelling is {brand!r}"))
                    break
    return out


def _windows(text: str, tokens: list[tuple[str, int, int]], width: int) -> Iterable[tuple[str, str]]:
    """(as written, letters joined and case-folded) for every run of ``width`` words."""
    for i in range(len(tokens) - width + 1):
        window = tokens[i:i + width]
        yield text[window[0][1]:window[-1][2]], "".join(t for t, _, _ in window).casefold()


def _looks_like(written: str, joined: str, target: str, same_width: bool, tolerance: int,
                pim_words: frozenset[str]) -> bool:
    if joined == target:
        return True  # other case, split ("Nord Kamm") or merged words
    if not same_width or not tolerance or abs(len(joined) - len(target)) > tolerance:
        return False
    if joined in (target + "s", target + "'s", target + "’s"):
        return False  # the genitive of the brand ("Nordkamms neue Jacke") is no misspelling
    # A typo is only suspected in a capitalised word the PIM does not use itself: lower-case "alpine"
    # is an English word, not a misspelt "Alpina".
    return written[:1].isupper() and joined not in pim_words and _damerau(joined, target) <= tolerance


def rule_missing_disclaimer(fields: Fields, ctx: GuardContext) -> list[Finding]:
    """Every disclaimer the policy requires for the ad's language and what it states (a price, a discount)
    appears somewhere in the ad."""
    whole = " ".join(" ".join(t.split()) for _, t in fields)
    return [("ad", f"lacks the required disclaimer {d!r}") for d in ctx.rules.disclaimers_for(ctx.language, whole)
            if d.casefold() not in whole.casefold()]


def rule_wrong_price(fields: Fields, ctx: GuardContext) -> list[Finding]:
    """Every amount must be a PIM price, sale price or saving, in the product's currency."""
    allowed: dict[Decimal, str] = {}
    currencies = {p.currency for p in ctx.products}
    for p in ctx.products:
        allowed.setdefault(p.price, "price")
        if p.on_sale and p.sale_price is not None:
            allowed.setdefault(p.sale_price, "sale price")
            allowed.setdefault(p.price - p.sale_price, "saving")
    shown = ", ".join(f"{_fmt(a)} ({what})" for a, what in allowed.items())
    out = []
    for field, text in fields:
        for matched, value, currency in find_amounts(text, ctx.language):
            if currency is not None and currency not in currencies:
                out.append((field, f"states {matched!r} in {currency}, but the product is sold in "
                                   f"{'/'.join(sorted(currencies))}"))
            elif value not in allowed:
                out.append((field, f"states the amount {matched!r}, but the PIM says {shown} "
                                   f"in {'/'.join(sorted(currencies))}"))
    return out


def rule_wrong_percentage(fields: Fields, ctx: GuardContext) -> list[Finding]:
    """Every percentage must be the true discount (rounded) or a figure the PIM text itself states."""
    discounts: set[Decimal] = set()
    stated: set[Decimal] = set()
    for p in ctx.products:
        discounts |= {Decimal(x) for x in p.discount_percents()}
        stated |= {v for _, v in find_percents(p.description, ctx.language)}
    truth = (f"the true discount is {' or '.join(f'{x} %' for x in sorted(discounts))}" if discounts
             else "the product is not discounted")
    out = []
    for field, text in fields:
        for matched, value in find_percents(text, ctx.language):
            if value not in discounts | stated:
                out.append((field, f"states {matched!r}, but {truth}"))
    return out


def rule_personal_data(fields: Fields, ctx: GuardContext) -> list[Finding]:
    """No email addresses, IBANs or credentials in an ad (phone numbers: see ``rule_phone_number``)."""
    out = []
    for field, text in fields:
        kinds = [k for k in contains_personal_data(text) if k != "phone"]
        if kinds:
            out.append((field, f"contains personal data ({', '.join(kinds)})"))
    return out


def rule_phone_number(fields: Fields, ctx: GuardContext) -> list[Finding]:
    """Google's editorial rules forbid phone numbers in ad text (call assets exist for that)."""
    return [(field, "contains a phone number") for field, text in fields if "phone" in contains_personal_data(text)]


def _reads_as_other(text: str, ctx: GuardContext, min_hits: int) -> tuple[str, int, int] | None:
    # The policy mandates the disclaimers of this language word for word: they are no evidence. (Those of
    # other languages are: a German disclaimer in an English ad is German text.)
    text = " ".join(text.split())
    for disclaimer in ctx.rules.disclaimer_texts(ctx.language):
        text = re.sub(re.escape(disclaimer), " ", text, flags=re.IGNORECASE)
    scores = detect_language(text)
    wanted = scores[ctx.language]
    other, hits = max(((lang, n) for lang, n in scores.items() if lang != ctx.language), key=lambda x: x[1])
    return (other, hits, wanted) if hits >= min_hits and hits > wanted else None


def rule_wrong_language(fields: Fields, ctx: GuardContext) -> list[Finding]:
    """The variant, and each longer text in it, reads as the requested language (heuristic; see
    ``detect_language``: inconclusive text passes)."""
    if ctx.language not in _STOPWORDS:
        return []
    out = []
    for field, text in fields:
        # A sentence of six words or more carries enough function words to judge on its own.
        if len(_words(text)) >= 6 and (found := _reads_as_other(text, ctx, 3)):
            out.append((field, f"reads as {found[0]} ({found[1]} {found[0]} function words vs {found[2]} "
                               f"{ctx.language}); write it in {ctx.language}"))
    if not out and (found := _reads_as_other(" ".join(t for _, t in fields), ctx, 2)):
        out.append(("ad", f"reads as {found[0]} ({found[1]} {found[0]} function words vs {found[2]} "
                          f"{ctx.language}); write it in {ctx.language}"))
    return out


def rule_gimmicky_caps(fields: Fields, ctx: GuardContext) -> list[Finding]:
    """No words in capitals or alternating case, unless the brand or the PIM writes them so (codes are fine)."""
    known = set(_words(ctx.pim_text())) | {w for n in ctx.brand_names() for w in _words(n)}
    out = []
    for field, text in fields:
        for word in _words(text):
            if word in known:
                continue
            letters = [c for c in word if c.isalpha()]
            upper_run = len(letters) >= 4 and all(c.isupper() for c in letters)
            flips = sum(1 for a, b in itertools.pairwise(word) if a.islower() and b.isupper())
            if upper_run or flips >= 2:
                out.append((field, f"gimmicky capitalisation {word!r}"))
                break
    return out


_REPEATED = re.compile(r"[!?]{2,}|([,;:])\1+|\.{4,}")


def rule_repeated_punctuation(fields: Fields, ctx: GuardContext) -> list[Finding]:
    """No "!!", "?!", ",," or "....": Google disapproves repeated punctuation."""
    return [(field, f"repeated punctuation {m.group(0)!r}") for field, text in fields
            if (m := _REPEATED.search(text))]


def rule_exclamation(fields: Fields, ctx: GuardContext) -> list[Finding]:
    """House rule from the older Google policy: no "!" in a headline, at most one per ad."""
    out = []
    if ctx.platform == "google":
        out += [(field, "no exclamation mark in a headline") for field, text in fields
                if field.startswith("headlines[") and "!" in text]
    if sum(text.count("!") for _, text in fields) > 1:
        out.append(("ad", "at most one exclamation mark per ad"))
    return out


_ALLOWED_SYMBOLS = set("®™©°")
_LETTER = r"[^\W\d_]"
_LETTER_SUBSTITUTE = re.compile(rf"{_LETTER}[@$€0|]{_LETTER}")
# Maths symbols that are ordinary in copy; arrows and the like are decoration.
_PLAIN_MATH = set("+=<>±×÷−|~")
_EMAIL = re.compile(r"\S+@\S+\.\w+")


def rule_emoji_or_symbol(fields: Fields, ctx: GuardContext) -> list[Finding]:
    """No emoji, decorative bullets or asterisks, no invisible characters, no symbols for letters ("fl@wers")."""
    out = []
    for field, text in fields:
        bad = [ch for ch in text if ch not in _ALLOWED_SYMBOLS and (
            unicodedata.category(ch) in ("So", "Cs", "Co", "Cf") or ch in "*•◦▪►✔\ufe0f"
            or (unicodedata.category(ch) == "Sm" and ch not in _PLAIN_MATH))]
        if bad:
            shown = "".join(dict.fromkeys(bad)).encode("unicode_escape").decode("ascii")
            out.append((field, f"contains emoji, decorative or invisible characters ({shown})"))
        elif m := _LETTER_SUBSTITUTE.search(_EMAIL.sub(" ", text)):
            out.append((field, f"a symbol or digit stands in for a letter: {m.group(0)!r}"))
    return out


_SPACED = re.compile(rf"(?<!\w)(?:{_LETTER}[ .]){{3,}}{_LETTER}(?!\w)")


def rule_spaced_letters(fields: Fields, ctx: GuardContext) -> list[Finding]:
    """No "f l o w e r s": letters spaced out to draw attention."""
    return [(field, f"spaced-out letters {m.group(0)!r}") for field, text in fields if (m := _SPACED.search(text))]


_CLICK_HERE = re.compile(
    r"\bclick\s+here\b|\bklick(?:e|en)?(?:\s+sie)?\s+hier\b|\bhier\s+(?:klicken|klick)\b|\bcliquez\s+ici\b"
    r"|\bhaga\s+clic\s+aqu[ií]\b|\bclicca\s+qui\b|\bklik\s+hier\b", re.IGNORECASE)


def rule_click_here(fields: Fields, ctx: GuardContext) -> list[Finding]:
    """No "click here" (or its translations): Google rejects it as overly generic."""
    return [(field, f"generic call to action {m.group(0)!r}") for field, text in fields
            if (m := _CLICK_HERE.search(text))]


_SUPERLATIVE = re.compile(
    r"(?<!\w)(?:aller|welt)?best(?:e|er|en|es|em)?(?!\w)|#\s?1\b|\b(?:nr|no)\.?\s?1\b|\bnumber\s+(?:one|1)\b"
    r"|\bnummer\s+(?:eins|1)\b|\b(?:günstigst|billigst|größt|stärkst|leichtest)(?:e|er|en|es|em)?\b"
    r"|\b(?:cheapest|greatest|finest|lowest\s+price|unbeatable|unschlagbar\w*|world'?s\s+(?:best|leading))\b",
    re.IGNORECASE)


def rule_superlative(fields: Fields, ctx: GuardContext) -> list[Finding]:
    """No unproven superlatives ("best", "#1", "günstigste"): Google requires third-party proof."""
    return [(field, f"unproven superlative {m.group(0)!r}") for field, text in fields
            if (m := _SUPERLATIVE.search(text))]


RULES: dict[str, Rule] = {
    "too_long": rule_too_long,
    "ad_structure": rule_ad_structure,
    "do_not_say": rule_do_not_say,
    "forbidden_claim": rule_forbidden_claim,
    "competitor": rule_competitor,
    "brand_spelling": rule_brand_spelling,
    "missing_disclaimer": rule_missing_disclaimer,
    "wrong_price": rule_wrong_price,
    "wrong_percentage": rule_wrong_percentage,
    "personal_data": rule_personal_data,
    "phone_number": rule_phone_number,
    "wrong_language": rule_wrong_language,
    "gimmicky_caps": rule_gimmicky_caps,
    "repeated_punctuation": rule_repeated_punctuation,
    "exclamation": rule_exclamation,
    "emoji_or_symbol": rule_emoji_or_symbol,
    "spaced_letters": rule_spaced_letters,
    "click_here": rule_click_here,
    "superlative": rule_superlative,
}
"""Every rule by its violation code, in the order violations are reported."""

# ---------------------------------------------------------------------------------------------------
# guardrails-ai wiring

_VALIDATOR_PREFIX = "adpilot/copy_"


def _make_validator(code: str, rule: Rule) -> type:
    def validate(value: Any, metadata: dict[str, Any]) -> PassResult | FailResult:
        # The guarded value is the variant's fields as JSON, so guardrails logs show exactly what was checked.
        findings = rule(json.loads(value), metadata["ctx"])
        if not findings:
            return PassResult()
        # One line per finding, "field<TAB>message": readable in guardrails' own logs and parsed back below.
        return FailResult(error_message="\n".join(f"{field}\t{message}" for field, message in findings))

    validate.__name__ = f"copy_{code}"
    validate.__doc__ = rule.__doc__
    return register_validator(name=f"{_VALIDATOR_PREFIX}{code}", data_type="string")(validate)


VALIDATORS: dict[str, type] = {code: _make_validator(code, rule) for code, rule in RULES.items()}
"""The guardrails-ai validator class of each rule, registered as ``adpilot/copy_<code>``."""

_local = threading.local()


def build_guard() -> Guard:
    """A Guard running every copy rule, with guardrails-ai telemetry switched off.

    NOOP on failure: we want every violation of a variant at once (to send them all back to the model
    in one repair round), not an exception at the first.
    """
    # guardrails also opens an OpenTelemetry span per validator, with the checked text and our metadata as
    # attributes, for whatever exporter the host process configured: ad copy and PIM data stay out of it.
    guardrails_settings.disable_tracing = True
    guard = Guard(name="adpilot-copy").use(*(cls(on_fail=OnFailAction.NOOP) for cls in VALIDATORS.values()))
    # No environment variable turns guardrails' hub telemetry off; configure() on every Guard does.
    guard.configure(allow_metrics_collection=False)
    return guard


def _guard() -> Guard:
    # Guards keep a call history, so each thread gets its own (the graph validates in parallel branches).
    guard = getattr(_local, "guard", None)
    if guard is None:
        guard = _local.guard = build_guard()
    return guard


def check_variant(variant: Variant, ctx: GuardContext) -> list[Violation]:
    """Every guardrail violation of ``variant`` in ``ctx`` (empty when the variant may ship)."""
    expected = RsaCopy if ctx.platform == "google" else MetaCopy
    if not isinstance(variant, expected):
        return [Violation(code="ad_structure", field="ad",
                          message=f"a {ctx.platform} ad must be {expected.__name__}, got {type(variant).__name__}")]
    payload = json.dumps(variant.fields(), ensure_ascii=False)
    outcome = _guard().validate(payload, metadata={"ctx": ctx})
    violations = []
    for summary in outcome.validation_summaries or []:
        code = (summary.validator_name or "").removeprefix(_VALIDATOR_PREFIX)
        for line in (summary.failure_reason or "").splitlines():
            field, _, message = line.partition("\t")
            violations.append(Violation(code=code, field=field, message=message))
    order = list(RULES)
    return sorted(violations, key=lambda v: order.index(v.code) if v.code in order else len(order))


# ---------------------------------------------------------------------------------------------------
# Near-duplicates

_NORMALISE = re.compile(r"[^\w%€$£]+")


def _tokens(text: str) -> frozenset[str]:
    return frozenset(t for t in _NORMALISE.split(unicodedata.normalize("NFC", text).casefold()) if t)


def shared_tokens(ctx: GuardContext) -> frozenset[str]:
    """Words every variant of a brief carries by design (product name, brands, required disclaimers).

    They say nothing about how one variant differs from another, so near-duplicate detection ignores them.
    """
    facts = " ".join([*(f"{p.name} {p.brand}" for p in ctx.products), *ctx.brand_names(),
                      *ctx.rules.disclaimer_texts(ctx.language)])
    return _tokens(facts)


def variant_tokens(variant: Variant, ignore: frozenset[str] = frozenset()) -> frozenset[str]:
    """The variant's normalised word set (case, punctuation, order and display paths ignored)."""
    text = " ".join(t for f, t in variant.fields() if not f.startswith("path"))
    return _tokens(text) - ignore


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """Jaccard similarity of two token sets (1.0 = same words)."""
    return len(a & b) / len(a | b) if a or b else 1.0


NEAR_DUPLICATE = 0.7
"""Two variants sharing at least 70 % of their own words (facts shared by design aside) say the same thing."""


def near_duplicate_of(variant: Variant, kept: Iterable[Variant], ignore: frozenset[str] = frozenset(),
                      threshold: float = NEAR_DUPLICATE) -> tuple[int, float] | None:
    """(index, similarity) of the first kept variant ``variant`` nearly duplicates, else None."""
    tokens = variant_tokens(variant, ignore)
    for i, other in enumerate(kept):
        score = jaccard(tokens, variant_tokens(other, ignore))
        if score >= threshold:
            return i, score
    return None
