"""What the planner's nodes get injected (LangGraph run context): never globals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.models.router import ModelRouter
    from agent.runtime import Runtime
    from policies.engine import PolicyEngine


def utc_now() -> datetime:
    """The wall clock, timezone-aware."""
    return datetime.now(UTC)


@dataclass
class PlannerContext:
    """Dependencies of one planner invocation."""

    runtime: Runtime
    engine: PolicyEngine
    router: ModelRouter | None = None
    clock: Callable[[], datetime] = field(default=utc_now)
    #: receives the planner model's answer as it streams (the chat REPL prints it)
    on_token: Callable[[str], None] | None = None
    #: the most model turns one run may take before it stops planning
    max_model_turns: int = 12
    extra: dict[str, Any] = field(default_factory=dict)
