"""Tier 2: the planner graph with the real ChatMistralAI client replaying a recorded conversation.

The cassette (cassettes/mistral/test_planner_free_text_dry_run.yaml) is matched on the request body,
so a change in the system prompt, the tools' schemas or what the tools return fails here instead
of replaying a stale answer. Re-record with ``python cassettes/record_planner.py`` (see its docstring).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from vcr.record_mode import RecordMode

from agent.runtime import Runtime
from agent.settings import load_settings
from graphs.planner.run import Runner, RunRequest
from tests.mistral_cassettes import API_KEY, BASE_URL, CASSETTES, mistral_vcr_config


@pytest.fixture(scope="module")
def vcr_cassette_dir() -> str:
    """Planner cassettes sit with the other Mistral cassettes."""
    return CASSETTES


@pytest.fixture(scope="module")
def vcr_config(vcr_config: dict[str, Any]) -> dict[str, Any]:
    """Body matching: a change in the prompt, the tools' schemas or their results fails the test."""
    return mistral_vcr_config(vcr_config)


@pytest.mark.vcr("test_planner_free_text_dry_run.yaml")
def test_planner_free_text_dry_run(demo_warehouse: Path, home: Path, vcr: Any) -> None:
    settings = load_settings(home=home, mistral_api_key=API_KEY, mistral_base_url=BASE_URL,
                             requests_per_second=0, tokens_per_second=0)
    runtime = Runtime(settings)
    outcome = Runner(runtime).start(RunRequest(text="Erhöhe das Tagesbudget der Kampagne 'Sommer Sale' um 10 %",
                                               actor="anna"))
    assert outcome.status == "done"
    (item,) = outcome.state["review"].values()
    assert item["action"]["kind"] == "set_budget" and item["action"]["target"]["id"] == "gc-001"
    assert item["verdict"]["decision"] == "allow"
    (entry,) = outcome.state["results"].values()
    assert entry["result"]["status"] == "validated"
    calls = runtime.audit.records(run_id=outcome.run_id, event="model_call")
    assert len(calls) == 3 and all(c.payload["input_tokens"] > 0 for c in calls)
    if vcr.record_mode == RecordMode.NONE:
        assert vcr.play_count == 3 and vcr.all_played
        assert "44.00" in outcome.report
    runtime.close()
