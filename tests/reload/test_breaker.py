"""The delivery circuit breaker: alone, and inside the dispatcher over a real SQLite outbox."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import pytest

from relay.delivery.breaker import CLOSED, HALF_OPEN, OPEN, Breakers, BreakerSettings, base_url_key, verdict
from relay.delivery.dispatcher import Dispatcher
from relay.delivery.outcome import Delivered, Failed, Outcome, RetryLater
from relay.delivery.retry import RetryPolicy
from relay.mapping.model import TrackdriveCall
from relay.store import open_store
from relay.store.base import Received, Store
from tests.support.handover import hand_over

BASE = "http://td.example"
DOWN = RetryLater("connection_error", None, "connection refused")
ERROR_5XX = RetryLater("server_error", 503, "")
OK = Delivered(200, '{"success": true}')


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def breakers(clock: Clock, failures: int = 3, cooldown_s: float = 5.0, cap_s: float = 60.0) -> Breakers:
    return Breakers(BreakerSettings(failures=failures, cooldown_s=cooldown_s, max_cooldown_s=cap_s), clock)


def test_opens_after_consecutive_transient_failures(clock: Clock):
    board = breakers(clock)
    for _ in range(2):
        assert board.admit(BASE) is None
        board.record(BASE, DOWN)
    assert board.state_of(BASE) == CLOSED
    board.record(BASE, ERROR_5XX)
    assert board.state_of(BASE) == OPEN
    assert board.admit(BASE) == clock.now + 5.0


def test_a_success_resets_the_count(clock: Clock):
    board = breakers(clock)
    for outcome in (DOWN, DOWN, OK, DOWN, DOWN):
        board.record(BASE, outcome)
    assert board.state_of(BASE) == CLOSED


def test_half_open_lets_one_probe_through(clock: Clock):
    board = breakers(clock)
    for _ in range(3):
        board.record(BASE, DOWN)
    clock.now += 5.0
    assert board.admit(BASE) is None  # the probe
    assert board.state_of(BASE) == HALF_OPEN
    assert board.admit(BASE) == clock.now + 5.0  # everyone else waits for it
    board.record(BASE, OK)
    assert board.state_of(BASE) == CLOSED
    assert board.admit(BASE) is None


def test_failed_probes_back_off_exponentially_up_to_the_cap(clock: Clock):
    board = breakers(clock, cap_s=12.0)
    for _ in range(3):
        board.record(BASE, DOWN)
    waits = []
    for _ in range(4):
        reopen_at = board.admit(BASE)
        waits.append(reopen_at - clock.now)
        clock.now = reopen_at
        assert board.admit(BASE) is None
        board.record(BASE, DOWN)
    assert waits == [5.0, 10.0, 12.0, 12.0]


def test_abandoned_probe_does_not_wedge_the_breaker(clock: Clock):
    board = breakers(clock, cap_s=20.0)
    for _ in range(3):
        board.record(BASE, DOWN)
    clock.now += 5.0
    assert board.admit(BASE) is None  # a probe that never reports back
    clock.now += 20.0
    assert board.admit(BASE) is None


def test_base_urls_are_separate(clock: Clock):
    board = breakers(clock)
    for _ in range(3):
        board.record(BASE, DOWN)
    assert board.admit("http://other.example") is None


@pytest.mark.parametrize("outcome, answered", [
    (OK, True), (Failed("rejected", 400, ""), True), (RetryLater("rate_limited", 429, ""), True),
    (DOWN, False), (ERROR_5XX, False), (RetryLater("timeout", None, ""), False),
    (RetryLater("missing_secret", None, ""), None), (Failed("bad_call", None, ""), None),
])
def test_verdicts(outcome: Outcome, answered: bool | None):
    assert verdict(outcome) is answered


def test_neutral_outcomes_change_nothing(clock: Clock):
    board = breakers(clock, failures=1)
    board.record(BASE, RetryLater("missing_secret", None, ""))
    assert board.state_of(BASE) == CLOSED


def test_disabled_breaker_always_admits(clock: Clock):
    board = breakers(clock, failures=0)
    for _ in range(10):
        board.record(BASE, DOWN)
    assert board.admit(BASE) is None


def test_base_url_key_is_scheme_and_host_only():
    call = TrackdriveCall(action="create_lead", method="POST", path="/api/v1/leads", query={}, body={})
    assert base_url_key(call, {}, "https://User:pw@TrackDrive.com/x") == "https://trackdrive.com"
    via_env = TrackdriveCall(action="create_lead", method="POST", path="/p", query={}, body={},
                             base_url="${TD_URL}")
    assert base_url_key(via_env, {"TD_URL": "http://10.0.0.1:8080/"}, BASE) == "http://10.0.0.1:8080"


def test_state_changes_are_logged(clock: Clock, caplog: pytest.LogCaptureFixture):
    board = breakers(clock, failures=1)
    with caplog.at_level(logging.INFO, logger="relay.delivery"):
        board.record(BASE, DOWN)
    change = next(r for r in caplog.records if getattr(r, "event", "") == "breaker")
    assert (change.state, change.previous, change.base_url) == (OPEN, CLOSED, BASE)


# --- inside the dispatcher ---

class ScriptedClient:
    """Answers every send with the current outcome; counts the sends."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.sent = 0
        self.env: dict[str, str] = {}
        self.default_base_url = BASE

    def send(self, call: TrackdriveCall, *, lead_id: str, timeout_s: float | None = None) -> Outcome:
        self.sent += 1
        return self.outcome


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Store]:
    store = open_store(f"sqlite:///{tmp_path / 'relay.db'}", synchronous="NORMAL")
    yield store
    store.close()


def queue_lead(store: Store, received_at: float) -> str:
    call = TrackdriveCall(action="create_lead", method="POST", path="/api/v1/leads", query={},
                          body={"caller_id": "+15125550147"})
    lead, _ = store.insert(Received(source="acme", received_at=received_at, method="POST",
                                    content_type="application/json", query="", headers={}, body=b"{}",
                                    client_addr="127.0.0.1", status="queued", call=call.to_dict()))
    return lead.id


def test_open_breaker_defers_leads_without_spending_attempts(outbox: Store, clock: Clock):
    client = ScriptedClient(DOWN)
    dispatcher = Dispatcher(outbox, client, RetryPolicy((60, 60, 60), jitter=0.0), owner="w1",
                            clock=clock, breakers=breakers(clock, failures=2))
    leads = [queue_lead(outbox, clock.now) for _ in range(4)]
    try:
        for lead_id in leads[:2]:
            assert hand_over(dispatcher, outbox, lead_id).result(timeout=30) == DOWN
        assert hand_over(dispatcher, outbox, leads[2]).result(timeout=30) is None  # breaker open: not sent
        assert client.sent == 2
        waiting = outbox.get(leads[2])
        assert (waiting.status, waiting.attempts, waiting.lease_owner) == ("queued", 0, None)
        assert waiting.next_attempt_at == clock.now + 5.0
        assert outbox.attempts(leads[2]) == []

        clock.now += 5.0
        client.outcome = OK
        assert hand_over(dispatcher, outbox, leads[2]).result(timeout=30) == OK  # the probe closes it
        assert hand_over(dispatcher, outbox, leads[3]).result(timeout=30) == OK
        assert outbox.get(leads[3]).status == "delivered"
        assert outbox.get(leads[0]).attempts == 1
    finally:
        dispatcher.stop(5.0)


def test_sqlite_defer_needs_the_lease(outbox: Store, clock: Clock):
    lead_id = queue_lead(outbox, clock.now)
    assert not outbox.defer(lead_id, "w1", clock.now + 30, clock.now)
    assert outbox.claim(lead_id, "w1", 60, clock.now) is not None
    assert not outbox.defer(lead_id, "w2", clock.now + 30, clock.now)
    assert outbox.defer(lead_id, "w1", clock.now + 30, clock.now)
    assert outbox.claim(lead_id, "w2", 60, clock.now) is None
    assert outbox.claim(lead_id, "w2", 60, clock.now + 30) is not None
    assert outbox.get(lead_id).attempts == 0
