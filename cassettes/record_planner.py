"""Re-record the planner's tier-2 cassette (cassettes/mistral/test_planner_*.yaml).

    MISTRAL_API_KEY=... python cassettes/record_planner.py     # against the real API (mistral-large-latest)
    python cassettes/record_planner.py --stand-in               # offline, against a local stand-in

The real planner graph (langchain-mistralai through adpilot's router, the real tools on the demo
world, the real policy) sends the requests; vcrpy records them with the suite's filters (no
Authorization header, only content-type/accept and content-type/retry-after headers kept). The
stand-in answers like Mistral's chat completions endpoint would for a planner that looks up the
campaign, proposes a +10 % budget and summarises — that is how the committed cassette was made.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TEST_MODULE = "tests/test_planner_cassettes.py"
CREATED = 1796342400


def _mistral_recorder() -> Any:
    spec = importlib.util.spec_from_file_location("record_mistral", HERE / "record_mistral.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def planner_answer(request: dict[str, Any], tool_call_id: Any) -> dict[str, Any]:
    """The assistant message a sensible planner sends at each step of the recorded conversation."""
    messages = request["messages"]
    last = messages[-1]
    called = [m.get("name") for m in messages if m["role"] == "tool"]
    if last["role"] == "user":
        return {"role": "assistant", "content": "", "prefix": False, "tool_calls": [{
            "id": tool_call_id("list", last["content"]), "type": "function", "index": 0, "function": {
                "name": "list_campaigns", "arguments": json.dumps({"name_contains": "Sommer Sale"})}}]}
    if called[-1] == "list_campaigns":
        args = {"target": {"platform": "google", "account_id": "1234567890", "kind": "campaign", "id": "gc-001"},
                "daily_budget": {"amount": "44.00", "currency": "EUR"},
                "reason": "Sommer Sale: +10 % from 40.00 EUR as requested"}
        return {"role": "assistant", "content": "", "prefix": False, "tool_calls": [{
            "id": tool_call_id("propose", last["content"]), "type": "function", "index": 0, "function": {
                "name": "propose_budget_change", "arguments": json.dumps(args)}}]}
    return {"role": "assistant", "prefix": False, "tool_calls": None,
            "content": "Proposed: daily budget of 'Sommer Sale' (gc-001) from 40.00 to 44.00 EUR (+10 %); "
                       "the policy allows it."}


def serve(recorder: Any) -> tuple[ThreadingHTTPServer, str]:
    """A local stand-in for POST /v1/chat/completions answering the planner conversation."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))))
            message = planner_answer(request, recorder._tool_call_id)
            prompt = recorder._tokens(json.dumps(request["messages"])) + recorder._tokens(json.dumps(request["tools"]))
            completion = recorder._tokens(message["content"] or json.dumps(message["tool_calls"]))
            body = json.dumps({
                "id": recorder._digest(json.dumps(request, sort_keys=True)).hex()[:32], "object": "chat.completion",
                "created": CREATED, "model": request["model"], "choices": [{
                    "index": 0, "message": message,
                    "finish_reason": "tool_calls" if message["tool_calls"] else "stop"}],
                "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                          "total_tokens": prompt + completion}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def main(argv: list[str] | None = None) -> int:
    """Re-record; returns pytest's exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stand-in", action="store_true", help="record against the local stand-in (no key)")
    args = parser.parse_args(argv)
    recorder = _mistral_recorder()
    env = {k: v for k, v in os.environ.items() if k not in ("MISTRAL_API_KEY", "MISTRAL_BASE_URL")}
    command = [sys.executable, "-m", "pytest", TEST_MODULE, "--record-mode=rewrite", "-q", "-p", "no:cacheprovider"]
    server = local_base = None
    if args.stand_in:
        server, local_base = serve(recorder)
        env["ADPILOT_RECORD_MISTRAL_BASE_URL"] = f"{local_base}/v1"
        env["ADPILOT_RECORD_MISTRAL_API_KEY"] = "stand-in-key"
        command.append("--allowed-hosts=127.0.0.1")
    elif not os.environ.get("MISTRAL_API_KEY"):
        print("set MISTRAL_API_KEY (or pass --stand-in)", file=sys.stderr)
        return 2
    else:
        env["ADPILOT_RECORD_MISTRAL_API_KEY"] = os.environ["MISTRAL_API_KEY"]
    try:
        code = subprocess.call(command, cwd=REPO, env=env)
    finally:
        if server is not None:
            server.shutdown()
    for path in sorted((HERE / "mistral").glob("test_planner_*.yaml")):
        recorder.tidy(path, local_base)
    return code


if __name__ == "__main__":
    sys.exit(main())
