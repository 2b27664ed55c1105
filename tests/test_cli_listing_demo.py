"""``adpilot ls`` and ``adpilot demo`` in-process, on temp homes."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from rich.console import Console

from agent.cli import main
from agent.cli.demo import render_changeset
from agent.domain import ActionResult, ChangeSet, EntityRef, Money, SetBudget
from tests import tiny_world as tw
from tools.forecast import forecast


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def one_line_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err
    return lines[0]


@pytest.fixture
def tiny_home(home: Path) -> Path:
    tw.make(home / "warehouse.duckdb").close()
    return home


# ------------------------------------------------------------------------------------------------ ls

def test_ls_campaigns_json_matches_the_warehouse(capsys: pytest.CaptureFixture[str], demo_warehouse: Path,
                                                 home: Path) -> None:
    data = run_json(capsys, "ls", "campaigns", "--json", "--home", str(home), "--limit", "1000")
    con = duckdb.connect(str(demo_warehouse), read_only=True)
    expected = [r[0] for r in con.execute("SELECT campaign_id FROM campaigns ORDER BY 1").fetchall()]
    budgets = dict(con.execute("SELECT campaign_id, daily_budget FROM campaigns").fetchall())
    con.close()
    assert data["kind"] == "campaigns" and data["total"] == len(expected) == data["shown"]
    assert [c["campaign_id"] for c in data["items"]] == expected
    for item in data["items"]:
        if budgets[item["campaign_id"]] is None:
            assert item["daily_budget"] is None  # a Meta campaign whose ad sets hold the budgets
        else:
            assert item["daily_budget"] == {"amount": f"{budgets[item['campaign_id']]:.2f}", "currency": "EUR"}
        assert item["spend_28d"]["currency"] == "EUR"


def test_ls_filters(capsys: pytest.CaptureFixture[str], demo_warehouse: Path, home: Path) -> None:
    con = duckdb.connect(str(demo_warehouse), read_only=True)
    paused = [r[0] for r in con.execute("SELECT ad_id FROM ads WHERE status = 'PAUSED' ORDER BY 1").fetchall()]
    meta_campaigns = con.execute("SELECT count(*) FROM campaigns WHERE account_id = 'act_1001'").fetchall()[0][0]
    sold_out = [r[0] for r in con.execute("SELECT sku FROM inventory WHERE stock <= 0 ORDER BY 1").fetchall()]
    con.close()
    data = run_json(capsys, "ls", "ads", "--status", "paused", "--json", "--home", str(home), "--limit", "1000")
    assert [a["ad_id"] for a in data["items"]] == paused
    data = run_json(capsys, "ls", "campaigns", "--account", "act_1001", "--json", "--home", str(home))
    assert data["total"] == meta_campaigns and {c["account_id"] for c in data["items"]} == {"act_1001"}
    data = run_json(capsys, "ls", "products", "--status", "OUT_OF_STOCK", "--json", "--home", str(home))
    assert [p["sku"] for p in data["items"]] == sold_out and not any(p["in_stock"] for p in data["items"])
    data = run_json(capsys, "ls", "ads", "--limit", "3", "--json", "--home", str(home))
    assert data["shown"] == 3 and data["total"] > 3


def test_ls_table_shows_money_with_currency(capsys: pytest.CaptureFixture[str], tiny_home: Path) -> None:
    assert main(["ls", "adgroups", "--account", tw.META, "--home", str(tiny_home)]) == 0
    out = capsys.readouterr().out
    assert "mas-0002" in out and "20.00 EUR" in out and "gag-0001" not in out
    assert main(["ls", "campaigns", "--limit", "2", "--home", str(tiny_home)]) == 0
    out = capsys.readouterr().out
    assert "gc-001" in out and "50.00 EUR" in out and "3 more not shown" in out
    assert main(["ls", "accounts", "--home", str(tiny_home)]) == 0
    assert "Blumen Meta" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "fragment"), [
    (["ls", "keywords"], "is not one of"),
    (["ls", "campaigns", "--account", "act_9999"], "unknown account"),
    (["ls", "ads", "--status", "ARCHIVED"], "unknown status"),
    (["ls", "accounts", "--status", "ENABLED"], "no status filter"),
    (["ls", "products", "--account", tw.GOOGLE], "drop --account"),
    (["ls", "ads", "--limit", "0"], "range"),
])
def test_ls_bad_input_exits_2_with_one_line(capsys: pytest.CaptureFixture[str], tiny_home: Path, argv: list[str],
                                             fragment: str) -> None:
    assert fragment in one_line_error(capsys, *argv, "--home", str(tiny_home))


def test_ls_without_a_warehouse(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    assert "adpilot demo" in one_line_error(capsys, "ls", "campaigns", "--home", str(home))
    assert not (home / "warehouse.duckdb").exists()  # listing never creates one


# ---------------------------------------------------------------------------------------------- demo

def independent_out_of_stock_running(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Out-of-stock ads that serve, computed in Python from whole tables (not the demo module's query)."""
    stock = dict(con.execute("SELECT sku, stock FROM inventory").fetchall())
    groups = dict(con.execute("SELECT ad_group_id, status FROM ad_groups").fetchall())
    campaigns = dict(con.execute("SELECT campaign_id, status FROM campaigns").fetchall())
    return {ad for ad, sku, group, campaign, status in con.execute(
        "SELECT ad_id, sku, ad_group_id, campaign_id, status FROM ads").fetchall()
            if status == groups[group] == campaigns[campaign] == "ENABLED" and sku in stock and stock[sku] <= 0}


def test_demo_creates_the_world_and_dry_runs(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    data = run_json(capsys, "demo", "--json", "--home", str(home))
    assert data["created"] is True
    assert {a["account_id"] for a in data["accounts"]} == {"1234567890", "act_1001"}
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    actions = data["changeset"]["actions"]
    pauses = {a["target"]["id"] for a in actions if a["kind"] == "set_status"}
    assert pauses == independent_out_of_stock_running(con) and pauses
    [raise_budget] = [a for a in actions if a["kind"] == "set_budget"]
    campaign = raise_budget["target"]["id"]
    old = con.execute("SELECT daily_budget FROM campaigns WHERE campaign_id = ?", [campaign]).fetchall()[0][0]
    assert Decimal(raise_budget["daily_budget"]["amount"]) == (old * Decimal("1.1")).quantize(Decimal("0.01"))
    last = con.execute("SELECT max(day) FROM performance_daily").fetchall()[0][0]
    spend = [r[0] for r in con.execute("SELECT sum(cost) FROM performance_daily WHERE campaign_id = ? AND day > ? "
                                       "GROUP BY day", [campaign, last - timedelta(days=28)]).fetchall()]
    assert sum(1 for s in spend if s >= Decimal("0.95") * old) >= 14  # budget-limited on at least half the days
    assert [v["status"] for v in data["validation"]] == ["validated"] * len(actions)
    total = data["forecast"]["totals"][0]
    assert Decimal(total["delta"]["spend"]) == sum(Decimal(f["delta"]["spend"]) for f in data["forecast"]["actions"])
    # A dry run: nothing applied.
    assert con.execute("SELECT count(*) FROM sandbox_mutations").fetchall()[0][0] == 0
    assert independent_out_of_stock_running(con) == pauses
    con.close()


def test_demo_reuses_an_existing_world(capsys: pytest.CaptureFixture[str], demo_warehouse: Path, home: Path) -> None:
    def counts() -> tuple[int, int]:
        con = duckdb.connect(str(demo_warehouse), read_only=True)
        try:
            return con.execute("SELECT (SELECT count(*) FROM ads), (SELECT count(*) FROM performance_daily)"
                               ).fetchall()[0]
        finally:
            con.close()

    before = counts()
    assert main(["demo", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "Using the warehouse" in out and "Dry run" in out and "validated" in out and "EUR" in out
    assert run_json(capsys, "demo", "--json", "--home", str(home))["created"] is False
    assert counts() == before


def test_render_changeset_shows_failures(tmp_path: Path) -> None:
    con = tw.make(tmp_path / "warehouse.duckdb")
    target = EntityRef(platform="google", account_id=tw.GOOGLE, kind="campaign", id="gc-001")
    changeset = ChangeSet(actions=[SetBudget(target=target, daily_budget=Money.of("60.00", "EUR"), reason="test",
                                             idempotency_key="render-test-1")], summary="one budget")
    results = [ActionResult(idempotency_key="render-test-1", status="failed", error_code="CURRENCY_MISMATCH",
                            message="not in EUR")]
    out = Console(record=True, width=140)
    render_changeset(out, changeset, results, forecast(con, changeset.actions))
    text = out.export_text()
    assert "CURRENCY_MISMATCH" in text and "1 failed" in text and "one budget" in text and "ROAS" in text
    con.close()
