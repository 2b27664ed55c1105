"""Re-record the Mistral cassettes under cassettes/mistral/.

    MISTRAL_API_KEY=... python cassettes/record_mistral.py          # against the real API
    python cassettes/record_mistral.py --stand-in                    # offline, against a local stand-in

Live mode re-records every cassette a real endpoint can produce on demand (tool call, structured
output, streaming, unknown model); the 429 and 5xx cassettes (``test_synthetic_*``) are kept as
they are. ``--stand-in`` rebuilds all of them from a local server that answers in Mistral's
documented wire format — that is how the committed cassettes were made (see cassettes/README.md).

Either way the real client (langchain-mistralai through adpilot's router) sends the requests and
vcrpy records them with the test suite's filters: the Authorization header is never written, and
only content-type / accept (requests) and content-type / retry-after (responses) headers are kept.
Afterwards every cassette is rewritten with pretty-printed JSON bodies and checked for secrets.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CASSETTE_DIR = HERE / "mistral"
TEST_MODULE = "tests/test_mistral_cassettes.py"
PUBLIC_BASE = "https://api.mistral.ai"
CREATED = 1796342400  # 2026-12-04, fixed so rebuilt cassettes do not churn
_BASE62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


# -- the offline stand-in -------------------------------------------------------------------------

def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()


def _tool_call_id(*parts: str) -> str:
    number = int.from_bytes(_digest(*parts), "big")
    chars = []
    for _ in range(9):  # Mistral tool-call ids: nine alphanumerics
        number, rem = divmod(number, 62)
        chars.append(_BASE62[rem])
    return "".join(chars)


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _error(status: int, message: str, kind: str, code: str) -> tuple[int, dict[str, str], bytes]:
    body = {"object": "error", "message": message, "type": kind, "param": None, "code": code}
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


class StandIn:
    """Answers /v1/chat/completions like Mistral: tool calls, text, SSE streams and error envelopes."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}
        self.lock = threading.Lock()

    def answer(self, request: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        messages = request["messages"]
        last = messages[-1]
        text = last["content"] if isinstance(last["content"], str) else json.dumps(last["content"])
        with self.lock:
            self.seen[text] = self.seen.get(text, 0) + 1
            attempt = self.seen[text]
        if request["model"] == "adpilot-nonexistent-model":
            return _error(400, f"Invalid model: {request['model']}", "invalid_model", "1500")
        if "(rate limit)" in text and attempt == 1:
            status, headers, body = _error(429, "Requests rate limit exceeded", "rate_limited", "1300")
            return status, {**headers, "Retry-After": "2"}, body
        if "(server error)" in text and attempt == 1:
            return _error(503, "Service unavailable", "service_unavailable", "3505")
        prompt_tokens = _tokens(json.dumps(messages)) + _tokens(json.dumps(request.get("tools") or []))
        tools = {t["function"]["name"] for t in request.get("tools") or []}
        message: dict[str, Any] = {"role": "assistant", "content": "", "tool_calls": None, "prefix": False}
        if "BudgetCheck" in tools:
            args = {"campaign_id": "gc-001", "within_limit": True,
                    "reason": "Going from 40.00 to 42.50 EUR is a 6.25 % increase, below the 10 % limit."}
            message["tool_calls"] = [{"id": _tool_call_id(text), "type": "function", "function": {
                "name": "BudgetCheck", "arguments": json.dumps(args)}, "index": 0}]
        elif "set_budget" in tools and last["role"] == "user":
            message["tool_calls"] = [{"id": _tool_call_id(text), "type": "function", "function": {
                "name": "set_budget", "arguments": json.dumps({"campaign_id": "gc-001", "amount_eur": 42.5})},
                "index": 0}]
        elif last["role"] == "tool":
            message["content"] = ("I proposed a daily budget of 42.50 EUR for campaign gc-001; the policy allows "
                                  "it, so it is ready to apply.")
        elif request["model"] == "mistral-small-latest":
            message["content"] = "Watering can, 10 litres"
        elif "rate limit" in text:
            message["content"] = "Capping daily budget changes keeps one bad decision from burning a month's spend."
        elif "server error" in text:
            message["content"] = "An audit log lets you see who changed what and roll it back."
        else:
            message["content"] = ("Because a model only proposes: the policy decides, so a wrong or manipulated "
                                  "plan cannot spend more than the limits allow.")
        completion = _tokens(message["content"] or json.dumps(message["tool_calls"]))
        usage = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens + completion,
                 "completion_tokens": completion}
        ident = _digest(json.dumps(request, sort_keys=True)).hex()[:32]
        finish = "tool_calls" if message["tool_calls"] else "stop"
        if request.get("stream"):
            return 200, {"Content-Type": "text/event-stream; charset=utf-8"}, self._sse(ident, request["model"],
                                                                                         message, finish, usage)
        body = {"id": ident, "object": "chat.completion", "created": CREATED, "model": request["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage}
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    @staticmethod
    def _sse(ident: str, model: str, message: dict[str, Any], finish: str, usage: dict[str, int]) -> bytes:
        def chunk(delta: dict[str, Any], reason: str | None = None, **extra: Any) -> str:
            body = {"id": ident, "object": "chat.completion.chunk", "created": CREATED, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": reason}], **extra}
            return f"data: {json.dumps(body, separators=(',', ':'))}\n\n"

        words = message["content"].split(" ")
        pieces = [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
        events = [chunk({"role": "assistant", "content": ""})]
        events += [chunk({"content": piece}) for piece in pieces]
        events.append(chunk({"content": ""}, finish, usage=usage))
        return ("".join(events) + "data: [DONE]\n\n").encode()


def serve_stand_in() -> tuple[ThreadingHTTPServer, str]:
    """Start the stand-in on a free local port; its base URL."""
    stand_in = StandIn()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            status, headers, body = stand_in.answer(json.loads(self.rfile.read(length)))
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


# -- cassette post-processing ---------------------------------------------------------------------

class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _pretty(body: Any) -> Any:
    if not isinstance(body, str) or not body.lstrip().startswith("{"):
        return body
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False) + "\n"
    except json.JSONDecodeError:
        return body


def tidy(path: Path, local_base: str | None) -> None:
    """Readable JSON bodies, the public API's address, trailing spaces gone (YAML block style needs that)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for interaction in data["interactions"]:
        request, response = interaction["request"], interaction["response"]
        if local_base:
            request["uri"] = request["uri"].replace(local_base, PUBLIC_BASE)
        request["body"] = _pretty(request["body"])
        response["body"]["string"] = _pretty(response["body"]["string"])
    path.write_text(yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120),
                    encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Re-record; returns pytest's exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stand-in", action="store_true", help="record against the local stand-in (no key)")
    args = parser.parse_args(argv)
    env = {k: v for k, v in os.environ.items() if k not in ("MISTRAL_API_KEY", "MISTRAL_BASE_URL")}
    pytest_args = [sys.executable, "-m", "pytest", TEST_MODULE, "--record-mode=rewrite", "-q", "-p", "no:cacheprovider"]
    server = None
    if args.stand_in:
        server, local_base = serve_stand_in()
        env["ADPILOT_RECORD_MISTRAL_BASE_URL"] = f"{local_base}/v1"
        env["ADPILOT_RECORD_MISTRAL_API_KEY"] = "stand-in-key"
        pytest_args += ["--allowed-hosts=127.0.0.1"]
    else:
        key = os.environ.get("MISTRAL_API_KEY")
        if not key:
            print("set MISTRAL_API_KEY (or pass --stand-in)", file=sys.stderr)
            return 2
        local_base = None
        env["ADPILOT_RECORD_MISTRAL_API_KEY"] = key
        pytest_args += ["-k", "not synthetic"]
    try:
        code = subprocess.call(pytest_args, cwd=REPO, env=env)
    finally:
        if server is not None:
            server.shutdown()
    # Only this module's cassettes: other suites (the planner's) keep theirs under mistral/ too.
    tests = re.findall(r"^def (test_\w+)\(", (REPO / TEST_MODULE).read_text(encoding="utf-8"), flags=re.M)
    for name in tests:
        path = CASSETTE_DIR / f"{name}.yaml"
        if path.exists():
            tidy(path, local_base)
    # The scan looks for the live key's literal value too; the stand-in's made-up key is no secret.
    scan_env = env if not args.stand_in else {k: v for k, v in env.items() if not k.startswith("ADPILOT_RECORD_")}
    scan = subprocess.call([sys.executable, "-m", "pytest", "tests/test_cassette_secrets.py",
                            "tests/test_platform_cassette_secrets.py", "-q",
                            "-p", "no:cacheprovider"], cwd=REPO, env=scan_env)
    return code or scan


if __name__ == "__main__":
    sys.exit(main())
