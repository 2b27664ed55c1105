"""Tier-1 tests of the model router: scripted and function fakes, and the real ChatMistralAI over an
in-process httpx transport (no network) for retries, the cache and the fallback."""

from __future__ import annotations

import itertools
import json
import operator
import threading
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from pathlib import Path
from typing import Annotated, Any, TypedDict

import httpx
import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import BaseModel, Field

from agent.audit import AuditLog, MemoryAudit
from agent.errors import BadInput, ConfigError, ModelError, NotFound
from agent.models import CallInfo, FunctionChatModel, ModelFallbackWarning, ModelRouter, load_prompt
from agent.models.prompts import parse_prompt
from agent.models.ratelimit import RateLimiter
from agent.models.retry import RetryPolicy, is_unknown_model, retry_after_seconds
from agent.settings import load_settings

UNKNOWN_MODEL = {"object": "error", "message": "Invalid model: open-mixtral-8x22b", "type": "invalid_model",
                 "param": None, "code": "1500"}


def completion(model: str, content: str = "", *, tool_calls: list[dict[str, Any]] | None = None,
               prompt_tokens: int = 12, completion_tokens: int = 8) -> dict[str, Any]:
    """A chat.completion body in Mistral's wire format."""
    message: dict[str, Any] = {"role": "assistant", "content": content, "tool_calls": None}
    if tool_calls:
        message["tool_calls"] = [{"id": f"abcDEF{i:03d}", "type": "function", "function": {
            "name": c["name"], "arguments": json.dumps(c["args"])}} for i, c in enumerate(tool_calls)]
    return {"id": "cmpl-1", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "finish_reason": "tool_calls" if tool_calls else "stop", "message": message}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


def as_sse(body: dict[str, Any]) -> httpx.Response:
    """A completion replayed as Mistral's server-sent events: one content chunk, then usage, then [DONE]."""
    choice = body["choices"][0]
    delta = {"role": "assistant", "content": choice["message"]["content"]}
    if choice["message"].get("tool_calls"):
        delta["tool_calls"] = [{**c, "index": i} for i, c in enumerate(choice["message"]["tool_calls"])]
    chunks = [{"id": body["id"], "object": "chat.completion.chunk", "created": 1, "model": body["model"],
               "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
              {"id": body["id"], "object": "chat.completion.chunk", "created": 1, "model": body["model"],
               "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": choice["finish_reason"]}],
               "usage": body["usage"]}]
    text = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, text=text)


class FakeMistral:
    """An in-process Mistral-shaped endpoint: counts requests, answers from a list or a function."""

    def __init__(self, answer: Callable[[dict[str, Any], int], httpx.Response]) -> None:
        self.answer = answer
        self.requests: list[dict[str, Any]] = []
        self.headers: list[httpx.Headers] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path.endswith("/chat/completions")
        body = json.loads(request.content)
        self.requests.append(body)
        self.headers.append(request.headers)
        response = self.answer(body, len(self.requests))
        if body.get("stream") and response.status_code == 200:
            return as_sse(json.loads(response.content))
        return response

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def sequence(*responses: httpx.Response) -> Callable[[dict[str, Any], int], httpx.Response]:
    """Answer the n-th request with the n-th response."""
    return lambda body, n: responses[n - 1]


def ok(body: dict[str, Any], n: int) -> httpx.Response:
    return httpx.Response(200, json=completion(body["model"], f"answer {n}"))


@pytest.fixture
def waits() -> list[float]:
    return []


def make_router(tmp_path: Path, endpoint: FakeMistral | None = None, *, waits: list[float] | None = None,
                audit: Any = None, **overrides: Any) -> ModelRouter:
    settings = load_settings(home=tmp_path / "home", mistral_api_key="test-dummy-key",
                             requests_per_second=0, tokens_per_second=0, **overrides)
    sleeps = waits if waits is not None else []
    return ModelRouter(settings, audit=audit if audit is not None else MemoryAudit(),
                       transport=endpoint.transport if endpoint else None,
                       retry=RetryPolicy(max_retries=settings.max_retries, sleep=sleeps.append, rand=lambda: 0.5))


def write_script(path: Path, turns: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(turns), encoding="utf-8")
    return path


class Verdict(BaseModel):
    """A structured answer."""

    decision: str = Field(description="allow or deny")
    confidence: float = Field(description="0 to 1")


def set_budget(campaign_id: str, amount: float) -> str:
    """Propose a new daily budget for a campaign."""
    return f"{campaign_id}:{amount}"


# -- configuration ---------------------------------------------------------------------------------

def test_no_model_configured_is_a_config_error_with_the_how_to(tmp_path: Path) -> None:
    router = ModelRouter(load_settings(home=tmp_path))
    assert not router.is_configured("planner")
    with pytest.raises(ConfigError) as info:
        router.chat("planner")
    assert str(info.value) == ("no planner model configured: set MISTRAL_API_KEY (and MISTRAL_BASE_URL for an "
                               "on-prem server) or ADPILOT_PLANNER_MODEL=scripted:plan.json")
    with pytest.raises(ConfigError, match=r"ADPILOT_BULK_MODEL=scripted:plan\.json"):
        router.chat("bulk")


def test_a_base_url_alone_configures_an_on_prem_endpoint(tmp_path: Path) -> None:
    endpoint = FakeMistral(ok)
    settings = load_settings(home=tmp_path, mistral_base_url="http://llm.internal:8000/v1")
    router = ModelRouter(settings, transport=endpoint.transport)
    assert router.is_configured("code")
    assert router.chat("code").invoke("write a query").content == "answer 1"
    assert endpoint.requests[0]["model"] == "codestral-latest"


def test_unknown_tier_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="unknown model tier"):
        make_router(tmp_path).chat("writer")  # type: ignore[arg-type]


def test_tier_sampling_comes_from_settings(tmp_path: Path) -> None:
    endpoint = FakeMistral(ok)
    router = make_router(tmp_path, endpoint, bulk_max_tokens=300, bulk_top_p=0.9, planner_temperature=0.2)
    router.chat("bulk").invoke("copy")
    router.chat("planner").invoke("plan")
    bulk, planner = endpoint.requests
    assert (bulk["model"], bulk["temperature"], bulk["top_p"], bulk["max_tokens"]) == (
        "open-mixtral-8x22b", 0.7, 0.9, 300)
    assert (planner["model"], planner["temperature"], planner["max_tokens"]) == ("mistral-large-latest", 0.2, 2048)
    assert endpoint.headers[0]["authorization"] == "Bearer test-dummy-key"


# -- scripted and function models ------------------------------------------------------------------

def test_scripted_model_replays_turns_with_tools_structured_output_and_stream(tmp_path: Path) -> None:
    script = write_script(tmp_path / "plan.json", [
        {"content": "", "tool_calls": [{"name": "set_budget", "args": {"campaign_id": "gc-001", "amount": 42.5}}]},
        {"content": "", "tool_calls": [{"name": "Verdict", "args": {"decision": "allow", "confidence": 0.9}}]},
        {"content": "Budget raised to 42.50 EUR."},
    ])
    router = make_router(tmp_path, planner_model=f"scripted:{script}")
    llm = router.chat("planner", run_id="r1")
    first = llm.bind_tools([set_budget]).invoke([HumanMessage("raise gc-001 to 42.50")])
    assert first.tool_calls[0]["name"] == "set_budget"
    assert first.tool_calls[0]["args"] == {"campaign_id": "gc-001", "amount": 42.5}
    assert len(first.tool_calls[0]["id"]) == 9 and first.tool_calls[0]["id"].isalnum()
    assert llm.with_structured_output(Verdict).invoke("judge") == Verdict(decision="allow", confidence=0.9)
    streamed = list(llm.stream("summarise"))
    assert len(streamed) > 2 and "".join(str(c.content) for c in streamed) == "Budget raised to 42.50 EUR."
    assert router.inner_model("planner", f"scripted:{script}").remaining == 0  # type: ignore[attr-defined]
    with pytest.raises(ModelError, match="ran out of turns: it has 3 and call 4 was made"):
        llm.invoke("one more")
    assert router.usage("r1").calls == 3


def test_scripted_cursor_is_shared_by_every_model_of_the_tier(tmp_path: Path) -> None:
    script = write_script(tmp_path / "plan.json", [{"content": "first"}, {"content": "second"}])
    router = make_router(tmp_path, planner_model=f"scripted:{script}")
    assert router.chat("planner").invoke("a").content == "first"
    assert router.chat("planner").invoke("a").content == "second"


def test_scripted_model_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = write_script(tmp_path / "plan.json", [{"content": "from env"}])
    monkeypatch.setenv("ADPILOT_PLANNER_MODEL", f"scripted:{script}")
    router = ModelRouter(load_settings(home=tmp_path))
    assert router.is_configured("planner") and not router.is_configured("bulk")
    assert router.chat("planner").invoke("hi").content == "from env"


@pytest.mark.parametrize(("content", "message"), [
    (None, "not found"),
    ("{not json", "Expecting property name"),
    ('{"content": "x"}', "expected a JSON list of turns"),
    ('[{"content": "x", "tool_call": []}]', "turn 1: tool_call: Extra inputs are not permitted"),
])
def test_broken_scripts_fail_at_chat_time_with_one_line(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "plan.json"
    if content is not None:
        path.write_text(content)
    router = make_router(tmp_path, planner_model=f"scripted:{path}")
    with pytest.raises(ConfigError, match=message) as info:
        router.chat("planner")
    assert "\n" not in str(info.value)


def test_function_model_sees_bound_tools_and_its_usage_is_costed(tmp_path: Path) -> None:
    seen: list[CallInfo] = []

    def reply(messages: list[BaseMessage], info: CallInfo) -> AIMessage:
        seen.append(info)
        if isinstance(messages[-1], ToolMessage):
            return AIMessage(content=f"done: {messages[-1].content}",
                             usage_metadata={"input_tokens": 2000, "output_tokens": 100, "total_tokens": 2100})
        return AIMessage(content="", tool_calls=[{"name": "set_budget", "args": {"campaign_id": "gc-001",
                                                                                "amount": 10}, "id": "abcDEF123"}],
                         usage_metadata={"input_tokens": 1000, "output_tokens": 50, "total_tokens": 1050})

    audit = MemoryAudit()
    settings = load_settings(home=tmp_path, prices={"mistral-large-latest": (Decimal("2"), Decimal("6"))})
    fake = FunctionChatModel(reply)
    router = ModelRouter(settings, audit=audit, overrides={"planner": fake})
    llm = router.chat("planner", run_id="run-f").bind_tools([set_budget], tool_choice="set_budget")
    first = llm.invoke([HumanMessage("budget")])
    second = llm.invoke([HumanMessage("budget"), first, ToolMessage("gc-001:10", tool_call_id="abcDEF123")])
    assert second.content == "done: gc-001:10"
    assert seen[0].tool_names == ["set_budget"]
    assert seen[0].tool_choice == {"type": "function", "function": {"name": "set_budget"}}
    assert fake.calls == 2
    costs = [Decimal(e.payload["cost_eur"]) for e in audit.events]
    assert costs == [Decimal("0.0023"), Decimal("0.0046")]  # 1000*2/1e6 + 50*6/1e6; 2000*2/1e6 + 100*6/1e6
    usage = router.usage("run-f")
    assert (usage.calls, usage.input_tokens, usage.output_tokens, usage.cost_eur) == (2, 3000, 150, Decimal("0.0069"))
    assert usage.total_tokens == 3150


# -- retries ----------------------------------------------------------------------------------------

def test_retries_honour_retry_after_seconds_then_back_off(tmp_path: Path, waits: list[float]) -> None:
    endpoint = FakeMistral(sequence(
        httpx.Response(429, headers={"Retry-After": "7"}, json={"message": "Requests rate limit exceeded"}),
        httpx.Response(503, json={"message": "Service unavailable"}),
        httpx.Response(200, json=completion("mistral-large-latest", "finally")),
    ))
    router = make_router(tmp_path, endpoint, waits=waits)
    assert router.chat("planner", run_id="r").invoke("plan").content == "finally"
    assert len(endpoint.requests) == 3
    assert 7.0 <= waits[0] <= 7.7  # never earlier than the server asked, at most 10 % jitter
    assert 0.5 <= waits[1] <= 2.0  # no hint: exponential backoff (base 1 s, second retry) with jitter
    assert router.usage("r").calls == 1


def test_retry_after_as_http_date(tmp_path: Path, waits: list[float]) -> None:
    moment = datetime.now(UTC) + timedelta(seconds=30)
    endpoint = FakeMistral(sequence(
        httpx.Response(429, headers={"Retry-After": format_datetime(moment, usegmt=True)}, json={"message": "slow"}),
        httpx.Response(200, json=completion("mistral-large-latest", "ok")),
    ))
    router = make_router(tmp_path, endpoint, waits=waits)
    router.chat("planner").invoke("plan")
    assert 27.0 <= waits[0] <= 33.0


def test_retry_after_parsing() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "2.5"})) == 2.5
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "Tue, 01 Dec 2026 12:00:09 GMT"}),
                               now) == 9.0
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "Tue, 01 Dec 2026 11:00:00 GMT"}),
                               now) == 0.0
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "soon"})) is None
    assert retry_after_seconds(httpx.Response(429)) is None


def test_a_huge_retry_after_is_capped(tmp_path: Path, waits: list[float]) -> None:
    endpoint = FakeMistral(sequence(httpx.Response(429, headers={"Retry-After": "86400"}, json={}),
                                    httpx.Response(200, json=completion("mistral-large-latest", "ok"))))
    router = make_router(tmp_path, endpoint, waits=waits, retry_max_wait_s=45)
    router.retry.max_wait_s = 45
    router.chat("planner").invoke("plan")
    assert waits == [45]


def test_gives_up_after_max_retries_with_one_line(tmp_path: Path, waits: list[float]) -> None:
    endpoint = FakeMistral(lambda body, n: httpx.Response(502, text="<html>bad gateway</html>"))
    router = make_router(tmp_path, endpoint, waits=waits, max_retries=2)
    with pytest.raises(ModelError, match="failed after 3 attempts: HTTP 502 <html>bad gateway</html>"):
        router.chat("planner").invoke("plan")
    assert len(endpoint.requests) == 3 and len(waits) == 2


def test_timeouts_are_retried(tmp_path: Path, waits: list[float]) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if not waits:
            raise httpx.ReadTimeout("read timed out", request=request)
        return httpx.Response(200, json=completion("mistral-large-latest", "ok"))

    settings = load_settings(home=tmp_path, mistral_api_key="k", requests_per_second=0)
    router = ModelRouter(settings, transport=httpx.MockTransport(answer),
                         retry=RetryPolicy(sleep=waits.append, rand=lambda: 0.5))
    assert router.chat("planner").invoke("x").content == "ok"
    assert len(waits) == 1


@pytest.mark.parametrize(("status", "error"), [(401, ConfigError), (400, ModelError)])
def test_client_errors_are_not_retried(tmp_path: Path, waits: list[float], status: int, error: type) -> None:
    endpoint = FakeMistral(lambda body, n: httpx.Response(status, json={"message": "Unauthorized"
                                                                        if status == 401 else "bad tool schema"}))
    router = make_router(tmp_path, endpoint, waits=waits)
    with pytest.raises(error):
        router.chat("planner").invoke("x")
    assert len(endpoint.requests) == 1 and waits == []


# -- rate limiter -----------------------------------------------------------------------------------

def test_limiter_holds_the_request_rate_under_eight_concurrent_callers() -> None:
    now = [100.0]
    lock = threading.Lock()
    granted: list[float] = []

    def sleep(seconds: float) -> None:
        # The fake clock stands still; a caller "runs" at the time it would wake up.
        with lock:
            granted.append(now[0] + seconds)

    limiter = RateLimiter(requests_per_second=5, tokens_per_second=0, clock=lambda: now[0], sleep=sleep)
    barrier = threading.Barrier(8)

    def caller() -> None:
        barrier.wait()
        for _ in range(25):
            if limiter.acquire() == 0:
                with lock:
                    granted.append(now[0])

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    times = sorted(granted)
    assert len(times) == 200
    # A full bucket lets 5 through at once; after that exactly 5 per second, never more.
    assert times[:5] == [100.0] * 5
    for k, at in enumerate(times):
        assert at >= 100.0 + (k + 1 - 5) / 5 - 1e-9
    assert times[-1] == pytest.approx(100.0 + (200 - 5) / 5)
    gaps = [b - a for a, b in itertools.pairwise(times[4:])]
    assert gaps == pytest.approx([0.2] * 195)  # evenly spaced, whichever thread got each slot
    for start in times:  # in any ten seconds: the burst plus ten seconds' worth
        assert sum(1 for t in times if start <= t < start + 10.0) <= 5 + 50


def test_limiter_paces_tokens_and_settles_the_real_count() -> None:
    now = [0.0]
    limiter = RateLimiter(requests_per_second=0, tokens_per_second=1000, clock=lambda: now[0],
                          sleep=lambda s: None)
    assert limiter.reserve(800) == 0
    assert limiter.reserve(700) == pytest.approx(0.5)  # 500 tokens in debt at 1000/s
    limiter.settle(estimated=700, actual=1200)  # the call used 500 more than booked
    assert limiter.reserve(1) == pytest.approx(1.001)
    now[0] = 10.0
    assert limiter.reserve(1000) == 0  # refilled, capped at one second's worth


def test_router_calls_pass_the_shared_limiter(tmp_path: Path) -> None:
    now = [0.0]
    limiter_waits: list[float] = []
    limiter = RateLimiter(requests_per_second=2, tokens_per_second=0, clock=lambda: now[0],
                          sleep=limiter_waits.append)
    endpoint = FakeMistral(ok)
    settings = load_settings(home=tmp_path, mistral_api_key="k", temperature=0.5)
    router = ModelRouter(settings, limiter=limiter, transport=endpoint.transport)
    for tier in ("planner", "code", "planner", "bulk"):
        router.chat(tier).invoke("x")  # type: ignore[arg-type]
    assert limiter_waits == [pytest.approx(0.5), pytest.approx(1.0)]


def test_concurrent_router_calls_share_one_limiter(tmp_path: Path) -> None:
    lock = threading.Lock()
    wake_times: list[float] = []

    def sleep(seconds: float) -> None:
        with lock:
            wake_times.append(seconds)

    limiter = RateLimiter(requests_per_second=4, tokens_per_second=0, clock=lambda: 0.0, sleep=sleep)
    endpoint = FakeMistral(ok)
    settings = load_settings(home=tmp_path, mistral_api_key="k", planner_temperature=0.5)
    router = ModelRouter(settings, limiter=limiter, transport=endpoint.transport)
    barrier = threading.Barrier(8)

    def caller(index: int) -> None:
        llm = router.chat("planner", run_id=f"worker-{index}")
        barrier.wait()
        for _ in range(5):
            llm.invoke(f"worker {index}")

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(endpoint.requests) == 40
    # Four go at once, the other 36 are spaced a quarter second apart, whichever thread sent them.
    assert sorted(wake_times) == pytest.approx([0.25 * k for k in range(1, 37)])
    assert sum(router.usage(f"worker-{i}").calls for i in range(8)) == 40


# -- cache ------------------------------------------------------------------------------------------

def test_a_rerun_of_a_deterministic_job_makes_zero_http_calls(tmp_path: Path) -> None:
    endpoint = FakeMistral(lambda body, n: httpx.Response(200, json=completion(
        body["model"], tool_calls=[{"name": "set_budget", "args": {"campaign_id": "gc-001", "amount": 5}}])))
    messages = [SystemMessage("plan"), HumanMessage("raise gc-001")]

    def job(audit: MemoryAudit) -> list[AIMessage]:
        router = make_router(tmp_path, endpoint, audit=audit)
        llm = router.chat("planner", run_id="job").bind_tools([set_budget])
        out = [llm.invoke(messages), llm.invoke([*messages, AIMessage("noted")])]
        out.append(AIMessage(content="".join(str(c.content) for c in llm.stream([*messages, HumanMessage("s")]))))
        router.close()
        return out

    first_audit, second_audit = MemoryAudit(), MemoryAudit()
    first = job(first_audit)
    assert len(endpoint.requests) == 3
    second = job(second_audit)
    assert len(endpoint.requests) == 3  # the rerun was served from the cache
    assert [m.tool_calls for m in second] == [m.tool_calls for m in first]
    assert [e.payload["cached"] for e in second_audit.events] == [True, True, True]
    assert sum(Decimal(e.payload["cost_eur"]) for e in second_audit.events) == 0
    cache = make_router(tmp_path).cache
    assert cache is not None and len(cache) == 3


def test_cache_misses_on_any_change_and_skips_sampled_requests(tmp_path: Path) -> None:
    endpoint = FakeMistral(ok)
    router = make_router(tmp_path, endpoint)
    planner = router.chat("planner")
    planner.invoke("a")
    planner.invoke("a")
    planner.invoke("b")
    planner.bind_tools([set_budget]).invoke("a")
    planner.bind(max_tokens=10).invoke("a")
    assert len(endpoint.requests) == 4
    bulk = router.chat("bulk")  # temperature 0.7: every call is new copy
    bulk.invoke("a")
    bulk.invoke("a")
    assert len(endpoint.requests) == 6


def test_cache_can_be_switched_off(tmp_path: Path) -> None:
    endpoint = FakeMistral(ok)
    router = make_router(tmp_path, endpoint, model_cache=False)
    router.chat("planner").invoke("a")
    router.chat("planner").invoke("a")
    assert len(endpoint.requests) == 2
    assert not (tmp_path / "home" / "cache").exists()


# -- fallback ---------------------------------------------------------------------------------------

def test_fallback_on_unknown_model_warns_exactly_once(tmp_path: Path) -> None:
    def answer(body: dict[str, Any], n: int) -> httpx.Response:
        if body["model"] == "open-mixtral-8x22b":
            return httpx.Response(400, json=UNKNOWN_MODEL)
        return httpx.Response(200, json=completion(body["model"], f"copy {n}"))

    endpoint = FakeMistral(answer)
    audit = MemoryAudit()
    router = make_router(tmp_path, endpoint, audit=audit)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bulk = router.chat("bulk", run_id="copy-1")
        assert bulk.invoke("copy a").content == "copy 2"
        assert bulk.invoke("copy b").content == "copy 3"
        assert router.chat("bulk").invoke("copy c").content == "copy 4"
    fallback_warnings = [w for w in caught if issubclass(w.category, ModelFallbackWarning)]
    assert len(fallback_warnings) == 1
    assert "'open-mixtral-8x22b'" in str(fallback_warnings[0].message)
    assert [r["model"] for r in endpoint.requests] == ["open-mixtral-8x22b"] + ["mistral-small-latest"] * 3
    assert bulk.model_name == "mistral-small-latest"
    first = audit.events[0].payload
    assert (first["model"], first["fallback_from"]) == ("mistral-small-latest", "open-mixtral-8x22b")


def test_a_rerun_after_a_fallback_is_served_from_the_cache(tmp_path: Path) -> None:
    def answer(body: dict[str, Any], n: int) -> httpx.Response:
        if body["model"] == "open-mixtral-8x22b":
            return httpx.Response(400, json=UNKNOWN_MODEL)
        return httpx.Response(200, json=completion(body["model"], "Gießkanne, 10 Liter"))

    endpoint = FakeMistral(answer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelFallbackWarning)
        first = make_router(tmp_path, endpoint, bulk_temperature=0.0).chat("bulk").invoke("headline")
    assert len(endpoint.requests) == 2
    audit = MemoryAudit()
    rerun = make_router(tmp_path, endpoint, audit=audit, bulk_temperature=0.0).chat("bulk").invoke("headline")
    assert len(endpoint.requests) == 2  # neither the unknown-model round trip nor the fallback call again
    assert rerun.content == first.content and rerun.id != first.id  # a fresh id: add_messages must not merge them
    record = audit.events[0].payload
    assert (record["cached"], record["model"], record["fallback_from"]) == (True, "mistral-small-latest",
                                                                            "open-mixtral-8x22b")


def test_unknown_model_without_fallback_is_a_model_error(tmp_path: Path) -> None:
    endpoint = FakeMistral(lambda body, n: httpx.Response(404, json={
        "object": "error", "message": "The model `mistral-large-latest` does not exist.", "type": "NotFoundError"}))
    router = make_router(tmp_path, endpoint)
    with pytest.raises(ModelError, match="does not serve the planner model 'mistral-large-latest'"):
        router.chat("planner").invoke("x")
    assert len(endpoint.requests) == 1


def test_unknown_model_detection() -> None:
    request = httpx.Request("POST", "https://api.mistral.ai/v1/chat/completions")

    def error(status: int, text: str) -> httpx.HTTPStatusError:
        return httpx.HTTPStatusError("x", request=request, response=httpx.Response(status, text=text))

    assert is_unknown_model(error(400, json.dumps(UNKNOWN_MODEL)))
    assert is_unknown_model(error(404, '{"error": "model \\"mixtral\\" not found"}'))
    assert not is_unknown_model(error(400, '{"message": "tool_choice not found in tools"}'))
    assert not is_unknown_model(error(429, json.dumps(UNKNOWN_MODEL)))


# -- accounting -------------------------------------------------------------------------------------

def test_every_call_is_recorded_with_hashes_never_the_prompt(tmp_path: Path) -> None:
    endpoint = FakeMistral(lambda body, n: httpx.Response(200, json=completion(
        body["model"], "ok", prompt_tokens=1200, completion_tokens=300)))
    audit = MemoryAudit()
    router = make_router(tmp_path, endpoint, audit=audit)
    prompt = load_prompt("planner_system")
    secret_words = "Pause the Sommer Sale campaign for customer Erika Mustermann"
    llm = router.chat("planner", run_id="run-a", prompt=prompt)
    llm.invoke([SystemMessage(prompt.text), HumanMessage(secret_words)])
    llm.invoke([SystemMessage(prompt.text), HumanMessage(secret_words + " today")])
    router.chat("code", run_id="run-b").invoke("select 1")
    events = [e for e in audit.events if e.event == "model_call"]
    assert len(events) == 3
    first = events[0]
    assert first.run_id == "run-a"
    payload = first.payload
    assert (payload["tier"], payload["model"], payload["prompt_name"], payload["prompt_version"]) == (
        "planner", "mistral-large-latest", "planner_system", prompt.version)
    assert payload["prompt_file_sha256"] == prompt.sha256
    assert len(payload["messages_sha256"]) == 64
    assert payload["messages_sha256"] != events[1].payload["messages_sha256"]
    assert (payload["input_tokens"], payload["output_tokens"]) == (1200, 300)
    assert Decimal(payload["cost_eur"]) == Decimal("0.0042")  # 1200 * 2/1e6 + 300 * 6/1e6
    assert payload["latency_ms"] >= 0 and payload["cached"] is False and payload["attempts"] == 1
    assert payload["params"]["temperature"] == 0.0
    dumped = json.dumps([e.payload for e in audit.events])
    assert "Mustermann" not in dumped and "Sommer" not in dumped and "planning assistant" not in dumped
    usage = router.usage("run-a")
    assert (usage.calls, usage.input_tokens, usage.output_tokens, usage.cost_eur) == (2, 2400, 600,
                                                                                      Decimal("0.0084"))
    assert router.usage("run-b").cost_eur == Decimal("0.00063")  # codestral: 1200 * 0.3/1e6 + 300 * 0.9/1e6


def test_usage_of_a_past_run_comes_from_the_audit_log(tmp_path: Path) -> None:
    endpoint = FakeMistral(ok)
    log = AuditLog(tmp_path / "audit.sqlite")
    make_router(tmp_path, endpoint, audit=log).chat("planner", run_id="old").invoke("x")
    fresh = make_router(tmp_path, endpoint, audit=log)
    usage = fresh.usage("old")
    assert (usage.calls, usage.input_tokens, usage.output_tokens) == (1, 12, 8)
    assert usage.cost_eur == Decimal("0.000072")
    assert log.verify() is None
    log.close()


def test_unpriced_models_are_counted_not_guessed(tmp_path: Path) -> None:
    endpoint = FakeMistral(ok)
    router = make_router(tmp_path, endpoint, planner_model="my-onprem-model", prices={})
    router.chat("planner", run_id="u").invoke("x")
    usage = router.usage("u")
    assert (usage.calls, usage.unpriced_calls, usage.cost_eur) == (1, 1, Decimal(0))


def test_the_run_id_defaults_to_the_langgraph_thread(tmp_path: Path) -> None:
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.graph import END, START, StateGraph

    script = write_script(tmp_path / "plan.json", [{"content": "one"}, {"content": "two"}])
    router = make_router(tmp_path, planner_model=f"scripted:{script}")
    llm = router.chat("planner")

    class State(TypedDict):
        out: Annotated[list[str], operator.add]

    graph = StateGraph(State)
    graph.add_node("plan", lambda state: {"out": [str(llm.invoke("hi").content)]})
    graph.add_edge(START, "plan")
    graph.add_edge("plan", END)
    app = graph.compile(checkpointer=InMemorySaver())
    assert app.invoke({"out": []}, {"configurable": {"thread_id": "thread-1"}}) == {"out": ["one"]}
    list(app.stream({"out": []}, {"configurable": {"thread_id": "thread-2"}}, stream_mode="messages"))
    assert router.usage("thread-1").calls == 1 and router.usage("thread-2").calls == 1


# -- prompts ----------------------------------------------------------------------------------------

def test_prompts_are_versioned_files() -> None:
    planner = load_prompt("planner_system")
    copy = load_prompt("copy_bulk")
    assert (planner.name, copy.name) == ("planner_system", "copy_bulk")
    assert planner.version and copy.version and len(planner.sha256) == 64
    assert "proposal tools" in planner.text
    sample = parse_prompt("---\nname: sample\nversion: 2\n---\nWrite for $product in $language.\n")
    assert sample.render(product="Gießkanne 10 l", language="German") == "Write for Gießkanne 10 l in German.\n"
    with pytest.raises(BadInput, match="prompt sample v2 needs a value for 'product'"):
        sample.render(language="de")
    with pytest.raises(NotFound, match="unknown prompt 'nope'"):
        load_prompt("nope")
    with pytest.raises(BadInput):
        load_prompt("../settings")


@pytest.mark.parametrize(("source", "message"), [
    ("no front matter", "missing the '---' front matter"),
    ("---\nname: a\n---\ntext", "needs both 'name' and 'version'"),
    ("---\nname: b\nversion: 1\n---\ntext", "front matter says name 'b'"),
    ("---\nname a\n---\n", ":2: expected 'key: value'"),
])
def test_malformed_prompt_files(source: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_prompt(source, expected_name="a")


def test_the_runtime_builds_one_router_that_audits_to_the_home(tmp_path: Path) -> None:
    from agent.runtime import Runtime

    script = write_script(tmp_path / "plan.json", [{"content": "ok"}])
    runtime = Runtime(load_settings(home=tmp_path / "home", planner_model=f"scripted:{script}"))
    assert runtime.models is runtime.models
    runtime.models.chat("planner", run_id="rt").invoke("hi")
    assert [r.event for r in runtime.audit.records(run_id="rt")] == ["model_call"]
    runtime.close()


def test_async_calls_go_through_the_same_pipeline(tmp_path: Path) -> None:
    import asyncio

    script = write_script(tmp_path / "plan.json", [{"content": "a b c"}, {"content": "d e"}])
    router = make_router(tmp_path, planner_model=f"scripted:{script}")
    llm = router.chat("planner", run_id="async")

    async def run() -> tuple[str, str]:
        first = await llm.ainvoke("hi")
        second = "".join([str(c.content) async for c in llm.astream("hi")])
        return str(first.content), second

    assert asyncio.run(run()) == ("a b c", "d e")
    assert router.usage("async").calls == 2
