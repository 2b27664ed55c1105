"""What the copywriter's nodes get injected (LangGraph run context): never globals."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from graphs.copywriter.guardrails import BrandRules

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from agent.models.prompts import Prompt
    from agent.models.router import ModelRouter


class BrandSearch(Protocol):
    """Brand knowledge retrieval (``tools.brand.BrandKnowledge`` fits)."""

    def search(self, query: str, k: int = 5, language: str | None = None) -> list[Any]:
        """The ``k`` best passages for ``query``."""
        ...


def default_concurrency(requests_per_second: float, latency_s: float = 2.0, headroom: float = 1.5,
                        ceiling: int = 32) -> int:
    """Batches in flight needed to keep the endpoint at its rate limit: rate x latency, plus headroom.

    A branch also spends time between calls (prompt rendering, guardrails), hence the headroom. More
    would only queue inside the router's rate limiter (holding threads for nothing); fewer would leave
    the rate unused. The limiter, not this number, keeps the rate itself, so nothing here causes 429s.
    """
    if requests_per_second <= 0:
        return ceiling
    return max(1, min(ceiling, math.ceil(requests_per_second * latency_s * headroom)))


@dataclass
class CopyContext:
    """Dependencies of one copy job."""

    #: brand rules (``PolicyEngine.brand_rules`` or ``guardrails.BrandRules``)
    rules: Any = field(default_factory=BrandRules)
    #: hands out the bulk tier; None or an unconfigured bulk tier means template copy
    router: ModelRouter | None = None
    #: a chat model used instead of the router's bulk tier (tests, embedding apps)
    model: BaseChatModel | None = None
    #: brand knowledge retrieval; None writes without brand notes
    brand: BrandSearch | None = None
    #: the versioned prompt; loaded from agent/prompts/copy_bulk.md when None
    prompt: Prompt | None = None
    #: recorded with every model call (the copy job's id)
    run_id: str | None = None
    #: briefs per Send branch (and per cached result)
    batch_size: int = 8
    #: model rounds that may repair a failing variant before it is dropped
    repair_rounds: int = 2
    #: passages of brand knowledge per brief
    brand_passages: int = 3

    def uses_model(self) -> bool:
        """True when copy comes from a model, False when from the templates."""
        return self.model is not None or (self.router is not None and self.router.is_configured("bulk"))

    def chat_model(self) -> BaseChatModel:
        """The bulk-tier chat model (every call goes through the router's limiter, retries and accounting)."""
        if self.model is not None:
            return self.model
        if self.router is None:
            raise RuntimeError("chat_model() needs a router or a model; check uses_model() first")
        return self.router.chat("bulk", run_id=self.run_id, prompt=self.load_prompt())

    def load_prompt(self) -> Prompt:
        """The copy prompt in force."""
        if self.prompt is None:
            from agent.models.prompts import load_prompt

            self.prompt = load_prompt("copy_bulk")
        return self.prompt

    def model_label(self) -> str:
        """Which writer produces the copy, for cache keys and reports."""
        if self.model is not None:
            return f"model:{type(self.model).__name__}"
        if self.router is not None and self.router.is_configured("bulk"):
            return f"bulk:{self.router.tier_config('bulk').model}"
        return "templates"
