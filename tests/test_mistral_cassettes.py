"""Tier-2 tests: the real ChatMistralAI, through the router, replaying recorded HTTP traffic.

Cassettes live in ``cassettes/mistral/`` (provenance and the re-record command: ``cassettes/README.md``).
Requests are matched on their JSON body as well, so a change in what adpilot sends (model, sampling
parameters, tools, messages) fails here instead of silently replaying a stale answer. Tests named
``test_synthetic_*`` replay failures a live API cannot be made to produce on demand (429, 5xx);
``cassettes/record_mistral.py`` skips them when re-recording against the real API.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, SystemMessage, ToolMessage
from pydantic import BaseModel, Field
from vcr.record_mode import RecordMode

from agent.audit import MemoryAudit
from agent.models import ModelFallbackWarning, ModelRouter, load_prompt
from agent.models.retry import RetryPolicy
from agent.settings import load_settings
from tests.mistral_cassettes import API_KEY, BASE_URL, CASSETTES, mistral_vcr_config


@pytest.fixture(scope="module")
def vcr_cassette_dir() -> str:
    """Mistral cassettes sit under the top-level cassettes/ folder."""
    return CASSETTES


@pytest.fixture(scope="module")
def vcr_config(vcr_config: dict[str, Any]) -> dict[str, Any]:
    """Body matching and header allowlists on top of the suite's secret filters."""
    return mistral_vcr_config(vcr_config)


def make_router(tmp_path: Path, waits: list[float], audit: MemoryAudit, **overrides: Any) -> ModelRouter:
    settings = load_settings(home=tmp_path / "home", mistral_api_key=API_KEY, mistral_base_url=BASE_URL,
                             requests_per_second=0, tokens_per_second=0, **overrides)
    return ModelRouter(settings, audit=audit, retry=RetryPolicy(max_retries=settings.max_retries,
                                                                sleep=waits.append, rand=lambda: 0.5))


def replayed(cassette: Any, interactions: int) -> bool:
    """Every recorded interaction was played exactly once (trivially true while re-recording)."""
    if cassette.record_mode != RecordMode.NONE:
        return len(cassette.requests) == interactions
    return cassette.play_count == interactions and cassette.all_played and len(cassette.requests) == interactions


def recorded_bodies(cassette: Any) -> list[str]:
    """The response bodies the cassette holds, in order."""
    return [r["body"]["string"] if isinstance(r["body"]["string"], str) else r["body"]["string"].decode()
            for r in cassette.responses]


def recorded_usage(cassette: Any, statuses: tuple[int, ...] = (200,)) -> tuple[int, int]:
    """Prompt and completion tokens the server reported across the cassette's successful answers."""
    prompt = completion = 0
    for response, body in zip(cassette.responses, recorded_bodies(cassette), strict=True):
        if response["status"]["code"] not in statuses:
            continue
        payloads = ([json.loads(line[6:]) for line in body.splitlines()
                     if line.startswith("data: {")] if body.startswith("data:") else [json.loads(body)])
        for payload in payloads:
            usage = payload.get("usage") or {}
            prompt += usage.get("prompt_tokens", 0)
            completion += usage.get("completion_tokens", 0)
    return prompt, completion


def set_budget(campaign_id: str, amount_eur: float) -> str:
    """Propose a new daily budget for a campaign.

    Args:
        campaign_id: The campaign's id, e.g. gc-001.
        amount_eur: The new daily budget in EUR.
    """
    return f"{campaign_id}:{amount_eur}"


class BudgetCheck(BaseModel):
    """Whether a budget change stays within the daily change limit."""

    campaign_id: str = Field(description="The campaign's id.")
    within_limit: bool = Field(description="True when the change is within the limit.")
    reason: str = Field(description="One sentence explaining the answer.")


@pytest.mark.vcr
def test_tool_calling_turn(vcr: Any, tmp_path: Path) -> None:
    audit, waits = MemoryAudit(), []
    router = make_router(tmp_path, waits, audit)
    llm = router.chat("planner", run_id="t2-tools", prompt=load_prompt("planner_system")).bind_tools([set_budget])
    messages = [SystemMessage("You manage ad budgets. Use the tools to propose changes."),
                HumanMessage("Set the daily budget of campaign gc-001 to 42.50 EUR.")]
    first = llm.invoke(messages)
    assert len(first.tool_calls) == 1
    call = first.tool_calls[0]
    assert call["name"] == "set_budget"
    assert call["args"]["campaign_id"] == "gc-001" and float(call["args"]["amount_eur"]) == 42.5
    assert re.fullmatch(r"[A-Za-z0-9]{9}", call["id"])
    result = ToolMessage("proposed: gc-001 daily budget 42.50 EUR; policy verdict: allow", tool_call_id=call["id"],
                         name="set_budget")
    final = llm.invoke([*messages, first, result])
    assert isinstance(final.content, str) and final.content.strip() and not final.tool_calls
    assert replayed(vcr, 2)

    usage = router.usage("t2-tools")
    assert (usage.calls, (usage.input_tokens, usage.output_tokens)) == (2, recorded_usage(vcr))
    assert usage.cost_eur > 0
    assert {e.payload["prompt_name"] for e in audit.events} == {"planner_system"}

    # A rerun on the same home is answered from the response cache: the cassette is not touched again.
    rerun = make_router(tmp_path, waits, MemoryAudit()).chat("planner").bind_tools([set_budget]).invoke(messages)
    assert rerun.tool_calls == first.tool_calls and replayed(vcr, 2)
    assert waits == []


@pytest.mark.vcr
def test_structured_output_turn(vcr: Any, tmp_path: Path) -> None:
    router = make_router(tmp_path, [], MemoryAudit())
    check = router.chat("planner", run_id="t2-structured").with_structured_output(BudgetCheck).invoke(
        "The daily change limit is 10 %. Campaign gc-001 goes from 40.00 EUR to 42.50 EUR per day. Within the limit?")
    assert isinstance(check, BudgetCheck)
    assert check.campaign_id == "gc-001" and check.within_limit is True and check.reason
    request = json.loads(vcr.requests[0].body)
    assert request["tool_choice"] == "any" and request["tools"][0]["function"]["name"] == "BudgetCheck"
    assert replayed(vcr, 1)


@pytest.mark.vcr
def test_streaming_turn(vcr: Any, tmp_path: Path) -> None:
    audit = MemoryAudit()
    router = make_router(tmp_path, [], audit)
    chunks = list(router.chat("planner", run_id="t2-stream").stream(
        [HumanMessage("In one sentence: why does adpilot check every budget change against a policy?")]))
    text = "".join(str(c.content) for c in chunks)
    expected = "".join((json.loads(line[6:])["choices"][0]["delta"].get("content") or "")
                       for line in recorded_bodies(vcr)[0].splitlines() if line.startswith("data: {"))
    assert len([c for c in chunks if c.content]) >= 3 and text == expected
    record = audit.events[0].payload
    assert record["streamed"] is True
    assert (record["input_tokens"], record["output_tokens"]) == recorded_usage(vcr)
    assert replayed(vcr, 1)


@pytest.mark.vcr
def test_synthetic_rate_limit_429_honours_retry_after(vcr: Any, tmp_path: Path) -> None:
    waits: list[float] = []
    router = make_router(tmp_path, waits, MemoryAudit())
    answer = router.chat("planner", run_id="t2-429").invoke("Name one reason to cap daily budget changes (rate limit).")
    assert answer.content
    first = vcr.responses[0]
    assert first["status"]["code"] == 429
    retry_after = float(first["headers"]["retry-after"][0])
    assert len(waits) == 1 and retry_after <= waits[0] <= retry_after * 1.1
    assert router.usage("t2-429").calls == 1 and replayed(vcr, 2)


@pytest.mark.vcr
def test_synthetic_server_error_5xx_is_retried(vcr: Any, tmp_path: Path) -> None:
    waits: list[float] = []
    audit = MemoryAudit()
    router = make_router(tmp_path, waits, audit)
    answer = router.chat("planner", run_id="t2-5xx").invoke("Name one reason to keep an audit log (server error).")
    assert answer.content
    assert [r["status"]["code"] for r in vcr.responses] == [503, 200]
    assert len(waits) == 1 and waits[0] <= 1.0  # backoff without a Retry-After: base 1 s, jittered
    assert audit.events[0].payload["attempts"] == 2 and replayed(vcr, 2)


@pytest.mark.vcr
def test_unknown_model_falls_back(vcr: Any, tmp_path: Path) -> None:
    audit = MemoryAudit()
    router = make_router(tmp_path, [], audit, bulk_model="adpilot-nonexistent-model",
                         bulk_fallback="mistral-small-latest")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        copy = router.chat("bulk", run_id="t2-fallback").invoke(
            "Write one Google Ads headline (at most 30 characters) for a 10 litre watering can.")
    assert copy.content
    assert len([w for w in caught if issubclass(w.category, ModelFallbackWarning)]) == 1
    assert [json.loads(r.body)["model"] for r in vcr.requests] == ["adpilot-nonexistent-model", "mistral-small-latest"]
    assert vcr.responses[0]["status"]["code"] in (400, 404)
    record = audit.events[0].payload
    assert (record["model"], record["fallback_from"]) == ("mistral-small-latest", "adpilot-nonexistent-model")
    assert replayed(vcr, 2)
