"""A client-side rate limiter: token buckets for requests and tokens per second.

One limiter is shared by every caller of a router (threads of a Send fan-out, batch calls), so the
configured rate holds for the whole process rather than per caller. It works by reservation: a
caller takes its share at once, possibly driving a bucket negative, and then sleeps until that debt
is paid off. Later callers queue behind it, so the order is fair and nobody spins.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class _Bucket:
    """One token bucket; ``rate`` per second refills up to ``capacity``."""

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.level = capacity
        self.stamp = now

    def refill(self, now: float) -> None:
        if now > self.stamp:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
            self.stamp = now

    def take(self, amount: float) -> float:
        """Take ``amount`` (going into debt if needed); the seconds until the debt is paid."""
        self.level -= amount
        return max(0.0, -self.level / self.rate)


class RateLimiter:
    """Requests per second and tokens per second, shared across threads.

    A rate of 0 or less switches that dimension off. ``burst_seconds`` sets how much unused rate can
    be saved up (one second by default, so a quiet limiter lets ``rate`` calls through at once).
    ``clock`` and ``sleep`` are injectable so tests can check the rate without waiting.
    """

    def __init__(self, requests_per_second: float, tokens_per_second: float, *, burst_seconds: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        now = clock()
        self._requests = (_Bucket(requests_per_second, max(1.0, requests_per_second * burst_seconds), now)
                          if requests_per_second > 0 else None)
        self._tokens = (_Bucket(tokens_per_second, max(1.0, tokens_per_second * burst_seconds), now)
                        if tokens_per_second > 0 else None)

    def reserve(self, tokens: int = 0) -> float:
        """Book one request and ``tokens`` tokens; the seconds the caller must wait before sending."""
        with self._lock:
            now = self._clock()
            wait = 0.0
            if self._requests is not None:
                self._requests.refill(now)
                wait = max(wait, self._requests.take(1))
            if self._tokens is not None and tokens > 0:
                self._tokens.refill(now)
                wait = max(wait, self._tokens.take(tokens))
            return wait

    def acquire(self, tokens: int = 0) -> float:
        """Block until one request of about ``tokens`` tokens may be sent; the seconds waited."""
        wait = self.reserve(tokens)
        if wait > 0:
            self._sleep(wait)
        return wait

    def settle(self, estimated: int, actual: int) -> None:
        """Correct the token bucket once the real usage of a call is known.

        Calls reserve an estimate up front (the response length is unknown); the difference is
        charged, or refunded, afterwards so the long-run token rate matches what the server counts.
        """
        if self._tokens is None or actual == estimated:
            return
        with self._lock:
            self._tokens.refill(self._clock())
            self._tokens.level = min(self._tokens.capacity, self._tokens.level - (actual - estimated))
