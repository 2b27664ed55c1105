"""Tool binding shared by the routed model and the offline fakes.

Tools are converted to the OpenAI/Mistral function format once, at bind time, so every model in
adpilot sees (and the cache keys and accounting record) the same tool definitions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool


def tool_name(tool: dict[str, Any]) -> str | None:
    """The function name of a converted tool."""
    return (tool.get("function") or {}).get("name") or tool.get("name")


def bind_openai_tools(model: BaseChatModel, tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
                      tool_choice: dict[str, Any] | str | bool | None = None,
                      **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
    """Bind ``tools`` the way ChatMistralAI does: a tool's name as ``tool_choice`` forces that tool."""
    formatted = [convert_to_openai_tool(tool) for tool in tools]
    if tool_choice is True:
        tool_choice = "any"
    if tool_choice:
        names = {tool_name(tool) for tool in formatted}
        kwargs["tool_choice"] = ({"type": "function", "function": {"name": tool_choice}}
                                 if isinstance(tool_choice, str) and tool_choice in names else tool_choice)
    return model.bind(tools=formatted, **kwargs)
