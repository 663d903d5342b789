"""Per-source token buckets for inbound requests.

A source's limit comes from its mapping's ``inbound.rate_limit``, else from
``RELAY_RATE_LIMIT`` (requests per second per source; 0 or unset = no limit).

The buckets live in each process. So that the limit holds for a whole relay
instance rather than for each gunicorn worker, every worker takes an equal
share: ``per_second / workers``, and ``burst / workers`` (at least 1). The
kernel spreads connections over the workers only roughly evenly, so an
instance admits close to, not exactly, the configured rate; instances behind a
load balancer each admit their own share.
"""
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


def default_limit(per_second: float) -> RateLimit | None:
    """RELAY_RATE_LIMIT as a limit (burst: one second's worth), or None when off."""
    if per_second <= 0 or math.isnan(per_second):
        return None
    return RateLimit(per_second=per_second, burst=max(1, math.ceil(per_second)))


def worker_share(limit: RateLimit, workers: int) -> RateLimit:
    if workers <= 1:
        return limit
    return RateLimit(per_second=limit.per_second / workers, burst=max(1, limit.burst // workers))


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic, *,
                 default: RateLimit | None = None, workers: int = 1) -> None:
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()
        self.default = default
        self.workers = max(1, workers)

    def share_between(self, workers: int) -> None:
        """Split every limit between ``workers`` processes of one instance."""
        with self._lock:
            self.workers = max(1, workers)
            self._buckets.clear()

    def check(self, source: str, limit: RateLimit | None) -> None:
        """Raise RateLimited (429 with Retry-After) when ``source`` is over its limit."""
        limit = limit or self.default
        if limit is None:
            return
        with self._lock:
            local = worker_share(limit, self.workers)
            now = self._clock()
            bucket = self._buckets.get(source)
            if bucket is None or bucket.limit != local:
                bucket = self._buckets[source] = TokenBucket(local, now)
            wait_s = bucket.take(now)
        if wait_s > 0:
            raise RateLimited(f"source {source} is over its rate limit of {limit.per_second:g}/s",
                              retry_after=max(1, math.ceil(wait_s)), source=source)
