"""A hand-written miniature warehouse for the sandbox, forecast and listing tests.

Small enough to reason about row by row, independent of the demo generator, and shaped to hit every
sandbox rule: a budget-limited and an unconstrained Google campaign, a REMOVED campaign, an ad group
with three enabled responsive search ads, a Meta CBO campaign and a Meta campaign with ad-set budgets.
Performance covers the 28 days ending on ``LAST_DAY``; the numbers follow closed-form curves so the
forecast tests know what the fit should find.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb

from tools.warehouse.schema import connect

GOOGLE = "1234567890"
META = "act_1001"
LAST_DAY = date(2026, 11, 30)
DAYS = 28
CREATED = datetime(2026, 1, 1, 9, 0)

# Daily budgets of the campaigns / ad sets that hold one.
LIMITED_BUDGET = Decimal("50.00")     # gc-001: spends its budget nearly every day
OPEN_BUDGET = Decimal("100.00")       # gc-002: spends about 40 a day, never near its budget
ADSET_BUDGET = Decimal("20.00")       # mas-0002


def _rsa(n: int) -> tuple[list[str], list[str]]:
    return [f"Rosen Angebot {n}", f"Frische Blumen {n}", f"Heute bestellen {n}"], \
        ["Blumen direkt vom Gärtner.", "Lieferung am nächsten Tag."]


def build(con: duckdb.DuckDBPyConnection, *, with_performance: bool = True) -> None:
    """Fill an empty warehouse (schema already created) with the tiny world."""
    con.execute("INSERT INTO meta VALUES ('seed', 'tiny'), ('today', ?)", [str(LAST_DAY + timedelta(days=1))])
    con.execute("INSERT INTO accounts VALUES (?, 'google', 'Blumen Google', 'EUR', 'Europe/Berlin'), "
                "(?, 'meta', 'Blumen Meta', 'EUR', 'Europe/Berlin')", [GOOGLE, META])
    products = [
        ("P1", "Rosenstrauss", "roses", Decimal("39.90"), 10),
        ("P2", "Tulpenmix", "tulips", Decimal("24.90"), 0),
        ("P3", "Orchidee", "orchids", Decimal("49.00"), 5),
    ]
    for sku, name, category, price, stock in products:
        con.execute("INSERT INTO products VALUES (?, ?, ?, 'Blumenhaus', ?, NULL, 'EUR', 0.40, ?, ?)",
                    [sku, name, category, price, f"{name} vom Gärtner", f"https://blumen.example.de/{sku.lower()}"])
        con.execute("INSERT INTO inventory VALUES (?, ?, ?)", [sku, stock, CREATED])
    campaigns = [
        ("gc-001", GOOGLE, "google", "Rosen Search", "ENABLED", LIMITED_BUDGET, "TARGET_ROAS", Decimal("4"), None),
        ("gc-002", GOOGLE, "google", "Tulpen Search", "ENABLED", OPEN_BUDGET, "MANUAL_CPC", None, None),
        ("gc-003", GOOGLE, "google", "Alt Kampagne", "REMOVED", Decimal("10.00"), "MANUAL_CPC", None, None),
        ("mc-001", META, "meta", "Meta CBO", "ENABLED", Decimal("30.00"), "LOWEST_COST", None, None),
        ("mc-002", META, "meta", "Meta Ad Sets", "ENABLED", None, "LOWEST_COST", None, Decimal("12.00")),
    ]
    for cid, acc, platform, name, status, budget, strategy, roas, cpa in campaigns:
        con.execute("INSERT INTO campaigns VALUES (?, ?, ?, ?, ?, ?, 'EUR', ?, ?, ?, NULL, NULL)",
                    [cid, acc, platform, name, status, budget, strategy, roas, cpa])
    ad_groups = [
        ("gag-0001", "gc-001", GOOGLE, "google", "Rosen", "ENABLED", Decimal("0.80"), None),
        ("gag-0002", "gc-002", GOOGLE, "google", "Tulpen", "ENABLED", Decimal("0.60"), None),
        ("gag-0003", "gc-003", GOOGLE, "google", "Alt", "ENABLED", Decimal("0.50"), None),
        ("mas-0001", "mc-001", META, "meta", "CBO Set", "ENABLED", None, None),
        ("mas-0002", "mc-002", META, "meta", "Set Tulpen", "ENABLED", None, ADSET_BUDGET),
        ("mas-0003", "mc-002", META, "meta", "Set Rosen", "ENABLED", None, Decimal("15.00")),
    ]
    for row in ad_groups:
        con.execute("INSERT INTO ad_groups VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)", list(row))
    ads = [
        ("gad-00001", "gag-0001", "gc-001", GOOGLE, "google", "P1", "ENABLED"),
        ("gad-00002", "gag-0001", "gc-001", GOOGLE, "google", "P1", "ENABLED"),
        ("gad-00003", "gag-0001", "gc-001", GOOGLE, "google", "P3", "ENABLED"),
        ("gad-00004", "gag-0001", "gc-001", GOOGLE, "google", "P1", "PAUSED"),
        ("gad-00005", "gag-0002", "gc-002", GOOGLE, "google", "P2", "ENABLED"),
        ("gad-00006", "gag-0002", "gc-002", GOOGLE, "google", "P2", "REMOVED"),
        ("gad-00007", "gag-0003", "gc-003", GOOGLE, "google", "P1", "ENABLED"),
    ]
    for n, (ad_id, ag, cid, acc, platform, sku, status) in enumerate(ads, start=1):
        headlines, descriptions = _rsa(n)
        con.execute("INSERT INTO ads VALUES (?, ?, ?, ?, ?, ?, 'google_rsa', ?, ?, NULL, ?, ?, NULL, ?)",
                    [ad_id, ag, cid, acc, platform, sku, headlines, descriptions,
                     f"https://blumen.example.de/{sku.lower()}", status, CREATED])
    for ad_id, ag, cid, sku in (("mad-00001", "mas-0001", "mc-001", "P1"), ("mad-00002", "mas-0002", "mc-002", "P2"),
                                ("mad-00003", "mas-0003", "mc-002", "P1")):
        con.execute("INSERT INTO ads VALUES (?, ?, ?, ?, 'meta', ?, 'meta_link', ?, ?, ?, ?, 'ENABLED', NULL, ?)",
                    [ad_id, ag, cid, META, sku, ["Frische Blumen"], ["Ab 24,90 €"], "Blumen vom Gärtner.",
                     f"https://blumen.example.de/{sku.lower()}", CREATED])
    con.execute("INSERT INTO keywords VALUES ('gkw-00001', 'gag-0001', 'gc-001', ?, 'rosen kaufen', 'PHRASE', FALSE, "
                "'ENABLED', 0.90), ('gkw-00002', NULL, 'gc-001', ?, 'gratis', 'BROAD', TRUE, 'ENABLED', NULL)",
                [GOOGLE, GOOGLE])
    if with_performance:
        _performance(con)


def _performance(con: duckdb.DuckDBPyConnection) -> None:
    """28 days of rows following conversions = a * spend^b with known b per campaign."""
    rows = []
    for offset in range(DAYS):
        day = LAST_DAY - timedelta(days=DAYS - 1 - offset)
        wobble = math.sin(offset * 1.7)  # deterministic day-to-day variation in [-1, 1]
        # gc-001: budget-limited on 3 of every 4 days (spend >= 95 % of 50), else ~40.
        limited = offset % 4 != 0
        spend_1 = 50.0 + 2.0 * wobble if limited else 40.0 + 3.0 * wobble
        # gc-002: demand-limited around 40 a day with wide variation (a good curve fit: b = 0.6).
        spend_2 = 40.0 * (1.0 + 0.5 * wobble)
        spend_m = 18.0 + 3.0 * wobble  # mas-0002, budget 20: limited on some days
        for ad_id, ag, cid, acc, platform, sku, spend, b in (
            ("gad-00001", "gag-0001", "gc-001", GOOGLE, "google", "P1", spend_1 * 0.6, 0.7),
            ("gad-00003", "gag-0001", "gc-001", GOOGLE, "google", "P3", spend_1 * 0.4, 0.7),
            ("gad-00005", "gag-0002", "gc-002", GOOGLE, "google", "P2", spend_2, 0.6),
            ("mad-00002", "mas-0002", "mc-002", META, "meta", "P2", spend_m, 0.8),
        ):
            conversions = 0.5 * spend ** b
            clicks = round(2.0 * spend)
            rows.append([day, ad_id, ag, cid, acc, platform, sku, clicks * 20, clicks,
                         Decimal(f"{spend:.2f}"), Decimal(f"{conversions:.2f}"), Decimal(f"{conversions * 40:.2f}")])
    con.executemany("INSERT INTO performance_daily VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def make(path: Path, **kwargs: bool) -> duckdb.DuckDBPyConnection:
    """A connection to a new tiny-world warehouse at ``path``."""
    con = connect(path)
    build(con, **kwargs)
    return con
