"""Google Ads cassettes: recorded gRPC request/response pairs as JSON, replayed by an in-process server.

vcrpy cannot see gRPC, so Google Ads traffic is kept in ``cassettes/google_ads/*.json``: each
interaction names the RPC method, the request and either the response (a list of messages for
``SearchStream``) or the error (gRPC code, message, ``GoogleAdsFailure``, request id). Messages
are protobuf JSON with the proto field names, so a person can read and edit them.

``FakeGoogleAdsServer`` is a real gRPC server on 127.0.0.1; ``patched_channels`` points the SDK's
channels at it, so the SDK's own serialisation, metadata / logging / exception interceptors and
``GoogleAdsException`` mapping run exactly as against Google. ``CassetteReplayer`` serves the
interactions in order and refuses a request that differs from the recorded one (the test then
fails, naming the difference). ``Recorder`` is the other half: a client interceptor that writes
the cassette while real traffic flows (see ``cassettes/record_google_ads.py``). Request metadata
(developer token, OAuth bearer token) is never written; only ``login-customer-id`` is kept.

Test, bench and re-record infrastructure: the adapter itself does not import this module.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from importlib import import_module
from pathlib import Path
from typing import Any
from unittest import mock

import grpc
from google.protobuf import json_format

from tools.adapters.google_ads import API_VERSION, FAILURE_METADATA_KEY

_PREFIX = f"google.ads.googleads.{API_VERSION}.services"
# RPC path → (types module, request class, response class, server-streaming)
METHODS: dict[str, tuple[str, str, str, bool]] = {
    f"/{_PREFIX}.GoogleAdsService/SearchStream":
        ("google_ads_service", "SearchGoogleAdsStreamRequest", "SearchGoogleAdsStreamResponse", True),
    f"/{_PREFIX}.CampaignBudgetService/MutateCampaignBudgets":
        ("campaign_budget_service", "MutateCampaignBudgetsRequest", "MutateCampaignBudgetsResponse", False),
    f"/{_PREFIX}.CampaignService/MutateCampaigns":
        ("campaign_service", "MutateCampaignsRequest", "MutateCampaignsResponse", False),
    f"/{_PREFIX}.AdGroupService/MutateAdGroups":
        ("ad_group_service", "MutateAdGroupsRequest", "MutateAdGroupsResponse", False),
    f"/{_PREFIX}.AdGroupAdService/MutateAdGroupAds":
        ("ad_group_ad_service", "MutateAdGroupAdsRequest", "MutateAdGroupAdsResponse", False),
    f"/{_PREFIX}.AdGroupCriterionService/MutateAdGroupCriteria":
        ("ad_group_criterion_service", "MutateAdGroupCriteriaRequest", "MutateAdGroupCriteriaResponse", False),
    f"/{_PREFIX}.CampaignCriterionService/MutateCampaignCriteria":
        ("campaign_criterion_service", "MutateCampaignCriteriaRequest", "MutateCampaignCriteriaResponse", False),
}

Reply = dict[str, Any]
"""``{"response": {...}}``, ``{"responses": [{...}, ...]}`` or ``{"error": {"code", "message", "failure", ...}}``."""
Responder = Callable[[str, dict[str, Any], dict[str, str]], Reply]
"""(method, request as JSON dict, request metadata) → reply."""


def _types(method: str) -> tuple[Any, Any, bool]:
    module_name, request_name, response_name, streaming = METHODS[method]
    module = import_module(f"google.ads.googleads.{API_VERSION}.services.types.{module_name}")
    return getattr(module, request_name), getattr(module, response_name), streaming


def _pb(message: Any) -> Any:
    cls = type(message)
    # proto-plus wrappers expose the raw protobuf through the class method ``pb``; raw protobufs have none.
    return cls.pb(message) if hasattr(cls, "meta") else message


def to_json(message: Any) -> dict[str, Any]:
    """A proto-plus or protobuf message as a JSON dict with proto field names (defaults omitted)."""
    return json_format.MessageToDict(_pb(message), preserving_proto_field_name=True)


def from_json(cls: Any, data: dict[str, Any]) -> Any:
    """A proto-plus message of class ``cls`` from a JSON dict."""
    return cls.wrap(json_format.ParseDict(data, cls.pb()()))


def failure_bytes(failure: dict[str, Any]) -> bytes:
    """A ``GoogleAdsFailure`` JSON dict serialised as the trailing metadata value the SDK decodes."""
    from google.ads.googleads.v26.errors.types.errors import GoogleAdsFailure

    return GoogleAdsFailure.serialize(from_json(GoogleAdsFailure, failure))


def normalise(request: dict[str, Any]) -> dict[str, Any]:
    """Requests compare equal when only the whitespace of a GAQL query differs."""
    out = dict(request)
    if isinstance(out.get("query"), str):
        out["query"] = re.sub(r"\s+", " ", out["query"]).strip()
    return out


class FakeGoogleAdsServer:
    """A real gRPC server on 127.0.0.1 answering Google Ads RPCs from a ``Responder``."""

    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self.errors: list[str] = []
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self._server.add_generic_rpc_handlers([_Handler(self)])
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    def __enter__(self) -> FakeGoogleAdsServer:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(grace=None)

    @contextmanager
    def patched_channels(self) -> Iterator[None]:
        """Point every google-ads gRPC channel created inside the block at this server."""
        target = f"127.0.0.1:{self.port}"
        with mock.patch("google.api_core.grpc_helpers.create_channel",
                        lambda *args, **kwargs: grpc.insecure_channel(target)):
            yield

    def reply(self, method: str, raw: bytes, context: grpc.ServicerContext) -> Any:
        request_cls, response_cls, streaming = _types(method)
        request = to_json(request_cls.deserialize(raw))
        metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        try:
            answer = self.responder(method, request, metadata)
        except AssertionError as exc:
            self.errors.append(str(exc))
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"cassette mismatch: {exc}")
        if "error" in answer:
            err = answer["error"]
            trailing = [("request-id", err.get("request_id", "fake-request-id"))]
            if err.get("failure"):
                trailing.append((FAILURE_METADATA_KEY, failure_bytes(err["failure"])))
            context.set_trailing_metadata(tuple(trailing))
            context.abort(getattr(grpc.StatusCode, err["code"]), err.get("message", ""))
        if streaming:
            return [response_cls.serialize(from_json(response_cls, r)) for r in answer.get("responses", [])]
        return response_cls.serialize(from_json(response_cls, answer.get("response", {})))


class _Handler(grpc.GenericRpcHandler):
    def __init__(self, server: FakeGoogleAdsServer) -> None:
        self._server = server

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        if method not in METHODS:
            return None
        if METHODS[method][3]:
            def stream(raw: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
                yield from self._server.reply(method, raw, context)

            return grpc.unary_stream_rpc_method_handler(stream)
        return grpc.unary_unary_rpc_method_handler(lambda raw, context: self._server.reply(method, raw, context))


class CassetteReplayer:
    """Serves a cassette's interactions in order; a request that differs from the recording fails."""

    def __init__(self, path: Path) -> None:
        self.path = path
        data = json.loads(path.read_text())
        self.interactions: list[dict[str, Any]] = data["interactions"]
        self.played = 0
        self._lock = threading.Lock()

    def __call__(self, method: str, request: dict[str, Any], metadata: dict[str, str]) -> Reply:
        with self._lock:
            if self.played >= len(self.interactions):
                raise AssertionError(f"{self.path.name}: no recorded interaction left for {method}")
            expected = self.interactions[self.played]
            self.played += 1
        if expected["method"] != method:
            raise AssertionError(f"{self.path.name}#{self.played}: expected {expected['method']}, got {method}")
        if normalise(expected["request"]) != normalise(request):
            raise AssertionError(f"{self.path.name}#{self.played}: request differs: "
                                 f"recorded {json.dumps(expected['request'], sort_keys=True)} "
                                 f"sent {json.dumps(request, sort_keys=True)}")
        login = expected.get("metadata", {}).get("login-customer-id")
        if login is not None and metadata.get("login-customer-id") != login:
            raise AssertionError(f"{self.path.name}#{self.played}: login-customer-id "
                                 f"{metadata.get('login-customer-id')!r}, recorded {login!r}")
        return {k: v for k, v in expected.items() if k in ("response", "responses", "error")}

    def assert_all_played(self) -> None:
        """Every recorded interaction was requested (an unplayed one means the adapter skipped a call)."""
        left = len(self.interactions) - self.played
        assert left == 0, f"{self.path.name}: {left} recorded interaction(s) never requested"


class Recorder(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Captures real Google Ads traffic as cassette interactions (request metadata is not kept)."""

    def __init__(self) -> None:
        self.interactions: list[dict[str, Any]] = []

    def _entry(self, details: grpc.ClientCallDetails, request: Any) -> dict[str, Any]:
        metadata = dict(details.metadata or ())
        entry: dict[str, Any] = {"method": details.method, "request": to_json(request)}
        if metadata.get("login-customer-id"):
            entry["metadata"] = {"login-customer-id": metadata["login-customer-id"]}
        return entry

    def _error(self, entry: dict[str, Any], exc: Exception) -> None:
        call = getattr(exc, "error", exc)  # GoogleAdsException wraps the RpcError
        error: dict[str, Any] = {"code": call.code().name, "message": call.details() or ""}
        for key, value in call.trailing_metadata() or ():
            if key == FAILURE_METADATA_KEY:
                from google.ads.googleads.v26.errors.types.errors import GoogleAdsFailure

                error["failure"] = to_json(GoogleAdsFailure.deserialize(value))
            elif key == "request-id":
                error["request_id"] = value
        entry["error"] = error
        self.interactions.append(entry)

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        """Record one mutate call."""
        entry = self._entry(client_call_details, request)
        try:
            outcome = continuation(client_call_details, request)
            response = outcome.result()
        except Exception as exc:
            self._error(entry, exc)
            raise
        entry["response"] = to_json(response)
        self.interactions.append(entry)
        return outcome

    def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        """Record one SearchStream call (the stream is consumed here and replayed to the caller)."""
        entry = self._entry(client_call_details, request)
        try:
            messages = list(continuation(client_call_details, request))
        except Exception as exc:
            self._error(entry, exc)
            raise
        entry["responses"] = [to_json(m) for m in messages]
        self.interactions.append(entry)
        return iter(messages)

    def save(self, path: Path, description: str) -> None:
        """Write the cassette."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"description": description, "provenance": "recorded with "
                                    "cassettes/record_google_ads.py against a real account",
                                    "interactions": self.interactions}, indent=2, ensure_ascii=False) + "\n")


class RecordingClient:
    """A ``GoogleAdsClient`` whose services carry the ``Recorder`` interceptor (everything else delegates)."""

    def __init__(self, client: Any, recorder: Recorder) -> None:
        self._client = client
        self._recorder = recorder

    def get_service(self, name: str, **kwargs: Any) -> Any:
        """The real service with the recorder as the outermost interceptor."""
        return self._client.get_service(name, interceptors=[self._recorder], **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)
