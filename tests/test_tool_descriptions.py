"""Every tool tells the model what it does, and every argument (nested ones included) what it means."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import BaseModel, Field

from tools.registry import ToolRegistry, ToolSpec, all_tools, tool

SPECS = all_tools()


def _undescribed(schema: dict[str, Any]) -> list[str]:
    """Paths of properties without a description, in the schema and every model it defines."""
    missing = []
    objects = {"<args>": schema, **{f"$defs.{k}": v for k, v in schema.get("$defs", {}).items()}}
    for where, obj in objects.items():
        for name, prop in obj.get("properties", {}).items():
            if not str(prop.get("description", "")).strip():
                missing.append(f"{where}.{name}")
    return missing


class Inner(BaseModel):
    """A nested model whose field lacks a description."""

    value: int


class OuterArgs(BaseModel):
    """Arguments with an undescribed nested field."""

    inner: Inner = Field(description="Nested.")


class NoArgs(BaseModel):
    """No arguments."""


def test_the_read_tools_of_issue_3_are_all_registered() -> None:
    names = {s.name for s in SPECS if s.kind == "read"}
    assert names >= {"get_products", "search_products", "get_prices", "get_stock", "list_out_of_stock",
                     "list_low_stock", "query_performance", "list_ad_accounts", "list_campaigns",
                     "list_ad_groups", "list_ads", "search_brand_knowledge"}


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_every_tool_and_every_argument_has_a_description(spec: ToolSpec) -> None:
    assert re.fullmatch(r"[a-z]+(_[a-z0-9]+)+", spec.name), "tools are verb_noun"
    assert spec.summary and len(spec.summary) <= 160, "the first docstring line is a short sentence"
    assert spec.summary.endswith((".", "...")), spec.summary
    assert _undescribed(spec.json_schema()) == []


def test_the_check_catches_an_undescribed_nested_argument() -> None:
    registry = ToolRegistry()

    def get_thing(deps: Any, args: OuterArgs) -> Any:
        """Get a thing."""
        return args

    tool("read", registry=registry)(get_thing)
    assert _undescribed(registry.get("get_thing").json_schema()) == ["$defs.Inner.value"]


def test_a_tool_needs_a_docstring_a_verb_noun_name_and_a_unique_name() -> None:
    registry = ToolRegistry()

    def undocumented_tool(deps: Any, args: NoArgs) -> None:
        return None

    def lookup(deps: Any, args: NoArgs) -> None:
        """Look something up."""

    with pytest.raises(ValueError, match="no description"):
        tool("read", registry=registry)(undocumented_tool)
    with pytest.raises(ValueError, match="verb_noun"):
        tool("read", registry=registry)(lookup)

    def get_prices(deps: Any, args: NoArgs) -> None:
        """A second tool under a taken name."""

    tool("read", registry=registry)(get_prices)
    tool("read", registry=registry)(get_prices)  # the same function again is fine (module reloads)
    with pytest.raises(ValueError, match="is taken"):
        tool("read")(get_prices)  # the real registry already has tools.pim.get_prices
