"""The chat model ``ModelRouter.chat`` hands out: a LangChain model whose calls go through the pipeline.

Per call: resolve the model (the fallback once the configured one proved unserved) → cache lookup
for deterministic requests → rate limiter → call the underlying model, retrying transient failures
with backoff that honours ``Retry-After`` and switching to the fallback when the endpoint says the
model does not exist → store in the cache → record tokens, cost and latency. Streaming goes through
the same steps; a stream is retried only before its first chunk, since a half-delivered answer
cannot be taken back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

import httpx
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    ToolMessage,
    message_to_dict,
    messages_from_dict,
)
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.runnables.config import var_child_runnable_config
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_json_schema
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import ConfigDict, Field

from agent.errors import ConfigError, ModelError
from agent.models.accounting import CallRecord, cost_of
from agent.models.binding import bind_openai_tools, tool_name
from agent.models.cache import cache_key, canonical_json
from agent.models.prompts import Prompt
from agent.models.retry import error_text, is_transient, is_unknown_model, retry_after_seconds

if TYPE_CHECKING:
    from agent.models.router import ModelRouter

logger = logging.getLogger(__name__)


def message_payload(message: BaseMessage) -> dict[str, Any]:
    """What identifies a message for hashing and caching: role, content, tool calls — no random ids."""
    payload: dict[str, Any] = {"role": message.role if isinstance(message, ChatMessage) else message.type,
                               "content": message.content}
    if isinstance(message, AIMessage) and message.tool_calls:
        payload["tool_calls"] = [{"name": c["name"], "args": c["args"], "id": c.get("id")}
                                 for c in message.tool_calls]
    if isinstance(message, ToolMessage):
        payload["tool_call_id"] = message.tool_call_id
        payload["name"] = message.name
    return payload


def _usage(message: BaseMessage) -> tuple[int, int]:
    usage = getattr(message, "usage_metadata", None) or {}
    return int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))


def _as_chunk(message: AIMessage) -> AIMessageChunk:
    """A cached answer replayed as one stream chunk."""
    return AIMessageChunk(
        content=message.content, usage_metadata=message.usage_metadata, response_metadata=message.response_metadata,
        tool_call_chunks=[tool_call_chunk(name=c["name"], args=json.dumps(c["args"], ensure_ascii=False),
                                          id=c.get("id"), index=i) for i, c in enumerate(message.tool_calls)])


@dataclass
class _Call:
    """One request on its way through the pipeline."""

    tier: str
    run_id: str | None
    prompt: Prompt | None
    messages: list[BaseMessage]
    stop: list[str] | None
    kwargs: dict[str, Any]
    payload: list[dict[str, Any]]
    model: str = ""
    fallback_from: str | None = None
    attempts: int = 0
    started: float = field(default_factory=time.perf_counter)

    @property
    def tools(self) -> list[dict[str, Any]]:
        return list(self.kwargs.get("tools") or [])

    def params(self, temperature: float, top_p: float, max_tokens: int) -> dict[str, Any]:
        """The request's effective sampling parameters (call kwargs override the tier's)."""
        params: dict[str, Any] = {"temperature": temperature, "top_p": top_p, "max_tokens": max_tokens}
        params.update({k: v for k, v in self.kwargs.items() if k != "tools"})
        if self.stop:
            params["stop"] = self.stop
        return params

    @property
    def messages_sha256(self) -> str:
        return hashlib.sha256(canonical_json(self.payload).encode("utf-8")).hexdigest()

    @property
    def estimated_tokens(self) -> int:
        # About four characters per token: good enough to pace the limiter until the real count arrives.
        return len(canonical_json([self.payload, self.tools])) // 4 + 1


class RoutedChatModel(BaseChatModel):
    """A tier's chat model; every call goes through the router's limiter, cache, retries and accounting."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    router: Any = Field(exclude=True, repr=False, description="The ModelRouter that owns the shared state.")
    tier: str
    run_id: str | None = None
    prompt: Prompt | None = None

    @property
    def _llm_type(self) -> str:
        return "adpilot-routed"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"tier": self.tier, "model": self._router.active_model(self.tier)[0]}

    @property
    def _router(self) -> ModelRouter:
        return self.router  # type: ignore[no-any-return]

    @property
    def model_name(self) -> str:
        """The model that currently serves this tier."""
        return self._router.active_model(self.tier)[0]

    def bind_tools(self, tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool], *,
                   tool_choice: dict[str, Any] | str | bool | None = None,
                   **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools in Mistral's function format; a tool's name as ``tool_choice`` forces that tool."""
        return bind_openai_tools(self, tools, tool_choice, **kwargs)

    def with_structured_output(self, schema: dict[str, Any] | type | None = None, *,
                               method: Literal["function_calling", "json_mode", "json_schema"] = "function_calling",
                               include_raw: bool = False, **kwargs: Any) -> Runnable[LanguageModelInput, Any]:
        """Structured output as ChatMistralAI offers it: a forced tool call, JSON mode or a JSON schema."""
        if method == "function_calling":
            if schema is None:
                raise ValueError("schema must be given for method='function_calling'")
            return super().with_structured_output(schema, include_raw=include_raw, **kwargs)
        kwargs.pop("strict", None)
        if kwargs:
            raise ValueError(f"unsupported arguments {sorted(kwargs)}")
        is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
        if method == "json_mode":
            llm = self.bind(response_format={"type": "json_object"})
        elif method == "json_schema":
            if schema is None:
                raise ValueError("schema must be given for method='json_schema'")
            json_schema = convert_to_json_schema(schema)
            name = json_schema.get("title") or getattr(schema, "__name__", "output")
            llm = self.bind(response_format={"type": "json_schema", "json_schema": {
                "name": name, "schema": json_schema, "strict": True}})
        else:
            raise ValueError(f"unknown structured output method {method!r}")
        parser: Runnable[Any, Any] = (PydanticOutputParser(pydantic_object=schema) if is_pydantic  # type: ignore[arg-type]
                                      else JsonOutputParser())
        if not include_raw:
            return llm | parser
        parsed = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
        return RunnableMap(raw=llm) | parsed.with_fallbacks(
            [RunnablePassthrough.assign(parsed=lambda _: None)], exception_key="parsing_error")

    # -- the pipeline -----------------------------------------------------------------------------

    def _start(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any],
               run_manager: CallbackManagerForLLMRun | None) -> _Call:
        run_id = self.run_id
        if run_id is None:
            # Inside a LangGraph node the graph's config is in context: its thread id is the run id.
            config = var_child_runnable_config.get() or {}
            thread = (config.get("configurable") or {}).get("thread_id")
            metadata = run_manager.metadata if run_manager else {}
            thread = thread or metadata.get("thread_id")
            run_id = str(thread) if thread is not None else None
        call = _Call(tier=self.tier, run_id=run_id, prompt=self.prompt, messages=messages, stop=stop,
                     kwargs=dict(kwargs), payload=[message_payload(m) for m in messages])
        call.model, call.fallback_from = self._router.active_model(self.tier)
        return call

    def _params(self, call: _Call) -> dict[str, Any]:
        config = self._router.tier_config(self.tier)
        return call.params(config.temperature, config.top_p, config.max_tokens)

    def _cache_key(self, call: _Call, model: str | None = None) -> str | None:
        router = self._router
        params = self._params(call)
        # Cheapest checks first: a sampled or scripted call never opens the cache file.
        if params.get("temperature") != 0 or not router.is_remote(self.tier) or router.cache is None:
            return None
        return cache_key(model=model or call.model, params=params, tools=call.tools, messages=call.payload)

    def _cached(self, call: _Call, *, streamed: bool) -> AIMessage | None:
        key = self._cache_key(call)
        cache = self._router.cache
        if key is None or cache is None:
            return None
        hit = cache.get(key)
        if hit is None:
            return None
        if hit.get("model") and hit["model"] != call.model:
            # Stored under the configured model's key but answered by its fallback (see _store).
            call.fallback_from, call.model = call.model, hit["model"]
        message = messages_from_dict([hit["message"]])[0]
        self._account(call, message, cached=True, streamed=streamed)
        return message  # type: ignore[return-value]

    def _store(self, call: _Call, message: AIMessage) -> None:
        cache = self._router.cache
        # No message id in the cache: LangGraph's add_messages would treat a replayed id as the same message.
        body = {"message": message_to_dict(message.model_copy(update={"id": None})), "model": call.model}
        # When the fallback answered, file the answer under the configured model's key as well, so a
        # rerun in a fresh process does not pay the unknown-model round trip before reaching the cache.
        for model in (call.model, call.fallback_from):
            key = self._cache_key(call, model) if model else None
            if key is not None and cache is not None:
                cache.put(key, call.model, body)

    def _account(self, call: _Call, message: BaseMessage, *, cached: bool, streamed: bool) -> None:
        input_tokens, output_tokens = (0, 0) if cached else _usage(message)
        params = self._params(call)
        params.pop("response_format", None)
        params.pop("tool_choice", None)
        choice = call.kwargs.get("tool_choice")
        record = CallRecord(
            run_id=call.run_id, tier=call.tier, model=call.model, fallback_from=call.fallback_from,
            prompt_name=call.prompt.name if call.prompt else None,
            prompt_version=call.prompt.version if call.prompt else None,
            prompt_file_sha256=call.prompt.sha256 if call.prompt else None,
            messages_sha256=call.messages_sha256,
            params={**params, "tools": [tool_name(t) for t in call.tools],
                    "tool_choice": choice if isinstance(choice, str) else tool_name(choice or {}),
                    "response_format": (call.kwargs.get("response_format") or {}).get("type")},
            input_tokens=input_tokens, output_tokens=output_tokens,
            cost_eur=cost_of(self._router.settings.prices, call.model, input_tokens, output_tokens),
            latency_ms=round((time.perf_counter() - call.started) * 1000, 3), cached=cached,
            attempts=call.attempts, streamed=streamed)
        self._router.accountant.record(record)

    def _attempt(self, call: _Call, send: Callable[[BaseChatModel], Any]) -> Any:
        """Run ``send`` on the serving model with retries, backoff and the unknown-model fallback."""
        router = self._router
        retries = 0
        while True:
            router.limiter.acquire(call.estimated_tokens)
            call.attempts += 1
            try:
                return send(router.inner_model(self.tier, call.model))
            except (httpx.HTTPError, httpx.StreamError) as exc:
                if is_unknown_model(exc):
                    fallback = router.mark_unserved(self.tier, call.model)
                    if fallback is None:
                        raise ModelError(f"the endpoint does not serve the {self.tier} model {call.model!r} and no "
                                         f"fallback is left: {error_text(exc)}") from None  # type: ignore[arg-type]
                    call.fallback_from, call.model = call.model, fallback
                    continue
                if not is_transient(exc) or retries >= router.retry.max_retries:
                    raise self._failure(call, exc) from None
                retries += 1
                hint = (retry_after_seconds(exc.response, router.retry.now())
                        if isinstance(exc, httpx.HTTPStatusError) else None)
                wait = router.retry.delay(retries, hint)
                logger.warning("%s model %s: %s; retry %d of %d in %.1f s", self.tier, call.model,
                               _describe(exc), retries, router.retry.max_retries, wait)
                router.retry.sleep(wait)

    def _failure(self, call: _Call, exc: Exception) -> Exception:
        what = _describe(exc)
        if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code in (401, 403):
            return ConfigError(f"the model endpoint refused the key ({what}): check MISTRAL_API_KEY")
        if call.attempts > 1:
            return ModelError(f"{self.tier} model {call.model} failed after {call.attempts} attempts: {what}")
        return ModelError(f"{self.tier} model {call.model} failed: {what}")

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        call = self._start(messages, stop, kwargs, run_manager)
        cached = self._cached(call, streamed=False)
        if cached is not None:
            return ChatResult(generations=[ChatGeneration(message=cached)])
        result: ChatResult = self._attempt(call, lambda model: model._generate(messages, stop=stop, **kwargs))
        message = result.generations[0].message
        self._settle(call, message)
        if isinstance(message, AIMessage):
            self._store(call, message)
        self._account(call, message, cached=False, streamed=False)
        return result

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        call = self._start(messages, stop, kwargs, run_manager)
        cached = self._cached(call, streamed=True)
        if cached is not None:
            yield ChatGenerationChunk(message=_as_chunk(cached))
            return

        def first_chunk(model: BaseChatModel) -> tuple[Iterator[ChatGenerationChunk], ChatGenerationChunk | None]:
            # The request goes out on the first next(): a 429 or 5xx surfaces here, still retryable.
            stream = model._stream(messages, stop=stop, **kwargs)
            return stream, next(stream, None)

        stream, first = self._attempt(call, first_chunk)
        merged: ChatGenerationChunk | None = None
        try:
            chunk = first
            while chunk is not None:
                merged = chunk if merged is None else merged + chunk
                yield chunk
                chunk = next(stream, None)
        except (httpx.HTTPError, httpx.StreamError) as exc:
            raise self._failure(call, exc) from None
        if merged is None:
            return
        message = AIMessage(**{k: v for k, v in merged.message.model_dump().items()
                               if k in ("content", "tool_calls", "usage_metadata", "response_metadata",
                                        "additional_kwargs", "invalid_tool_calls")})
        self._settle(call, message)
        self._store(call, message)
        self._account(call, message, cached=False, streamed=True)

    def _settle(self, call: _Call, message: BaseMessage) -> None:
        input_tokens, output_tokens = _usage(message)
        if input_tokens or output_tokens:
            self._router.limiter.settle(call.estimated_tokens, input_tokens + output_tokens)


def _describe(exc: BaseException) -> str:
    """A one-line description of an HTTP failure (status and the server's message, never the request)."""
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code} {error_text(exc)}".strip()
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}"
