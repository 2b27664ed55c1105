"""Retrying model calls: which failures are transient, how long to wait, and unknown-model errors.

ChatMistralAI retries only transport errors and raises a 429 or 5xx at once as
``httpx.HTTPStatusError``; this module owns those. Waits grow exponentially with full jitter, but a
server's ``Retry-After`` (seconds or an HTTP date) is a floor: calling back earlier would only be
refused again. Every wait is capped so a hostile or broken header cannot park a run for hours.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
from httpx_sse import SSEError

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_UNKNOWN_MODEL_HINTS = ("invalid model", "invalid_model", "unknown model", "model not found", "no such model",
                        "does not exist")


@dataclass
class RetryPolicy:
    """How often and how long to retry; ``sleep``, ``rand`` and ``now`` (for HTTP-date hints) are injectable."""

    max_retries: int = 4
    base_delay_s: float = 1.0
    max_wait_s: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    rand: Callable[[], float] = field(default_factory=lambda: random.Random().random)
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based).

        Without a hint: full jitter over an exponentially growing window. With ``Retry-After``: the
        server's figure plus up to 10 % jitter, so callers that were told the same moment spread out.
        """
        if retry_after is not None:
            wait = retry_after * (1.0 + 0.1 * self.rand())
        else:
            wait = self.base_delay_s * (2 ** (attempt - 1)) * (0.5 + 0.5 * self.rand())
        return min(wait, self.max_wait_s)


def retry_after_seconds(response: httpx.Response, now: datetime | None = None) -> float | None:
    """The ``Retry-After`` header as seconds (it may be a number or an HTTP date); None when absent."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the same request may succeed (rate limit, server error, timeout, lost connection)."""
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code in RETRYABLE_STATUS or exc.response.status_code >= 500
    if isinstance(exc, SSEError):
        # A server that answers a stream request with something other than an event stream will do so again.
        return False
    return isinstance(exc, httpx.TransportError | httpx.StreamError)


def error_text(exc: httpx.HTTPStatusError) -> str:
    """The server's error message, short and on one line (never the request body)."""
    try:
        body = exc.response.json()
    except (ValueError, httpx.ResponseNotRead):
        try:
            return " ".join(exc.response.text.split())[:300]
        except httpx.ResponseNotRead:
            return ""
    if isinstance(body, dict):
        message = body.get("message") or body.get("detail") or body.get("error") or body
        if isinstance(message, dict):
            message = message.get("message", message)
        return " ".join(str(message).split())[:300]
    return " ".join(str(body).split())[:300]


def is_unknown_model(exc: BaseException) -> bool:
    """Whether the endpoint says the requested model does not exist (Mistral: 400 invalid_model; vLLM: 404)."""
    if not isinstance(exc, httpx.HTTPStatusError) or exc.response.status_code not in (400, 404, 422):
        return False
    try:
        raw = exc.response.text.lower()
    except httpx.ResponseNotRead:
        return False
    if "model" not in raw:
        return False
    # A bare "not found" only counts on a 404 (Ollama-style "model 'x' not found").
    return any(hint in raw for hint in _UNKNOWN_MODEL_HINTS) or (exc.response.status_code == 404
                                                                  and "not found" in raw)
