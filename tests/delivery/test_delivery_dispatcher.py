from __future__ import annotations

import logging
import threading
from typing import Callable

import pytest

from relay.delivery.client import TrackdriveClient
from relay.delivery.dispatcher import Dispatcher
from relay.delivery.outcome import Delivered, Failed, RetryLater
from relay.delivery.ratelimit import TokenBucket
from relay.delivery.retry import RetryPolicy
from relay.sandbox.server import RunningSandbox
from tests.support.handover import hand_over

from delivery_fakes import (
    TOKEN,
    TOKEN_ENV,
    CountingLimiter,
    FakeStore,
    StubClient,
    create_call,
    make_lead,
    received,
    set_behaviour,
)

NOW = 1_000.0
POLICY = RetryPolicy(delays=(5, 30), jitter=0.0)
CALL = create_call().to_dict()


def dispatcher_for(store: FakeStore, client, **kwargs) -> Dispatcher:
    options = {"owner": "worker-1", "concurrency": 4, "clock": lambda: NOW, **kwargs}
    return Dispatcher(store, client, POLICY, **options)


def eventually(condition: Callable[[], bool], limit_s: float = 10.0) -> bool:
    """Wait for a background effect; only whether it happened is asserted, never how fast."""
    done = threading.Event()
    for _ in range(int(limit_s / 0.01)):
        if condition():
            return True
        done.wait(0.01)
    return condition()


@pytest.fixture
def live_client(sandbox: RunningSandbox) -> TrackdriveClient:
    return TrackdriveClient(sandbox.url, env={TOKEN_ENV: TOKEN})


@pytest.mark.parametrize("evented", [False, True], ids=["threads", "evented"])
def test_a_handed_over_lead_is_delivered_and_settled(sandbox: RunningSandbox, live_client: TrackdriveClient,
                                                     evented: bool) -> None:
    store = FakeStore(make_lead("L1", CALL))
    dispatcher = dispatcher_for(store, live_client, evented=evented)
    outcome = hand_over(dispatcher, store, "L1").result(timeout=30)
    assert isinstance(outcome, Delivered)
    assert store.get("L1").status == "delivered"
    [settlement] = store.settlements["L1"]
    assert (settlement.result, settlement.response_status) == ("delivered", 201)
    assert received(sandbox)[0]["lead_id"] == "L1"
    dispatcher.stop(5)


def test_retry_later_schedules_the_next_attempt() -> None:
    store = FakeStore(make_lead("L1", CALL))
    dispatcher = dispatcher_for(store, StubClient(RetryLater("server_error", 503, "busy", None)))
    assert isinstance(hand_over(dispatcher, store, "L1").result(timeout=30), RetryLater)
    lead = store.get("L1")
    assert (lead.status, lead.next_attempt_at, lead.attempts) == ("retry", NOW + 5, 1)
    assert store.settlements["L1"][0].reason == "server_error"
    dispatcher.stop(5)


def test_retry_after_is_honoured() -> None:
    store = FakeStore(make_lead("L1", CALL))
    dispatcher = dispatcher_for(store, StubClient(RetryLater("rate_limited", 429, "", 20.0)))
    hand_over(dispatcher, store, "L1").result(timeout=30)
    assert store.get("L1").next_attempt_at == NOW + 20
    dispatcher.stop(5)


def test_retry_later_after_the_last_delay_is_dead() -> None:
    store = FakeStore(make_lead("L1", CALL, attempts=len(POLICY.delays)))
    dispatcher = dispatcher_for(store, StubClient(RetryLater("timeout", None, "", None)))
    hand_over(dispatcher, store, "L1").result(timeout=30)
    lead = store.get("L1")
    assert lead.status == "dead" and lead.next_attempt_at is None
    assert store.settlements["L1"][0].reason.startswith("retries_exhausted")
    dispatcher.stop(5)


def test_failed_is_dead_at_once() -> None:
    store = FakeStore(make_lead("L1", CALL))
    dispatcher = dispatcher_for(store, StubClient(Failed("unauthorized", 401, "no")))
    hand_over(dispatcher, store, "L1").result(timeout=30)
    assert store.get("L1").status == "dead"
    assert store.settlements["L1"][0].reason == "unauthorized"
    dispatcher.stop(5)


@pytest.mark.parametrize("evented", [False, True], ids=["threads", "evented"])
def test_a_stored_call_the_wire_cannot_encode_is_dead_either_way(sandbox: RunningSandbox,
                                                                  live_client: TrackdriveClient,
                                                                  evented: bool) -> None:
    # A lone surrogate in the path: the evented way once left such a lead leased, unsettled and
    # uncounted, to be claimed again at every lease expiry.
    call = {**CALL, "path": CALL["path"] + "/\ud800"}
    store = FakeStore(make_lead("L1", call))
    dispatcher = dispatcher_for(store, live_client, evented=evented)
    outcome = hand_over(dispatcher, store, "L1").result(timeout=30)
    assert isinstance(outcome, Failed) and outcome.reason == "invalid_url"
    assert (store.get("L1").status, store.get("L1").lease_owner) == ("dead", None)
    assert received(sandbox) == []
    dispatcher.stop(5)


def test_a_lead_the_sender_refuses_is_given_back_unsent(live_client: TrackdriveClient,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    store = FakeStore(make_lead("L1", CALL), make_lead("L2", CALL))
    dispatcher = dispatcher_for(store, live_client, evented=True)
    hand_over(dispatcher, store, "L1").result(timeout=30)  # starts the sender
    assert dispatcher._sender is not None
    dispatcher._sender.stop(5)  # as if its loop had ended just before this hand-over
    assert hand_over(dispatcher, store, "L2").result(timeout=30) is None
    assert eventually(lambda: store.get("L2").lease_owner is None)
    assert (store.get("L2").status, store.get("L2").attempts) == ("queued", 0)
    assert "delivery of a lead failed unexpectedly" in caplog.text
    dispatcher.stop(5)


@pytest.mark.parametrize("bad_call", [None, {}, {"action": "create_lead"}, "not a dict", ["x"]])
def test_bad_rows_are_dead_and_the_next_lead_still_goes(bad_call: object) -> None:
    store = FakeStore(make_lead("BAD", bad_call), make_lead("GOOD", CALL))  # type: ignore[arg-type]
    client = StubClient(Delivered(201, ""))
    dispatcher = dispatcher_for(store, client)
    dispatcher.poll_once()
    assert eventually(lambda: store.get("GOOD").status == "delivered")
    assert eventually(lambda: store.get("BAD").status == "dead")
    assert store.settlements["BAD"][0].reason == "bad_row"
    assert client.sent == ["GOOD"]
    dispatcher.stop(5)


def test_the_poller_survives_store_errors() -> None:
    store = FakeStore(make_lead("L1", CALL))
    store.claim_due_errors = 3
    dispatcher = dispatcher_for(store, StubClient(Delivered(201, "")), poll_interval_s=0.01)
    dispatcher.start()
    assert eventually(lambda: store.get("L1").status == "delivered")
    assert store.claim_due_errors == 0
    dispatcher.stop(5)


def test_a_failing_settle_is_retried() -> None:
    store = FakeStore(make_lead("L1", CALL))
    store.settle_errors = 1
    dispatcher = dispatcher_for(store, StubClient(Delivered(201, "")))
    hand_over(dispatcher, store, "L1").result(timeout=30)
    assert store.get("L1").status == "delivered"
    dispatcher.stop(5)


def test_every_send_passes_the_rate_limiter() -> None:
    store = FakeStore(*(make_lead(f"L{n}", CALL) for n in range(3)))
    limiter = CountingLimiter()
    dispatcher = dispatcher_for(store, StubClient(Delivered(201, "")), limiter=limiter)
    for n in range(3):
        hand_over(dispatcher, store, f"L{n}").result(timeout=30)
    assert limiter.acquired == 3
    dispatcher.stop(5)


def test_a_full_pool_refuses_a_reservation_and_the_poller_takes_over() -> None:
    gate = threading.Event()
    client = StubClient(Delivered(201, ""), gate=gate)
    store = FakeStore(make_lead("L1", CALL), make_lead("L2", CALL))
    dispatcher = dispatcher_for(store, client, concurrency=1)
    first = hand_over(dispatcher, store, "L1")
    assert client.started.wait(30)
    assert not dispatcher.reserve(), "the only slot is busy: the new lead waits in the outbox"
    assert store.get("L2").lease_owner is None
    gate.set()
    assert isinstance(first.result(timeout=30), Delivered)
    dispatcher.poll_once()
    assert eventually(lambda: store.get("L2").status == "delivered")
    dispatcher.stop(5)


def test_stop_waits_for_sends_in_flight() -> None:
    gate = threading.Event()
    client = StubClient(Delivered(201, ""), gate=gate)
    store = FakeStore(make_lead("L1", CALL))
    dispatcher = dispatcher_for(store, client)
    future = hand_over(dispatcher, store, "L1")
    assert client.started.wait(30)
    stopper = threading.Thread(target=dispatcher.stop, args=(30,))
    stopper.start()
    gate.set()
    stopper.join(30)
    assert isinstance(future.result(timeout=30), Delivered)
    assert store.get("L1").status == "delivered"


def test_stop_releases_leads_claimed_but_not_sent() -> None:
    store = FakeStore(make_lead("L1", CALL), make_lead("L2", CALL))
    client = StubClient(Delivered(201, ""))
    # One token now, the next in ~1000 s: the second lead is claimed and waits for it.
    dispatcher = dispatcher_for(store, client, limiter=TokenBucket(0.001))
    assert dispatcher.poll_once() == 2
    assert eventually(lambda: len(client.sent) == 1)
    dispatcher.stop(30)
    sent, waiting = client.sent[0], ({"L1", "L2"} - set(client.sent)).pop()
    assert store.get(sent).status == "delivered"
    assert store.get(waiting).status == "queued"
    assert store.get(waiting).lease_owner is None
    assert store.released == [waiting]


def test_no_reservation_after_stop_leaves_the_lead_queued() -> None:
    store = FakeStore(make_lead("L1", CALL))
    dispatcher = dispatcher_for(store, StubClient(Delivered(201, "")))
    dispatcher.stop(5)
    assert not dispatcher.reserve()
    assert store.get("L1").status == "queued"


def test_attempts_are_logged_without_secrets_or_phones(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="relay.delivery")
    store = FakeStore(make_lead("L1", CALL, source="acme"))
    dispatcher = dispatcher_for(store, StubClient(Delivered(201, '{"caller_id":"+15551234567"}')))
    hand_over(dispatcher, store, "L1").result(timeout=30)
    dispatcher.stop(5)
    [record] = [r for r in caplog.records if getattr(r, "lead_id", None) == "L1"]
    assert (record.source, record.result, record.status, record.attempt) == ("acme", "delivered", 201, 1)
    assert record.latency_ms >= 0
    assert "+15551234567" not in caplog.text and TOKEN not in caplog.text


@pytest.mark.parametrize("evented", [False, True], ids=["threads", "evented"])
def test_delivery_with_faults_ends_with_every_lead_accepted_once(sandbox: RunningSandbox,
                                                               live_client: TrackdriveClient,
                                                               evented: bool) -> None:
    set_behaviour(sandbox, fail_rate=0.3, rate_429=0.2, retry_after=0, drop_rate=0.1, seed=3)
    store = FakeStore(*(make_lead(f"L{n}", CALL) for n in range(40)))
    policy = RetryPolicy(delays=(0,) * 50, jitter=0.0)
    dispatcher = Dispatcher(store, live_client, policy, owner="w", concurrency=8,
                            poll_interval_s=0.01, evented=evented)
    dispatcher.start()
    assert eventually(lambda: all(lead.status == "delivered" for lead in store.rows.values()), 60)
    dispatcher.stop(10)
    accepted = [r["lead_id"] for r in received(sandbox) if r["answer"]["fate"] == "accepted"]
    assert sorted(accepted) == sorted(store.rows)


def test_a_stopped_dispatcher_can_start_again() -> None:
    store = FakeStore(make_lead("L1", CALL))
    dispatcher = dispatcher_for(store, StubClient(Delivered(201, "")), poll_interval_s=0.01)
    dispatcher.start()
    dispatcher.stop(5)
    store.add(make_lead("L2", CALL))
    dispatcher.start()
    assert eventually(lambda: store.get("L2").status == "delivered")
    assert isinstance(hand_over(dispatcher, store, "L1").result(timeout=30), (Delivered, type(None)))
    dispatcher.stop(5)
    assert store.get("L1").status == "delivered"


def test_a_lead_stored_leased_is_delivered_in_its_reserved_slot_without_a_claim() -> None:
    from dataclasses import replace

    lead = replace(make_lead("L1", CALL), lease_owner="worker-1", lease_until=NOW + 60)
    store = FakeStore(lead)
    client = StubClient(Delivered(201, ""))
    dispatcher = dispatcher_for(store, client, concurrency=1)
    assert dispatcher.reserve()
    assert not dispatcher.reserve(), "the only slot is held for the lead being stored"
    assert isinstance(dispatcher.deliver_leased(lead).result(timeout=30), Delivered)
    assert store.get("L1").status == "delivered"
    assert eventually(dispatcher.reserve), "the slot comes back once the lead is settled"
    dispatcher.unreserve()
    dispatcher.stop(5)
