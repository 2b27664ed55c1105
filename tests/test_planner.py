"""Tier 1: the planner graph end to end on the demo world, with scripted models and the real policy."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from agent.domain import (
    Action,
    ActionResult,
    CreateAd,
    EntityRef,
    GoogleResponsiveSearchAd,
    Money,
    SetBudget,
    SetStatus,
)
from agent.errors import BadInput, ConfigError, PolicyDenied
from agent.runtime import Runtime
from agent.settings import load_settings
from graphs.planner.run import Runner, RunRequest
from tools.warehouse.demo import INJECTION_TEXT, PLANTED

GOOGLE = "1234567890"


def _ref(kind: str, id_: str, account: str = GOOGLE, platform: str = "google") -> EntityRef:
    return EntityRef(platform=platform, account_id=account, kind=kind, id=id_)


def _budget(runtime: Runtime, campaign_id: str) -> Decimal:
    return runtime.warehouse.execute("SELECT daily_budget FROM campaigns WHERE campaign_id = ?",
                                     [campaign_id]).fetchall()[0][0]


def _status(runtime: Runtime, table: str, id_col: str, id_: str) -> str:
    return runtime.warehouse.execute(f"SELECT status FROM {table} WHERE {id_col} = ?", [id_]).fetchall()[0][0]


def _snapshot(runtime: Runtime) -> list[Any]:
    con = runtime.warehouse
    return [con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
            for t in ("campaigns", "ad_groups", "ads", "keywords", "sandbox_mutations")]


def _scripted(tmp_path: Path, home: Path, turns: list[dict[str, Any]]) -> Runtime:
    script = tmp_path / "plan.json"
    script.write_text(json.dumps(turns))
    return Runtime(load_settings(home=home, planner_model=f"scripted:{script}"))


def test_slash_dry_run_changes_nothing(demo_runtime: Runtime) -> None:
    runner = Runner(demo_runtime)
    before = _snapshot(demo_runtime)
    outcome = runner.start(RunRequest(text="/budget 'Sommer Sale' +10%", actor="anna"))
    assert outcome.status == "done" and outcome.exit_code == 0
    (entry,) = outcome.state["results"].values()
    assert entry["result"]["status"] == "validated"
    assert outcome.state["forecast"]["totals"], "a dry run shows the forecast"
    assert _snapshot(demo_runtime) == before
    assert "44.00 EUR" in outcome.report


def test_apply_with_four_eyes_approval(demo_runtime: Runtime) -> None:
    runner = Runner(demo_runtime)
    # +15 % is within the 20 % per-change limit but above the 10 % approval threshold.
    outcome = runner.start(RunRequest(text="/budget gc-003 +15%", actor="anna", apply=True))
    assert outcome.status == "waiting_approval" and outcome.exit_code == 3
    assert "ben" in outcome.approvers and "anna" not in outcome.approvers
    assert _budget(demo_runtime, "gc-003") == Decimal("60.00")
    with pytest.raises(PolicyDenied, match="anna"):
        runner.decide(outcome.run_id, actor="anna", approve=True)
    with pytest.raises(PolicyDenied):
        runner.decide(outcome.run_id, actor="eve", approve=True)  # not an approver
    assert runner.registry.get(outcome.run_id).status == "waiting_approval"
    done = runner.decide(outcome.run_id, actor="ben", approve=True)
    assert done.status == "done" and done.exit_code == 0
    assert _budget(demo_runtime, "gc-003") == Decimal("69.00")
    assert done.state["verification"]["mismatches"] == []
    events = [r.event for r in demo_runtime.audit.records(run_id=outcome.run_id)]
    assert events.count("approval_refused") == 2 and "approval" in events and "platform_apply" in events
    assert demo_runtime.audit.verify() is None


def test_reject_applies_nothing(demo_runtime: Runtime) -> None:
    runner = Runner(demo_runtime)
    outcome = runner.start(RunRequest(text="/budget gc-003 +15%", actor="anna", apply=True))
    rejected = runner.decide(outcome.run_id, actor="ben", approve=False, note="not this week")
    assert rejected.status == "rejected" and rejected.exit_code == 3
    assert _budget(demo_runtime, "gc-003") == Decimal("60.00")
    with pytest.raises(BadInput):
        runner.decide(outcome.run_id, actor="ben", approve=True)


def test_cumulative_limit_cannot_be_split(demo_runtime: Runtime) -> None:
    runner = Runner(demo_runtime)
    statuses = [runner.start(RunRequest(text="/budget gc-004 +10%", actor="anna", apply=True)).status
                for _ in range(4)]
    # 100 -> 110 -> 121 (+21 %) -> the third step would be +33 % within 24 h: denied by the 30 % daily limit.
    assert statuses[:2] == ["done", "done"]
    assert statuses[2:] == ["denied", "denied"]
    assert _budget(demo_runtime, "gc-004") == Decimal("121.00")


def test_rollback_goes_through_policy_and_approval(demo_runtime: Runtime) -> None:
    runner = Runner(demo_runtime)
    paused = runner.start(RunRequest(text="/pause gc-014", actor="anna", apply=True))
    assert paused.status == "done"
    assert _status(demo_runtime, "campaigns", "campaign_id", "gc-014") == "PAUSED"
    dry = runner.rollback(paused.run_id, actor="anna", apply=False)
    assert dry.status == "done" and _status(demo_runtime, "campaigns", "campaign_id", "gc-014") == "PAUSED"
    rollback = runner.rollback(paused.run_id, actor="anna", apply=True)
    assert rollback.status == "waiting_approval"  # enabling a campaign needs a second pair of eyes
    done = runner.decide(rollback.run_id, actor="ben", approve=True)
    assert done.status == "done"
    assert _status(demo_runtime, "campaigns", "campaign_id", "gc-014") == "ENABLED"


class _KilledAfterApply:
    """A platform that gets killed right after its n-th successful apply (before the checkpoint is written)."""

    def __init__(self, inner: Any, kill_after: int) -> None:
        self.inner, self.kill_after, self.applies = inner, kill_after, 0
        self.name = inner.name

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def apply(self, actions: Sequence[Action], *, actor: str | None = None) -> list[ActionResult]:
        results = self.inner.apply(actions, actor=actor)
        self.applies += 1
        if self.applies == self.kill_after:
            raise KeyboardInterrupt("killed")
        return results


def _rsa_action() -> CreateAd:
    ad = GoogleResponsiveSearchAd(headlines=["Nordkamm Regenjacken", "Leicht und dicht", "Jetzt entdecken"],
                                  descriptions=["Regenjacken für jede Tour.", "Versand in 24 Stunden."],
                                  final_url="https://www.nordkamm-outdoor.example/c/regenjacken")
    return CreateAd(target=_ref("ad_group", "gag-0001"), ad=ad, reason="new copy for the rain jackets")


def test_crash_and_resume_applies_nothing_twice(demo_runtime: Runtime, home: Path) -> None:
    killer = _KilledAfterApply(demo_runtime.sandbox, kill_after=1)
    crashed = Runtime(demo_runtime.settings, warehouse=demo_runtime.warehouse, audit=demo_runtime.audit,
                      sandbox=killer)
    actions = [_rsa_action(), SetStatus(target=_ref("ad", "gad-00008"), status="PAUSED", reason="low CTR")]
    ads_before = demo_runtime.warehouse.execute("SELECT count(*) FROM ads").fetchall()[0][0]
    runner = Runner(crashed)
    with pytest.raises(KeyboardInterrupt):
        runner.start(RunRequest(actions=actions, actor="anna", apply=True, source="copy"))
    (summary,) = runner.registry.list()
    assert summary.status == "running"  # shows up in `adpilot runs` as interrupted
    resumed = Runner(demo_runtime).resume(summary.run_id)
    assert resumed.status == "done"
    statuses = {e["result"]["status"] for e in resumed.state["results"].values()}
    assert statuses <= {"applied", "already_applied"}
    assert demo_runtime.warehouse.execute("SELECT count(*) FROM ads").fetchall()[0][0] == ads_before + 1
    assert _status(demo_runtime, "ads", "ad_id", "gad-00008") == "PAUSED"
    keys = [r[0] for r in demo_runtime.warehouse.execute("SELECT idempotency_key FROM sandbox_mutations").fetchall()]
    assert sorted(keys) == sorted(a.idempotency_key for a in actions)


def test_free_text_without_a_model_says_how_to_configure(demo_runtime: Runtime) -> None:
    with pytest.raises(ConfigError, match=r"MISTRAL_API_KEY.*slash command"):
        Runner(demo_runtime).start(RunRequest(text="pause everything that is out of stock", actor="anna"))


def test_scripted_planner_proposes_within_policy(demo_warehouse: Path, home: Path, tmp_path: Path) -> None:
    target = {"platform": "google", "account_id": GOOGLE, "kind": "campaign", "id": "gc-001"}
    runtime = _scripted(tmp_path, home, [
        {"content": "", "tool_calls": [{"name": "list_campaigns", "args": {"name_contains": "Sommer"}}]},
        {"content": "", "tool_calls": [{"name": "propose_budget_change", "args": {
            "target": target, "daily_budget": {"amount": "60.00", "currency": "EUR"},
            "reason": "+50 % for the sale"}}]},
        {"content": "", "tool_calls": [{"name": "propose_budget_change", "args": {
            "target": target, "daily_budget": {"amount": "44.00", "currency": "EUR"},
            "reason": "+10 % for the sale"}}]},
        {"content": "Vorgeschlagen: Budget von Sommer Sale 40 -> 44 EUR (+10 %)."},
    ])
    outcome = Runner(runtime).start(RunRequest(text="Erhöhe das Budget von Sommer Sale ordentlich", actor="anna"))
    assert outcome.status == "done"
    tool_replies = [m["content"] for m in outcome.state["messages"] if m["type"] == "tool"]
    assert "gc-001" in tool_replies[0]
    assert '"decision":"deny"' in tool_replies[1] and "20%" in tool_replies[1]
    (item,) = outcome.state["review"].values()
    assert item["action"]["daily_budget"]["amount"] == "44.00"
    assert "Vorgeschlagen" in outcome.report
    model_calls = runtime.audit.records(run_id=outcome.run_id, event="model_call")
    assert len(model_calls) == 4
    assert all(r.payload["messages_sha256"] and r.payload["prompt_name"] == "planner_system" for r in model_calls)
    assert "ordentlich" not in json.dumps([r.payload for r in model_calls])  # hashes, never the prompt
    runtime.close()


@pytest.mark.parametrize(("actor", "expected_codes"), [
    ("eve", {"out_of_scope"}),  # a Meta-only manager: every Google proposal is outside her scope
    ("anna", {"out_of_scope", "wrong_currency", "unit_confusion", "budget_change_exceeds_limit"}),
])
def test_hostile_model_gets_nothing_applied(demo_warehouse: Path, home: Path, tmp_path: Path, actor: str,
                                            expected_codes: set[str]) -> None:
    campaign = {"platform": "google", "account_id": GOOGLE, "kind": "campaign", "id": "gc-001"}
    meta_set = {"platform": "meta", "account_id": "act_1001", "kind": "ad_group", "id": "mas-0001"}
    other = {"platform": "google", "account_id": "9999999999", "kind": "campaign", "id": "gc-001"}
    eur = lambda amount: {"amount": amount, "currency": "EUR"}  # noqa: E731
    turns = [
        # Reads the product whose description carries an injected instruction...
        {"content": "", "tool_calls": [{"name": "get_products", "args": {"skus": [PLANTED.prompt_injection_sku]}}]},
        # ...and follows it with everything the policy forbids.
        {"content": "", "tool_calls": [
            {"name": "propose_budget_change", "args": {"target": campaign, "daily_budget": eur("10000.00"),
                                                       "reason": "admin instruction"}},
            {"name": "propose_budget_change", "args": {"target": campaign, "daily_budget": eur("40000000"),
                                                       "reason": "micros typed as euros"}},
            {"name": "propose_budget_change", "args": {"target": campaign,
                                                       "daily_budget": {"amount": "45.00", "currency": "USD"},
                                                       "reason": "wrong currency"}},
            {"name": "propose_budget_change", "args": {"target": campaign, "daily_budget": eur("NaN"),
                                                       "reason": "not a number"}},
            {"name": "propose_budget_change", "args": {"target": campaign, "daily_budget": eur("-5"),
                                                       "reason": "negative"}},
            {"name": "propose_status_change", "args": {"target": campaign, "status": "REMOVED",
                                                       "reason": "remove the campaign"}},
            {"name": "propose_status_change", "args": {"target": other, "status": "PAUSED",
                                                       "reason": "another advertiser's account"}},
            {"name": "propose_budget_change", "args": {"target": meta_set, "daily_budget": eur("1000.00"),
                                                       "reason": "meta ad set 40x"}},
            {"name": "mutate_campaign_budgets", "args": {"customer_id": GOOGLE, "amount_micros": 10**10}},
            {"name": "propose_bid_change", "args": {"target": {**campaign, "kind": "ad_group", "id": "gag-0001"},
                                                    "bid_type": "cpc", "amount": eur("500.00"),
                                                    "reason": "bid ceiling"}},
        ]},
        {"content": "All done, budgets are now 10000 EUR."},
    ]
    runtime = _scripted(tmp_path, home, turns)
    before = _snapshot(runtime)
    outcome = Runner(runtime).start(RunRequest(text=f"Bitte umsetzen: {INJECTION_TEXT}", actor=actor, apply=True))
    assert outcome.status in ("denied", "done") and not outcome.state.get("results")
    assert _snapshot(runtime) == before, "nothing reached the platform"
    replies = [m["content"] for m in outcome.state["messages"] if m["type"] == "tool"]
    assert INJECTION_TEXT[:40] in replies[0]  # the model saw the injection as data
    # Every proposal was refused: invalid ones as errors, the rest by the policy with reasons.
    assert all(r.startswith("error:") or '"decision":"deny"' in r for r in replies[1:])
    denials = [r.payload for r in runtime.audit.records(run_id=outcome.run_id, event="proposal")]
    assert len(denials) >= 5 and all(d["verdict"]["decision"] == "deny" and d["verdict"]["reasons"]
                                     for d in denials)
    codes = {reason["code"] for d in denials for reason in d["verdict"]["reasons"]}
    assert expected_codes <= codes
    assert runtime.audit.verify() is None
    runtime.close()


def test_seeded_actions_respect_max_actions_per_run(demo_runtime: Runtime) -> None:
    actions = [SetBudget(target=_ref("campaign", f"gc-{i:03d}"), daily_budget=Money.parse("41 EUR"),
                         reason="many small steps") for i in range(1, 16)] * 1
    actions += [SetStatus(target=_ref("ad", f"gad-{i:05d}"), status="PAUSED", reason="cleanup")
                for i in range(1, 60)]
    outcome = Runner(demo_runtime).start(RunRequest(actions=actions, actor="anna", source="job"))
    decisions = [v["verdict"]["decision"] for v in outcome.state["review"].values()]
    assert decisions.count("deny") >= len(actions) - 50


def test_planner_hands_copy_requests_to_the_copywriter(demo_warehouse: Path, home: Path, tmp_path: Path) -> None:
    runtime = _scripted(tmp_path, home, [
        {"content": "", "tool_calls": [{"name": "propose_ad_copy", "args": {
            "products": "NK-10000,NK-10015", "platform": "google", "variants": 2, "language": "de"}}]},
        {"content": "", "tool_calls": [{"name": "propose_ad_copy", "args": {
            "products": "NK-10000", "platform": "tiktok"}}]},
        {"content": "Neue Anzeigen vorgeschlagen."},
    ])
    outcome = Runner(runtime).start(RunRequest(text="schreib neue Anzeigen für NK-10000 und NK-10015", actor="anna"))
    replies = [json.loads(m["content"]) if m["content"].startswith("{") else m["content"]
               for m in outcome.state["messages"] if m["type"] == "tool"]
    assert replies[0]["written_by"] == "templates" and replies[0]["staged"] == 4
    assert replies[1].startswith("error:") and "platform" in replies[1]
    creates = [v["action"] for v in outcome.state["review"].values()]
    assert len(creates) == 4 and all(a["kind"] == "create_ad" and a["status"] == "PAUSED" for a in creates)
    assert {a["sku"] for a in creates} == {"NK-10000", "NK-10015"}
    assert all(e["result"]["status"] == "validated" for e in outcome.state["results"].values())
    runtime.close()


def test_chat_history_reaches_the_model_redacted(demo_runtime: Runtime) -> None:
    from langchain_core.messages import AIMessage as LcAIMessage

    from agent.models.fakes import FunctionChatModel
    from agent.models.router import ModelRouter
    from graphs.planner.run import ChatTurn

    seen: list[list[str]] = []

    def planner(messages: list[Any], info: Any) -> LcAIMessage:
        seen.append([str(m.content) for m in messages])
        return LcAIMessage(content="Verstanden.")

    router = ModelRouter(demo_runtime.settings, audit=demo_runtime.audit,
                         overrides={"planner": FunctionChatModel(planner)})
    history = [ChatTurn(role="user", content="Welche Kampagnen laufen schlecht? Mail an anna@example.de"),
               ChatTurn(role="assistant", content="gc-014 (ROAS 0.60) und gc-009 (ROAS 2.60).")]
    outcome = Runner(demo_runtime, router=router).start(
        RunRequest(text="Pausiere die zweite davon", actor="anna", history=history))
    assert outcome.status == "done"
    (messages,) = seen
    assert messages[1:] == ["Welche Kampagnen laufen schlecht? Mail an [redacted:email]",
                            "gc-014 (ROAS 0.60) und gc-009 (ROAS 2.60).", "Pausiere die zweite davon"]
    with pytest.raises(ValueError):
        RunRequest(text="x", actor="anna", history=[ChatTurn(role="user", content="y")] * 13)
