"""What the model router adds to a call, what the cache saves, and whether the limiter holds its rate.

    .venv/bin/python bench/bench_router.py [--calls 300]

Baseline: the bare ChatMistralAI calling an in-process Mistral-shaped endpoint (httpx MockTransport,
no network), so the figures isolate the client and the router from the server. Then the same
request through the router (limiter, retries wrapper, accounting to an in-memory audit) with the
cache out of play (temperature 0.7), and again as a cache hit (temperature 0). Medians are printed
next to the baseline's. Last, eight threads share a limiter set to 50 requests/s on the real clock
and the achieved rate is printed next to the configured one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from langchain_mistralai import ChatMistralAI

from agent.audit import MemoryAudit
from agent.models.ratelimit import RateLimiter
from agent.models.router import ModelRouter
from agent.settings import load_settings

BODY = json.dumps({"id": "cmpl-1", "object": "chat.completion", "created": 1, "model": "mistral-large-latest",
                   "choices": [{"index": 0, "finish_reason": "stop", "message": {
                       "role": "assistant", "content": "Raise gc-001 to 42.50 EUR.", "tool_calls": None}}],
                   "usage": {"prompt_tokens": 40, "completion_tokens": 9, "total_tokens": 49}}).encode()
MESSAGES = [("system", "You manage ad budgets."), ("user", "What should gc-001's daily budget be?")]


def handler(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=BODY, headers={"content-type": "application/json"})


def median_ms(fn: Callable[[], object], calls: int) -> float:
    fn()  # warm-up
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def limiter_rate(rate: float, callers: int, per_caller: int) -> float:
    limiter = RateLimiter(requests_per_second=rate, tokens_per_second=0)
    times: list[float] = []
    lock = threading.Lock()

    def caller() -> None:
        for _ in range(per_caller):
            limiter.acquire()
            with lock:
                times.append(time.monotonic())

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    times.sort()
    burst = int(rate)  # a full bucket lets one second's worth through at once
    return (len(times) - burst) / (times[-1] - times[0])


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="adpilot-bench-router-"))
    transport = httpx.MockTransport(handler)

    bare = ChatMistralAI(model="mistral-large-latest", api_key="bench", temperature=0.7, max_retries=1,
                         client=httpx.Client(base_url="https://api.mistral.ai/v1", transport=transport))
    baseline = median_ms(lambda: bare.invoke(MESSAGES), args.calls)

    settings = load_settings(home=home, mistral_api_key="bench", requests_per_second=0, tokens_per_second=0,
                             planner_temperature=0.7)
    routed = ModelRouter(settings, audit=MemoryAudit(), transport=transport).chat("planner", run_id="bench")
    uncached = median_ms(lambda: routed.invoke(MESSAGES), args.calls)

    cached_router = ModelRouter(settings.with_overrides(planner_temperature=0.0), audit=MemoryAudit(),
                                transport=transport)
    cached = median_ms(lambda: cached_router.chat("planner").invoke(MESSAGES), args.calls)

    print(f"{'per call (median of ' + str(args.calls) + ')':<44}{'ms':>10}{'vs baseline':>14}")
    print(f"{'baseline: bare ChatMistralAI, local endpoint':<44}{baseline:>10.3f}{1.0:>13.2f}x")
    print(f"{'router, no cache (limiter, retry, audit)':<44}{uncached:>10.3f}{uncached / baseline:>13.2f}x")
    print(f"{'router, cache hit (no HTTP)':<44}{cached:>10.3f}{cached / baseline:>13.2f}x")
    achieved = limiter_rate(50, callers=8, per_caller=25)
    print(f"limiter, 8 threads x 25 calls, real clock: configured 50.0 req/s, achieved {achieved:.1f} req/s")


if __name__ == "__main__":
    main()
