"""Inbound rate limits: per source, shared between a instance's workers, 429 with Retry-After."""
from __future__ import annotations

import pytest

from relay.errors import RateLimited
from relay.intake.ratelimit import RateLimiter, default_limit, worker_share
from relay.mapping.model import RateLimit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refused_with_retry_after():
    clock = Clock()
    limiter = RateLimiter(clock)
    limit = RateLimit(per_second=0.5, burst=2)
    limiter.check("acme", limit)
    limiter.check("acme", limit)
    with pytest.raises(RateLimited) as refused:
        limiter.check("acme", limit)
    assert refused.value.retry_after == 2
    assert refused.value.to_dict()["error"]["code"] == "rate_limited"
    clock.now += 2
    limiter.check("acme", limit)


def test_sources_have_their_own_buckets():
    limiter = RateLimiter(Clock())
    limit = RateLimit(per_second=1, burst=1)
    limiter.check("acme", limit)
    limiter.check("beta", limit)
    with pytest.raises(RateLimited):
        limiter.check("acme", limit)


def test_default_limit_applies_to_sources_without_one():
    limiter = RateLimiter(Clock(), default=default_limit(1.0))
    limiter.check("acme", None)
    with pytest.raises(RateLimited):
        limiter.check("acme", None)


def test_own_limit_wins_over_the_default():
    limiter = RateLimiter(Clock(), default=RateLimit(per_second=1, burst=1))
    own = RateLimit(per_second=10, burst=3)
    for _ in range(3):
        limiter.check("acme", own)


@pytest.mark.parametrize("per_second", [0.0, -1.0, float("nan")])
def test_default_limit_off(per_second: float):
    assert default_limit(per_second) is None


def test_default_limit_burst_is_one_second():
    assert default_limit(2.5) == RateLimit(per_second=2.5, burst=3)


def test_workers_share_the_limit():
    assert worker_share(RateLimit(per_second=10, burst=8), 4) == RateLimit(per_second=2.5, burst=2)
    assert worker_share(RateLimit(per_second=1, burst=1), 4) == RateLimit(per_second=0.25, burst=1)
    limiter = RateLimiter(Clock())
    limiter.share_between(2)
    limit = RateLimit(per_second=2, burst=2)
    limiter.check("acme", limit)
    with pytest.raises(RateLimited) as refused:
        limiter.check("acme", limit)
    assert refused.value.retry_after == 1


def test_http_answer_is_429_with_retry_after(make_app, acme):
    from dataclasses import replace

    limited = replace(acme, inbound=replace(acme.inbound, rate_limit=RateLimit(per_second=0.2, burst=1)))
    client = make_app(limited).test_client()
    assert client.post("/hooks/acme", json={"phone": "5125550147"}).status_code < 300
    answer = client.post("/hooks/acme", json={"phone": "5125550147"})
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "5"
    assert answer.get_json()["error"] == {"code": "rate_limited", "source": "acme", "retry_after": 5,
                                          "message": "source acme is over its rate limit of 0.2/s"}
