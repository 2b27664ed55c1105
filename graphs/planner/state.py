"""The planner's state. Actions, verdicts and results are stored as JSON dicts so checkpoints stay plain
data (re-validated into domain types when read), which keeps a run resumable by any later version."""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

RunStatus = Literal["planning", "waiting_approval", "approved", "rejected", "done", "denied", "failed"]
Source = Literal["chat", "slash", "job", "copy", "rollback"]


def merge(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Reducer: later keys win (one entry per action key)."""
    return {**(left or {}), **(right or {})}


class PlannerInput(TypedDict):
    """What a run starts from."""

    run_id: str
    """The run's id, equal to the LangGraph thread id."""
    actor: str
    """Who asked (a person or a service identity)."""
    apply: bool
    """False: dry run (validate-only + forecast). True: apply after policy and approval."""
    source: Source
    """Where the request came from."""
    text: str | None
    """The command or free text, when a person typed one."""
    job: str | None
    """The scheduled job's name, for job runs."""
    explanation: str | None
    """Why these actions are proposed (jobs, copy, rollback)."""
    seed_actions: list[dict[str, Any]]
    """Deterministic proposals (jobs, copy, rollback) as action JSON; empty for typed commands."""
    history: list[dict[str, str]]
    """Earlier exchanges of a chat session ({"role": "user"|"assistant", "content": ...}), oldest first."""


class PlannerState(PlannerInput, total=False):
    """The whole state of one run."""

    messages: Annotated[list[AnyMessage], add_messages]
    """The planner model's conversation (system prompt excluded)."""
    proposals: Annotated[list[dict[str, Any]], operator.add]
    """Staged actions: {"action": {...}, "origin": "model|slash|job|...", "verdict": {...}}."""
    review: dict[str, dict[str, Any]]
    """Policy verdict per action key at review time."""
    status: RunStatus
    """Where the run stands."""
    approval: dict[str, Any] | None
    """The approval (or rejection) decision: actor, decision, at."""
    requested_at: str | None
    """When approval was requested (ISO time), for expiry."""
    results: Annotated[dict[str, dict[str, Any]], merge]
    """Per action key: the platform's result plus before/after entity snapshots."""
    forecast: dict[str, Any] | None
    """The forecast of the executed (or validated) actions."""
    verification: dict[str, Any] | None
    """Read-back check after apply."""
    report: str
    """The final summary a person reads."""
    notes: Annotated[list[str], operator.add]
    """Messages for the report (help text, model answer, warnings)."""
    model_turns: int
    """How many planner-model turns this run used."""
