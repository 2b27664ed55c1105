"""How long ``adpilot doctor`` takes offline, next to ``adpilot --help`` in the same run.

    .venv/bin/python bench/bench_doctor.py

Everything that needs the network is configured (stand-in Mistral key, Meta token, a Google Ads
account), so the doctor must probe, find the hosts unreachable and say "offline". The issue's bar
is under ten seconds; the probe is bounded at about 2 s.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def timed(argv: list[str]) -> tuple[float, int, str]:
    """Seconds, exit code and output of one in-process CLI run."""
    from agent.cli import main

    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    return time.perf_counter() - start, code, out.getvalue()


def main() -> None:
    """Print doctor's offline time beside the CLI's start-up baseline."""
    home = Path(tempfile.mkdtemp(prefix="adpilot-bench-doctor-"))
    os.environ.update({"MISTRAL_API_KEY": "stand-in", "META_ACCESS_TOKEN": "stand-in",
                       "ADPILOT_PLATFORMS": '{"1234567890": "google_ads", "act_1001": "meta"}'})
    base, _, _ = timed(["--help"])
    secs, code, out = timed(["doctor", "--home", str(home), "--json"])
    network = next((line for line in out.splitlines() if '"network"' in line), "").strip()
    print(f"adpilot --help (baseline)  {base:6.2f} s")
    print(f"adpilot doctor (offline)   {secs:6.2f} s   exit {code}   {network}")


if __name__ == "__main__":
    main()
