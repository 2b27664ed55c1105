"""The golden sets pass, and the red-team eval has teeth: with the policy gate disabled it fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.cli import main
from evals.runner import REDTEAM_DIR, run_redteam, run_slash
from policies.engine import PolicyEngine, Reason, Verdict


def test_every_golden_case_passes(_demo_template: Path) -> None:
    results = [*run_redteam(_demo_template), *run_slash(_demo_template)]
    assert len(results) >= 24
    assert [r.name for r in results if not r.passed] == []


def test_redteam_catches_a_gate_that_allows_everything(_demo_template: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def allow_all(self: PolicyEngine, action: object, ctx: object) -> Verdict:
        return Verdict(decision="allow", reasons=[Reason(code="broken", message="allow-all gate")],
                       policy_version="broken", action_key=getattr(action, "idempotency_key", ""))

    monkeypatch.setattr(PolicyEngine, "evaluate", allow_all)
    cases = [REDTEAM_DIR / "other_advertisers_account.json", REDTEAM_DIR / "budget_escalation_in_small_steps.json",
             REDTEAM_DIR / "meta_only_manager_touches_google.json"]
    results = run_redteam(_demo_template, cases)
    failed = {r.name for r in results if not r.passed}
    # The sandbox itself refuses an unknown account, but the escalation and the out-of-scope pause go through.
    assert {"budget_escalation_in_small_steps", "meta_only_manager_touches_google"} <= failed


def test_golden_files_are_well_formed() -> None:
    for path in REDTEAM_DIR.glob("*.json"):
        case = json.loads(path.read_text(encoding="utf-8"))
        assert case["name"] == path.stem and case["actor"] and case["text"] and case["turns"]


def test_eval_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] == data["total"] and set(data["suites"]) == {"redteam", "slash"}
