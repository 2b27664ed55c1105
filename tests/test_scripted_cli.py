"""The scripted provider from the CLI: ADPILOT_PLANNER_MODEL=scripted:plan.json drives `adpilot ask`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.audit import AuditLog
from agent.cli import main

TARGET = {"platform": "google", "account_id": "1234567890", "kind": "campaign", "id": "gc-001"}


def _script(tmp_path: Path, turns: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(turns), encoding="utf-8")
    monkeypatch.setenv("ADPILOT_PLANNER_MODEL", f"scripted:{path}")
    return path


def test_ask_replays_the_script_and_records_each_call(demo_warehouse: Path, home: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    _script(tmp_path, [
        {"content": "", "tool_calls": [{"name": "propose_budget_change", "args": {
            "target": TARGET, "daily_budget": {"amount": "44.00", "currency": "EUR"},
            "reason": "+10 % for the sale"}}]},
        {"content": "Proposed: Sommer Sale 40 -> 44 EUR/day."},
    ], monkeypatch)
    code = main(["ask", "Raise the Sommer Sale budget by 10 %", "--as", "anna", "--home", str(home), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["status"] == "done"
    (item,) = out["review"].values()
    assert item["action"]["daily_budget"]["amount"] == "44.00"
    log = AuditLog(home / "audit.sqlite")
    calls = log.records(run_id=out["run_id"], event="model_call")
    assert len(calls) == 2
    assert {c.payload["model"] for c in calls} == {f"scripted:{tmp_path / 'plan.json'}"}
    assert {c.payload["prompt_name"] for c in calls} == {"planner_system"}
    log.close()


def test_a_script_that_runs_out_fails_loudly(demo_warehouse: Path, home: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    _script(tmp_path, [{"content": "", "tool_calls": [{"name": "list_campaigns", "args": {}}]}], monkeypatch)
    code = main(["ask", "Which campaigns overspend?", "--as", "anna", "--home", str(home)])
    err = capsys.readouterr().err
    assert code == 1
    assert "ran out of turns: it has 1 and call 2 was made" in err and "Traceback" not in err


def test_a_missing_script_is_a_config_error(demo_warehouse: Path, home: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ADPILOT_PLANNER_MODEL", f"scripted:{tmp_path / 'nope.json'}")
    code = main(["ask", "Which campaigns overspend?", "--as", "anna", "--home", str(home)])
    assert code == 2
    assert "nope.json not found" in capsys.readouterr().err
