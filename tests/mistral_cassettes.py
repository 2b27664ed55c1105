"""What every tier-2 Mistral cassette test shares: the cassette folder, the endpoint, the recording filters.

The recorder scripts (``cassettes/record_mistral.py``, ``record_copy.py``, ``record_planner.py``) run
the test modules with ``--record-mode=rewrite`` and set ``ADPILOT_RECORD_MISTRAL_API_KEY`` /
``ADPILOT_RECORD_MISTRAL_BASE_URL``; a normal run replays against the public API's address with a
dummy key. Each test module keeps two thin fixtures, ``vcr_cassette_dir`` returning ``CASSETTES`` and
``vcr_config`` returning ``mistral_vcr_config`` of the suite's config: pytest-recording looks both up
by name in the module that uses them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

CASSETTES = str(Path(__file__).resolve().parent.parent / "cassettes" / "mistral")
API_KEY = os.environ.get("ADPILOT_RECORD_MISTRAL_API_KEY") or "test-dummy-key"
BASE_URL = os.environ.get("ADPILOT_RECORD_MISTRAL_BASE_URL") or "https://api.mistral.ai/v1"
KEPT_REQUEST_HEADERS = frozenset({"content-type", "accept"})
KEPT_RESPONSE_HEADERS = frozenset({"content-type", "retry-after"})


def scrub_request(request: Any) -> Any:
    """Drop every request header but the allowlisted ones before a request is recorded."""
    for name in list(request.headers):
        if name.lower() not in KEPT_REQUEST_HEADERS:
            del request.headers[name]
    return request


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """Keep what the client reads; drop cookies, dates, request and correlation ids."""
    response["headers"] = {k: v for k, v in response["headers"].items() if k.lower() in KEPT_RESPONSE_HEADERS}
    return response


def mistral_vcr_config(suite_config: dict[str, Any]) -> dict[str, Any]:
    """The suite's secret filters plus body matching and the header allowlists.

    Requests are matched on their JSON body too, so a change in what adpilot sends (model, sampling
    parameters, tools, messages) fails the test instead of silently replaying a stale answer.
    """
    return {**suite_config, "match_on": ["method", "scheme", "host", "port", "path", "query", "body"],
            "before_record_request": scrub_request, "before_record_response": scrub_response}
