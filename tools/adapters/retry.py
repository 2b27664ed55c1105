"""Retries with backoff for the real ad platforms, shared by the Google Ads and Meta adapters.

Each adapter knows which of its vendor's errors are transient and how long the vendor asks it to
wait (Google's ``QuotaErrorDetails.retry_delay``, Meta's ``estimated_time_to_regain_access``); this
module only owns the loop. ``sleep`` is injectable so tests run the real loop without waiting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryAfter:
    """A classifier's verdict: the error is transient; wait ``delay`` seconds (None: use the backoff)."""

    delay: float | None = None


@dataclass
class RetryPolicy:
    """How often and how long to retry transient platform errors."""

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0
    #: a vendor hint longer than this is not waited for: the error is raised (a daily quota, a 1 h block)
    max_hint: float = 300.0
    sleep: Callable[[float], None] = field(default=time.sleep)
    #: every wait actually slept, in order (tests and the doctor read it)
    waits: list[float] = field(default_factory=list)

    def backoff(self, attempt: int) -> float:
        """Exponential backoff for attempt ``attempt`` (0-based), capped at ``max_delay``."""
        return min(self.max_delay, self.base_delay * (2 ** attempt))

    def run(self, call: Callable[[], T], classify: Callable[[Exception], RetryAfter | None]) -> T:
        """Call ``call``; on an exception that ``classify`` calls transient, wait and try again.

        Non-transient exceptions, hints longer than ``max_hint`` and the last attempt's exception
        propagate unchanged, so the adapter maps them to a ``PlatformError`` in one place.
        """
        attempt = 0
        while True:
            try:
                return call()
            except Exception as exc:
                verdict = classify(exc)
                attempt += 1
                if verdict is None or attempt >= self.max_attempts:
                    raise
                delay = self.backoff(attempt - 1) if verdict.delay is None else verdict.delay
                if delay > self.max_hint:
                    raise
                log.info("transient platform error (%s), retry %d in %.1f s", type(exc).__name__, attempt, delay)
                self.waits.append(delay)
                self.sleep(delay)
