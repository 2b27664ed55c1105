"""The model router: every model call in adpilot goes through here.

``ModelRouter.chat(tier)`` hands out a LangChain chat model for a tier (``planner``, ``bulk``,
``code``) whose calls pass through one pipeline — rate limiter, response cache, retries with
backoff honouring ``Retry-After``, fallback to a second model when the endpoint does not serve the
configured one, and accounting of tokens, cost and latency. Models come from settings: a Mistral
model name served by ``MISTRAL_BASE_URL`` (the public API by default, or any Mistral-compatible
server), or ``scripted:FILE.json`` for replayed turns.
"""

from __future__ import annotations

import logging
import math
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import httpx
from langchain_core.language_models import BaseChatModel

from agent.audit import AuditSink
from agent.errors import BadInput, ConfigError
from agent.models.accounting import Accountant, UsageSummary
from agent.models.cache import ResponseCache
from agent.models.prompts import Prompt
from agent.models.ratelimit import RateLimiter
from agent.models.retry import RetryPolicy
from agent.models.routed import RoutedChatModel
from agent.models.scripted import SCRIPTED_PREFIX, ScriptedChatModel
from agent.settings import Settings

logger = logging.getLogger(__name__)

Tier = Literal["planner", "bulk", "code"]
TIERS: tuple[str, ...] = get_args(Tier)
DEFAULT_BASE_URL = "https://api.mistral.ai/v1"


class ModelFallbackWarning(UserWarning):
    """The configured model is not served by the endpoint; the tier's fallback answers instead."""


@dataclass(frozen=True)
class TierConfig:
    """A tier's model, fallback and sampling parameters, resolved from settings."""

    tier: str
    model: str
    fallback: str | None
    temperature: float
    top_p: float
    max_tokens: int

    @property
    def scripted(self) -> bool:
        """Whether the tier replays a script instead of calling an endpoint."""
        return self.model.startswith(SCRIPTED_PREFIX)


def tier_config(settings: Settings, tier: str) -> TierConfig:
    """The effective configuration of ``tier`` (per-tier settings win over the shared ones)."""
    if tier not in TIERS:
        raise BadInput(f"unknown model tier {tier!r} (use {', '.join(TIERS)})")
    default_temperature = settings.bulk_temperature if tier == "bulk" else settings.temperature
    temperature = getattr(settings, f"{tier}_temperature", None)
    top_p = getattr(settings, f"{tier}_top_p", None)
    max_tokens = getattr(settings, f"{tier}_max_tokens", None)
    return TierConfig(
        tier=tier,
        model=getattr(settings, f"{tier}_model"),
        fallback=getattr(settings, f"{tier}_fallback", None),
        temperature=default_temperature if temperature is None else temperature,
        top_p=settings.top_p if top_p is None else top_p,
        max_tokens=settings.max_tokens if max_tokens is None else max_tokens,
    )


class ModelRouter:
    """Hands out chat models per tier and owns the state their calls share.

    One router per process (the runtime builds it): the limiter, the cache, the fallback decision
    and the per-run usage tally are shared by every model it hands out. ``overrides`` puts any chat
    model (a ``FunctionChatModel`` in tests) behind a tier; ``limiter``, ``retry`` and ``transport``
    are for tests that need a fake clock, recorded waits or an in-process HTTP server.
    """

    def __init__(self, settings: Settings, *, audit: AuditSink | None = None, cache_path: Path | None = None,
                 overrides: Mapping[str, BaseChatModel] | None = None, limiter: RateLimiter | None = None,
                 retry: RetryPolicy | None = None, transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        self.audit = audit
        self.cache_path = cache_path or settings.home / "cache" / "model-responses.sqlite"
        self.limiter = limiter or RateLimiter(settings.requests_per_second, settings.tokens_per_second)
        self.retry = retry or RetryPolicy(max_retries=settings.max_retries, base_delay_s=settings.retry_base_delay_s,
                                          max_wait_s=settings.retry_max_wait_s)
        self.accountant = Accountant(audit)
        self._overrides = dict(overrides or {})
        unknown = set(self._overrides) - set(TIERS)
        if unknown:
            raise BadInput(f"unknown model tier {sorted(unknown)[0]!r} in overrides (use {', '.join(TIERS)})")
        self._transport = transport
        self._lock = threading.Lock()
        self._inner: dict[tuple[str, str], BaseChatModel] = {}
        self._unserved: set[tuple[str, str]] = set()
        self._cache: ResponseCache | None = None

    # -- public API -------------------------------------------------------------------------------

    def tier_config(self, tier: Tier) -> TierConfig:
        """The effective model and sampling parameters of ``tier``."""
        return tier_config(self.settings, tier)

    def is_configured(self, tier: Tier) -> bool:
        """Whether ``tier`` can answer: a script, a test override, or an endpoint key or URL."""
        config = self.tier_config(tier)
        return (config.scripted or tier in self._overrides or self.settings.mistral_api_key is not None
                or bool(self.settings.mistral_base_url))

    def chat(self, tier: Tier, *, run_id: str | None = None, prompt: Prompt | None = None) -> RoutedChatModel:
        """A chat model for ``tier``; supports ``bind_tools``, ``with_structured_output`` and ``stream``.

        ``run_id`` and ``prompt`` (name and version) are recorded with every call. Without a
        ``run_id`` the LangGraph thread id of the calling graph is used when there is one.
        """
        if not self.is_configured(tier):
            raise ConfigError(f"no {tier} model configured: set MISTRAL_API_KEY (and MISTRAL_BASE_URL for an on-prem "
                              f"server) or ADPILOT_{tier.upper()}_MODEL=scripted:plan.json")
        config = self.tier_config(tier)
        if config.scripted:
            self.inner_model(tier, config.model)  # a missing or broken script fails here, not mid-run
        return RoutedChatModel(router=self, tier=tier, run_id=run_id, prompt=prompt)

    def usage(self, run_id: str) -> UsageSummary:
        """Calls, tokens and cost (EUR) of one run's model calls."""
        return self.accountant.usage(run_id)

    def close(self) -> None:
        """Release HTTP clients and the cache connection."""
        with self._lock:
            for model in self._inner.values():
                client = getattr(model, "client", None)
                if isinstance(client, httpx.Client):
                    client.close()
            self._inner.clear()
            if self._cache is not None:
                self._cache.close()
                self._cache = None

    # -- used by RoutedChatModel ----------------------------------------------------------------

    @property
    def cache(self) -> ResponseCache | None:
        """The response cache, opened on first use; None when caching is switched off."""
        if not self.settings.model_cache:
            return None
        with self._lock:
            if self._cache is None:
                self._cache = ResponseCache(self.cache_path)
            return self._cache

    def is_remote(self, tier: str) -> bool:
        """Whether the tier's calls go to an HTTP endpoint (only those are cached)."""
        return tier not in self._overrides and not self.tier_config(tier).scripted  # type: ignore[arg-type]

    def active_model(self, tier: str) -> tuple[str, str | None]:
        """The model to call for ``tier`` now, and the configured model it replaces (if a fallback)."""
        config = self.tier_config(tier)  # type: ignore[arg-type]
        if (tier, config.model) in self._unserved and config.fallback:
            return config.fallback, config.model
        return config.model, None

    def mark_unserved(self, tier: str, model: str) -> str | None:
        """Record that the endpoint does not serve ``model``; the fallback to use, or None.

        Warns once per tier: later calls go straight to the fallback without asking again.
        """
        config = self.tier_config(tier)  # type: ignore[arg-type]
        if model != config.model or not config.fallback or config.fallback == model:
            return None
        with self._lock:
            first = (tier, model) not in self._unserved
            self._unserved.add((tier, model))
        if first:
            message = (f"the endpoint does not serve the {tier} model {model!r}; using the fallback "
                       f"{config.fallback!r} (set ADPILOT_{tier.upper()}_MODEL to silence this)")
            logger.warning(message)
            warnings.warn(message, ModelFallbackWarning, stacklevel=4)
        return config.fallback

    def inner_model(self, tier: str, model: str) -> BaseChatModel:
        """The underlying chat model that serves ``model`` for ``tier`` (built once, then shared)."""
        if tier in self._overrides:
            return self._overrides[tier]
        with self._lock:
            key = (tier, model)
            if key not in self._inner:
                self._inner[key] = self._build(tier, model)
            return self._inner[key]

    def _build(self, tier: str, model: str) -> BaseChatModel:
        if model.startswith(SCRIPTED_PREFIX):
            return ScriptedChatModel.from_file(model[len(SCRIPTED_PREFIX):])
        from langchain_mistralai import ChatMistralAI

        config = self.tier_config(tier)  # type: ignore[arg-type]
        key = self.settings.mistral_api_key.get_secret_value() if self.settings.mistral_api_key else "no-key"
        base_url = (self.settings.mistral_base_url or DEFAULT_BASE_URL).rstrip("/")
        timeout = math.ceil(self.settings.request_timeout_s)
        extra = {}
        if self._transport is not None:
            extra["client"] = httpx.Client(base_url=base_url, transport=self._transport, timeout=timeout, headers={
                "Content-Type": "application/json", "Accept": "application/json", "Authorization": f"Bearer {key}"})
        # max_retries=1 means one attempt: the router's own retry loop owns every retry decision.
        return ChatMistralAI(model=model, api_key=key, base_url=base_url, temperature=config.temperature,
                             top_p=config.top_p, max_tokens=config.max_tokens, max_retries=1, timeout=timeout,
                             **extra)
