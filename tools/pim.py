"""PIM read tools: products by sku, product search, current and sale prices."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field

from agent.errors import NotFound
from tools.deps import ReadOnlyWarehouse, ToolDeps
from tools.registry import limit_field, tool

MAX_SKUS = 50
DESCRIPTION_PREVIEW = 160

def _clean_skus(values: list[str]) -> list[str]:
    cleaned: list[str] = []
    for value in values:
        sku = value.strip()
        if not sku:
            raise ValueError("empty sku")
        if sku not in cleaned:
            cleaned.append(sku)
    return cleaned


# Stripped and de-duplicated, order kept: a model repeating a sku should not get it twice.
SkuList = Annotated[list[str], AfterValidator(_clean_skus)]


def sku_list_field() -> Any:
    """The standard ``skus`` argument."""
    return Field(min_length=1, max_length=MAX_SKUS,
                 description=f"Product SKUs exactly as in the catalogue, 1 to {MAX_SKUS}.")


def require_skus(warehouse: ReadOnlyWarehouse, skus: list[str]) -> None:
    """Raise ``NotFound`` naming every unknown sku, with the closest known skus as suggestions."""
    placeholders = ", ".join("?" for _ in skus)
    known = {r[0] for r in warehouse.query(f"SELECT sku FROM products WHERE sku IN ({placeholders})", skus)}
    unknown = [s for s in skus if s not in known]
    if not unknown:
        return
    similar = warehouse.query(
        "SELECT sku FROM products ORDER BY jaro_winkler_similarity(lower(sku), lower(?)) DESC, sku LIMIT 3",
        [unknown[0]])
    hint = f"; closest known: {', '.join(r[0] for r in similar)}" if similar else ""
    raise NotFound(f"unknown sku{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}{hint}")


def require_value(warehouse: ReadOnlyWarehouse, column: str, value: str) -> str:
    """The catalogue's spelling of a category or brand (case-insensitive); ``NotFound`` lists the options."""
    if column not in ("category", "brand"):
        raise ValueError(f"not a product attribute: {column}")
    rows = warehouse.query(f"SELECT DISTINCT {column} FROM products ORDER BY 1")
    values = [r[0] for r in rows]
    for known in values:
        if known.casefold() == value.strip().casefold():
            return known
    shown = ", ".join(values[:30]) + (" ..." if len(values) > 30 else "")
    raise NotFound(f"unknown {column} {value!r}; known: {shown}")


def _pct_off(price: Decimal, sale: Decimal | None) -> Decimal | None:
    if sale is None or not price:
        return None
    return ((price - sale) / price * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)


class Product(BaseModel):
    """One catalogue product."""

    sku: str = Field(description="Stock keeping unit.")
    name: str = Field(description="Product name.")
    category: str = Field(description="Catalogue category.")
    brand: str = Field(description="Brand.")
    price: Decimal = Field(description="Regular price.")
    sale_price: Decimal | None = Field(default=None, description="Sale price, when on sale.")
    current_price: Decimal = Field(description="What a customer pays now: the sale price when on sale.")
    discount_pct: Decimal | None = Field(default=None, description="Percent off the regular price when on sale.")
    currency: str = Field(description="ISO currency of the prices.")
    margin: Decimal = Field(description="Gross margin as a fraction of the price (0.35 = 35 %).")
    stock: int | None = Field(default=None, description="Units in stock (None when not tracked).")
    description: str = Field(description="Start of the product description.")
    url: str = Field(description="Product page.")


_PRODUCT_SQL = """
SELECT p.sku, p.name, p.category, p.brand, p.price, p.sale_price, p.currency, p.margin, i.stock,
       p.description, p.url
FROM products p LEFT JOIN inventory i ON i.sku = p.sku
"""


def _product(row: tuple[Any, ...]) -> Product:
    sku, name, category, brand, price, sale, currency, margin, stock, description, url = row
    text = description if len(description) <= DESCRIPTION_PREVIEW else description[:DESCRIPTION_PREVIEW - 1] + "…"
    return Product(sku=sku, name=name, category=category, brand=brand, price=price, sale_price=sale,
                   current_price=sale if sale is not None else price, discount_pct=_pct_off(price, sale),
                   currency=currency, margin=margin, stock=stock, description=text, url=url)


class GetProductsArgs(BaseModel):
    """Arguments of get_products."""

    skus: SkuList = sku_list_field()


class ProductList(BaseModel):
    """Products in the order asked for."""

    products: list[Product] = Field(description="One entry per requested sku.")


@tool("read")
def get_products(deps: ToolDeps, args: GetProductsArgs) -> ProductList:
    """Get catalogue products by SKU: name, category, brand, regular and sale price, margin, stock and URL.

    Unknown SKUs are an error that names them and suggests the closest known SKUs.
    """
    require_skus(deps.warehouse, args.skus)
    placeholders = ", ".join("?" for _ in args.skus)
    rows = deps.warehouse.query(f"{_PRODUCT_SQL} WHERE p.sku IN ({placeholders})", args.skus)
    by_sku = {r[0]: _product(r) for r in rows}
    return ProductList(products=[by_sku[s] for s in args.skus])


class SearchProductsArgs(BaseModel):
    """Arguments of search_products."""

    query: str | None = Field(default=None, max_length=200,
                              description="Words that must all appear in the product name or SKU "
                                          "(case-insensitive); omit to list by category / brand only.")
    category: str | None = Field(default=None, max_length=100, description="Only this catalogue category.")
    brand: str | None = Field(default=None, max_length=100, description="Only this brand.")
    on_sale: bool | None = Field(default=None,
                                 description="True: only products on sale; false: only at regular price.")
    limit: int = limit_field("products")


class ProductPreview(BaseModel):
    """A preview of matching products."""

    rows: list[Product] = Field(description="The first matches, ordered by name.")
    total: int = Field(description="How many products match in all.")
    truncated: bool = Field(description="True when there are more matches than rows.")


@tool("read")
def search_products(deps: ToolDeps, args: SearchProductsArgs) -> ProductPreview:
    """Search catalogue products by name words, category, brand and sale status.

    Returns a preview of at most `limit` products plus the total number of matches. An unknown
    category or brand is an error that lists the known ones.
    """
    clauses: list[str] = []
    params: list[Any] = []
    for word in (args.query or "").split():
        clauses.append("(contains(lower(p.name), lower(?)) OR contains(lower(p.sku), lower(?)))")
        params += [word, word]
    if args.category is not None:
        clauses.append("p.category = ?")
        params.append(require_value(deps.warehouse, "category", args.category))
    if args.brand is not None:
        clauses.append("p.brand = ?")
        params.append(require_value(deps.warehouse, "brand", args.brand))
    if args.on_sale is not None:
        clauses.append("p.sale_price IS NOT NULL" if args.on_sale else "p.sale_price IS NULL")
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    total = deps.warehouse.query(f"SELECT count(*) FROM products p{where}", params)[0][0]
    rows = deps.warehouse.query(f"{_PRODUCT_SQL}{where} ORDER BY p.name, p.sku LIMIT ?", [*params, args.limit])
    products = [_product(r) for r in rows]
    return ProductPreview(rows=products, total=total, truncated=total > len(products))


class GetPricesArgs(BaseModel):
    """Arguments of get_prices."""

    skus: SkuList = sku_list_field()


class Price(BaseModel):
    """Prices of one product."""

    sku: str = Field(description="Stock keeping unit.")
    price: Decimal = Field(description="Regular price.")
    sale_price: Decimal | None = Field(default=None, description="Sale price, when on sale.")
    current_price: Decimal = Field(description="What a customer pays now.")
    on_sale: bool = Field(description="Whether a sale price applies.")
    discount_pct: Decimal | None = Field(default=None, description="Percent off when on sale.")
    currency: str = Field(description="ISO currency.")


class PriceList(BaseModel):
    """Prices in the order asked for."""

    prices: list[Price] = Field(description="One entry per requested sku.")


@tool("read")
def get_prices(deps: ToolDeps, args: GetPricesArgs) -> PriceList:
    """Get the current regular and sale prices of products by SKU, with the percent off when on sale."""
    require_skus(deps.warehouse, args.skus)
    placeholders = ", ".join("?" for _ in args.skus)
    rows = deps.warehouse.query(
        f"SELECT sku, price, sale_price, currency FROM products WHERE sku IN ({placeholders})", args.skus)
    by_sku = {
        sku: Price(sku=sku, price=price, sale_price=sale, current_price=sale if sale is not None else price,
                   on_sale=sale is not None, discount_pct=_pct_off(price, sale), currency=currency)
        for sku, price, sale, currency in rows
    }
    return PriceList(prices=[by_sku[s] for s in args.skus])
