"""Price mismatch: ad text stating a price the PIM does not know (neither the price nor the sale price).

A stale price in an ad is a broken promise and, in the EU, a misleading-pricing risk; the ad is paused and
the copywriter is briefed with the right price. Amounts are read next to a currency sign or code in German
("189,95 €", "1.299,00 EUR") or English ("€189.95") notation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

import duckdb

from agent.domain import EntityKind, SetStatus
from graphs.optimizer.common import (
    BudgetBounds,
    DetectorParams,
    PlatformFor,
    action_key,
    ad_texts,
    fmt,
    latest_day,
    live,
    ref,
    rows,
)
from graphs.optimizer.findings import CopyBrief, Finding

NAME = "price_mismatch"

_NUMBER = r"\d[\d.,\u00a0\u202f]*\d|\d"
_SIGNS = r"€|EUR|Euro"
_AMOUNT = re.compile(rf"(?:(?:{_SIGNS})\s?(?P<after>{_NUMBER}))|(?:(?P<before>{_NUMBER})\s?(?:{_SIGNS}))")


class PriceMismatchParams(DetectorParams):
    """Parameters of the price mismatch detector (the window is unused: prices are compared as they are now)."""


def stated_prices(text: str) -> list[Decimal]:
    """Every amount ``text`` states next to a euro sign or code, as a Decimal in euros."""
    found: list[Decimal] = []
    for match in _AMOUNT.finditer(text):
        raw = (match.group("after") or match.group("before")).strip()
        amount = _parse(raw)
        if amount is not None:
            found.append(amount)
    return found


def _parse(raw: str) -> Decimal | None:
    """``1.299,95`` / ``1,299.95`` / ``189,95`` / ``189.95`` / ``189`` → Decimal; None when unreadable."""
    digits = re.sub(r"[\u00a0\u202f]", "", raw)
    last_comma, last_dot = digits.rfind(","), digits.rfind(".")
    decimal_mark = None
    if last_comma >= 0 or last_dot >= 0:
        mark_at = max(last_comma, last_dot)
        # Two digits after the last separator make it the decimal mark; three make it a thousands separator.
        if len(digits) - mark_at - 1 == 2:
            decimal_mark = digits[mark_at]
    if decimal_mark:
        whole, cents = digits.rsplit(decimal_mark, 1)
        normalised = re.sub(r"[.,]", "", whole) + "." + cents
    else:
        normalised = re.sub(r"[.,]", "", digits)
    try:
        return Decimal(normalised)
    except InvalidOperation:
        return None


_SQL = """
SELECT a.ad_id, a.ad_group_id, a.account_id, a.platform, a.sku, p.price, p.sale_price, p.currency,
       list_concat(coalesce(a.headlines, []), coalesce(a.descriptions, []),
                   CASE WHEN a.primary_text IS NULL THEN [] ELSE [a.primary_text] END) AS texts
FROM ads a JOIN products p ON p.sku = a.sku
WHERE a.status = 'ENABLED' AND list_contains(?, a.account_id)
ORDER BY a.account_id, a.ad_id
"""


def detect(con: duckdb.DuckDBPyConnection, platform_for: PlatformFor, params: PriceMismatchParams, *,
           accounts: Sequence[str], bounds: BudgetBounds | None = None) -> list[Finding]:
    """Pause running ads whose text states a price other than the product's price or sale price."""
    as_of = latest_day(con)
    candidates = [r for r in rows(con, _SQL, [list(accounts)]) if _wrong(r["texts"], r)]
    refs = {r["ad_id"]: ref(r["platform"], r["account_id"], EntityKind.AD, r["ad_id"]) for r in candidates}
    state = live(platform_for, refs.values())
    findings: list[Finding] = []
    for row in candidates:
        target = refs[row["ad_id"]]
        entity = state.get(target)
        if entity is None or entity.status != "ENABLED":
            continue
        # The live text decides; the warehouse copy only narrowed the search.
        texts = ad_texts(entity.ad) or list(row["texts"])
        wrong = _wrong(texts, row)
        if not wrong:
            continue
        price, sale = Decimal(row["price"]), row["sale_price"]
        pim = f"{fmt(price)} {row['currency']}" + (f" (sale {fmt(Decimal(sale))})" if sale is not None else "")
        note = f"the ad states {fmt(wrong[0])} {row['currency']} but the PIM price of {row['sku']} is {pim}"
        action = SetStatus(target=target, status="PAUSED", idempotency_key=action_key(NAME, "pause", target, as_of),
                           reason=f"{note}; pausing the ad until it has correct copy")
        brief = CopyBrief(ad=target, ad_group=ref(row["platform"], row["account_id"], EntityKind.AD_GROUP,
                                                  row["ad_group_id"]),
                          sku=row["sku"], problem="price_mismatch", note=f"{note}: state the PIM price or none",
                          current_text=texts)
        evidence = {"stated_price": wrong[0], "pim_price": price}
        if sale is not None:
            evidence["pim_sale_price"] = Decimal(sale)
        findings.append(Finding(detector=NAME, action=action, brief=brief, evidence=evidence))
    return findings


def _wrong(texts: Sequence[str], row: dict[str, object]) -> list[Decimal]:
    """The stated amounts that are neither the price nor the sale price."""
    allowed = {Decimal(str(row["price"]))}
    if row["sale_price"] is not None:
        allowed.add(Decimal(str(row["sale_price"])))
    return [amount for text in texts for amount in stated_prices(text) if amount not in allowed]
