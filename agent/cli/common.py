"""Options and output helpers shared by the CLI commands."""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel

from agent.settings import Settings, load_settings

HomeOpt = Annotated[Path | None, typer.Option("--home", envvar="ADPILOT_HOME",
                                              help="adpilot home directory (default ~/.adpilot).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
ActorOpt = Annotated[str | None, typer.Option("--as", envvar="ADPILOT_ACTOR", help="Who is acting.")]
ApplyOpt = Annotated[bool, typer.Option("--apply", help="Apply the changes (default: dry run).")]


def settings_for(home: Path | None, **overrides: Any) -> Settings:
    """Settings with the command's flags taking precedence over the environment."""
    return load_settings(home=home, **overrides)


def _default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout (Decimals as strings, models dumped)."""
    sys.stdout.write(json.dumps(data, default=_default, indent=2, ensure_ascii=False) + "\n")


def console() -> Any:
    """A rich console on stdout (imported lazily: rich costs start-up time)."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False, width=max(100, Console().width))
