"""Inventory read tools: stock per sku, out-of-stock and low-stock lists (with how many live ads each has)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from tools.deps import ToolDeps
from tools.pim import SkuList, require_skus, require_value, sku_list_field
from tools.registry import limit_field, tool


class StockLevel(BaseModel):
    """Stock of one product."""

    sku: str = Field(description="Stock keeping unit.")
    name: str = Field(description="Product name.")
    category: str = Field(description="Catalogue category.")
    brand: str = Field(description="Brand.")
    stock: int | None = Field(description="Units in stock; None when the product is not tracked.")
    updated_at: datetime | None = Field(default=None, description="When the stock was last counted.")
    enabled_ads: int = Field(description="How many ENABLED ads advertise this product on any platform.")


_STOCK_SQL = """
SELECT p.sku, p.name, p.category, p.brand, i.stock, i.updated_at,
       (SELECT count(*) FROM ads a WHERE a.sku = p.sku AND a.status = 'ENABLED') AS enabled_ads
FROM products p LEFT JOIN inventory i ON i.sku = p.sku
"""


def _level(row: tuple[Any, ...]) -> StockLevel:
    sku, name, category, brand, stock, updated_at, enabled_ads = row
    return StockLevel(sku=sku, name=name, category=category, brand=brand, stock=stock, updated_at=updated_at,
                      enabled_ads=enabled_ads)


class GetStockArgs(BaseModel):
    """Arguments of get_stock."""

    skus: SkuList = sku_list_field()


class StockList(BaseModel):
    """Stock levels in the order asked for."""

    items: list[StockLevel] = Field(description="One entry per requested sku.")


@tool("read")
def get_stock(deps: ToolDeps, args: GetStockArgs) -> StockList:
    """Get the current stock of products by SKU, when it was counted, and how many enabled ads advertise each."""
    require_skus(deps.warehouse, args.skus)
    placeholders = ", ".join("?" for _ in args.skus)
    rows = deps.warehouse.query(f"{_STOCK_SQL} WHERE p.sku IN ({placeholders})", args.skus)
    by_sku = {r[0]: _level(r) for r in rows}
    return StockList(items=[by_sku[s] for s in args.skus])


class StockPreview(BaseModel):
    """A preview of products in a stock situation."""

    rows: list[StockLevel] = Field(description="The first matches.")
    total: int = Field(description="How many products match in all.")
    total_enabled_ads: int = Field(description="Enabled ads advertising any of the matching products.")
    truncated: bool = Field(description="True when there are more matches than rows.")


def _filters(deps: ToolDeps, category: str | None, brand: str | None,
             advertised_only: bool) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if category is not None:
        clauses.append("category = ?")
        params.append(require_value(deps.warehouse, "category", category))
    if brand is not None:
        clauses.append("brand = ?")
        params.append(require_value(deps.warehouse, "brand", brand))
    if advertised_only:
        clauses.append("enabled_ads > 0")
    return clauses, params


def _preview(deps: ToolDeps, condition: str, condition_params: list[Any], clauses: list[str],
             params: list[Any], order: str, limit: int) -> StockPreview:
    where = " AND ".join([condition, *clauses])
    base = f"""
        WITH s AS ({_STOCK_SQL})
        SELECT sku, name, category, brand, stock, updated_at, enabled_ads FROM s WHERE {where}
    """
    all_params = [*condition_params, *params]
    total, ads = deps.warehouse.query(f"SELECT count(*), coalesce(sum(enabled_ads), 0) FROM ({base})",
                                      all_params)[0]
    rows = [_level(r) for r in deps.warehouse.query(f"{base} ORDER BY {order} LIMIT ?", [*all_params, limit])]
    return StockPreview(rows=rows, total=total, total_enabled_ads=int(ads), truncated=total > len(rows))


class ListOutOfStockArgs(BaseModel):
    """Arguments of list_out_of_stock."""

    category: str | None = Field(default=None, max_length=100, description="Only this catalogue category.")
    brand: str | None = Field(default=None, max_length=100, description="Only this brand.")
    advertised_only: bool = Field(default=False,
                                  description="Only products that still have at least one ENABLED ad.")
    limit: int = limit_field("products")


@tool("read")
def list_out_of_stock(deps: ToolDeps, args: ListOutOfStockArgs) -> StockPreview:
    """List products that are out of stock (zero or fewer units), most-advertised first.

    Each row says how many ENABLED ads still advertise the product, so ads wasting money on
    products nobody can buy are easy to find.
    """
    clauses, params = _filters(deps, args.category, args.brand, args.advertised_only)
    return _preview(deps, "stock <= 0", [], clauses, params, "enabled_ads DESC, sku", args.limit)


class ListLowStockArgs(BaseModel):
    """Arguments of list_low_stock."""

    threshold: int = Field(default=5, ge=1, le=100_000,
                           description="Low means at most this many units (and more than zero).")
    category: str | None = Field(default=None, max_length=100, description="Only this catalogue category.")
    brand: str | None = Field(default=None, max_length=100, description="Only this brand.")
    advertised_only: bool = Field(default=False,
                                  description="Only products that still have at least one ENABLED ad.")
    limit: int = limit_field("products")


@tool("read")
def list_low_stock(deps: ToolDeps, args: ListLowStockArgs) -> StockPreview:
    """List products with low stock (more than zero and at most `threshold` units), lowest stock first."""
    clauses, params = _filters(deps, args.category, args.brand, args.advertised_only)
    return _preview(deps, "stock > 0 AND stock <= ?", [args.threshold], clauses, params, "stock, sku", args.limit)
