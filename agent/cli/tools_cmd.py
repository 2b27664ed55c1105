"""``adpilot tools``: every tool the planner can call, with its description and argument schema."""

from __future__ import annotations

from typing import Any

import typer

from agent.cli.common import HomeOpt, JsonOpt, console, print_json


def tools_command(home: HomeOpt = None, json_out: JsonOpt = False) -> int:
    """List every tool (read and propose) with its description and arguments."""
    from tools.registry import all_tools

    # The home is accepted like on every command; listing tools opens nothing under it.
    del home
    specs = all_tools()
    if json_out:
        print_json([{"name": s.name, "kind": s.kind, "summary": s.summary, "description": s.description,
                     "schema": s.json_schema()} for s in specs])
        return 0
    from rich.table import Table

    table = Table(title=f"{len(specs)} tools", show_lines=False)
    table.add_column("name", no_wrap=True)
    table.add_column("kind")
    table.add_column("what it does")
    table.add_column("arguments")
    for spec in specs:
        table.add_row(spec.name, spec.kind, spec.summary, ", ".join(_arguments(spec.json_schema())))
    console().print(table)
    return 0


def _arguments(schema: dict[str, Any]) -> list[str]:
    required = set(schema.get("required", []))
    return [f"{name}{'' if name in required else '?'}" for name in schema.get("properties", {})]


def register(app: typer.Typer) -> None:
    """Add ``adpilot tools`` to the CLI."""
    app.command("tools", help="List the tools the planner can call (--json for names, descriptions and schemas).")(
        tools_command)
