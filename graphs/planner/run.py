"""Runs: start, resume, approve, reject and roll back planner runs; list and show them.

A run is a LangGraph thread (``run_id`` = thread id) in the SQLite checkpointer under the home, so a
run killed half-way resumes from its last checkpoint; the run registry (``runs.sqlite``) lists runs
and their status for ``adpilot runs`` without loading every checkpoint.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal

from langgraph.types import Command
from pydantic import BaseModel, Field

from agent.domain import Action, EntityRef, SetBid, SetBudget, SetStatus
from agent.errors import BadInput, ConfigError, NotFound, PolicyDenied
from agent.privacy import redact_text
from agent.runtime import Runtime
from graphs.planner.context import PlannerContext, utc_now
from graphs.planner.state import Source

RunState = Literal["running", "waiting_approval", "done", "denied", "failed", "rejected"]


# A chat session passes its last exchanges along; more would only grow every prompt.
MAX_HISTORY_TURNS = 12


class ChatTurn(BaseModel):
    """One earlier message of a chat session."""

    role: Literal["user", "assistant"]
    content: str = Field(max_length=8000)


class RunRequest(BaseModel):
    """What to plan: a typed command, free text, or ready-made actions (jobs, copy, rollback)."""

    text: str | None = None
    actions: list[Action] | None = None
    actor: str = Field(min_length=1)
    apply: bool = False
    source: Source = "chat"
    job: str | None = None
    explanation: str | None = None
    history: list[ChatTurn] = Field(default_factory=list, max_length=MAX_HISTORY_TURNS,
                                    description="Earlier exchanges of a chat session, oldest first.")


class RunOutcome(BaseModel):
    """Where a run stands after an invocation."""

    run_id: str
    status: RunState
    report: str = ""
    approvers: list[str] = Field(default_factory=list)
    state: dict[str, Any] = Field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """0 done, 1 failed, 3 denied / rejected / waiting for approval (DESIGN.md)."""
        return {"done": 0, "failed": 1, "running": 1}.get(self.status, 3)


class RunSummary(BaseModel):
    """One line of ``adpilot runs``."""

    run_id: str
    created_at: str
    updated_at: str
    actor: str
    source: str
    mode: str
    status: str
    text: str | None
    job: str | None


_REGISTRY_DDL = """CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, actor TEXT NOT NULL,
    source TEXT NOT NULL, mode TEXT NOT NULL, status TEXT NOT NULL, text TEXT, job TEXT, parent TEXT)"""


class RunRegistry:
    """The list of runs and their latest status (the checkpoints hold everything else)."""

    def __init__(self, runtime: Runtime) -> None:
        runtime.settings.home.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(str(runtime.settings.home / "runs.sqlite"), isolation_level=None)
        self._con.execute(_REGISTRY_DDL)

    def add(self, run_id: str, request: RunRequest, parent: str | None = None) -> None:
        """Register a new run as running."""
        now = datetime.now(UTC).isoformat()
        self._con.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          (run_id, now, now, request.actor, request.source, "apply" if request.apply else "dry run",
                           "running", redact_text(request.text) if request.text else None, request.job, parent))

    def set_status(self, run_id: str, status: str) -> None:
        """Record a run's new status."""
        self._con.execute("UPDATE runs SET status = ?, updated_at = ? WHERE run_id = ?",
                          (status, datetime.now(UTC).isoformat(), run_id))

    def get(self, run_id: str) -> RunSummary:
        """One run; ``NotFound`` for an unknown id."""
        rows = self.list(run_id=run_id)
        if not rows:
            raise NotFound(f"no run {run_id!r}; see adpilot runs")
        return rows[0]

    def list(self, run_id: str | None = None, limit: int = 50) -> list[RunSummary]:
        """Newest runs first."""
        sql = "SELECT run_id, created_at, updated_at, actor, source, mode, status, text, job FROM runs"
        params: tuple[Any, ...] = ()
        if run_id is not None:
            sql += " WHERE run_id = ?"
            params = (run_id,)
        rows = self._con.execute(sql + " ORDER BY created_at DESC, rowid DESC LIMIT ?", (*params, limit)).fetchall()
        keys = ("run_id", "created_at", "updated_at", "actor", "source", "mode", "status", "text", "job")
        return [RunSummary(**dict(zip(keys, row, strict=True))) for row in rows]

    def close(self) -> None:
        """Close the registry."""
        self._con.close()


class Runner:
    """Starts and continues planner runs for one runtime."""

    def __init__(self, runtime: Runtime, *, router: Any = None, clock: Callable[[], datetime] = utc_now,
                 on_token: Callable[[str], None] | None = None, checkpointer: Any = None) -> None:
        from policies.engine import load_engine

        self.runtime = runtime
        self.engine = load_engine(runtime.settings.policy_file)
        # The runtime's router is shared by every graph in the process: one rate limiter, one cache.
        self.router = router if router is not None else runtime.models
        self.clock = clock
        self.on_token = on_token
        self.registry = RunRegistry(runtime)
        self._checkpointer = checkpointer


    @contextmanager
    def _app(self) -> Any:
        from graphs.planner.graph import build_graph

        if self._checkpointer is not None:
            yield build_graph(self._checkpointer)
            return
        from langgraph.checkpoint.sqlite import SqliteSaver

        self.runtime.settings.home.mkdir(parents=True, exist_ok=True)
        with SqliteSaver.from_conn_string(str(self.runtime.settings.checkpoints_path)) as saver:
            yield build_graph(saver)

    def _context(self) -> PlannerContext:
        return PlannerContext(runtime=self.runtime, engine=self.engine, router=self.router, clock=self.clock,
                              on_token=self.on_token)

    def start(self, request: RunRequest, *, parent: str | None = None) -> RunOutcome:
        """Plan (and, with ``apply``, execute) a request as a new run."""
        if not (request.text or "").strip() and not request.actions:
            raise BadInput("nothing to do: give a command (see /help), a request or actions")
        free_text = request.actions is None and request.text is not None and not request.text.strip().startswith("/")
        if free_text and not self.router.is_configured("planner"):
            raise ConfigError("free-text requests need a planner model: set MISTRAL_API_KEY (or MISTRAL_BASE_URL "
                                  "for an on-prem endpoint), or use a slash command such as /budget 'Sommer Sale' "
                                  "+10% or /pause gc-014 (see /help)")
        actions = request.actions
        if actions is None and request.text is not None and request.text.strip().startswith("/"):
            plan = self._slash(request)
            if plan.text is not None:
                return RunOutcome(run_id="-", status="done", report=plan.text)
            actions = plan.actions
            request = request.model_copy(update={"source": "slash", "actions": actions})
            if not actions:
                return RunOutcome(run_id="-", status="done", report="nothing to do: no action found")
        run_id = uuid.uuid4().hex[:12]
        self.registry.add(run_id, request, parent)
        payload = {"run_id": run_id, "actor": request.actor, "apply": request.apply, "source": request.source,
                   "text": request.text, "job": request.job, "explanation": request.explanation,
                   "seed_actions": [a.model_dump(mode="json") for a in actions or []],
                   "history": [t.model_dump() for t in request.history]}
        return self._invoke(run_id, payload)

    def _slash(self, request: RunRequest) -> Any:
        from graphs.planner.resolve import EntityIndex
        from graphs.planner.slash import parse_and_plan

        accounts = []
        for account_id in self.runtime.account_ids():
            platform = self.runtime.platform_for(account_id)
            accounts.extend((a, platform) for a in platform.list_accounts() if a.account_id == account_id)
        plan = parse_and_plan(request.text or "", EntityIndex(accounts), actor=request.actor,
                              current=lambda e: self.runtime.platform_for(e.ref.account_id).get_entity(e.ref))
        if plan.detector is not None:
            plan.actions = self._detector_actions(plan.detector, request.actor)
        return plan

    def _detector_actions(self, detector: str, actor: str) -> list[Action]:
        from graphs.optimizer.run import detector_actions

        return detector_actions(self.runtime, detector, actor=actor)

    def _invoke(self, run_id: str, payload: Any) -> RunOutcome:
        config = {"configurable": {"thread_id": run_id}}
        with self._app() as app:
            try:
                app.invoke(payload, config, context=self._context())
            except Exception:
                # An error ends the run; a kill (KeyboardInterrupt, SIGKILL) leaves it "running" so that
                # `adpilot resume` continues it from the last checkpoint.
                self.registry.set_status(run_id, "failed")
                raise
            snapshot = app.get_state(config)
        values = dict(snapshot.values)
        if snapshot.interrupts or snapshot.next:
            status: RunState = "waiting_approval"
            approvers = [a for a in self.engine.approvers() if a != values.get("actor")]
            values["status"] = "waiting_approval"
            from graphs.planner.report import render_report

            text = render_report(values)
        else:
            status = values.get("status", "failed")
            approvers = []
            text = values.get("report", "")
        self.registry.set_status(run_id, status)
        return RunOutcome(run_id=run_id, status=status, report=text, approvers=approvers,
                          state=_jsonable(values))

    def resume(self, run_id: str) -> RunOutcome:
        """Continue a run that was interrupted (crash, kill) from its last checkpoint."""
        summary = self.registry.get(run_id)
        if summary.status == "waiting_approval":
            raise BadInput(f"run {run_id} waits for approval: adpilot approve {run_id} --as APPROVER")
        if summary.status != "running":
            raise BadInput(f"run {run_id} is {summary.status}; only an interrupted run can be resumed")
        return self._invoke(run_id, None)

    def decide(self, run_id: str, *, actor: str, approve: bool, note: str | None = None) -> RunOutcome:
        """Approve or reject a run waiting for approval (four-eyes: never the requester)."""
        summary = self.registry.get(run_id)
        if summary.status != "waiting_approval":
            raise BadInput(f"run {run_id} is {summary.status}, not waiting for approval")
        if approve:
            state = self.state(run_id)
            verdict = self.engine.check_approval(approver=actor, requester=summary.actor, now=self.clock(),
                                                 requested_at=datetime.fromisoformat(state["requested_at"]))
            if verdict.decision != "allow":
                self.runtime.audit.append("approval_refused", {"verdict": verdict.model_dump(mode="json")},
                                          run_id=run_id, actor=actor)
                raise PolicyDenied(f"{actor} cannot approve run {run_id}: {verdict.explain()}")
        return self._invoke(run_id, Command(resume={"decision": "approve" if approve else "reject",
                                                    "actor": actor, "note": note}))

    def state(self, run_id: str) -> dict[str, Any]:
        """The run's checkpointed state (JSON-able)."""
        self.registry.get(run_id)
        with self._app() as app:
            snapshot = app.get_state({"configurable": {"thread_id": run_id}})
        return _jsonable(dict(snapshot.values))

    def rollback(self, run_id: str, *, actor: str, apply: bool) -> RunOutcome:
        """Revert a run's applied changes to their before-values, as a new run through policy and approval."""
        state = self.state(run_id)
        actions, notes = rollback_actions(state)
        if not actions:
            raise BadInput(f"run {run_id} has nothing to roll back" + (f" ({'; '.join(notes)})" if notes else ""))
        request = RunRequest(actions=actions, actor=actor, apply=apply, source="rollback",
                             explanation=f"rollback of run {run_id}" + (f"; {'; '.join(notes)}" if notes else ""))
        return self.start(request, parent=run_id)

    def close(self) -> None:
        """Release the registry."""
        self.registry.close()


def rollback_actions(state: dict[str, Any]) -> tuple[list[Action], list[str]]:
    """The inverse of every applied action of a run, and notes on what cannot be reversed."""
    from agent.domain import Entity
    from graphs.planner.graph import parse_action

    actions: list[Action] = []
    notes: list[str] = []
    run_id = state.get("run_id", "?")
    for key, entry in (state.get("results") or {}).items():
        if entry["result"]["status"] != "applied":
            continue
        action = parse_action(state["review"][key]["action"])
        before = Entity.model_validate(entry["before"]) if entry.get("before") else None
        reason = f"rollback of run {run_id}: restore {action.describe()}"
        if isinstance(action, SetBudget) and before and before.daily_budget:
            actions.append(SetBudget(target=action.target, daily_budget=before.daily_budget, reason=reason))
        elif isinstance(action, SetStatus) and before and before.status in ("ENABLED", "PAUSED"):
            actions.append(SetStatus(target=action.target, status=before.status, reason=reason))
        elif isinstance(action, SetBid) and before:
            if action.bid_type == "cpc" and before.cpc_bid:
                actions.append(SetBid(target=action.target, bid_type="cpc", amount=before.cpc_bid, reason=reason))
            elif action.bid_type == "target_cpa" and before.target_cpa:
                actions.append(SetBid(target=action.target, bid_type="target_cpa", amount=before.target_cpa,
                                      reason=reason))
            elif action.bid_type == "target_roas" and before.target_roas:
                actions.append(SetBid(target=action.target, bid_type="target_roas", target_roas=before.target_roas,
                                      reason=reason))
            else:
                notes.append(f"{action.describe()}: no previous value recorded")
        elif action.kind == "create_ad":
            created = entry.get("created_ref")
            if created and action.status == "ENABLED":
                actions.append(SetStatus(target=EntityRef.model_validate(created), status="PAUSED", reason=reason))
            else:
                notes.append(f"{action.describe()}: the new ad was created paused; it stays (adpilot never removes)")
        else:
            notes.append(f"{action.describe()}: cannot be reversed (adpilot never removes anything)")
    return actions, notes


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    if "messages" in out:
        out["messages"] = [{"type": m.type, "content": m.content,
                            "tool_calls": getattr(m, "tool_calls", None) or None} for m in out["messages"]]
    return out


def start_run(runtime: Runtime, request: RunRequest, **kwargs: Any) -> RunOutcome:
    """Start one run on ``runtime`` (a convenience over ``Runner`` for callers that start a single run)."""
    runner = Runner(runtime, **kwargs)
    try:
        return runner.start(request)
    finally:
        runner.close()
