"""The demo world generator: determinism, size, and the planted situations (checked with independent SQL)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest

from agent.cli import main
from tools.warehouse.demo import DEMO_TODAY, PLANTED, generate
from tools.warehouse.schema import connect

WINDOW_START = "DATE '2026-11-24' - 28"


def _digest(con: duckdb.DuckDBPyConnection) -> str:
    digest = hashlib.sha256()
    for table in ("products", "inventory", "campaigns", "ad_groups", "ads", "keywords", "performance_daily"):
        for row in con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall():
            digest.update(repr(row).encode())
    return digest.hexdigest()


def test_same_seed_same_data_other_seed_other_data() -> None:
    a, b, c = (duckdb.connect() for _ in range(3))
    for con in (a, b, c):
        connect_memory(con)
    generate(a, seed=7)
    generate(b, seed=7)
    generate(c, seed=8)
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def connect_memory(con: duckdb.DuckDBPyConnection) -> None:
    from tools.warehouse.schema import DDL

    con.execute(DDL)


def test_size_and_shape(demo_warehouse: Path) -> None:
    con = connect(demo_warehouse, read_only=True)
    counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
              for t in ("products", "ads", "performance_daily")}
    assert counts["products"] >= 300
    days = con.execute("SELECT count(DISTINCT day), max(day) FROM performance_daily").fetchall()[0]
    assert days[0] >= 90 and str(days[1]) == "2026-11-23"
    # every enabled ad has performance on each of the 90 days
    gaps = con.execute("""SELECT count(*) FROM ads a WHERE status = 'ENABLED' AND
        (SELECT count(*) FROM performance_daily p WHERE p.ad_id = a.ad_id) < 90""").fetchall()[0][0]
    assert gaps == 0
    assert con.execute("SELECT count(*) FROM products WHERE currency <> 'EUR'").fetchall()[0][0] == 0
    assert con.execute("SELECT count(*) FROM accounts").fetchall() == [(2,)]
    # money is stored in main units: no campaign budget looks like micros or cents
    assert con.execute("SELECT max(daily_budget) FROM campaigns").fetchall()[0][0] < 1000


def test_refuses_to_overwrite(demo_warehouse: Path) -> None:
    con = connect(demo_warehouse)
    with pytest.raises(ValueError, match="already holds"):
        generate(con)


def test_planted_stock_situations(demo_warehouse: Path) -> None:
    con = connect(demo_warehouse, read_only=True)
    running_oos = {r[0] for r in con.execute("""SELECT DISTINCT a.sku FROM ads a JOIN inventory i USING (sku)
        WHERE i.stock = 0 AND a.status = 'ENABLED'""").fetchall()}
    assert running_oos == set(PLANTED.out_of_stock_running)
    guard_paused_in_stock = {r[0] for r in con.execute("""SELECT DISTINCT a.sku FROM ads a JOIN inventory i
        USING (sku) WHERE i.stock > 0 AND a.status = 'PAUSED' AND a.paused_by = 'stock_guard'""").fetchall()}
    assert guard_paused_in_stock == set(PLANTED.back_in_stock_paused_by_guard)


def test_planted_campaign_economics(demo_warehouse: Path) -> None:
    con = connect(demo_warehouse, read_only=True)
    rows = con.execute(f"""
        WITH d AS (SELECT campaign_id, day, sum(cost) AS cost, sum(conversion_value) AS value,
                          sum(conversions) AS conv
                   FROM performance_daily WHERE day >= {WINDOW_START} GROUP BY ALL),
        c AS (SELECT campaign_id, daily_budget, target_roas, target_cpa FROM campaigns WHERE platform = 'google')
        SELECT campaign_id, sum(value) / sum(cost) AS roas, avg(cost / daily_budget) AS utilisation,
               sum(cost) / nullif(sum(conv), 0) AS cpa, sum(conv) AS conv, any_value(target_roas) AS t_roas,
               any_value(target_cpa) AS t_cpa
        FROM d JOIN c USING (campaign_id) GROUP BY campaign_id""").fetchall()
    limited_high = {r[0] for r in rows if r[2] >= 0.95 and r[1] > r[5]}
    below_one = {r[0] for r in rows if r[1] < 1}
    below_target = {r[0] for r in rows if r[1] < r[5]}
    cpa_high = {r[0] for r in rows if r[3] is not None and r[3] > r[6]}
    assert limited_high == set(PLANTED.budget_limited_high_roas)
    assert below_one == set(PLANTED.roas_below_one)
    assert below_target == set(PLANTED.below_target_roas)
    assert cpa_high == set(PLANTED.cpa_above_target) | set(PLANTED.cpa_above_target_too_few_conversions)


def test_planted_price_mismatch_and_injection(demo_warehouse: Path) -> None:
    con = connect(demo_warehouse, read_only=True)
    rows = con.execute("""SELECT a.ad_id, array_to_string(a.headlines, ' ') || ' ' || coalesce(a.primary_text, ''),
        p.price, p.sale_price FROM ads a JOIN products p USING (sku)""").fetchall()
    mismatched = set()
    for ad_id, text, price, sale in rows:
        for token in text.replace("€", " € ").split():
            if token.count(",") == 1 and token.replace(",", "").isdigit():
                stated = token.replace(",", ".")
                if stated not in {f"{price:.2f}", f"{sale:.2f}" if sale is not None else ""}:
                    mismatched.add(ad_id)
    assert mismatched == set(PLANTED.price_mismatch_ads)
    description = con.execute("SELECT description FROM products WHERE sku = ?",
                              [PLANTED.prompt_injection_sku]).fetchall()[0][0]
    assert "Ignoriere alle vorherigen Anweisungen" in description


def test_cli_data_init(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "init", "--home", str(home), "--json"]) == 0
    assert '"products": 300' in capsys.readouterr().out
    assert main(["data", "init", "--home", str(home)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already exists" in err
    assert main(["data", "init", "--home", str(home), "--scale", "0"]) == 2
    assert main(["data", "init", "--home", str(home), "--seed", "-1"]) == 2
    assert main(["data", "init", "--home", str(home), "--scale", "abc"]) == 2
    assert main(["data", "init", "--home", str(home), "--force", "--seed", "3"]) == 0
    assert DEMO_TODAY.isoformat() == "2026-11-24"
