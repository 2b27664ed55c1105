"""The model router and everything model calls share: tiers, limiter, cache, retries, accounting, prompts.

Graphs get chat models only through ``ModelRouter.chat(tier)`` (the runtime builds one router per
process); tests put ``ScriptedChatModel`` (``scripted:FILE.json``) or ``FunctionChatModel`` behind a tier.
"""

from agent.models.accounting import CallRecord, UsageSummary
from agent.models.fakes import CallInfo, FunctionChatModel
from agent.models.prompts import Prompt, load_prompt
from agent.models.router import ModelFallbackWarning, ModelRouter, Tier, TierConfig
from agent.models.scripted import ScriptedChatModel

__all__ = ["CallInfo", "CallRecord", "FunctionChatModel", "ModelFallbackWarning", "ModelRouter", "Prompt",
           "ScriptedChatModel", "Tier", "TierConfig", "UsageSummary", "load_prompt"]
