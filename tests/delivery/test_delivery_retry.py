from __future__ import annotations

import pytest

from relay.delivery.retry import DEFAULT_DELAYS, RetryPolicy


def test_defaults() -> None:
    policy = RetryPolicy()
    assert policy.delays == (1, 2, 5, 10, 20, 40, 300, 1800, 10800, 86400)
    assert policy.jitter == 0.2
    assert policy.delays == DEFAULT_DELAYS


def test_delay_follows_the_attempt_number_without_jitter() -> None:
    policy = RetryPolicy(jitter=0.0)
    assert [policy.next_delay(n, None) for n in range(1, 11)] == list(DEFAULT_DELAYS)


@pytest.mark.parametrize("roll, expected", [(0.0, 8.0), (0.5, 10.0), (1.0, 12.0)])
def test_jitter_bounds(roll: float, expected: float) -> None:
    policy = RetryPolicy()
    assert policy.next_delay(4, None, rand=lambda: roll) == pytest.approx(expected)


def test_jittered_delays_stay_within_bounds() -> None:
    policy = RetryPolicy()
    for attempt, base in enumerate(DEFAULT_DELAYS, start=1):
        for _ in range(50):
            delay = policy.next_delay(attempt, None)
            assert base * 0.8 <= delay <= base * 1.2


def test_dead_after_the_last_delay() -> None:
    policy = RetryPolicy()
    assert policy.next_delay(len(DEFAULT_DELAYS), None) is not None
    assert policy.next_delay(len(DEFAULT_DELAYS) + 1, None) is None
    assert policy.next_delay(len(DEFAULT_DELAYS) + 1, 10.0) is None
    assert RetryPolicy(delays=()).next_delay(1, None) is None


def test_retry_after_is_a_floor() -> None:
    policy = RetryPolicy(jitter=0.0)
    assert policy.next_delay(1, 90.0) == 90.0
    assert policy.next_delay(7, 1.0) == 300.0


def test_retry_after_is_capped_at_the_longest_delay() -> None:
    policy = RetryPolicy(delays=(5, 60), jitter=0.0)
    assert policy.next_delay(1, 10_000.0) == 60.0


def test_policy_is_an_immutable_value() -> None:
    policy = RetryPolicy()
    with pytest.raises(AttributeError):
        policy.jitter = 0.5  # type: ignore[misc]
    assert RetryPolicy((1, 2), 0.1) == RetryPolicy((1, 2), 0.1)


@pytest.mark.parametrize("kwargs", [{"delays": (-1,)}, {"jitter": 1.5}, {"jitter": -0.1}])
def test_invalid_policies_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


def test_seven_tries_fit_in_two_minutes_even_with_the_most_jitter() -> None:
    """Speed to call: with 30% random failures, 0.3 ** 7 of leads (0.02%) need more than this."""
    policy = RetryPolicy()
    assert sum(policy.next_delay(n, None, rand=lambda: 1.0) or 0 for n in range(1, 7)) < 100
