"""The tool registry: typed ``verb_noun`` tools, described once, exposed to people, the CLI and models.

A tool is a plain function ``fn(deps, args) -> result``: ``deps`` is injected by the caller (never a
global), ``args`` is a pydantic model whose fields carry the descriptions a model reads, and the
result is a small pydantic model (a preview of at most ``MAX_LIMIT`` rows plus totals, never a table).
The first line of the function's docstring is the summary the model sees first.

``to_langchain(spec, deps)`` binds the deps by closure, so the model's JSON schema is the args model
only. Errors a model can fix (``agent.errors.BadInput`` and its subclasses, and invalid arguments)
come back as an ``"error: ..."`` tool message; anything else is a bug or an outage and propagates.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from agent.errors import BadInput

ToolKind = Literal["read", "propose"]

DEFAULT_LIMIT = 20
MAX_LIMIT = 100

# Read tools shipped with adpilot. Importing a module registers its tools.
BUILTIN_TOOL_MODULES: tuple[str, ...] = ("tools.pim", "tools.inventory", "tools.bi", "tools.ads_read", "tools.brand")
# Proposal tools live with the planner (graphs/planner/tools.py); they are optional until it exists.
PLANNER_TOOL_MODULE = "graphs.planner.tools"

_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$")


def limit_field(what: str = "rows") -> Any:
    """The standard ``limit`` argument: how many rows a preview holds (default 20, hard max 100)."""
    return Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT,
                 description=f"Maximum number of {what} to return (1-{MAX_LIMIT}); totals always cover all matches.")


def one_line_validation_error(exc: ValidationError) -> str:
    """A pydantic error as one line a model (or a person) can act on."""
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err.get("loc", ()))
        message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    more = f" (+{exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
    return "; ".join(parts) + more


@dataclass(frozen=True)
class ToolSpec:
    """One tool: its name, what the model reads, whether it reads or proposes, its arguments and its function."""

    name: str
    description: str
    kind: ToolKind
    args_model: type[BaseModel]
    fn: Callable[[Any, Any], Any]

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"tool name {self.name!r} is not a verb_noun identifier")
        if not self.description.strip():
            raise ValueError(f"tool {self.name} has no description")
        if self.kind not in ("read", "propose"):
            raise ValueError(f"tool {self.name}: kind must be read or propose, got {self.kind!r}")

    @property
    def summary(self) -> str:
        """The first line of the description: what a model reads first."""
        return self.description.strip().splitlines()[0].strip()

    def json_schema(self) -> dict[str, Any]:
        """The JSON schema of the arguments, as the model sees it."""
        return self.args_model.model_json_schema()

    def parse_args(self, raw: BaseModel | Mapping[str, Any]) -> BaseModel:
        """Validate raw arguments; invalid ones raise ``BadInput`` with a one-line message."""
        if isinstance(raw, self.args_model):
            return raw
        data = raw.model_dump() if isinstance(raw, BaseModel) else dict(raw)
        try:
            return self.args_model.model_validate(data)
        except ValidationError as exc:
            raise BadInput(f"{self.name}: {one_line_validation_error(exc)}") from exc

    def invoke(self, deps: Any, raw: BaseModel | Mapping[str, Any]) -> Any:
        """Call the tool from Python with validated arguments and return its typed result."""
        return self.fn(deps, self.parse_args(raw))


class ToolRegistry:
    """Tools by name. Registering the same function twice is a no-op; a second function under a taken name fails."""

    def __init__(self) -> None:
        self._specs: dict[str, ToolSpec] = {}

    def register(self, spec: ToolSpec) -> ToolSpec:
        """Add a tool; raises ``ValueError`` when another function already holds the name."""
        existing = self._specs.get(spec.name)
        if existing is not None and _qualified(existing.fn) != _qualified(spec.fn):
            raise ValueError(f"tool name {spec.name!r} is taken by {_qualified(existing.fn)}")
        self._specs[spec.name] = spec
        return spec

    def get(self, name: str) -> ToolSpec:
        """The tool called ``name``; ``KeyError`` when there is none."""
        return self._specs[name]

    def all(self, kind: ToolKind | None = None) -> list[ToolSpec]:
        """Every registered tool (optionally of one kind), sorted by name."""
        return sorted((s for s in self._specs.values() if kind is None or s.kind == kind), key=lambda s: s.name)


def _qualified(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


# The registry holds static descriptions of code, like a command table; nothing mutable at run time
# (connections, platforms, settings) lives here — that is what ``deps`` is for.
REGISTRY = ToolRegistry()


def register_tool(spec: ToolSpec, registry: ToolRegistry | None = None) -> ToolSpec:
    """Register a ready-made spec (proposal tools built by the planner use this)."""
    return (registry or REGISTRY).register(spec)


def tool(kind: ToolKind = "read", *, registry: ToolRegistry | None = None) -> Callable[[Callable[..., Any]],
                                                                                       Callable[..., Any]]:
    """Decorator: register ``fn(deps, args: ArgsModel) -> Result`` under its own name and docstring.

    The function stays a plain function, so Python callers (and tests) call it directly.
    """

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        hints = typing.get_type_hints(fn)
        params = list(inspect.signature(fn).parameters)
        if len(params) != 2:
            raise TypeError(f"tool {fn.__name__} must take (deps, args)")
        args_model = hints.get(params[1])
        if not (isinstance(args_model, type) and issubclass(args_model, BaseModel)):
            raise TypeError(f"tool {fn.__name__}: the args parameter must be annotated with a pydantic model")
        register_tool(ToolSpec(name=fn.__name__, description=inspect.cleandoc(fn.__doc__ or ""), kind=kind,
                               args_model=args_model, fn=fn), registry)
        return fn

    return decorate


def load_tool_modules(include_planner: bool = True) -> None:
    """Import every module that registers tools (the built-in read tools, and the planner's proposal tools)."""
    for name in BUILTIN_TOOL_MODULES:
        importlib.import_module(name)
    if include_planner:
        try:
            importlib.import_module(PLANNER_TOOL_MODULE)
        except ModuleNotFoundError as exc:
            # Only the planner module (or its not-yet-created packages) may be missing; a missing
            # dependency *inside* it is a real error.
            if exc.name not in ("graphs", "graphs.planner", PLANNER_TOOL_MODULE):
                raise


def all_tools(kind: ToolKind | None = None, *, include_planner: bool = True) -> list[ToolSpec]:
    """Every tool adpilot has, after importing the modules that define them."""
    load_tool_modules(include_planner=include_planner)
    return REGISTRY.all(kind)


def result_text(result: Any) -> str:
    """A tool result as the text a model reads: compact JSON for models, strings as they are.

    Nulls stay in: "sale_price": null (not on sale) or "roas": null (no spend) are facts a model needs.
    """
    if isinstance(result, str):
        return result
    if isinstance(result, BaseModel):
        return result.model_dump_json()
    return json.dumps(result, default=str, ensure_ascii=False)


def to_langchain(spec: ToolSpec, deps: Any) -> Any:
    """A LangChain ``StructuredTool`` for ``spec`` with ``deps`` bound (hidden from the model's schema).

    The model sees the args model's schema only. ``BadInput`` (unknown sku, empty date range,
    ambiguous name...) and invalid arguments come back as ``"error: <message>"`` so the model can
    correct itself; every other exception propagates.
    """
    from langchain_core.tools import StructuredTool

    def run(**kwargs: Any) -> str:
        try:
            return result_text(spec.invoke(deps, kwargs))
        except BadInput as exc:
            return f"error: {exc.message}"

    def on_invalid(exc: ValidationError) -> str:
        return f"error: {spec.name}: {one_line_validation_error(exc)}"

    return StructuredTool.from_function(func=run, name=spec.name, description=spec.description,
                                        args_schema=spec.args_model, infer_schema=False,
                                        handle_validation_error=on_invalid)


def to_langchain_tools(specs: Iterable[ToolSpec], deps: Any) -> list[Any]:
    """``to_langchain`` for several specs (the planner binds all read tools at once)."""
    return [to_langchain(spec, deps) for spec in specs]
