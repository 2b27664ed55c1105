"""Re-record the copywriter's bulk-tier cassette, cassettes/mistral/test_copy_bulk_structured_output.yaml.

    MISTRAL_API_KEY=... python cassettes/record_copy.py     # against the real API (a few cents)
    python cassettes/record_copy.py --stand-in              # offline, against a local stand-in

The real client (langchain-mistralai through adpilot's router and the copywriter graph) sends the
requests, vcrpy records them with the suite's filters, and ``record_mistral.tidy`` pretty-prints the
bodies and points the URIs at api.mistral.ai. The stand-in answers like Mistral's function calling:
its first answer holds one variant with a headline over 30 characters and the forbidden "garantiert",
so the cassette also holds the repair round the guardrails ask for. Afterwards the secret scans run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from record_mistral import CREATED, _tool_call_id, tidy

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CASSETTE = HERE / "mistral" / "test_copy_bulk_structured_output.yaml"
TEST = "tests/test_copy_cassette.py"
D = "Solange der Vorrat reicht. Alle Preise inkl. MwSt."
FIRST = [
    {"headlines": ["Fjord Damen Regenjacke garantiert trocken", "Leicht und atmungsaktiv", "Jetzt nur 71,95 €"],
     "descriptions": ["Die Fjord Regenjacke von Nordkamm: leicht, robust und ideal für Touren im Norden.",
                      f"Statt 89,99 € jetzt 71,95 €. {D}"]},
    {"headlines": ["Regenjacke Fjord", "Robust für Alpen und Norden", "20 % Rabatt"],
     "descriptions": ["Atmungsaktiv und leicht: deine Begleiterin für jede Wanderung im Regen.",
                      f"Jetzt 18,04 € sparen. {D}"]},
]
REPAIRED = [
    {"headlines": ["Fjord Damen Regenjacke", "Trocken durch jede Tour", "Jetzt nur 71,95 €"],
     "descriptions": ["Die Fjord Regenjacke von Nordkamm: leicht, robust und ideal für Touren im Norden.",
                      f"Statt 89,99 € jetzt 71,95 €. {D}"]},
]


def answer(request: dict[str, Any]) -> dict[str, Any]:
    """A chat.completion with the forced tool call: the first draft, or the repaired variant."""
    last = request["messages"][-1]["content"]
    variants = REPAIRED if "Rewrite exactly" in last else FIRST
    tool = request["tools"][0]["function"]["name"]
    arguments = json.dumps({"variants": variants}, ensure_ascii=False)
    prompt_tokens = len(json.dumps(request["messages"], ensure_ascii=False)) // 4
    return {"id": _tool_call_id("copy", last)[:8] + "copy", "object": "chat.completion", "created": CREATED,
            "model": request["model"],
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "", "tool_calls": [{
                    "id": _tool_call_id("copy", last), "type": "function", "index": 0,
                    "function": {"name": tool, "arguments": arguments}}]}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(arguments) // 4,
                      "total_tokens": prompt_tokens + len(arguments) // 4}}


def serve() -> tuple[ThreadingHTTPServer, str]:
    """The stand-in on a free local port."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            payload = json.dumps(answer(body), ensure_ascii=False).encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def main(argv: list[str] | None = None) -> int:
    """Record, tidy and scan."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stand-in", action="store_true", help="record against a local stand-in, offline")
    args = parser.parse_args(argv)
    env = {k: v for k, v in os.environ.items() if k not in ("MISTRAL_API_KEY", "MISTRAL_BASE_URL")}
    pytest_args = [sys.executable, "-m", "pytest", TEST, "--record-mode=rewrite", "-q", "-p", "no:cacheprovider"]
    server = local_base = None
    if args.stand_in:
        server, local_base = serve()
        env["ADPILOT_RECORD_MISTRAL_BASE_URL"] = f"{local_base}/v1"
        env["ADPILOT_RECORD_MISTRAL_API_KEY"] = "stand-in-key"
        pytest_args.append("--allowed-hosts=127.0.0.1")
    else:
        key = os.environ.get("MISTRAL_API_KEY")
        if not key:
            print("set MISTRAL_API_KEY (or pass --stand-in)", file=sys.stderr)
            return 2
        env["ADPILOT_RECORD_MISTRAL_API_KEY"] = key
    try:
        code = subprocess.call(pytest_args, cwd=REPO, env=env)
    finally:
        if server is not None:
            server.shutdown()
    tidy(CASSETTE, local_base)
    scan_env = {k: v for k, v in env.items() if not (args.stand_in and k.startswith("ADPILOT_RECORD_"))}
    scan = subprocess.call([sys.executable, "-m", "pytest", "tests/test_cassette_secrets.py", "-q",
                            "-p", "no:cacheprovider"], cwd=REPO, env=scan_env)
    return code or scan


if __name__ == "__main__":
    sys.exit(main())
