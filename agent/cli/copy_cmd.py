"""``adpilot copy``: bulk ad copy for products, through guardrails, then policy, approval and audit."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from typing import Annotated, Any, Literal

import typer

from agent.cli.common import ActorOpt, ApplyOpt, HomeOpt, JsonOpt, console, print_json, settings_for
from agent.errors import BadInput, ModelError

PlatformOpt = Literal["google", "meta"]


def _progress(enabled: bool) -> Any:
    """A rich progress bar on stderr for people at a terminal; a no-op otherwise (pipes, --json, tests)."""
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("writing copy"), BarColumn(), MofNCompleteColumn(), TextColumn("batches"),
                    TimeElapsedColumn(), console=Console(stderr=True), transient=True)


def register(app: typer.Typer) -> None:
    """Add the copy command."""

    @app.command("copy")
    def copy_cmd(
        products: Annotated[str, typer.Option("--products", help="SKUs (comma-separated), a category, or words "
                                                                "of the product name.")],
        platform: Annotated[PlatformOpt, typer.Option("--platform", help="google (RSA) or meta (link ad).")],
        variants: Annotated[int, typer.Option("--variants", min=1, max=10, help="Variants per product.")] = 3,
        language: Annotated[str, typer.Option("--language", help="Language of the copy (ISO code).")] = "de",
        tone: Annotated[str | None, typer.Option("--tone", help="Tone of voice (model copy only).")] = None,
        limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="At most this many products.")] = 200,
        fresh: Annotated[bool, typer.Option("--fresh", help="Ignore copy cached from earlier runs.")] = False,
        apply: ApplyOpt = False, actor: ActorOpt = None, home: HomeOpt = None, json_out: JsonOpt = False,
    ) -> int:
        """Write ad copy for products (bulk model, or templates offline) and propose it as paused new ads.

        Every variant passes the copy guardrails or is dropped with its reason; the accepted ads go
        through the policy, approval and audit like any other run. Dry run unless --apply.
        """
        from agent.runtime import Runtime
        from graphs.copywriter.job import copy_job
        from graphs.planner.run import Runner, RunRequest
        from tools.warehouse.demo import ensure_demo

        if not actor or not actor.strip():
            raise BadInput("who is acting? pass --as ACTOR or set ADPILOT_ACTOR")
        if not (len(language) == 2 and language.isalpha() and language.islower()):
            raise BadInput(f"--language must be a two-letter ISO code such as de or en, got {language!r}")
        settings = settings_for(home)
        runtime = Runtime(settings)
        try:
            ensure_demo(runtime.warehouse)
            router = runtime.models
            progress = _progress(not json_out and sys.stderr.isatty())
            task = None
            finished = 0

            def advance(_batch: Any, _cached: bool, total: int) -> None:
                nonlocal task, finished
                finished += 1
                if progress is None:
                    return
                if task is None:
                    task = progress.add_task("copy", total=total)
                progress.advance(task)

            try:
                with progress if progress is not None else nullcontext():
                    job = copy_job(runtime, products, platform=platform, variants=variants, language=language,
                                   tone=tone, limit=limit, router=router, fresh=fresh, on_batch=advance)
            except ModelError as exc:
                kept = (f"; {finished} finished batch(es) are kept: run the same command again to continue"
                        if not fresh and finished else "")
                raise ModelError(f"{exc.message}{kept}") from None
            selection, outcome, writer, concurrency = job.selection, job.outcome, job.writer, job.concurrency
            summary = (f"ad copy for {len(selection.briefs)} product(s) ({selection.how}) on {platform} "
                       f"({writer}): {len(outcome.actions)} variant(s) accepted, "
                       f"{sum(r.status == 'dropped' for r in outcome.reports)} dropped")
            run = None
            if outcome.actions:
                runner = Runner(runtime, router=router)
                try:
                    run = runner.start(RunRequest(actions=list(outcome.actions), actor=actor.strip(), apply=apply,
                                                  source="copy", explanation=summary))
                finally:
                    runner.close()
            copy_info = {"summary": summary, "writer": writer, "selection": selection.how,
                         "products": len(selection.products), "briefs": len(selection.briefs),
                         "skipped": selection.skipped, "batches": outcome.batches,
                         "cached_batches": outcome.cached_batches, "model_calls": outcome.model_calls,
                         "max_concurrency": concurrency, "notes": outcome.notes,
                         "variants": [r.model_dump(mode="json") for r in outcome.reports]}
            if json_out:
                print_json({"copy": copy_info, "run": None if run is None else {
                    "run_id": run.run_id, "status": run.status, "approvers": run.approvers, "report": run.report,
                    "review": run.state.get("review"), "results": run.state.get("results")}})
            else:
                _print_human(copy_info, run)
            return 0 if run is None else run.exit_code
        finally:
            runtime.close()


def _print_human(info: dict[str, Any], run: Any) -> None:
    from rich.table import Table

    out = console()
    out.print(info["summary"], markup=False)
    table = Table("sku", "#", "status", "first headline", "repaired / reason")
    for v in info["variants"]:
        detail = v["reason"] or (", ".join(sorted({r["code"] for r in v["repaired"]})) if v["repaired"] else "")
        table.add_row(v["sku"], str(v["index"]), v["status"], v["headline"], detail)
    out.print(table)
    for line in [*info["skipped"], *info["notes"]]:
        out.print(f"note: {line}", markup=False)
    if info["cached_batches"]:
        out.print(f"{info['cached_batches']} of {info['batches']} batch(es) came from the cache "
                  f"(--fresh writes new copy)", markup=False)
    if run is not None:
        typer.echo(run.report)
        if run.status == "waiting_approval" and run.approvers:
            typer.echo(f"approvers: {', '.join(run.approvers)}")
