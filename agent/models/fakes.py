"""A function-driven fake chat model for tests: replies come from a Python function.

``FunctionChatModel(fn)`` calls ``fn(messages, info)`` for every model call, where ``info`` tells
the function which tools are bound, the tool choice and the call number. The function returns an
``AIMessage`` (tool calls, usage metadata and all), a plain string, or a scripted-style turn dict
``{"content": ..., "tool_calls": [{"name": ..., "args": {...}}]}``. Unlike the scripted model it can
look at what it was sent, so a test can answer a tool result, or raise to simulate a failure.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from pydantic import PrivateAttr

from agent.models.binding import bind_openai_tools, tool_name
from agent.models.scripted import ScriptedTurn


@dataclass(frozen=True)
class CallInfo:
    """What a FunctionChatModel's function learns about the call besides the messages."""

    call_number: int
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def tool_names(self) -> list[str]:
        """Names of the bound tools."""
        return [name for tool in self.tools if (name := tool_name(tool))]


Reply = AIMessage | str | dict[str, Any]


def _as_message(reply: Reply, call_number: int) -> AIMessage:
    if isinstance(reply, AIMessage):
        return reply
    if isinstance(reply, str):
        return AIMessage(content=reply)
    turn = ScriptedTurn.model_validate(reply)
    return AIMessage(content=turn.content, tool_calls=[
        {"name": c.name, "args": c.args, "id": f"f{call_number % 100_000:05d}t{i % 100:02d}", "type": "tool_call"}
        for i, c in enumerate(turn.tool_calls)])


class FunctionChatModel(BaseChatModel):
    """A chat model whose every reply is ``fn(messages, info)``."""

    fn: Callable[[list[BaseMessage], CallInfo], Reply]
    _calls: int = PrivateAttr(default=0)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, fn: Callable[[list[BaseMessage], CallInfo], Reply], **kwargs: Any) -> None:
        super().__init__(fn=fn, **kwargs)

    @property
    def _llm_type(self) -> str:
        return "adpilot-function"

    @property
    def calls(self) -> int:
        """How many times the function has been called."""
        return self._calls

    def bind_tools(self, tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool], *,
                   tool_choice: dict[str, Any] | str | bool | None = None,
                   **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        """Accept tools like a real model; ``info.tools`` shows them to the function."""
        return bind_openai_tools(self, tools, tool_choice, **kwargs)

    def _reply(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> AIMessage:
        with self._lock:
            self._calls += 1
            number = self._calls
        params = {k: v for k, v in kwargs.items() if k not in ("tools", "tool_choice")}
        info = CallInfo(call_number=number, tools=list(kwargs.get("tools") or []),
                        tool_choice=kwargs.get("tool_choice"), params=params)
        return _as_message(self.fn(list(messages), info), number)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._reply(messages, kwargs))])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        message = self._reply(messages, kwargs)
        text = message.content if isinstance(message.content, str) else message.text
        yield ChatGenerationChunk(message=AIMessageChunk(
            content=text, usage_metadata=message.usage_metadata,
            tool_call_chunks=[tool_call_chunk(name=c["name"], args=json.dumps(c["args"], ensure_ascii=False),
                                              id=c["id"], index=i) for i, c in enumerate(message.tool_calls)]))
