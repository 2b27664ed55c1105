"""The ``adpilot`` command line: a thin shell over library calls.

``main(argv) -> int`` never raises for bad input: it prints one line on stderr and returns the exit
code from DESIGN.md (0 done, 1 failure, 2 bad input, 3 stopped by policy / waiting for approval).
Each command lives in its own module in ``agent.cli`` and registers itself in ``COMMAND_MODULES``;
heavy libraries are imported inside the commands so ``adpilot --help`` starts fast.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

import click
import typer
from pydantic import ValidationError

from agent.domain import DomainError
from agent.errors import EXIT_BAD_INPUT, EXIT_FAILURE, AdpilotError

COMMAND_MODULES: tuple[str, ...] = (
    "agent.cli.data",
    "agent.cli.listing",
    "agent.cli.demo",
    "agent.cli.tools_cmd",
    "agent.cli.policy_cmd",
    "agent.cli.runs",
    "agent.cli.copy_cmd",
    "agent.cli.optimize",
    "agent.cli.doctor",
    "agent.cli.eval_cmd",
)


def build_app() -> typer.Typer:
    """The Typer application with every available command registered."""
    app = typer.Typer(
        name="adpilot",
        help="Policy-gated AI agent for Google Ads and Meta. Dry run by default; --apply to change things.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        add_completion=False,
    )
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that command is not built yet
                continue
            raise
        module.register(app)
    return app


def _one_line_validation(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "__root__")
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {message}{more}" if where else f"{message}{more}"


def error_line(exc: BaseException) -> str:
    """The one line a person sees for an error."""
    if isinstance(exc, ValidationError):
        return _one_line_validation(exc)
    return " ".join(str(exc).split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (without the program name) and return the exit code."""
    command = typer.main.get_command(build_app())
    try:
        result = command.main(args=list(argv) if argv is not None else None, prog_name="adpilot",
                              standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.Abort:
        print("error: aborted", file=sys.stderr)
        return EXIT_FAILURE
    except click.UsageError as exc:
        print(f"error: {error_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except AdpilotError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except (ValidationError, DomainError) as exc:
        print(f"error: {error_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return int(result) if isinstance(result, int) else 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
