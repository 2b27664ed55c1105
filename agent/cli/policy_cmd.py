"""``adpilot policy check``: validate a policy file before it goes live."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from agent.cli.common import HomeOpt, JsonOpt, print_json, settings_for
from agent.errors import EXIT_BAD_INPUT

FileArg = Annotated[Path | None, typer.Argument(help="Policy YAML to check (default: the policy in force).",
                                                show_default=False)]


def register(app: typer.Typer) -> None:
    """Add the ``policy`` command group."""
    group = typer.Typer(help="Policy files: validate them before they decide anything.", no_args_is_help=True)

    @group.command("check")
    def check(file: FileArg = None, json_out: JsonOpt = False, home: HomeOpt = None) -> int:
        """Validate a policy file; print every problem as FILE:LINE: message (exit 2 when invalid)."""
        from policies.engine import PolicyEngine
        from policies.loader import PolicyLoadError

        path = file if file is not None else settings_for(home).policy_file
        try:
            engine = PolicyEngine.load(path)
        except PolicyLoadError as exc:
            if json_out:
                print_json({"ok": False, "file": str(path),
                            "errors": [{"line": i.line, "message": i.message} for i in exc.issues]})
            for issue in exc.issues:
                print(str(issue), file=sys.stderr)
            raise typer.Exit(EXIT_BAD_INPUT) from exc
        policy = engine.policy
        assert policy is not None  # a loaded engine always has its policy
        rules = len(policy.approvals.rules) + len(policy.blackouts)
        if json_out:
            print_json({"ok": True, "file": str(path), "version": engine.version, "name": policy.name,
                        "actors": sorted(policy.actors), "roles": sorted(policy.roles),
                        "approvers": engine.approvers(), "approval_rules": len(policy.approvals.rules),
                        "blackouts": len(policy.blackouts)})
        else:
            print(f"ok: {path} (version {engine.version[:12]}…, {len(policy.actors)} actors, {rules} rules)")
        return 0

    app.add_typer(group, name="policy")
