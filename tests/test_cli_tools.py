"""``adpilot tools``: in-process, with a temp home."""

from __future__ import annotations

import importlib.util
import json
import shutil
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


def test_brand_ingest_and_search(capsys: pytest.CaptureFixture[str], home: Path, tmp_path: Path) -> None:
    from tools.brand import DEMO_DOCS

    folder = tmp_path / "docs"
    shutil.copytree(DEMO_DOCS / "en", folder)
    assert main(["brand", "ingest", str(folder), "--home", str(home), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["files_indexed"] == sorted(p.name for p in folder.glob("*.md"))
    assert main(["brand", "ingest", str(folder), "--home", str(home), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["chunks_embedded"] == 0

    assert main(["brand", "search", "best price", "--home", str(home), "--k", "1", "--json"]) == 0
    (hit,) = json.loads(capsys.readouterr().out)
    assert hit["source"] == "do-not-say.md" and "best price" in hit["text"]
    assert main(["brand", "search", "Zelt", "--home", str(home), "--lang", "de", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []  # only English documents were ingested


def test_brand_errors_are_one_line(capsys: pytest.CaptureFixture[str], home: Path, tmp_path: Path) -> None:
    assert main(["brand", "ingest", str(tmp_path / "missing"), "--home", str(home)]) == 2
    assert capsys.readouterr().err.strip() == f"error: brand documents folder not found: {tmp_path / 'missing'}"
    assert main(["brand", "search", "x", "--home", str(home), "--lang", "fr"]) == 2
    assert capsys.readouterr().err.strip() == "error: language must be one of de, en"
