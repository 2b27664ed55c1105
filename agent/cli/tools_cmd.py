"""``adpilot tools``: every tool the planner can call, with its description and argument schema.

Also ``adpilot brand ingest DIR`` (make the brand knowledge store mirror a folder of Markdown files,
embedding only what changed) and ``adpilot brand search QUERY`` (what the planner's
``search_brand_knowledge`` tool would find).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from agent.cli.common import HomeOpt, JsonOpt, console, print_json, settings_for
from agent.errors import BadInput


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


FolderArg = Annotated[Path, typer.Argument(help="Folder of Markdown brand documents (de/ and en/ subfolders "
                                                 "set the language; front matter 'language:' and 'type:' win).")]
QueryArg = Annotated[str, typer.Argument(help="What to look up.")]
LanguageOpt = Annotated[str | None, typer.Option("--lang", help="Only documents in this language (de or en).")]
CountOpt = Annotated[int, typer.Option("--k", min=1, max=20, help="How many passages.")]


def brand_ingest(folder: FolderArg, home: HomeOpt = None, json_out: JsonOpt = False) -> int:
    """Make the brand knowledge store mirror FOLDER (unchanged files are not embedded again)."""
    from tools.brand import BrandKnowledge
    from tools.embeddings import embedder_for

    if not folder.is_dir():
        raise BadInput(f"brand documents folder not found: {folder}")
    settings = settings_for(home)
    report = BrandKnowledge(settings.chroma_path, embedder_for(settings)).ingest(folder)
    if json_out:
        print_json(report)
        return 0
    out = console()
    out.print(f"{report.files_seen} files: {len(report.files_indexed)} embedded ({report.chunks_embedded} chunks), "
              f"{report.files_unchanged} unchanged, {len(report.files_removed)} removed "
              f"({report.chunks_deleted} old chunks deleted)")
    for source in report.files_indexed:
        out.print(f"  embedded  {source}")
    for source in report.files_removed:
        out.print(f"  removed   {source}")
    return 0


def brand_search(query: QueryArg, home: HomeOpt = None, lang: LanguageOpt = None, k: CountOpt = 5,
                 json_out: JsonOpt = False) -> int:
    """Search the brand knowledge the way the planner's search_brand_knowledge tool does."""
    from rich.markup import escape

    from tools.brand import open_brand_knowledge

    passages = open_brand_knowledge(settings_for(home)).search(query, k=k, language=lang)
    if json_out:
        print_json([p.model_dump() for p in passages])
        return 0
    out = console()
    if not passages:
        out.print("no passages found")
    for passage in passages:
        out.print(f"[bold]{escape(passage.source)}[/bold] — {escape(passage.heading)} ({passage.score:.4f})")
        out.print(passage.text, markup=False)
        out.print()
    return 0


def register(app: typer.Typer) -> None:
    """Add ``adpilot tools`` and ``adpilot brand ingest|search`` to the CLI."""
    app.command("tools", help="List the tools the planner can call (--json for names, descriptions and schemas).")(
        tools_command)
    brand = typer.Typer(name="brand", help="Brand knowledge: guidelines, do-not-say list, claims, playbooks.",
                        no_args_is_help=True)
    brand.command("ingest", help="Index a folder of Markdown brand documents (only changed files are embedded).")(
        brand_ingest)
    brand.command("search", help="Search the brand knowledge (hybrid: exact terms and related wording).")(
        brand_search)
    app.add_typer(brand)
