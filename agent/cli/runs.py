"""Run commands: ask, chat, runs, show, approve, reject, resume, rollback, audit."""

from __future__ import annotations

import sys
from collections import deque
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from agent.cli.common import ActorOpt, ApplyOpt, HomeOpt, JsonOpt, console, print_json, settings_for
from agent.domain import DomainError
from agent.errors import AdpilotError, BadInput

RunArg = Annotated[str, typer.Argument(help="The run id (see adpilot runs).")]


def _actor(actor: str | None) -> str:
    if not actor or not actor.strip():
        raise BadInput("who is acting? pass --as ACTOR or set ADPILOT_ACTOR")
    return actor.strip()


def _runner(home: Path | None, **kwargs: Any) -> Any:
    from agent.runtime import Runtime
    from graphs.planner.run import Runner
    from tools.warehouse.demo import ensure_demo

    runtime = Runtime(settings_for(home))
    ensure_demo(runtime.warehouse)
    return Runner(runtime, **kwargs)


def _finish(outcome: Any, json_out: bool) -> int:
    if json_out:
        print_json({"run_id": outcome.run_id, "status": outcome.status, "approvers": outcome.approvers,
                    "report": outcome.report, "review": outcome.state.get("review"),
                    "results": outcome.state.get("results"), "forecast": outcome.state.get("forecast")})
    else:
        typer.echo(outcome.report)
        if outcome.status == "waiting_approval" and outcome.approvers:
            typer.echo(f"approvers: {', '.join(outcome.approvers)}")
    return outcome.exit_code


def register(app: typer.Typer) -> None:
    """Add the run commands."""

    @app.command()
    def ask(command: Annotated[str, typer.Argument(help="A slash command (/help) or a request in plain words.")],
            apply: ApplyOpt = False, actor: ActorOpt = None, home: HomeOpt = None, json_out: JsonOpt = False) -> int:
        """Plan a change from a command; dry run unless --apply."""
        from graphs.planner.run import RunRequest

        runner = _runner(home)
        return _finish(runner.start(RunRequest(text=command, actor=_actor(actor), apply=apply)), json_out)

    @app.command()
    def chat(actor: ActorOpt = None, apply: ApplyOpt = False, home: HomeOpt = None) -> int:
        """Interactive chat-ops: type commands or requests; the model's answer streams as it arrives."""
        from graphs.planner.run import MAX_HISTORY_TURNS, ChatTurn, RunRequest

        who = _actor(actor)
        settings = settings_for(home)
        history = _History(settings.home)
        out = console()

        def stream(token: str) -> None:
            sys.stdout.write(token)
            sys.stdout.flush()

        runner = _runner(home, on_token=stream)
        memory: deque[ChatTurn] = deque(maxlen=MAX_HISTORY_TURNS)
        out.print(f"adpilot chat as {who} ({'apply' if apply else 'dry run'}); /help for commands, Ctrl-D to leave",
                  markup=False)
        while True:
            try:
                line = input("adpilot> ").strip()
            except EOFError:
                out.print("")
                return 0
            if not line:
                continue
            if line in ("/quit", "/exit"):
                return 0
            history.add(line)
            try:
                outcome = runner.start(RunRequest(text=line, actor=who, apply=apply, history=list(memory)))
            except (AdpilotError, ValidationError, DomainError) as exc:  # a bad line must not end the session
                from agent.cli import error_line

                out.print(f"error: {error_line(exc)}", markup=False)
                continue
            sys.stdout.write("\n")
            typer.echo(outcome.report)
            # Each line is its own run (own approval and audit trail); the session remembers the exchange
            # so that a follow-up such as "pause the second one" has its context.
            memory.extend([ChatTurn(role="user", content=line[:8000]),
                           ChatTurn(role="assistant", content=outcome.report[:8000])])

    @app.command("runs")
    def runs_cmd(home: HomeOpt = None, json_out: JsonOpt = False,
                 limit: Annotated[int, typer.Option(min=1, max=1000, help="How many runs.")] = 50) -> int:
        """List runs, newest first (an interrupted run shows as running; resume it with adpilot resume)."""
        from agent.runtime import Runtime
        from graphs.planner.run import RunRegistry

        registry = RunRegistry(Runtime(settings_for(home)))
        rows = registry.list(limit=limit)
        if json_out:
            print_json([r.model_dump() for r in rows])
            return 0
        from rich.table import Table

        table = Table("run", "created", "actor", "source", "mode", "status", "request")
        for r in rows:
            table.add_row(r.run_id, r.created_at[:19], r.actor, r.source, r.mode, r.status, r.text or r.job or "")
        console().print(table)
        return 0

    @app.command()
    def show(run_id: RunArg, home: HomeOpt = None, json_out: JsonOpt = False) -> int:
        """Show one run: its actions, verdicts, results and report."""
        from graphs.planner.report import render_report

        runner = _runner(home)
        summary = runner.registry.get(run_id)
        state = runner.state(run_id)
        if json_out:
            print_json({"run": summary.model_dump(), "state": state})
            return 0
        state.setdefault("status", summary.status)
        typer.echo(state.get("report") or render_report({**state, "status": summary.status}))
        return 0

    @app.command()
    def approve(run_id: RunArg, actor: ActorOpt = None, home: HomeOpt = None, json_out: JsonOpt = False) -> int:
        """Approve a run waiting for approval (you must be an approver and not the requester)."""
        return _finish(_runner(home).decide(run_id, actor=_actor(actor), approve=True), json_out)

    @app.command()
    def reject(run_id: RunArg, actor: ActorOpt = None, home: HomeOpt = None, json_out: JsonOpt = False,
               note: Annotated[str | None, typer.Option(help="Why.")] = None) -> int:
        """Reject a run waiting for approval; nothing of it is applied."""
        return _finish(_runner(home).decide(run_id, actor=_actor(actor), approve=False, note=note), json_out)

    @app.command()
    def resume(run_id: RunArg, home: HomeOpt = None, json_out: JsonOpt = False) -> int:
        """Resume an interrupted run from its last checkpoint (nothing already applied is applied again)."""
        return _finish(_runner(home).resume(run_id), json_out)

    @app.command()
    def rollback(run_id: RunArg, actor: ActorOpt = None, apply: ApplyOpt = False, home: HomeOpt = None,
                 json_out: JsonOpt = False) -> int:
        """Revert a run's applied changes as a new run (same policy and approval path); dry run unless --apply."""
        return _finish(_runner(home).rollback(run_id, actor=_actor(actor), apply=apply), json_out)

    @app.command()
    def audit(home: HomeOpt = None, json_out: JsonOpt = False,
              run: Annotated[str | None, typer.Option("--run", help="Only this run's records.")] = None,
              event: Annotated[str | None, typer.Option(help="Only this event type.")] = None,
              verify: Annotated[bool, typer.Option("--verify", help="Check the hash chain.")] = False) -> int:
        """Show the append-only audit log (hash-chained; --verify checks it)."""
        from agent.audit import AuditLog

        log = AuditLog(settings_for(home).audit_path)
        if verify:
            broken = log.verify()
            if json_out:
                print_json({"intact": broken is None, "first_broken_seq": broken})
            else:
                console().print("audit chain intact" if broken is None else f"audit chain BROKEN at record {broken}",
                                markup=False)
            return 0 if broken is None else 1
        records = log.records(run_id=run, event=event)
        if json_out:
            print_json([r.model_dump() for r in records])
            return 0
        from rich.table import Table

        table = Table("seq", "time", "run", "actor", "event", "details")
        for r in records:
            table.add_row(str(r.seq), r.ts[:19], r.run_id or "", r.actor or "", r.event, _summary(r.payload))
        console().print(table)
        return 0


def _summary(payload: dict[str, Any]) -> str:
    if "verdict" in payload and isinstance(payload["verdict"], dict):
        verdict = payload["verdict"]
        codes = ",".join(r["code"] for r in verdict.get("reasons", []))
        return f"{verdict.get('decision')} {codes}"[:100]
    for key in ("status", "tool", "summary", "text"):
        if payload.get(key):
            return f"{key}={str(payload[key])[:90]}"
    return ""


class _History:
    """The chat REPL's history: loaded into readline for line editing, appended to a file per line."""

    def __init__(self, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.path = home / "chat_history"
        try:
            import readline
        except ImportError:  # no line editing on this platform; the file history still works
            return
        if self.path.exists():
            readline.read_history_file(str(self.path))

    def add(self, line: str) -> None:
        """Remember one line (slash commands and requests; personal data redacted)."""
        from agent.privacy import redact_text

        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(redact_text(line).replace("\n", " ") + "\n")
