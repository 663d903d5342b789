from __future__ import annotations

import threading

import pytest

from relay.delivery.ratelimit import TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_zero_rate_is_unlimited() -> None:
    bucket = TokenBucket(0)
    assert all(bucket.reserve() == 0.0 for _ in range(1000))


def test_reservations_space_out_beyond_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2.0, burst=1, clock=clock)
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == pytest.approx(0.5)
    assert bucket.reserve() == pytest.approx(1.0)


def test_tokens_refill_with_time_up_to_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10.0, burst=2, clock=clock)
    assert [bucket.reserve() for _ in range(2)] == [0.0, 0.0]
    clock.now += 60  # a long pause saves no more than the burst
    assert [bucket.reserve() for _ in range(2)] == [0.0, 0.0]
    assert bucket.reserve() == pytest.approx(0.1)


def test_acquire_gives_up_when_cancelled() -> None:
    clock = FakeClock()
    bucket = TokenBucket(0.001, clock=clock)
    cancel = threading.Event()
    assert bucket.acquire(cancel) is True
    cancel.set()
    assert bucket.acquire(cancel) is False


def test_negative_rate_is_refused() -> None:
    with pytest.raises(ValueError):
        TokenBucket(-1)
