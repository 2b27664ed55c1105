"""``adpilot tools``: in-process, with a temp home."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from agent.cli import main

READ_TOOLS = {"get_products", "search_products", "get_prices", "get_stock", "list_out_of_stock", "list_low_stock",
              "query_performance", "list_ad_accounts", "list_campaigns", "list_ad_groups", "list_ads",
              "search_brand_knowledge"}


def test_tools_json_lists_every_tool_with_schema(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    assert main(["tools", "--json", "--home", str(home)]) == 0
    listed = json.loads(capsys.readouterr().out)
    by_name = {t["name"]: t for t in listed}
    assert set(by_name) >= READ_TOOLS
    assert all(by_name[n]["kind"] == "read" for n in READ_TOOLS)
    assert {t["kind"] for t in listed} <= {"read", "propose"}
    if importlib.util.find_spec("graphs.planner.tools") is not None:
        assert any(t["kind"] == "propose" for t in listed), "the planner's proposal tools are listed too"
    bi = by_name["query_performance"]
    assert bi["summary"] == bi["description"].splitlines()[0]
    assert set(bi["schema"]["required"]) == {"metrics"}
    assert "roas" in bi["schema"]["properties"]["metrics"]["items"]["enum"]
    assert [t["name"] for t in listed] == sorted(by_name)


def test_tools_table_for_people(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tools"]) == 0
    out = capsys.readouterr().out
    for name in READ_TOOLS:
        assert name in out
    assert "query_performance" in out and "metrics" in out
