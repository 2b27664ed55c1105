"""The BI semantic layer against the demo world.

Expected values are computed here in plain Python from the raw performance rows, never through the
compiler under test.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from agent.errors import BadInput
from tools.bi import BIQuery, compile_query, query_performance
from tools.deps import ReadOnlyWarehouse, ToolDeps, WarehouseWriteAttempt
from tools.registry import REGISTRY, all_tools, to_langchain


@pytest.fixture
def deps(demo_runtime: Any) -> ToolDeps:
    return ToolDeps.from_runtime(demo_runtime)


@pytest.fixture
def facts(demo_runtime: Any) -> list[dict[str, Any]]:
    """Every performance row, with the product category and campaign name attached in Python."""
    con = demo_runtime.warehouse
    category = dict(con.execute("SELECT sku, category FROM products").fetchall())
    campaign_name = dict(con.execute("SELECT campaign_id, name FROM campaigns").fetchall())
    cur = con.execute("SELECT * FROM performance_daily")
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    for row in rows:
        row["category"] = category.get(row["sku"])
        row["campaign_name"] = campaign_name[row["campaign_id"]]
    return rows


def _sums(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"spend": sum((r["cost"] for r in rows), Decimal(0)),
            "impressions": sum(r["impressions"] for r in rows),
            "clicks": sum(r["clicks"] for r in rows),
            "conversions": sum((r["conversions"] for r in rows), Decimal(0)),
            "revenue": sum((r["conversion_value"] for r in rows), Decimal(0))}


def _ratio(num: Any, den: Any) -> float | None:
    return None if not den else round(float(num) / float(den), 4)


def _group(rows: list[dict[str, Any]], key: Any) -> dict[Any, dict[str, Any]]:
    groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    return {k: _sums(v) for k, v in groups.items()}


def _last_day(facts: list[dict[str, Any]]) -> date:
    return max(r["day"] for r in facts)


def _between(facts: list[dict[str, Any]], start: date, end: date) -> list[dict[str, Any]]:
    return [r for r in facts if start <= r["day"] <= end]


def test_top_campaigns_by_spend_with_totals_over_all_groups(deps: ToolDeps, facts: list[dict[str, Any]]) -> None:
    last = _last_day(facts)
    window = _between(facts, last - timedelta(days=6), last)
    by_campaign = _group(window, lambda r: r["campaign_id"])
    ranked = sorted(by_campaign, key=lambda c: (-by_campaign[c]["spend"], c))

    result = query_performance(deps, BIQuery(metrics=["spend", "roas", "cpa", "ctr"], dimensions=["campaign"],
                                             last_days=7, limit=5))
    assert (result.start, result.end) == (last - timedelta(days=6), last)
    assert result.currency == "EUR"
    assert [r.keys["campaign"] for r in result.rows] == ranked[:5]
    assert result.row_count == len(by_campaign)
    assert result.truncated is True
    top = by_campaign[ranked[0]]
    row = result.rows[0]
    assert row.values["spend"] == top["spend"]
    assert float(row.values["roas"]) == pytest.approx(_ratio(top["revenue"], top["spend"]), abs=1e-4)
    assert float(row.values["cpa"]) == pytest.approx(_ratio(top["spend"], top["conversions"]), abs=1e-4)
    assert float(row.values["ctr"]) == pytest.approx(_ratio(top["clicks"], top["impressions"]), abs=1e-4)
    assert row.labels["campaign"] == next(r["campaign_name"] for r in facts if r["campaign_id"] == ranked[0])
    total = _sums(window)
    assert result.totals["spend"] == total["spend"]
    assert float(result.totals["roas"]) == pytest.approx(_ratio(total["revenue"], total["spend"]), abs=1e-4)


def test_previous_period_comparison(deps: ToolDeps, facts: list[dict[str, Any]]) -> None:
    start, end = date(2026, 11, 10), date(2026, 11, 16)
    prev_start, prev_end = date(2026, 11, 3), date(2026, 11, 9)
    now = _group(_between(facts, start, end), lambda r: r["platform"])
    before = _group(_between(facts, prev_start, prev_end), lambda r: r["platform"])

    result = query_performance(deps, BIQuery(metrics=["spend", "conversions", "roas"], dimensions=["platform"],
                                             start=start, end=end, compare_previous=True, order_by="spend",
                                             ascending=True))
    assert (result.previous_start, result.previous_end) == (prev_start, prev_end)
    assert [r.keys["platform"] for r in result.rows] == sorted(now, key=lambda p: now[p]["spend"])
    for row in result.rows:
        platform = row.keys["platform"]
        assert row.values["spend"] == now[platform]["spend"]
        assert row.previous is not None and row.change is not None
        assert row.previous["spend"] == before[platform]["spend"]
        assert row.previous["conversions"] == before[platform]["conversions"]
        expected_change = (float(now[platform]["spend"]) - float(before[platform]["spend"])) / float(
            before[platform]["spend"])
        assert row.change["spend"] == pytest.approx(expected_change, abs=1e-4)
    assert result.previous_totals is not None
    assert result.previous_totals["spend"] == _sums(_between(facts, prev_start, prev_end))["spend"]


def test_category_by_week_with_a_campaign_name_filter(deps: ToolDeps, facts: list[dict[str, Any]]) -> None:
    start, end = date(2026, 10, 1), date(2026, 11, 23)
    chosen = [r for r in _between(facts, start, end) if "sommer" in r["campaign_name"].casefold()]
    assert chosen, "the demo world has a Sommer Sale campaign"
    expected = _group(chosen, lambda r: (r["category"], r["day"] - timedelta(days=r["day"].weekday())))

    result = query_performance(deps, BIQuery(
        metrics=["spend", "clicks"], dimensions=["category", "week"], start=start, end=end, limit=100,
        filters=[{"dimension": "campaign", "op": "contains", "values": ["SOMMER"]}]))
    got = {(r.keys["category"], date.fromisoformat(r.keys["week"])): r.values for r in result.rows}
    assert set(got) == set(expected)
    for key, values in got.items():
        assert values["spend"] == expected[key]["spend"]
        assert values["clicks"] == expected[key]["clicks"]
    # Grouping by week without order_by lists weeks in date order.
    weeks = [r.keys["week"] for r in result.rows]
    assert weeks == sorted(weeks)


def test_filters_by_exact_name_and_by_id_agree(deps: ToolDeps, facts: list[dict[str, Any]]) -> None:
    campaign_id, name = facts[0]["campaign_id"], facts[0]["campaign_name"]
    by_name = query_performance(deps, BIQuery(metrics=["spend"], last_days=30,
                                              filters=[{"dimension": "campaign", "values": [name]}]))
    by_id = query_performance(deps, BIQuery(metrics=["spend"], last_days=30,
                                            filters=[{"dimension": "campaign", "values": [campaign_id]}]))
    last = _last_day(facts)
    expected = _sums([r for r in _between(facts, last - timedelta(days=29), last)
                      if r["campaign_id"] == campaign_id])["spend"]
    assert by_name.totals["spend"] == by_id.totals["spend"] == expected
    assert by_name.rows[0].keys == {}


def test_products_filtered_by_category_list(deps: ToolDeps, facts: list[dict[str, Any]]) -> None:
    start = end = date(2026, 11, 20)
    day_rows = [r for r in _between(facts, start, end) if r["category"] in ("Zelte", "Rucksäcke")]
    expected = _group(day_rows, lambda r: r["sku"])
    result = query_performance(deps, BIQuery(
        metrics=["revenue", "aov", "cvr"], dimensions=["product"], start=start, end=end, limit=100,
        filters=[{"dimension": "category", "op": "in", "values": ["zelte", "Rucksäcke"]}]))
    assert {r.keys["product"] for r in result.rows} == set(expected)
    for row in result.rows:
        sums = expected[row.keys["product"]]
        assert row.values["revenue"] == sums["revenue"]
        aov = _ratio(sums["revenue"], sums["conversions"])
        assert (row.values["aov"] is None) is (aov is None)
        if aov is not None:
            assert float(row.values["aov"]) == pytest.approx(aov, abs=1e-4)


def test_zero_denominators_give_null_not_an_error(deps: ToolDeps, facts: list[dict[str, Any]]) -> None:
    no_clicks = _group(facts, lambda r: (r["ad_id"], r["day"]))
    ad_id, day = next(k for k, v in sorted(no_clicks.items()) if v["clicks"] == 0 and v["conversions"] == 0)
    result = query_performance(deps, BIQuery(metrics=["clicks", "cpc", "cvr", "cpa", "aov"], dimensions=["ad"],
                                             start=day, end=day,
                                             filters=[{"dimension": "ad", "values": [ad_id]}]))
    assert len(result.rows) == 1
    assert result.rows[0].values == {"clicks": 0, "cpc": None, "cvr": None, "cpa": None, "aov": None}


def test_a_range_without_data_and_an_empty_range_are_model_readable_errors(deps: ToolDeps,
                                                                           facts: list[dict[str, Any]]) -> None:
    first, last = min(r["day"] for r in facts), _last_day(facts)
    with pytest.raises(BadInput, match=f"data covers {first} to {last}"):
        query_performance(deps, BIQuery(metrics=["spend"], start=date(2020, 1, 1), end=date(2020, 1, 31)))
    spec = REGISTRY.get("query_performance")
    with pytest.raises(BadInput, match="empty date range: start 2026-11-10 is after end 2026-11-01"):
        spec.invoke(deps, {"metrics": ["spend"], "start": "2026-11-10", "end": "2026-11-01"})
    lc_tool = to_langchain(spec, deps)
    for bad, message in [
        ({"metrics": ["spend"]}, "a date range is required"),
        ({"metrics": ["profit"], "last_days": 7}, "metrics.0"),
        ({"metrics": ["spend"], "dimensions": ["customer"], "last_days": 7}, "dimensions.0"),
        ({"metrics": ["spend"], "start": "2025-01-01", "end": "2026-11-01"}, "more than 366 days"),
        ({"metrics": ["spend"], "last_days": 7, "filters": [{"dimension": "day", "op": "contains",
                                                             "values": ["2026"]}]}, "not contains"),
        ({"metrics": ["spend"], "last_days": 7, "filters": [{"dimension": "sku; DROP TABLE ads",
                                                             "values": ["x"]}]}, "filters.0.dimension"),
    ]:
        text = lc_tool.invoke(bad)
        assert text.startswith("error: query_performance: ") and message in text, text


def test_values_are_parameters_never_sql(deps: ToolDeps, demo_runtime: Any) -> None:
    hostile = "x') OR 1=1; DROP TABLE campaigns; --"
    query = BIQuery(metrics=["spend"], dimensions=["campaign"], last_days=7,
                    filters=[{"dimension": "campaign", "op": "in", "values": [hostile, "y"]},
                             {"dimension": "product", "op": "contains", "values": [hostile]}])
    compiled = compile_query(query, date(2026, 11, 1), date(2026, 11, 7))
    assert hostile not in compiled.sql
    assert hostile in compiled.params
    result = query_performance(deps, query)
    assert result.rows == [] and result.row_count == 0
    assert result.totals == {"spend": Decimal(0)}
    assert demo_runtime.warehouse.execute("SELECT count(*) FROM campaigns").fetchall()[0][0] > 0


def test_the_bi_path_cannot_write(demo_runtime: Any) -> None:
    con = demo_runtime.warehouse
    warehouse = ReadOnlyWarehouse(con)
    before = con.execute("SELECT count(*) FROM campaigns").fetchall()[0][0]
    for statement in ("DELETE FROM campaigns", "SELECT 1; DROP TABLE campaigns",
                      "CREATE TABLE x AS SELECT 1", "UPDATE campaigns SET status = 'PAUSED'"):
        with pytest.raises(WarehouseWriteAttempt):
            warehouse.query(statement)
    # A SELECT can still write (nextval advances a sequence): the READ ONLY transaction refuses it.
    con.execute("CREATE SEQUENCE probe_seq")
    with pytest.raises(Exception, match="read-only"):
        warehouse.query("SELECT nextval('probe_seq')")
    assert con.execute("SELECT nextval('probe_seq')").fetchall() == [(1,)]
    assert con.execute("SELECT count(*) FROM campaigns").fetchall()[0][0] == before


def test_langchain_tool_returns_compact_json(deps: ToolDeps, facts: list[dict[str, Any]]) -> None:
    all_tools()
    text = to_langchain(REGISTRY.get("query_performance"), deps).invoke(
        {"metrics": ["spend"], "dimensions": ["account"], "last_days": 7})
    payload = json.loads(text)
    last = _last_day(facts)
    expected = _group(_between(facts, last - timedelta(days=6), last), lambda r: r["account_id"])
    assert {r["keys"]["account"]: Decimal(r["values"]["spend"]) for r in payload["rows"]} == {
        k: v["spend"] for k, v in expected.items()}
    assert all(r["labels"]["account"] for r in payload["rows"])


def test_mixed_currencies_leave_the_currency_open(deps: ToolDeps, demo_runtime: Any) -> None:
    demo_runtime.warehouse.execute("INSERT INTO accounts VALUES ('act_2002', 'meta', 'Nordkamm UK', 'GBP', "
                                   "'Europe/London')")
    result = query_performance(deps, BIQuery(metrics=["spend"], last_days=7))
    assert result.currency is None


def test_parallel_tool_calls_share_the_connection_safely(deps: ToolDeps) -> None:
    """A ReAct step may run several tool calls at once: each read gets its own cursor and transaction."""
    from concurrent.futures import ThreadPoolExecutor

    query = BIQuery(metrics=["spend", "roas"], dimensions=["campaign"], last_days=30, compare_previous=True)
    expected = query_performance(deps, query).model_dump()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: query_performance(deps, query).model_dump(), range(16)))
    assert all(r == expected for r in results)
