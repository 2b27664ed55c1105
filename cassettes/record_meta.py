"""Re-record the Meta cassettes against a real (test) ad account with vcrpy.

    META_ACCESS_TOKEN=... META_APP_ID=... META_APP_SECRET=... ADPILOT_META_PAGE_ID=... \\
    .venv/bin/python cassettes/record_meta.py success --account act_555 \\
        --id 230001=23850000000001 --id 120002=23850000000002

The scenario makes the same adapter calls as tests/test_meta_adapter.py while vcrpy records with
the filters the tests use (``access_token``, ``appsecret_proof`` and ``input_token`` removed from
every URL; cookies dropped). Real ids are then replaced by the fixture ids (``--id FIXTURE=REAL``)
so the tests replay unchanged. Use a test account: ``success`` and ``partial_failure`` apply real
changes. Rate-limit and expired-token cassettes cannot be provoked on demand and stay hand-built.
Run the secret scan (tests/test_platform_cassette_secrets.py) before committing.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SCENARIOS = ("success", "validation_error", "partial_failure", "token")


def main(argv: list[str] | None = None) -> int:
    """Record one scenario into cassettes/meta/<scenario>.yaml."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument("--account", required=True, help="real ad account id, act_...")
    parser.add_argument("--id", action="append", default=[], help="FIXTURE=REAL object id")
    args = parser.parse_args(argv)
    token = os.environ.get("META_ACCESS_TOKEN")
    if not token:
        raise SystemExit("set META_ACCESS_TOKEN (and META_APP_ID / META_APP_SECRET) to record")

    import vcr
    from facebook_business.api import FacebookAdsApi
    from facebook_business.session import FacebookSession

    from agent.domain import Action
    from tests import test_meta_adapter as scenarios
    from tools.adapters.meta import MetaPlatform

    ids = {scenarios.ACT: args.account}
    for pair in args.id:
        fixture, _, real = pair.partition("=")
        ids[fixture] = real

    def to_real(action: Action) -> Action:
        """The scenario's action pointed at the real account's ids."""
        target = action.target.model_copy(update={"account_id": args.account,
                                                  "id": ids.get(action.target.id, action.target.id)})
        return action.model_copy(update={"target": target})

    api = FacebookAdsApi(FacebookSession(os.environ.get("META_APP_ID"), os.environ.get("META_APP_SECRET"), token),
                         api_version="v24.0")
    platform = MetaPlatform(api, [], discover=[args.account], page_id=os.environ.get("ADPILOT_META_PAGE_ID"))
    path = REPO / "cassettes" / "meta" / f"{args.scenario}.yaml"
    recorder = vcr.VCR(record_mode="all", filter_headers=["authorization", "cookie", "set-cookie"],
                       filter_query_parameters=["access_token", "appsecret_proof", "input_token", "client_secret"],
                       decode_compressed_response=True)
    with recorder.use_cassette(str(path)):
        if args.scenario == "token":
            platform.check_token()
        elif args.scenario == "success":
            platform.list_accounts()
            platform.list_entities(args.account, scenarios.EntityKind.CAMPAIGN)
            platform.read_kpis(args.account, scenarios.EntityKind.CAMPAIGN, [ids.get("120001", "120001")], 7)
            platform.validate([to_real(a) for a in scenarios.change_set()])
            platform.apply([to_real(a) for a in scenarios.change_set()])
        elif args.scenario == "validation_error":
            platform.validate([to_real(a) for a in scenarios.two_budgets()])
        else:
            platform.apply([to_real(a) for a in scenarios.two_budgets()])
    text = path.read_text()
    for fixture, real in sorted(ids.items(), key=lambda kv: -len(kv[1])):
        text = re.sub(rf"(?<![\w]){re.escape(real)}(?![\w])", fixture, text)
    path.write_text(text)
    print(f"wrote {path.relative_to(REPO)}; now run the tests and the secret scan")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
