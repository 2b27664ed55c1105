"""`adpilot demo` runs a slash command and a scripted free-text request through the planner, dry run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.cli import main


def test_demo_runs_the_planner_offline(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--json", "--home", str(home)]) == 0
    data = json.loads(capsys.readouterr().out)
    slash, free_text = data["runs"]
    assert slash["request"].startswith("/budget") and slash["status"] == "done"
    assert "allowed -> validated" in slash["report"]
    assert free_text["status"] == "done"
    # The scripted planner proposes pausing exactly the running ads of out-of-stock products.
    import duckdb

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    expected = {r[0] for r in con.execute("""SELECT a.ad_id FROM ads a JOIN inventory i USING (sku)
        WHERE i.stock = 0 AND a.status = 'ENABLED'""").fetchall()}
    con.close()
    proposed = {line.split()[3].rstrip(":") for line in free_text["report"].splitlines()
                if line.startswith("- pause ad")}
    assert proposed == expected
    jobs = {j["detector"]: j for j in data["nightly_jobs"]}
    assert {"stock_guard", "roas_rebalance", "cpa_guard", "creative_refresh", "price_mismatch"} <= set(jobs)
    assert all(j["mode"] == "dry_run" for j in jobs.values())
    paused = {f["action"]["target"]["id"] for f in jobs["stock_guard"]["findings"]
              if f["action"]["kind"] == "set_status" and f["action"]["status"] == "PAUSED"}
    assert paused == expected
    # nothing was applied by the demo: every ad of an out-of-stock product is still running
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM sandbox_mutations").fetchall() == [(0,)]
    con.close()
