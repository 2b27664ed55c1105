"""Time typical BI tool queries on a scale-100 demo world against a same-run baseline.

    .venv/bin/python bench/bench_bi.py [--scale 100] [--repeat 5]

The baseline is the cheapest thing any BI answer has to do: one full scan summing ``cost`` over
``performance_daily`` on the same connection. Each query is run once to warm up and then
``--repeat`` times; the median is printed next to the baseline's median and their ratio. Queries go
through the tool (validation, compilation, the read-only path, shaping the result), not raw SQL;
for some, the same question written by hand in SQL is timed too, to show what the layer costs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.settings import load_settings
from tools.bi import BIQuery, query_performance
from tools.deps import ReadOnlyWarehouse, ToolDeps
from tools.warehouse.demo import init_home
from tools.warehouse.schema import connect

QUERIES: dict[str, dict[str, Any]] = {
    "top 20 campaigns, 30 days, spend/roas/cpa": {
        "metrics": ["spend", "roas", "cpa"], "dimensions": ["campaign"], "last_days": 30},
    "category x week, 90 days, vs previous period": {
        "metrics": ["spend", "revenue", "roas"], "dimensions": ["category", "week"], "last_days": 90,
        "compare_previous": True, "limit": 100},
    "top 20 products by revenue in 2 categories, 7 days": {
        "metrics": ["revenue", "aov", "cvr"], "dimensions": ["product"], "last_days": 7, "order_by": "revenue",
        "filters": [{"dimension": "category", "op": "in", "values": ["Zelte", "Rucksäcke"]}]},
    "top 20 ads by spend, 30 days (many groups)": {
        "metrics": ["spend", "ctr", "cpc"], "dimensions": ["ad"], "last_days": 30},
    "daily spend of campaigns named like 'sommer', 30 days": {
        "metrics": ["spend", "clicks"], "dimensions": ["day"], "last_days": 30,
        "filters": [{"dimension": "campaign", "op": "contains", "values": ["sommer"]}]},
    "account totals, 7 days vs previous": {
        "metrics": ["spend", "roas", "ctr"], "dimensions": ["account"], "last_days": 7, "compare_previous": True},
}


# The same question written by hand for some queries (no previous period, no names, no totals): how
# much of a query's time is the question itself and how much the semantic layer around it.
HAND_SQL: dict[str, str] = {
    "top 20 campaigns, 30 days, spend/roas/cpa":
        "SELECT campaign_id, sum(cost) s, sum(conversion_value) / sum(cost), sum(cost) / sum(conversions) "
        "FROM performance_daily WHERE day > (SELECT max(day) FROM performance_daily) - 30 "
        "GROUP BY 1 ORDER BY s DESC LIMIT 20",
    "category x week, 90 days, vs previous period":
        "SELECT prd.category, date_trunc('week', p.day), sum(p.cost), sum(p.conversion_value) "
        "FROM performance_daily p JOIN products prd ON prd.sku = p.sku "
        "WHERE p.day > (SELECT max(day) FROM performance_daily) - 90 GROUP BY 1, 2",
    "top 20 ads by spend, 30 days (many groups)":
        "SELECT ad_id, sum(cost) s, sum(clicks) / sum(impressions), sum(cost) / sum(clicks) FROM performance_daily "
        "WHERE day > (SELECT max(day) FROM performance_daily) - 30 GROUP BY 1 ORDER BY s DESC LIMIT 20",
}


def _median_ms(fn: Callable[[], Any], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    """Generate the world, time the queries, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="adpilot-bench-bi-") as tmp:
        path = Path(tmp) / "warehouse.duckdb"
        started = time.perf_counter()
        report = init_home(path, scale=args.scale)
        print(f"scale {args.scale}: {report.counts['performance_daily']:,} performance rows, "
              f"{report.counts['ads']:,} ads, {report.counts['products']:,} products, "
              f"generated in {time.perf_counter() - started:.1f} s")
        con = connect(path)
        deps = ToolDeps(warehouse=ReadOnlyWarehouse(con), platform_for=lambda _a: None,  # type: ignore[arg-type,return-value]
                        settings=load_settings(home=Path(tmp)))
        baseline = _median_ms(lambda: con.execute("SELECT sum(cost) FROM performance_daily").fetchall(), args.repeat)
        print(f"\n{'query':58} {'median ms':>10} {'x baseline':>11} {'hand SQL ms':>12}")
        print(f"{'baseline: SELECT sum(cost) FROM performance_daily':58} {baseline:10.1f} {1.0:11.1f}")
        for name, raw in QUERIES.items():
            query = BIQuery.model_validate(raw)
            ms = _median_ms(lambda q=query: query_performance(deps, q), args.repeat)
            hand = (f"{_median_ms(lambda sql=HAND_SQL[name]: con.execute(sql).fetchall(), args.repeat):12.1f}"
                    if name in HAND_SQL else f"{'-':>12}")
            print(f"{name:58} {ms:10.1f} {ms / baseline:11.1f} {hand}")
        con.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
