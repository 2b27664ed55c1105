"""Briefs from a product filter: which products, which ad group each new ad goes into.

The filter is what a person types after ``--products``: SKUs ("NK-10001,NK-10002"), a catalogue
category ("Regenjacken") or search words that must all appear in the product name ("Fjord jacke").
Each product's ad goes into the ad group (Google) or ad set (Meta) that already advertises it, else
into the one that advertises most of its category; a product with neither is skipped with a note.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.domain import EntityKind, EntityRef, Platform
from agent.errors import BadInput, NotFound
from graphs.copywriter.state import Brief
from graphs.copywriter.variants import PlatformName, ProductFacts
from tools.deps import ReadOnlyWarehouse

MAX_PRODUCTS = 1000
_SKU_LIST = re.compile(r"^\s*[A-Za-z0-9_\-.]+(?:\s*,\s*[A-Za-z0-9_\-.]+)*\s*$")

_PRODUCTS_SQL = """SELECT sku, name, brand, category, price, sale_price, currency, description, url
FROM products"""

# The ad group that advertises the product most, then the one that advertises its category most;
# never a REMOVED one (nothing can be added to it).
_TARGET_SQL = """
WITH candidates AS (
    SELECT g.ad_group_id, g.account_id, 0 AS rank_group, count(*) AS n
    FROM ads a JOIN ad_groups g ON g.ad_group_id = a.ad_group_id
    WHERE a.sku = ? AND g.platform = ? AND g.status <> 'REMOVED'
    GROUP BY g.ad_group_id, g.account_id
    UNION ALL
    SELECT g.ad_group_id, g.account_id, 1 AS rank_group, count(*) AS n
    FROM ads a JOIN ad_groups g ON g.ad_group_id = a.ad_group_id JOIN products p ON p.sku = a.sku
    WHERE p.category = ? AND g.platform = ? AND g.status <> 'REMOVED'
    GROUP BY g.ad_group_id, g.account_id
)
SELECT ad_group_id, account_id FROM candidates ORDER BY rank_group, n DESC, ad_group_id LIMIT 1
"""


@dataclass
class Selection:
    """Products a filter matched, how it was read, and the briefs built from them."""

    how: str
    products: list[ProductFacts]
    briefs: list[Brief] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _facts(row: Sequence[Any]) -> ProductFacts:
    sku, name, brand, category, price, sale, currency, description, url = row
    return ProductFacts(sku=sku, name=name, brand=brand, category=category, price=price, sale_price=sale,
                        currency=currency, description=description, url=url)


def select_products(warehouse: ReadOnlyWarehouse, text: str,
                    limit: int = MAX_PRODUCTS) -> tuple[str, list[ProductFacts]]:
    """Products matching ``text`` read as SKUs, a category, or name words, in that order of preference."""
    text = text.strip()
    if not text:
        raise BadInput("--products needs SKUs, a category or search words")
    if _SKU_LIST.match(text):
        skus = list(dict.fromkeys(s.strip() for s in text.split(",")))
        placeholders = ", ".join("?" for _ in skus)
        rows = warehouse.query(f"{_PRODUCTS_SQL} WHERE sku IN ({placeholders})", skus)
        if rows and len(rows) == len(skus):
            order = {s: i for i, s in enumerate(skus)}
            return "SKUs", sorted((_facts(r) for r in rows), key=lambda p: order[p.sku])
        if rows:
            found = {r[0] for r in rows}
            raise NotFound(f"unknown sku(s): {', '.join(s for s in skus if s not in found)}")
    rows = warehouse.query(f"{_PRODUCTS_SQL} WHERE lower(category) = lower(?) ORDER BY sku LIMIT ?", [text, limit])
    if rows:
        return f"category {rows[0][3]!r}", [_facts(r) for r in rows]
    words = text.split()
    clause = " AND ".join("(contains(lower(name), lower(?)) OR contains(lower(sku), lower(?)))" for _ in words)
    params: list[Any] = [w for word in words for w in (word, word)]
    rows = warehouse.query(f"{_PRODUCTS_SQL} WHERE {clause} ORDER BY sku LIMIT ?", [*params, limit])
    if rows:
        return f"search {text!r}", [_facts(r) for r in rows]
    categories = ", ".join(r[0] for r in warehouse.query("SELECT DISTINCT category FROM products ORDER BY 1"))
    raise NotFound(f"no product matches {text!r} as SKUs, a category or name words (categories: {categories})")


def build_briefs(warehouse: ReadOnlyWarehouse, text: str, *, platform: PlatformName, variants: int,
                 language: str = "de", tone: str | None = None, limit: int = MAX_PRODUCTS) -> Selection:
    """Briefs for every product the filter matches that has an ad group on ``platform``."""
    how, products = select_products(warehouse, text, limit)
    selection = Selection(how=how, products=products)
    for product in products:
        rows = warehouse.query(_TARGET_SQL, [product.sku, platform, product.category, platform])
        if not rows:
            selection.skipped.append(f"{product.sku}: no {platform} ad group advertises it or its category "
                                     f"{product.category!r}")
            continue
        ad_group, account = rows[0]
        target = EntityRef(platform=Platform(platform), account_id=account, kind=EntityKind.AD_GROUP, id=ad_group)
        selection.briefs.append(Brief(products=[product], target=target, platform=platform, language=language,
                                      variants=variants, tone=tone))
    return selection
