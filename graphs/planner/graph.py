"""The planner graph.

::

    intake ─► gather ⇄ tools ─► review ─► approval (interrupt) ─► execute ⟲ ─► verify ─► report
      │ slash command / job / copy / rollback ─┘   │ dry run ─► simulate (validate-only + forecast) ─► report

``gather`` is the planner model's turn; ``tools`` runs the read tools and the proposal tools it
called (proposals come back with live policy verdicts, so gathering and proposing share one ReAct
loop and the model can re-plan within limits). The model never holds a mutating call: only
``execute`` talks to a platform's write API, one action per step (each step is checkpointed), after
re-checking the policy right before the call.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import interrupt
from pydantic import TypeAdapter

from agent.domain import Action, ActionResult, EntityRef
from agent.errors import AdpilotError, BadInput
from agent.privacy import redact_text
from graphs.planner import gate
from graphs.planner.context import PlannerContext
from graphs.planner.report import render_report
from graphs.planner.state import PlannerInput, PlannerState
from graphs.planner.tools import ProposalDeps

ACTION = TypeAdapter(Action)


def parse_action(data: dict[str, Any]) -> Action:
    """An action dict from the state, re-validated into its domain type."""
    return ACTION.validate_python(data)


def _audit(runtime: Runtime[PlannerContext], state: PlannerState, event: str, payload: dict[str, Any]) -> None:
    runtime.context.runtime.audit.append(event, payload, run_id=state["run_id"], actor=state["actor"])


def intake(state: PlannerState, runtime: Runtime[PlannerContext]) -> dict[str, Any]:
    """Record the request; deterministic proposals go straight to review, free text to the model."""
    _audit(runtime, state, "run_started", {"source": state["source"], "apply": state["apply"],
                                           "text": state.get("text"), "job": state.get("job"),
                                           "seeded_actions": len(state.get("seed_actions") or [])})
    if state.get("seed_actions"):
        proposals = [{"action": a, "origin": state["source"]} for a in state["seed_actions"]]
        return {"proposals": proposals, "status": "planning", "model_turns": 0}
    # Free text: personal data is redacted before the text reaches a model, earlier chat turns included.
    earlier = [(HumanMessage if turn["role"] == "user" else AIMessage)(content=redact_text(turn["content"]))
               for turn in state.get("history") or []]
    return {"messages": [*earlier, HumanMessage(content=redact_text(state.get("text") or ""))],
            "status": "planning", "model_turns": 0}


def route_intake(state: PlannerState) -> str:
    """Seeded runs skip the model."""
    return "review" if state.get("seed_actions") else "gather"


def gather(state: PlannerState, runtime: Runtime[PlannerContext]) -> dict[str, Any]:
    """One planner-model turn with the read and proposal tools bound."""
    from agent.models.prompts import load_prompt
    from tools.deps import ToolDeps
    from tools.registry import all_tools, to_langchain_tools

    ctx = runtime.context
    if ctx.router is None:
        raise AdpilotError("the planner model is not configured")
    prompt = load_prompt("planner_system")
    specs = all_tools()
    tool_deps = ToolDeps.from_runtime(ctx.runtime)
    proposal_deps = ProposalDeps(ctx=ctx, actor=state["actor"], run_id=state["run_id"])
    bound = [*to_langchain_tools([s for s in specs if s.kind == "read"], tool_deps),
             *to_langchain_tools([s for s in specs if s.kind == "propose"], proposal_deps)]
    model = ctx.router.chat("planner", run_id=state["run_id"], prompt=prompt).bind_tools(bound)
    messages = [SystemMessage(content=prompt.text), *state.get("messages", [])]
    if ctx.on_token is not None:
        chunks = None
        for chunk in model.stream(messages):
            if chunk.content:
                ctx.on_token(str(chunk.content))
            chunks = chunk if chunks is None else chunks + chunk
        reply = AIMessage(content=chunks.content if chunks else "", tool_calls=chunks.tool_calls if chunks else [],
                          id=chunks.id if chunks else None)
    else:
        reply = model.invoke(messages)
    return {"messages": [reply], "model_turns": state.get("model_turns", 0) + 1}


def route_gather(state: PlannerState, runtime: Runtime[PlannerContext]) -> str:
    """Run the tools the model called, or move on to review when it is done (or out of turns)."""
    last = state["messages"][-1]
    if isinstance(last, AIMessage) and last.tool_calls:
        if state.get("model_turns", 0) >= runtime.context.max_model_turns:
            return "review"
        return "tools"
    return "review"


def run_tools(state: PlannerState, runtime: Runtime[PlannerContext]) -> dict[str, Any]:
    """Execute the model's tool calls: read tools answer, proposal tools stage actions with verdicts."""
    from tools.deps import ToolDeps
    from tools.registry import all_tools, to_langchain

    ctx = runtime.context
    specs = {s.name: s for s in all_tools()}
    already = len(state.get("proposals", []))
    proposal_deps = ProposalDeps(ctx=ctx, actor=state["actor"], run_id=state["run_id"])
    # Proposals of earlier turns count towards the per-run action limit.
    proposal_deps.staged.extend([{}] * already)
    tool_deps = ToolDeps.from_runtime(ctx.runtime)
    last = state["messages"][-1]
    replies: list[ToolMessage] = []
    for call in getattr(last, "tool_calls", []):
        spec = specs.get(call["name"])
        if spec is None:
            content = f"error: there is no tool called {call['name']!r}"
        else:
            lc_tool = to_langchain(spec, proposal_deps if spec.kind == "propose" else tool_deps)
            content = str(lc_tool.invoke(call["args"]))
        _audit(runtime, state, "tool_call", {"tool": call["name"], "args": call["args"],
                                             "result": content[:2000]})
        replies.append(ToolMessage(content=content, tool_call_id=call["id"], name=call["name"]))
    return {"messages": replies, "proposals": proposal_deps.staged[already:]}


def review(state: PlannerState, runtime: Runtime[PlannerContext]) -> dict[str, Any]:
    """Judge every staged action afresh against the policy, with this run's earlier actions counted."""
    ctx = runtime.context
    verdicts: dict[str, dict[str, Any]] = {}
    pending: list[Any] = []
    notes: list[str] = []
    seen: set[str] = set()
    for index, proposal in enumerate(state.get("proposals", [])):
        try:
            action = parse_action(proposal["action"])
        except (ValueError, TypeError) as exc:
            notes.append(f"dropped an invalid proposal: {exc}")
            continue
        if action.idempotency_key in seen:
            continue
        seen.add(action.idempotency_key)
        verdict, current = gate.evaluate(ctx, action, actor=state["actor"], actions_in_run=index, pending=pending)
        verdicts[action.idempotency_key] = {"action": action.model_dump(mode="json"),
                                            "verdict": verdict.model_dump(mode="json")}
        _audit(runtime, state, "verdict", {"stage": "review", "action": action.model_dump(mode="json"),
                                          "verdict": verdict.model_dump(mode="json")})
        if verdict.decision != "deny":
            change = gate.pending_change(action, current, ctx.clock())
            if change is not None:
                pending.append(change)
    last = state.get("messages", [])[-1:] if state.get("messages") else []
    if last and isinstance(last[0], AIMessage) and last[0].content and not last[0].tool_calls:
        notes.append(str(last[0].content))
    update: dict[str, Any] = {"review": verdicts, "notes": notes}
    needs = [k for k, v in verdicts.items() if v["verdict"]["decision"] == "needs_approval"]
    if state["apply"] and needs:
        update["status"] = "waiting_approval"
        update["requested_at"] = ctx.clock().isoformat()
        _audit(runtime, state, "approval_requested", {"actions": needs,
                                                      "approvers": ctx.engine.approvers()})
    return update


def _runnable_keys(state: PlannerState) -> list[str]:
    return [k for k, v in (state.get("review") or {}).items() if v["verdict"]["decision"] != "deny"]


def route_review(state: PlannerState) -> str:
    """Dry runs simulate; applies wait for approval when needed; nothing to do goes to the report."""
    if not _runnable_keys(state):
        return "report"
    if not state["apply"]:
        return "simulate"
    return "approval" if state.get("status") == "waiting_approval" else "execute"


def approval(state: PlannerState, runtime: Runtime[PlannerContext]) -> dict[str, Any]:
    """Pause until a second actor approves or rejects (four-eyes, checked again here)."""
    ctx = runtime.context
    needs = [k for k, v in (state.get("review") or {}).items() if v["verdict"]["decision"] == "needs_approval"]
    decision = interrupt({"run_id": state["run_id"], "requested_by": state["actor"], "actions": needs,
                          "approvers": [a for a in ctx.engine.approvers() if a != state["actor"]]})
    approver = str(decision.get("actor", ""))
    if decision.get("decision") == "reject":
        _audit(runtime, state, "rejection", {"by": approver, "note": decision.get("note")})
        return {"status": "rejected", "approval": {"actor": approver, "decision": "reject",
                                                   "at": ctx.clock().isoformat()}}
    verdict = ctx.engine.check_approval(approver=approver, requester=state["actor"], now=ctx.clock(),
                                        requested_at=datetime.fromisoformat(state["requested_at"] or ""))
    _audit(runtime, state, "approval", {"by": approver, "verdict": verdict.model_dump(mode="json")})
    if verdict.decision != "allow":
        return {"status": "waiting_approval", "notes": [f"approval by {approver} refused: {verdict.explain()}"]}
    return {"status": "approved", "approval": {"actor": approver, "decision": "approve",
                                               "at": ctx.clock().isoformat()}}


def route_approval(state: PlannerState) -> str:
    """Approved runs execute; rejected ones report; a refused approval waits again."""
    status = state.get("status")
    if status == "approved":
        return "execute"
    if status == "rejected":
        return "report"
    return "approval"


def _next_key(state: PlannerState) -> str | None:
    done = state.get("results") or {}
    return next((k for k in _runnable_keys(state) if k not in done), None)


def execute(state: PlannerState, runtime: Runtime[PlannerContext]) -> dict[str, Any]:
    """Apply the next action: policy re-check right before the platform call, then apply, then record."""
    ctx = runtime.context
    key = _next_key(state)
    if key is None:
        return {}
    action = parse_action(state["review"][key]["action"])
    previous = _applied_result(ctx, state["run_id"], key)
    if previous is not None:
        # A crash between the platform call and the checkpoint: the audit log already has the result.
        return {"results": {key: previous}}
    index = list((state.get("review") or {}).keys()).index(key)
    verdict, current = gate.evaluate(ctx, action, actor=state["actor"], actions_in_run=index)
    _audit(runtime, state, "verdict", {"stage": "execute", "action": action.model_dump(mode="json"),
                                      "verdict": verdict.model_dump(mode="json")})
    approved = (state.get("approval") or {}).get("decision") == "approve"
    if verdict.decision == "deny" or (verdict.decision == "needs_approval" and not approved):
        result = ActionResult(idempotency_key=key, status="denied", message=verdict.explain(),
                              error_code=",".join(verdict.codes))
        entry = {"result": result.model_dump(mode="json"), "before": _snap(current), "after": None}
        return {"results": {key: entry}}
    platform = ctx.runtime.platform_for(action.target.account_id)
    try:
        result = platform.apply([action], actor=state["actor"])[0]
    except AdpilotError as exc:
        result = ActionResult(idempotency_key=key, status="failed", message=exc.message,
                              error_code=getattr(exc, "code", None))
    after_ref = _created_ref(action, result) or action.target
    after = None
    if result.ok:
        try:
            after = platform.read_back([after_ref]).get(after_ref)
        except AdpilotError:
            after = None
    entry = {"result": result.model_dump(mode="json"), "before": _snap(current), "after": _snap(after),
             "created_ref": after_ref.model_dump(mode="json") if after_ref != action.target else None}
    from policies.engine import change_kind

    _audit(runtime, state, "platform_apply", {
        "key": key, "status": result.status, "target": action.target.key(), "kind": action.kind,
        "change_kind": change_kind(action) if action.kind in ("set_budget", "set_bid") else None,
        "before_value": gate.tracked_value(action, current), "after_value": gate.tracked_value(action, after),
        "message": result.message, "error_code": result.error_code, "created_id": result.created_id,
        "entry": entry})
    return {"results": {key: entry}}


def _snap(entity: Any) -> dict[str, Any] | None:
    return entity.model_dump(mode="json") if entity is not None else None


def _created_ref(action: Action, result: ActionResult) -> EntityRef | None:
    if action.kind != "create_ad" or not result.created_id:
        return None
    return EntityRef(platform=action.target.platform, account_id=action.target.account_id, kind="ad",
                     id=result.created_id)


def _applied_result(ctx: PlannerContext, run_id: str, key: str) -> dict[str, Any] | None:
    for record in ctx.runtime.audit.records(run_id=run_id, event="platform_apply"):
        if record.payload.get("key") == key and record.payload.get("status") in ("applied", "already_applied"):
            return record.payload.get("entry")
    return None


def route_execute(state: PlannerState) -> str:
    """Loop until every runnable action has a result."""
    return "execute" if _next_key(state) is not None else "verify"


def simulate(state: PlannerState, runtime: Runtime[PlannerContext]) -> dict[str, Any]:
    """Dry run: the platforms' validate-only calls plus the forecast; nothing changes."""
    from tools.forecast import forecast

    ctx = runtime.context
    actions = [parse_action(state["review"][k]["action"]) for k in _runnable_keys(state)]
    results: dict[str, dict[str, Any]] = {}
    by_account: dict[str, list[Action]] = {}
    for action in actions:
        by_account.setdefault(action.target.account_id, []).append(action)
    for account_id, group in by_account.items():
        platform = ctx.runtime.platform_for(account_id)
        try:
            validated = platform.validate(group)
        except AdpilotError as exc:
            validated = [ActionResult(idempotency_key=a.idempotency_key, status="failed", message=exc.message)
                         for a in group]
        for action, result in zip(group, validated, strict=True):
            results[action.idempotency_key] = {"result": result.model_dump(mode="json"),
                                               "before": _snap(gate.read_current(ctx, action)), "after": None}
        _audit(runtime, state, "platform_validate", {"account": account_id,
                                                     "results": [r.model_dump(mode="json") for r in validated]})
    valid = [a for a in actions if ActionResult.model_validate(results[a.idempotency_key]["result"]).ok]
    try:
        predicted = forecast(ctx.runtime.warehouse, valid).model_dump(mode="json") if valid else None
    except BadInput as exc:
        predicted = {"error": exc.message}
    return {"results": results, "forecast": predicted}


def verify(state: PlannerState, runtime: Runtime[PlannerContext]) -> dict[str, Any]:
    """Read back what was applied and compare it with what was asked."""
    ctx = runtime.context
    mismatches: list[str] = []
    checked = 0
    for key, entry in (state.get("results") or {}).items():
        if entry["result"]["status"] not in ("applied", "already_applied"):
            continue
        action = parse_action(state["review"][key]["action"])
        current = gate.read_current(ctx, action)
        checked += 1
        expected = _expected(action)
        if expected is None:
            continue
        field, value = expected
        actual = _field(current, field)
        if actual != value:
            mismatches.append(f"{action.describe()}: platform reports {field}={actual}, expected {value}")
    verification = {"checked": checked, "mismatches": mismatches}
    _audit(runtime, state, "verify", verification)
    return {"verification": verification}


def _expected(action: Action) -> tuple[str, str] | None:
    if action.kind == "set_status":
        return "status", action.status
    if action.kind == "set_budget":
        return "daily_budget", str(action.daily_budget)
    if action.kind == "set_bid":
        if action.bid_type == "target_roas":
            return "target_roas", str(action.target_roas)
        return ("cpc_bid" if action.bid_type == "cpc" else "target_cpa"), str(action.amount)
    return None


def _field(entity: Any, name: str) -> str | None:
    if entity is None:
        return None
    value = getattr(entity, name)
    return None if value is None else str(value)


def report(state: PlannerState, runtime: Runtime[PlannerContext]) -> dict[str, Any]:
    """Summarise the run and settle its final status."""
    status = final_status(state)
    text = render_report({**state, "status": status})
    _audit(runtime, state, "run_finished", {"status": status, "summary": text[:4000]})
    return {"status": status, "report": text}


def final_status(state: PlannerState) -> str:
    """done / denied / failed / rejected, from the verdicts and results."""
    if state.get("status") == "rejected":
        return "rejected"
    review = state.get("review") or {}
    results = state.get("results") or {}
    if any(r["result"]["status"] == "failed" for r in results.values()):
        return "failed"
    if review and all(v["verdict"]["decision"] == "deny" for v in review.values()):
        return "denied"
    if any(r["result"]["status"] == "denied" for r in results.values()):
        return "denied"
    return "done"


def build_graph(checkpointer: Any = None) -> Any:
    """Compile the planner graph (tests pass their own in-memory checkpointer)."""
    graph = StateGraph(PlannerState, input_schema=PlannerInput, context_schema=PlannerContext)
    graph.add_node("intake", intake)
    graph.add_node("gather", gather)
    graph.add_node("tools", run_tools)
    graph.add_node("review", review)
    graph.add_node("approval", approval)
    graph.add_node("execute", execute)
    graph.add_node("simulate", simulate)
    graph.add_node("verify", verify)
    graph.add_node("report", report)
    graph.add_edge(START, "intake")
    graph.add_conditional_edges("intake", route_intake, ["review", "gather"])
    graph.add_conditional_edges("gather", route_gather, ["tools", "review"])
    graph.add_edge("tools", "gather")
    graph.add_conditional_edges("review", route_review, ["report", "simulate", "approval", "execute"])
    graph.add_conditional_edges("approval", route_approval, ["execute", "report", "approval"])
    graph.add_conditional_edges("execute", route_execute, ["execute", "verify"])
    graph.add_edge("simulate", "report")
    graph.add_edge("verify", "report")
    graph.add_edge("report", END)
    return graph.compile(checkpointer=checkpointer)
