"""The ``scripted:FILE.json`` provider: a chat model that replays assistant turns from a file.

FILE is a JSON list of turns, each ``{"content": "...", "tool_calls": [{"name": "...", "args": {...}}]}``.
Every call returns the next turn, whatever the input; when the script runs out the model raises
instead of wrapping around, so a test or demo that makes one call too many fails loudly. Tool calls
get deterministic Mistral-style ids (nine alphanumerics), which keeps reruns and caches stable.
Used by tier-1 tests, demos, debugging and red-team runs (a script can call tools the policy forbids).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from agent.errors import ConfigError, ModelError
from agent.models.binding import bind_openai_tools

SCRIPTED_PREFIX = "scripted:"


class ScriptedToolCall(BaseModel):
    """One tool call of a scripted turn."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)


class ScriptedTurn(BaseModel):
    """One assistant turn of a script."""

    model_config = ConfigDict(extra="forbid")

    content: str = ""
    tool_calls: list[ScriptedToolCall] = Field(default_factory=list)


def load_script(path: Path) -> list[ScriptedTurn]:
    """The turns of a script file; a missing or malformed file is a ConfigError naming the problem."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"scripted model file {path} not found") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"scripted model file {path}: {exc}") from None
    if not isinstance(data, list):
        raise ConfigError(f"scripted model file {path}: expected a JSON list of turns")
    turns = []
    for index, raw in enumerate(data, start=1):
        try:
            turns.append(ScriptedTurn.model_validate(raw))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "turn"
            raise ConfigError(f"scripted model file {path}: turn {index}: {where}: {first['msg']}") from None
    return turns


def _pieces(text: str) -> list[str]:
    """Split text into word-sized stream chunks that join back to the original."""
    return re.findall(r"\S+\s*|\s+", text) or [""]


class ScriptedChatModel(BaseChatModel):
    """Replays ``turns`` in order, one per call, and raises when they run out."""

    turns: list[ScriptedTurn]
    source: str = Field(default="<inline>", description="Where the turns came from, for error messages.")
    _position: int = PrivateAttr(default=0)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @classmethod
    def from_file(cls, path: str | Path) -> ScriptedChatModel:
        """A scripted model reading its turns from a JSON file."""
        path = Path(path).expanduser()
        return cls(turns=load_script(path), source=str(path))

    @property
    def _llm_type(self) -> str:
        return "adpilot-scripted"

    @property
    def calls(self) -> int:
        """How many turns have been replayed."""
        return self._position

    @property
    def remaining(self) -> int:
        """How many turns are left."""
        return len(self.turns) - self._position

    def bind_tools(self, tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool], *,
                   tool_choice: dict[str, Any] | str | bool | None = None,
                   **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        """Accept tools like a real model; the script decides which ones are called."""
        return bind_openai_tools(self, tools, tool_choice, **kwargs)

    def _next_turn(self) -> tuple[int, ScriptedTurn]:
        with self._lock:
            if self._position >= len(self.turns):
                raise ModelError(f"scripted model {self.source} ran out of turns: it has {len(self.turns)} and "
                                 f"call {self._position + 1} was made")
            self._position += 1
            return self._position, self.turns[self._position - 1]

    @staticmethod
    def _call_id(call_number: int, index: int) -> str:
        # Mistral rejects tool-call ids that are not exactly nine alphanumerics.
        return f"s{call_number % 100_000:05d}t{index % 100:02d}"

    def _message(self, call_number: int, turn: ScriptedTurn) -> AIMessage:
        tool_calls = [{"name": c.name, "args": c.args, "id": self._call_id(call_number, i), "type": "tool_call"}
                      for i, c in enumerate(turn.tool_calls)]
        return AIMessage(content=turn.content, tool_calls=tool_calls,
                         response_metadata={"model_name": f"{SCRIPTED_PREFIX}{self.source}",
                                            "finish_reason": "tool_calls" if tool_calls else "stop"})

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        call_number, turn = self._next_turn()
        return ChatResult(generations=[ChatGeneration(message=self._message(call_number, turn))])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        call_number, turn = self._next_turn()
        message = self._message(call_number, turn)
        for piece in _pieces(turn.content):
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
        if message.tool_calls:
            chunks = [tool_call_chunk(name=c["name"], args=json.dumps(c["args"], ensure_ascii=False), id=c["id"],
                                      index=i) for i, c in enumerate(message.tool_calls)]
            yield ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=chunks))
