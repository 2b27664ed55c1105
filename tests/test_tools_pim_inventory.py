"""PIM and inventory tools against the demo world; expected values come from the test's own SQL and Python."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pytest

from agent.errors import BadInput, NotFound
from tools.deps import ToolDeps
from tools.inventory import ListLowStockArgs, ListOutOfStockArgs, list_low_stock, list_out_of_stock
from tools.pim import GetProductsArgs, SearchProductsArgs, get_products, search_products
from tools.registry import REGISTRY, all_tools, to_langchain


@pytest.fixture
def deps(demo_runtime: Any) -> ToolDeps:
    return ToolDeps.from_runtime(demo_runtime)


@pytest.fixture
def catalogue(demo_runtime: Any) -> list[dict[str, Any]]:
    """Every product with its stock and enabled-ad count, straight from the warehouse."""
    cur = demo_runtime.warehouse.execute("SELECT p.*, i.stock FROM products p LEFT JOIN inventory i USING (sku)")
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    ads = demo_runtime.warehouse.execute("SELECT sku, status FROM ads").fetchall()
    for row in rows:
        row["enabled_ads"] = sum(1 for sku, status in ads if sku == row["sku"] and status == "ENABLED")
    return rows


def test_get_products_returns_catalogue_values_in_the_order_asked(deps: ToolDeps,
                                                                  catalogue: list[dict[str, Any]]) -> None:
    on_sale = next(r for r in catalogue if r["sale_price"] is not None)
    regular = next(r for r in catalogue if r["sale_price"] is None)
    result = get_products(deps, GetProductsArgs(skus=[regular["sku"], on_sale["sku"], regular["sku"]]))
    assert [p.sku for p in result.products] == [regular["sku"], on_sale["sku"]]
    got_sale = result.products[1]
    assert got_sale.current_price == on_sale["sale_price"]
    assert got_sale.price == on_sale["price"]
    expected_pct = ((on_sale["price"] - on_sale["sale_price"]) / on_sale["price"] * 100).quantize(
        Decimal("0.1"), rounding=ROUND_HALF_EVEN)
    assert got_sale.discount_pct == expected_pct
    assert result.products[0].current_price == regular["price"]
    assert result.products[0].discount_pct is None
    assert result.products[0].stock == regular["stock"]
    assert result.products[0].category == regular["category"]


def test_unknown_sku_is_a_model_readable_error_with_suggestions(deps: ToolDeps,
                                                                catalogue: list[dict[str, Any]]) -> None:
    known = catalogue[0]["sku"]
    with pytest.raises(NotFound, match=r"unknown sku: NOPE-1; closest known: "):
        get_products(deps, GetProductsArgs(skus=[known, "NOPE-1"]))
    lc_tool = to_langchain(REGISTRY.get("get_prices"), deps)
    text = lc_tool.invoke({"skus": [known + "X"]})
    assert text.startswith("error: unknown sku: " + known + "X")
    assert known in text  # the nearest sku is suggested
    regular = next(r for r in catalogue if r["sale_price"] is None)
    payload = json.loads(lc_tool.invoke({"skus": [regular["sku"]]}))
    assert payload["prices"][0]["sale_price"] is None  # "not on sale" is said, not left out
    assert Decimal(payload["prices"][0]["current_price"]) == regular["price"]


def test_invalid_arguments_come_back_as_one_line_errors(deps: ToolDeps) -> None:
    all_tools()
    with pytest.raises(BadInput, match="skus"):
        REGISTRY.get("get_products").invoke(deps, {"skus": []})
    with pytest.raises(BadInput, match="limit"):
        REGISTRY.get("search_products").invoke(deps, {"query": "jacke", "limit": 101})
    text = to_langchain(REGISTRY.get("get_stock"), deps).invoke({"skus": []})
    assert text.startswith("error: get_stock: skus")


def test_search_products_matches_all_words_and_counts_every_match(deps: ToolDeps,
                                                                  catalogue: list[dict[str, Any]]) -> None:
    expected = sorted((r for r in catalogue
                       if "regenjacke" in r["name"].casefold() and "damen" in r["name"].casefold()),
                      key=lambda r: (r["name"], r["sku"]))
    assert len(expected) > 3
    result = search_products(deps, SearchProductsArgs(query="Regenjacke DAMEN", limit=3))
    assert result.total == len(expected)
    assert result.truncated is True
    assert [p.sku for p in result.rows] == [r["sku"] for r in expected[:3]]


def test_search_products_by_category_brand_and_sale(deps: ToolDeps, catalogue: list[dict[str, Any]]) -> None:
    expected = {r["sku"] for r in catalogue
                if r["category"] == "Zelte" and r["brand"] == "Nordkamm" and r["sale_price"] is not None}
    result = search_products(deps, SearchProductsArgs(category="zelte", brand="NORDKAMM", on_sale=True, limit=100))
    assert {p.sku for p in result.rows} == expected
    assert result.total == len(expected)
    assert result.truncated is False
    assert all(p.sale_price is not None and p.current_price == p.sale_price for p in result.rows)


def test_unknown_category_lists_the_known_ones(deps: ToolDeps, catalogue: list[dict[str, Any]]) -> None:
    with pytest.raises(NotFound, match="unknown category 'Surfbretter'; known: ") as info:
        search_products(deps, SearchProductsArgs(category="Surfbretter"))
    assert all(c in str(info.value) for c in {r["category"] for r in catalogue})


def test_get_prices_and_stock(deps: ToolDeps, catalogue: list[dict[str, Any]]) -> None:
    picks = catalogue[:5]
    prices = REGISTRY.get("get_prices").invoke(deps, {"skus": [r["sku"] for r in picks]})
    for row, price in zip(picks, prices.prices, strict=True):
        assert price.sku == row["sku"]
        assert price.on_sale is (row["sale_price"] is not None)
        assert price.current_price == (row["sale_price"] if row["sale_price"] is not None else row["price"])
    stock = REGISTRY.get("get_stock").invoke(deps, {"skus": [r["sku"] for r in picks]})
    assert [(s.sku, s.stock, s.enabled_ads) for s in stock.items] == [
        (r["sku"], r["stock"], r["enabled_ads"]) for r in picks]


def test_out_of_stock_list_with_advertised_products_first(deps: ToolDeps, catalogue: list[dict[str, Any]]) -> None:
    expected = sorted((r for r in catalogue if r["stock"] is not None and r["stock"] <= 0),
                      key=lambda r: (-r["enabled_ads"], r["sku"]))
    assert expected, "the demo world has out-of-stock products"
    result = list_out_of_stock(deps, ListOutOfStockArgs(limit=3))
    assert result.total == len(expected)
    assert [r.sku for r in result.rows] == [r["sku"] for r in expected[:3]]
    assert result.total_enabled_ads == sum(r["enabled_ads"] for r in expected)
    assert result.truncated is (len(expected) > 3)

    advertised = list_out_of_stock(deps, ListOutOfStockArgs(advertised_only=True, limit=100))
    assert {r.sku for r in advertised.rows} == {r["sku"] for r in expected if r["enabled_ads"] > 0}


def test_low_stock_list_respects_the_threshold(deps: ToolDeps, catalogue: list[dict[str, Any]]) -> None:
    expected = sorted((r for r in catalogue if r["stock"] is not None and 0 < r["stock"] <= 3),
                      key=lambda r: (r["stock"], r["sku"]))
    result = list_low_stock(deps, ListLowStockArgs(threshold=3, limit=100))
    assert [(r.sku, r.stock) for r in result.rows] == [(r["sku"], r["stock"]) for r in expected]
    category = expected[0]["category"]
    in_category = list_low_stock(deps, ListLowStockArgs(threshold=3, category=category, limit=100))
    assert {r.sku for r in in_category.rows} == {r["sku"] for r in expected if r["category"] == category}
