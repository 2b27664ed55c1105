"""Round trips and wall time of the real-platform adapters for N budget changes, against a baseline.

    .venv/bin/python bench/bench_adapters.py [--n 1 10 100 1000] [--rtt-ms 80]

Google Ads runs the real SDK against the in-process fake gRPC server (synthetic responses);
Meta runs the real facebook-business SDK over a stub ``requests`` transport. The baseline, in the
same run, sends the same actions one ``apply`` per action (read, mutate, read back each time),
which is what a naive adapter does. Wall time here is local (no network); the "at RTT" columns
estimate it on a real link as round trips × RTT, which is what dominates against Google and Meta.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent.domain import Account, EntityRef, Money, SetBudget  # noqa: E402

CID = "1234567890"
ACT = "act_1001"


def google_responder(method: str, request: dict[str, Any], metadata: dict[str, str]) -> dict[str, Any]:
    """Synthetic answers: every campaign exists with a 20 EUR budget; every mutate succeeds."""
    if method.endswith("SearchStream"):
        ids = request["query"].split(" IN (")[1].split(")")[0].split(", ")
        return {"responses": [{"results": [
            {"campaign": {"resource_name": f"customers/{CID}/campaigns/{i}", "id": i, "name": f"c{i}",
                          "status": "ENABLED", "bidding_strategy_type": "MANUAL_CPC",
                          "campaign_budget": f"customers/{CID}/campaignBudgets/{i}"},
             "campaign_budget": {"amount_micros": "20000000"}} for i in ids]}]}
    return {"response": {"results": [{"resource_name": op["update"]["resource_name"]}
                                     for op in request["operations"]]}}


def bench_google(n: int) -> tuple[tuple[int, float], tuple[int, float]]:
    """(round trips, seconds) batched and one-per-action."""
    from google.ads.googleads.client import GoogleAdsClient
    from google.auth.credentials import AnonymousCredentials

    from tools.adapters.google_ads import GoogleAdsPlatform
    from tools.adapters.google_ads_cassette import FakeGoogleAdsServer

    def factory(login: str | None) -> Any:
        return GoogleAdsClient(credentials=AnonymousCredentials(), developer_token="bench", use_proto_plus=True,
                               login_customer_id=login, version="v26")

    account = Account(platform="google", account_id=CID, name="bench", currency="EUR")
    actions = [SetBudget(target=EntityRef(platform="google", account_id=CID, kind="campaign", id=str(1000 + i)),
                         reason="bench", daily_budget=Money.of("25", "EUR")) for i in range(n)]
    out = []
    with FakeGoogleAdsServer(google_responder) as server, server.patched_channels():
        for one_by_one in (False, True):
            platform = GoogleAdsPlatform(factory, [account])
            start = time.perf_counter()
            if one_by_one:
                for action in actions:
                    platform.apply([action])
            else:
                platform.apply(actions)
            out.append((platform.calls.round_trips, time.perf_counter() - start))
    return out[0], out[1]


class _GraphStub:
    """A ``requests`` transport adapter answering Graph reads, batches and debug_token."""

    def __init__(self) -> None:
        import requests
        from requests.adapters import BaseAdapter

        class Adapter(BaseAdapter):
            def send(self, request: Any, **kwargs: Any) -> Any:
                query = parse_qs(urlsplit(request.url).query)
                if request.method == "POST":
                    form = parse_qs(request.body if isinstance(request.body, str) else request.body.decode())
                    batch = json.loads(form["batch"][0])
                    body: Any = [{"code": 200, "headers": [], "body": '{"success":true}'} for _ in batch]
                elif urlsplit(request.url).path.endswith("debug_token"):
                    body = {"data": {"is_valid": True, "expires_at": 0, "scopes": ["ads_management"]}}
                else:
                    body = {i: {"id": i, "name": i, "status": "ACTIVE", "daily_budget": "2500"}
                            for i in query["ids"][0].split(",")}
                response = requests.Response()
                response.status_code = 200
                response._content = json.dumps(body).encode()
                response.headers["Content-Type"] = "application/json"
                response.request = request
                return response

            def close(self) -> None:
                """Nothing to release."""

        self.adapter = Adapter()


def bench_meta(n: int) -> tuple[tuple[int, float], tuple[int, float]]:
    """(round trips, seconds) batched and one-per-action."""
    from facebook_business.api import FacebookAdsApi
    from facebook_business.session import FacebookSession

    from tools.adapters.meta import MetaPlatform

    account = Account(platform="meta", account_id=ACT, name="bench", currency="EUR")
    actions = [SetBudget(target=EntityRef(platform="meta", account_id=ACT, kind="ad_group", id=str(230000 + i)),
                         reason="bench", daily_budget=Money.of("25", "EUR")) for i in range(n)]
    out = []
    for one_by_one in (False, True):
        api = FacebookAdsApi(FacebookSession("1", None, "bench-token"), api_version="v24.0")
        api._session.requests.mount("https://", _GraphStub().adapter)
        platform = MetaPlatform(api, [account])
        start = time.perf_counter()
        if one_by_one:
            for action in actions:
                platform.apply([action])
        else:
            platform.apply(actions)
        out.append((platform.round_trips, time.perf_counter() - start))
    return out[0], out[1]


def main() -> None:
    """Print one table per platform."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="+", default=[1, 10, 100, 1000])
    parser.add_argument("--rtt-ms", type=float, default=80.0, help="round-trip time for the estimate")
    args = parser.parse_args()
    rtt = args.rtt_ms / 1000
    header = (f"{'N':>6} | {'round trips':>11} {'local s':>8} {'at RTT s':>8} | "
              f"{'baseline trips':>14} {'local s':>8} {'at RTT s':>8}")
    for name, bench in (("Google Ads (batched per service, 10,000 ops/request)", bench_google),
                        ("Meta (Graph batches of 50)", bench_meta)):
        print(f"\n{name}; baseline = one apply per action")
        print(header)
        bench(1)  # warm-up: imports, channel set-up and SDK caches are not what is measured
        for n in args.n:
            (trips, secs), (base_trips, base_secs) = bench(n)
            print(f"{n:>6} | {trips:>11} {secs:>8.2f} {trips * rtt:>8.2f} | "
                  f"{base_trips:>14} {base_secs:>8.2f} {base_trips * rtt:>8.2f}")


if __name__ == "__main__":
    main()
