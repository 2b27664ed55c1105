"""``adpilot ls``: what is in the warehouse — accounts, campaigns, ad groups / ad sets, ads, products.

Money is always shown with its currency; the 28-day figures end at the warehouse's latest day, so
they match what the forecast and the optimizer see. ``--json`` prints
``{"kind", "total", "shown", "items"}`` with money as ``{"amount": "80.00", "currency": "EUR"}``.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from agent.cli.common import HomeOpt, JsonOpt, console, print_json, settings_for
from agent.domain import Money
from agent.errors import BadInput, NotFound
from agent.settings import Settings

if TYPE_CHECKING:
    import duckdb

KPI_WINDOW_DAYS = 28
DEFAULT_LIMIT = 50


class ListKind(StrEnum):
    """What ``adpilot ls`` can list."""

    ACCOUNTS = "accounts"
    CAMPAIGNS = "campaigns"
    ADGROUPS = "adgroups"
    ADS = "ads"
    PRODUCTS = "products"


ENTITY_STATUSES = ("ENABLED", "PAUSED", "REMOVED")
STOCK_STATUSES = ("IN_STOCK", "OUT_OF_STOCK")

KindArg = Annotated[ListKind, typer.Argument(help="accounts, campaigns, adgroups, ads or products.",
                                             case_sensitive=False, show_default=False)]
AccountOpt = Annotated[str | None, typer.Option("--account", help="Only this ad account id.")]
StatusOpt = Annotated[str | None, typer.Option("--status", help="ENABLED, PAUSED or REMOVED "
                                                                "(products: IN_STOCK or OUT_OF_STOCK).")]
LimitOpt = Annotated[int, typer.Option("--limit", min=1, max=100_000, help="Show at most N rows.")]


def open_warehouse(settings: Settings) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the home's warehouse; a missing or empty one is the user's to fix (exit 2)."""
    from tools.warehouse.schema import connect, is_initialised

    path = settings.warehouse_path
    if not path.exists():
        raise BadInput(f"no warehouse at {path}: run 'adpilot demo' or 'adpilot data init' first")
    con = connect(path, read_only=True)
    if not is_initialised(con):
        con.close()
        raise BadInput(f"the warehouse at {path} is empty: run 'adpilot demo' or 'adpilot data init' first")
    return con


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _money(amount: Decimal | None, currency: str) -> Money | None:
    return None if amount is None else Money(amount=amount, currency=currency)


def _roas(value: Decimal | None, cost: Decimal | None) -> Decimal | None:
    return (value / cost).quantize(Decimal("0.01")) if cost else None


def list_rows(con: duckdb.DuckDBPyConnection, kind: ListKind, *, account_id: str | None = None,
              status: str | None = None, limit: int = DEFAULT_LIMIT) -> tuple[list[dict[str, Any]], int]:
    """The rows ``adpilot ls`` shows (money as ``Money``) and how many there are without the limit."""
    kind = ListKind(kind)
    if account_id is not None:
        if kind is ListKind.PRODUCTS:
            raise BadInput("products belong to the shop, not to an ad account; drop --account")
        if not con.execute("SELECT count(*) FROM accounts WHERE account_id = ?", [account_id]).fetchall()[0][0]:
            raise NotFound(f"unknown account {account_id!r}")
    wanted = None if status is None else status.strip().upper()
    if wanted is not None:
        if kind is ListKind.ACCOUNTS:
            raise BadInput("accounts have no status filter; drop --status")
        allowed = STOCK_STATUSES if kind is ListKind.PRODUCTS else ENTITY_STATUSES
        if wanted not in allowed:
            raise BadInput(f"unknown status {status!r} for {kind} (use {', '.join(allowed)})")

    last = con.execute("SELECT max(day) FROM performance_daily").fetchall()[0][0]
    since = None if last is None else last - timedelta(days=KPI_WINDOW_DAYS)
    where, params = ["TRUE"], []
    if account_id is not None:
        where.append("x.account_id = ?")
        params.append(account_id)
    if wanted is not None and kind is not ListKind.PRODUCTS:
        where.append("x.status = ?")
        params.append(wanted)

    if kind is ListKind.ACCOUNTS:
        sql = """SELECT x.account_id, x.platform, x.name, x.currency, x.timezone,
                        (SELECT count(*) FROM campaigns c WHERE c.account_id = x.account_id) AS campaigns,
                        (SELECT sum(cost) FROM performance_daily p
                          WHERE p.account_id = x.account_id AND p.day > ?) AS cost,
                        (SELECT sum(conversion_value) FROM performance_daily p
                          WHERE p.account_id = x.account_id AND p.day > ?) AS value
                 FROM accounts x WHERE {where} ORDER BY x.account_id"""
        params = [since, since, *params]
    elif kind is ListKind.CAMPAIGNS:
        sql = """SELECT x.campaign_id, x.account_id, x.platform, x.name, x.status, x.daily_budget, a.currency,
                        x.bidding_strategy, x.target_roas, x.paused_by, k.cost, k.value
                 FROM campaigns x JOIN accounts a USING (account_id)
                 LEFT JOIN (SELECT campaign_id, sum(cost) AS cost, sum(conversion_value) AS value
                            FROM performance_daily WHERE day > ? GROUP BY 1) k USING (campaign_id)
                 WHERE {where} ORDER BY x.campaign_id"""
        params = [since, *params]
    elif kind is ListKind.ADGROUPS:
        sql = """SELECT x.ad_group_id, x.campaign_id, x.account_id, x.platform, x.name, x.status, x.cpc_bid,
                        x.daily_budget, a.currency, x.paused_by
                 FROM ad_groups x JOIN accounts a USING (account_id) WHERE {where} ORDER BY x.ad_group_id"""
    elif kind is ListKind.ADS:
        sql = """SELECT x.ad_id, x.ad_group_id, x.campaign_id, x.account_id, x.platform, x.format,
                        x.headlines[1] AS headline, x.sku, x.status, x.paused_by
                 FROM ads x WHERE {where} ORDER BY x.ad_id"""
    else:
        stock = {"IN_STOCK": "i.stock > 0", "OUT_OF_STOCK": "coalesce(i.stock, 0) <= 0"}
        if wanted is not None:
            where.append(stock[wanted])
        sql = """SELECT x.sku, x.name, x.category, x.brand, x.price, x.sale_price, x.currency, i.stock
                 FROM products x LEFT JOIN inventory i USING (sku) WHERE {where} ORDER BY x.sku"""
    sql = sql.format(where=" AND ".join(where))
    total = con.execute(f"SELECT count(*) FROM ({sql})", params).fetchall()[0][0]
    rows = _rows(con, f"{sql} LIMIT {int(limit)}", params)
    return [_shape(kind, row) for row in rows], total


def _shape(kind: ListKind, row: dict[str, Any]) -> dict[str, Any]:
    """Money columns become ``Money`` in the row's currency; KPI sums become spend and ROAS."""
    if kind is ListKind.ACCOUNTS:
        cost, value = row.pop("cost"), row.pop("value")
        row["spend_28d"] = _money(cost or Decimal(0), row["currency"])
        row["roas_28d"] = _roas(value, cost)
    elif kind is ListKind.CAMPAIGNS:
        currency = row.pop("currency")
        cost, value = row.pop("cost"), row.pop("value")
        row["daily_budget"] = _money(row["daily_budget"], currency)
        row["spend_28d"] = _money(cost or Decimal(0), currency)
        row["roas_28d"] = _roas(value, cost)
    elif kind is ListKind.ADGROUPS:
        currency = row.pop("currency")
        row["cpc_bid"] = _money(row["cpc_bid"], currency)
        row["daily_budget"] = _money(row["daily_budget"], currency)
    elif kind is ListKind.PRODUCTS:
        currency = row.pop("currency")
        row["price"] = _money(row["price"], currency)
        row["sale_price"] = _money(row["sale_price"], currency)
        row["in_stock"] = bool(row["stock"] and row["stock"] > 0)
    return row


_COLUMNS: dict[ListKind, list[tuple[str, str]]] = {
    ListKind.ACCOUNTS: [("account_id", "account"), ("platform", "platform"), ("name", "name"),
                        ("currency", "currency"), ("campaigns", "campaigns"), ("spend_28d", "spend 28d"),
                        ("roas_28d", "ROAS 28d")],
    ListKind.CAMPAIGNS: [("campaign_id", "campaign"), ("name", "name"), ("status", "status"),
                         ("daily_budget", "budget/day"), ("bidding_strategy", "bidding"), ("target_roas", "tROAS"),
                         ("spend_28d", "spend 28d"), ("roas_28d", "ROAS 28d"), ("paused_by", "paused by")],
    ListKind.ADGROUPS: [("ad_group_id", "ad group / ad set"), ("campaign_id", "campaign"), ("name", "name"),
                        ("status", "status"), ("cpc_bid", "CPC bid"), ("daily_budget", "budget/day"),
                        ("paused_by", "paused by")],
    ListKind.ADS: [("ad_id", "ad"), ("ad_group_id", "ad group"), ("campaign_id", "campaign"), ("format", "format"),
                   ("headline", "headline"), ("sku", "sku"), ("status", "status"), ("paused_by", "paused by")],
    ListKind.PRODUCTS: [("sku", "sku"), ("name", "name"), ("category", "category"), ("price", "price"),
                        ("sale_price", "sale price"), ("stock", "stock")],
}
_RIGHT_ALIGNED = {"campaigns", "spend_28d", "roas_28d", "daily_budget", "target_roas", "cpc_bid", "price",
                  "sale_price", "stock"}
# Free text wraps; everything else (ids, statuses, money) is kept whole, because a truncated id is useless.
_WRAPPING = {"name", "headline", "bidding_strategy", "category", "paused_by"}


def cell(key: str, value: Any) -> str:
    """A table cell: money with its currency, empty for None, strategy names in words so they can wrap."""
    if value is None:
        return ""
    if key == "bidding_strategy":
        return str(value).replace("_", " ").lower()
    if key == "target_roas" and isinstance(value, Decimal):
        return f"{value.normalize():f}"  # the column is DECIMAL(10, 4): 3.5000 reads worse than 3.5
    return str(value)


def render_rows(out: Any, kind: ListKind, rows: list[dict[str, Any]], total: int) -> None:
    """Print ``rows`` as a rich table with a footer when the limit cut the list."""
    from rich.table import Table

    table = Table(title=f"{kind} ({total})" if total == len(rows) else f"{kind} ({len(rows)} of {total})")
    # A column empty in every row (no pauses, no ad-set budgets on Google) only costs width.
    columns = [(key, header) for key, header in _COLUMNS[kind] if any(row.get(key) is not None for row in rows)]
    cells = [[cell(key, row.get(key)) for key, _ in columns] for row in rows]
    for index, (key, header) in enumerate(columns):
        justify = "right" if key in _RIGHT_ALIGNED else "left"
        if key in _WRAPPING:
            table.add_column(header, justify=justify, overflow="fold")
        else:
            widest = max((len(line[index]) for line in cells), default=0)
            table.add_column(header, justify=justify, no_wrap=True, min_width=widest)
    for line in cells:
        table.add_row(*line)
    out.print(table)
    if total > len(rows):
        out.print(f"{total - len(rows)} more not shown; use --limit {total} to see all")


def register(app: typer.Typer) -> None:
    """Add the ``ls`` command."""

    @app.command("ls")
    def ls(kind: KindArg, account: AccountOpt = None, status: StatusOpt = None, limit: LimitOpt = DEFAULT_LIMIT,
           json_out: JsonOpt = False, home: HomeOpt = None) -> None:
        """List accounts, campaigns, adgroups (ad groups and Meta ad sets), ads or products in the warehouse."""
        con = open_warehouse(settings_for(home))
        try:
            rows, total = list_rows(con, kind, account_id=account, status=status, limit=limit)
        finally:
            con.close()
        if json_out:
            print_json({"kind": str(kind), "total": total, "shown": len(rows), "items": rows})
            return
        render_rows(console(), kind, rows, total)
