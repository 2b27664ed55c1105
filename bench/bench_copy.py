"""A 200-product copy job against a fake bulk endpoint with latency and a rate limit.

    .venv/bin/python bench/bench_copy.py [--products 200] [--variants 3] [--latency-ms 150] [--rps 20]

The fake endpoint answers after ``latency`` and enforces ``rps`` with a token bucket (a 429 with
``Retry-After: 1`` when it is exceeded), like a real rate-limited API. Three runs in one process:

* sequential — the baseline: one bulk call at a time (``max_concurrency=1``);
* adpilot — the copywriter as shipped: batches fanned out with ``Send``, in-flight calls bounded by
  ``default_concurrency(rps, latency)``, calls paced by the router's rate limiter;
* no limiter — the same fan-out with the limiter switched off and no bound, to show the 429 storm
  the limiter prevents.

Printed per run: wall time, bulk calls, 429 answers, the most calls in flight at once, achieved call
rate. Every run writes the same copy (the fake answers valid variants); guardrails run on all of it.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from agent.domain import EntityRef  # noqa: E402
from agent.models import FunctionChatModel, ModelRouter  # noqa: E402
from agent.models.retry import RetryPolicy  # noqa: E402
from agent.settings import DEFAULT_POLICY, load_settings  # noqa: E402
from graphs.copywriter.context import CopyContext, default_concurrency  # noqa: E402
from graphs.copywriter.graph import write_copy  # noqa: E402
from graphs.copywriter.state import Brief  # noqa: E402
from graphs.copywriter.variants import ProductFacts  # noqa: E402
from policies.engine import load_engine  # noqa: E402

D = "Solange der Vorrat reicht. Alle Preise inkl. MwSt."
NOUNS = ["Regenjacke", "Wanderschuh", "Rucksack", "Zelt", "Schlafsack", "Fleecejacke", "Trekkinghose", "Mütze"]
MODELS = ["Fjord", "Gipfel", "Kaskade", "Polar", "Tundra", "Skarv", "Birke", "Lärche", "Brise", "Nebel"]


class Endpoint:
    """A fake bulk endpoint: latency, a token-bucket rate limit, and counters."""

    def __init__(self, latency_s: float, rps: float) -> None:
        self.latency_s, self.rps = latency_s, rps
        self.lock = threading.Lock()
        self.level, self.stamp = rps, time.monotonic()
        self.in_flight = self.max_in_flight = self.calls = self.rejected = 0

    def _admit(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.level = min(self.rps, self.level + (now - self.stamp) * self.rps)
            self.stamp = now
            if self.level < 1:
                self.rejected += 1
                return False
            self.level -= 1
            self.calls += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return True

    def __call__(self, messages: list[Any], info: Any) -> dict[str, Any]:
        if not self._admit():
            request = httpx.Request("POST", "https://bulk.example/v1/chat/completions")
            raise httpx.HTTPStatusError("429 Too Many Requests", request=request, response=httpx.Response(
                429, headers={"Retry-After": "1"}, request=request))
        try:
            time.sleep(self.latency_s)
            name = messages[0].content.split("name: ", 1)[1].split("\n", 1)[0]
            short = " ".join(name.split()[1:])
            variants = [
                {"headlines": [short[:30], "Leicht und robust", "Jetzt online bestellen"],
                 "descriptions": [f"{short} von Nordkamm: leicht, robust und atmungsaktiv."[:90], D]},
                {"headlines": ["Für jede Tour gemacht", "Atmungsaktiv unterwegs", f"{short}"[:30]],
                 "descriptions": ["Wetterfest und bequem: dein Begleiter für Wanderungen im Norden.", D]},
                {"headlines": ["Nordkamm Outdoor", "Robust im Regen", "Packbar und leicht"],
                 "descriptions": [f"Entdecke {short} im Onlineshop und bestelle direkt."[:90], D]},
            ]
            return {"tool_calls": [{"name": "RsaVariants", "args": {"variants": variants}}]}
        finally:
            with self.lock:
                self.in_flight -= 1


def briefs(count: int, variants: int) -> list[Brief]:
    out = []
    for i in range(count):
        name = f"Nordkamm {MODELS[i % len(MODELS)]} {NOUNS[i % len(NOUNS)]}"
        product = ProductFacts(sku=f"NK-{20000 + i}", name=name, brand="Nordkamm", category="Outdoor",
                               price=Decimal("99.95"), description=f"{name}: leicht, robust und atmungsaktiv.",
                               url=f"https://www.nordkamm-outdoor.example/p/nk-{20000 + i}")
        target = EntityRef(platform="google", account_id="1234567890", kind="ad_group", id=f"gag-{i:04d}")
        out.append(Brief(products=[product], target=target, platform="google", variants=variants))
    return out


def run(label: str, jobs: list[Brief], latency_s: float, rps: float, *, limiter_rps: float,
        max_concurrency: int | None, home: Path) -> dict[str, Any]:
    endpoint = Endpoint(latency_s, rps)
    settings = load_settings(home=home, requests_per_second=limiter_rps, tokens_per_second=0)
    router = ModelRouter(settings, overrides={"bulk": FunctionChatModel(endpoint)},
                         retry=RetryPolicy(max_retries=20, base_delay_s=0.5, max_wait_s=2.0))
    context = CopyContext(rules=load_engine(DEFAULT_POLICY).brand_rules, router=router, batch_size=4)
    started = time.perf_counter()
    outcome = write_copy(jobs, context, max_concurrency=max_concurrency)
    wall = time.perf_counter() - started
    return {"run": label, "wall_s": wall, "calls": endpoint.calls, "429s": endpoint.rejected,
            "max_in_flight": endpoint.max_in_flight, "bound": max_concurrency or "none",
            "calls_per_s": endpoint.calls / wall, "accepted": len(outcome.actions)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=200)
    parser.add_argument("--variants", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=150.0)
    parser.add_argument("--rps", type=float, default=20.0, help="the endpoint's rate limit (requests per second)")
    args = parser.parse_args(argv)
    import logging
    import tempfile

    # Each 429 retry logs a warning; the table counts them instead.
    logging.getLogger("agent.models.routed").setLevel(logging.ERROR)

    latency = args.latency_ms / 1000
    jobs = briefs(args.products, args.variants)
    bound = default_concurrency(args.rps, latency_s=latency)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(run("sequential (baseline)", jobs, latency, args.rps, limiter_rps=args.rps, max_concurrency=1,
                        home=Path(tmp) / "a"))
        rows.append(run("adpilot (bounded + limiter)", jobs, latency, args.rps, limiter_rps=args.rps,
                        max_concurrency=bound, home=Path(tmp) / "b"))
        rows.append(run("no limiter, unbounded", jobs, latency, args.rps, limiter_rps=0, max_concurrency=64,
                        home=Path(tmp) / "c"))
    print(f"{args.products} products x {args.variants} variants, endpoint: {args.latency_ms:.0f} ms latency, "
          f"{args.rps:g} requests/s limit; adpilot bound = ceil(rps x latency x 1.5) = {bound}")
    header = f"{'run':30} {'wall s':>8} {'calls':>6} {'429s':>6} {'max in flight':>14} {'bound':>6} {'calls/s':>8}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['run']:30} {r['wall_s']:8.2f} {r['calls']:6d} {r['429s']:6d} {r['max_in_flight']:14d} "
              f"{r['bound']!s:>6} {r['calls_per_s']:8.2f}")
    base, ours = rows[0], rows[1]
    print(f"speed-up vs sequential: {base['wall_s'] / ours['wall_s']:.1f}x; accepted variants: "
          f"{', '.join(str(r['accepted']) for r in rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
