"""Re-record the Google Ads cassettes against a real (test) account.

    .venv/bin/python cassettes/record_google_ads.py success \\
        --customer 1112223333 --manager 4445556666 \\
        --campaign 111=21900000001 --campaign 222=21900000002 --ad-group 333=15500000003

Credentials come from google-ads.yaml / GOOGLE_ADS_* as for adpilot itself. The scenario runs the
same adapter calls as tests/test_google_ads_adapter.py, with the ``Recorder`` interceptor capturing
every request and response (never request metadata, so no developer or OAuth token). The real
ids are then replaced by the fixture ids the tests use (``--campaign FIXTURE=REAL``), so the test
file does not change. Use a test account: the ``success`` and ``partial_failure`` scenarios apply
real changes (a new paused ad, a negative keyword, budget and bid changes).

Rate-limit and authentication cassettes cannot be provoked on demand; they stay hand-built (see
cassettes/README.md). Run the secret scan (tests/test_platform_cassette_secrets.py) before committing.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SCENARIOS = ("success", "validation_error", "partial_failure")


def _pairs(values: list[str]) -> dict[str, str]:
    out = {}
    for value in values:
        fixture, _, real = value.partition("=")
        if not (fixture.isdigit() and real.isdigit()):
            raise SystemExit(f"expected FIXTURE=REAL with digits, got {value!r}")
        out[fixture] = real
    return out


def main(argv: list[str] | None = None) -> int:
    """Record one scenario and write cassettes/google_ads/<scenario>.json."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument("--customer", required=True, help="real client customer id (digits)")
    parser.add_argument("--manager", help="real manager (login) customer id, if any")
    parser.add_argument("--campaign", action="append", default=[], help="FIXTURE=REAL campaign id")
    parser.add_argument("--ad-group", action="append", default=[], help="FIXTURE=REAL ad group id")
    args = parser.parse_args(argv)

    from agent.domain import Action, EntityKind
    from agent.settings import load_settings
    from tests import test_google_ads_adapter as scenarios
    from tools.adapters.google_ads import API_VERSION, GoogleAdsPlatform, load_google_ads_config
    from tools.adapters.google_ads_cassette import Recorder, RecordingClient

    ids = {scenarios.CID: args.customer, **_pairs(args.campaign), **_pairs(args.ad_group)}
    if args.manager:
        ids[scenarios.MANAGER] = args.manager
    real = ids

    def to_real(action: Action) -> Action:
        """The scenario's action pointed at the real account's ids instead of the fixture ids."""
        target = action.target.model_copy(update={"account_id": args.customer,
                                                  "id": real.get(action.target.id, action.target.id)})
        return action.model_copy(update={"target": target})

    config = load_google_ads_config(load_settings().google_ads_yaml)
    recorder = Recorder()

    def factory(login: str | None) -> RecordingClient:
        from google.ads.googleads.client import GoogleAdsClient

        data = {**config, "use_proto_plus": True, **({"login_customer_id": login} if login else {})}
        return RecordingClient(GoogleAdsClient.load_from_dict(data, version=API_VERSION), recorder)

    logins = {args.customer: args.manager} if args.manager else {}
    if args.scenario == "success":
        platform = GoogleAdsPlatform(factory, [], login_customer_ids=logins, discover=[args.customer])
        platform.list_accounts()
        platform.list_entities(args.customer, EntityKind.CAMPAIGN, status="ENABLED")
        platform.read_kpis(args.customer, EntityKind.CAMPAIGN, [real["111"], real["222"]], 7)
        platform.validate([to_real(a) for a in scenarios.change_set()])
        platform.apply([to_real(a) for a in scenarios.change_set()])
    else:
        account = scenarios.ACCOUNT.model_copy(update={"account_id": args.customer})
        platform = GoogleAdsPlatform(factory, [account], login_customer_ids=logins)
        if args.scenario == "validation_error":
            platform.validate([to_real(a) for a in scenarios.validation_set()])
        else:
            platform.apply([to_real(a) for a in scenarios.partial_set()])

    path = REPO / "cassettes" / "google_ads" / f"{args.scenario}.json"
    recorder.save(path, f"{args.scenario}: re-recorded with cassettes/record_google_ads.py")
    text = path.read_text()
    for fixture, value in sorted(ids.items(), key=lambda kv: -len(kv[1])):
        text = re.sub(rf"(?<!\d){value}(?!\d)", fixture, text)
    path.write_text(text)
    print(f"wrote {path.relative_to(REPO)} ({len(recorder.interactions)} interactions); "
          "now run the tests and the secret scan")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
