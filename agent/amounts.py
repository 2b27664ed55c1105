"""Money amounts, percentages and discounts as ad copy states them, in German and English.

One parser for everyone who reads copy: the copy guardrails check every amount and percentage
against the PIM, and the policy's brand rules decide from the same reading whether an ad states a
price or a discount (and so which disclaimers it must carry).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_CURRENCIES = {"€": "EUR", "eur": "EUR", "euro": "EUR", "euros": "EUR", "$": "USD", "usd": "USD",
               "£": "GBP", "gbp": "GBP", "chf": "CHF", "fr.": "CHF"}
_CUR = r"(?:€|\$|£|\bEUR\b|\bEuros?\b|\bUSD\b|\bGBP\b|\bCHF\b)"
_NUM = r"\d{1,3}(?:[.\u202f\u00a0]\d{3})+(?:[.,]\d{1,2})?|\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_DASH = r"(?:[,.]-{1,2}|[,.]–)?"
_MONEY = re.compile(rf"(?P<c1>{_CUR})\s?(?P<n1>{_NUM}){_DASH}|(?P<n2>{_NUM}){_DASH}\s?(?P<c2>{_CUR})", re.IGNORECASE)
_PERCENT = re.compile(rf"(?P<n>{_NUM})\s?(?:%|‰|\bProzent\b|\bpercent\b|\bper cent\b|\bpour cent\b|\bpor ciento\b)",
                      re.IGNORECASE)
# A bare number with two decimals ("nur 49,99") reads as a price even without a currency sign, unless a
# unit follows ("0,75 l", "12,50 %") or it is part of a date ("24.12.", "24.12.2026").
_UNITS = r"(?:%|‰|mm|cm|m|km|kg|g|l|ml|h|std|min|mah|wh|w|v|x|prozent|percent)(?!\w)"
_BARE_PRICE = re.compile(rf"(?<![\d.,])(?P<n>\d{{1,5}}[.,]\d{{2}})(?!\d|[.,]\d|\.(?:\s|$)|\s?{_UNITS})",
                         re.IGNORECASE)

# A reduction said in words ("im Sale", "20 % Rabatt", "reduziert", "discounted", "clearance"; not "for sale").
_REDUCTION_WORD = re.compile(r"\b(?:(?<!for )sale|rabatt\w*|reduziert\w*|(?:preis)?nachlass|ausverkauf"
                             r"|discount\w*|reduced|clearance)\b", re.IGNORECASE)
# An amount or percentage is a reduction when a struck or saved price leads it ("statt 89,99 €",
# "was €89.99", "Spare 18,04 €", "-20 %") or "off" follows it ("20% off", "18,04 € günstiger").
_REDUCTION_BEFORE = re.compile(r"(?:\b(?:statt|vorher|uvp|rrp|was|instead\s+of|spar\w*|save|saving|savings|minus)"
                               r"\s*:?\s*|(?<!\w)[-−–]\s?)$", re.IGNORECASE)
_REDUCTION_AFTER = re.compile(r"\s*(?:off|günstiger|billiger|cheaper|weniger|less|sparen|gespart|saved)\b",
                              re.IGNORECASE)


def parse_number(raw: str, language: str = "de") -> Decimal | None:
    """Read a German or English number: "1.299,00", "1,299.00", "49,99", "49.99", "1 299"; None if unreadable.

    With only one kind of separator followed by exactly three digits the language decides: German
    "1.299" is one thousand two hundred ninety-nine, English "1.299" is one point two nine nine.
    """
    text = raw.replace("\u202f", " ").replace("\u00a0", " ").replace(" ", "")
    if "," in text and "." in text:
        decimal_sep = "," if text.rfind(",") > text.rfind(".") else "."
        thousands = "." if decimal_sep == "," else ","
        text = text.replace(thousands, "").replace(decimal_sep, ".")
    elif "," in text or "." in text:
        sep = "," if "," in text else "."
        head, _, tail = text.rpartition(sep)
        thousands_sep = "." if language == "de" else ","
        if len(tail) == 3 and (text.count(sep) > 1 or sep == thousands_sep):
            text = text.replace(sep, "")
        else:
            text = f"{head.replace(sep, '')}.{tail}"
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def _amount_matches(text: str, language: str) -> list[tuple[re.Match[str], Decimal, str | None]]:
    """Every money amount with its match: currency-marked amounts first, then bare prices."""
    found: list[tuple[re.Match[str], Decimal, str | None]] = []
    spans: list[tuple[int, int]] = []
    for m in _MONEY.finditer(text):
        number = m.group("n1") or m.group("n2")
        symbol = (m.group("c1") or m.group("c2")).lower()
        value = parse_number(number, language)
        if value is not None:
            found.append((m, value, _CURRENCIES.get(symbol, symbol.upper())))
            spans.append(m.span())
    for m in _BARE_PRICE.finditer(text):
        if any(a <= m.start() < b for a, b in spans):
            continue
        value = parse_number(m.group("n"), language)
        if value is not None:
            found.append((m, value, None))
    return found


def _percent_matches(text: str, language: str) -> list[tuple[re.Match[str], Decimal]]:
    out = []
    for m in _PERCENT.finditer(text):
        value = parse_number(m.group("n"), language)
        if value is not None:
            out.append((m, value))
    return out


def find_amounts(text: str, language: str = "de") -> list[tuple[str, Decimal, str | None]]:
    """Every money amount in ``text`` as (matched text, amount, ISO currency or None for a bare price)."""
    return [(m.group(0).strip(), value, currency) for m, value, currency in _amount_matches(text, language)]


def find_percents(text: str, language: str = "de") -> list[tuple[str, Decimal]]:
    """Every percentage in ``text`` as (matched text, value): "-20 %", "20%", "20 Prozent", "20 percent"."""
    return [(m.group(0), value) for m, value in _percent_matches(text, language)]


def states_price(text: str, language: str = "de") -> bool:
    """True when ``text`` states a price or any other money amount ("49,99 €", "€49.99", "nur 49,99")."""
    return bool(_amount_matches(text, language))


def states_discount(text: str, language: str = "de") -> bool:
    """True when ``text`` states a reduction: a sale word ("Sale", "Rabatt", "reduziert", "discounted"), or an
    amount or percentage given as a saving ("-20 %", "20% off", "statt 89,99 €", "Spare 18,04 €").

    A percentage alone is no discount: "100 % Merinowolle" says what the product is made of.
    """
    if _REDUCTION_WORD.search(text):
        return True
    matches = [m for m, _, _ in _amount_matches(text, language)] + [m for m, _ in _percent_matches(text, language)]
    return any(_REDUCTION_BEFORE.search(text[max(0, m.start() - 20):m.start()])
               or _REDUCTION_AFTER.match(text, m.end()) for m in matches)
