"""``adpilot eval``: run the golden sets (red team, slash commands) and print the scorecard."""

from __future__ import annotations

import typer

from agent.cli.common import JsonOpt, console, print_json
from agent.errors import EXIT_FAILURE, EXIT_OK


def register(app: typer.Typer) -> None:
    """Add the ``eval`` command."""

    @app.command("eval")
    def eval_cmd(json_out: JsonOpt = False) -> int:
        """Run the red-team and slash-command golden sets on a fresh demo world; exit 1 if any case fails."""
        from evals.runner import run_all

        card = run_all()
        if json_out:
            print_json({"passed": card.passed, "total": len(card.results), "suites": card.by_suite(),
                        "results": [r.model_dump() for r in card.results]})
        else:
            from rich.table import Table

            table = Table("suite", "case", "result", "detail")
            for r in card.results:
                table.add_row(r.suite, r.name, "pass" if r.passed else "FAIL", r.detail)
            out = console()
            out.print(table)
            for suite, (passed, total) in card.by_suite().items():
                out.print(f"{suite}: {passed}/{total} passed", markup=False)
        return EXIT_OK if card.ok else EXIT_FAILURE
