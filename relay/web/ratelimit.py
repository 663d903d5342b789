"""Per-source token buckets (per process), from a mapping's ``inbound.rate_limit``."""
from __future__ import annotations

import math
import threading
import time
from typing import Callable

from relay.errors import RateLimited
from relay.mapping.model import RateLimit


class TokenBucket:
    def __init__(self, limit: RateLimit, now: float) -> None:
        self.limit = limit
        self.tokens = float(limit.burst)
        self.updated = now

    def take(self, now: float) -> float:
        """Take one token; returns 0 on success, else seconds until one is available."""
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(self.limit.burst), self.tokens + elapsed * self.limit.per_second)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        if self.limit.per_second <= 0:
            return 60.0
        return (1.0 - self.tokens) / self.limit.per_second


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def check(self, source: str, limit: RateLimit | None) -> None:
        if limit is None:
            return
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(source)
            if bucket is None or bucket.limit != limit:
                bucket = self._buckets[source] = TokenBucket(limit, now)
            wait_s = bucket.take(now)
        if wait_s > 0:
            raise RateLimited(f"source {source} is over its rate limit of {limit.per_second:g}/s",
                              retry_after=max(1, math.ceil(wait_s)), source=source)
