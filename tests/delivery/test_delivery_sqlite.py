"""The dispatcher through the real SQLite outbox and the real sandbox."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from relay.delivery.breaker import Breakers, BreakerSettings
from relay.delivery.client import TrackdriveClient
from relay.delivery.dispatcher import Dispatcher
from relay.delivery.ratelimit import TokenBucket
from relay.delivery.retry import RetryPolicy
from relay.errors import StoreUnavailable
from relay.sandbox.server import RunningSandbox
from relay.store import open_store
from relay.store.base import Received, Store
from tests.support.handover import hand_over

from delivery_fakes import TOKEN, TOKEN_ENV, create_call, received, set_behaviour


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'relay.db'}")
    yield opened
    opened.close()


def insert(store: Store, call: dict[str, Any] | None) -> str:
    lead, _ = store.insert(Received(source="acme", received_at=time.time(), method="POST",
                                    content_type="application/json", query="", headers={},
                                    body=b'{"phone": "5551234567"}', client_addr="127.0.0.1",
                                    status="queued", call=call, mapping_version="v1"))
    return lead.id


def eventually(condition: Callable[[], bool], limit_s: float = 30.0) -> bool:
    pause = threading.Event()
    for _ in range(int(limit_s / 0.02)):
        if condition():
            return True
        pause.wait(0.02)
    return condition()


# Every test runs both ways a dispatcher sends: a thread per call, and the evented sender.
pytestmark = pytest.mark.parametrize("evented", [False, True], ids=["threads", "evented"])


def dispatcher(store: Store, sandbox: RunningSandbox, **kwargs: Any) -> Dispatcher:
    client = TrackdriveClient(sandbox.url, env={TOKEN_ENV: TOKEN})
    policy = kwargs.pop("policy", RetryPolicy(delays=(0,) * 30, jitter=0.0))
    options = {"owner": "w1", "concurrency": 8, "poll_interval_s": 0.02, **kwargs}
    return Dispatcher(store, client, policy, **options)


def test_a_handed_over_lead_is_delivered(store: Store, sandbox: RunningSandbox, evented: bool) -> None:
    lead_id = insert(store, create_call().to_dict())
    worker = dispatcher(store, sandbox, evented=evented)
    assert hand_over(worker, store, lead_id).result(timeout=30).status == 201
    worker.stop(5)
    lead = store.get(lead_id)
    assert (lead.status, lead.attempts, lead.response_status) == ("delivered", 1, 201)
    assert [a.result for a in store.attempts(lead_id)] == ["delivered"]
    assert received(sandbox)[0]["lead_id"] == lead_id


def test_faults_and_bad_rows_end_settled(store: Store, sandbox: RunningSandbox, evented: bool) -> None:
    set_behaviour(sandbox, fail_rate=0.3, rate_429=0.1, retry_after=0, drop_rate=0.1, seed=5)
    good = [insert(store, create_call().to_dict()) for _ in range(30)]
    bad = insert(store, {"action": "create_lead"})
    worker = dispatcher(store, sandbox, evented=evented)
    worker.start()
    assert eventually(lambda: all(store.get(i).status == "delivered" for i in good))
    assert eventually(lambda: store.get(bad).status == "dead")
    worker.stop(10)
    accepted = sorted(r["lead_id"] for r in received(sandbox) if r["answer"]["fate"] == "accepted")
    assert accepted == sorted(good)
    assert any(a.result == "retry" for i in good for a in store.attempts(i))
    assert store.attempts(bad)[0].reason == "bad_row"


def test_stop_releases_claimed_leads_for_the_next_start(store: Store, sandbox: RunningSandbox, evented: bool) -> None:
    ids = [insert(store, create_call().to_dict()) for _ in range(3)]
    worker = dispatcher(store, sandbox, evented=evented, limiter=TokenBucket(0.001))  # one send, then a long wait
    assert worker.poll_once() == 3
    assert eventually(lambda: sum(store.get(i).status == "delivered" for i in ids) == 1)
    worker.stop(10)
    waiting = [store.get(i) for i in ids if store.get(i).status != "delivered"]
    assert [(lead.status, lead.lease_owner) for lead in waiting] == [("queued", None)] * 2
    successor = dispatcher(store, sandbox, evented=evented, owner="w2")
    assert successor.poll_once() == 2
    assert eventually(lambda: all(store.get(i).status == "delivered" for i in ids))
    successor.stop(5)


class OutageStore:
    """The real SQLite outbox, unreachable for ``outage_s`` from the first settle on."""

    def __init__(self, inner: Store, outage_s: float) -> None:
        self.inner = inner
        self.outage_s = outage_s
        self.down_until: float | None = None
        self.failed_settles = 0

    def _down(self) -> bool:
        if self.down_until is None:
            self.down_until = time.monotonic() + self.outage_s
        return time.monotonic() < self.down_until

    def settle(self, *args: Any, **kwargs: Any) -> bool:
        if self._down():
            self.failed_settles += 1
            raise StoreUnavailable("the outbox is unreachable (test outage)")
        return self.inner.settle(*args, **kwargs)

    def settle_many(self, *args: Any, **kwargs: Any) -> list[bool]:
        if self._down():
            self.failed_settles += 1
            raise StoreUnavailable("the outbox is unreachable (test outage)")
        return self.inner.settle_many(*args, **kwargs)

    def claim_due(self, *args: Any, **kwargs: Any) -> Any:
        if self.down_until is not None and time.monotonic() < self.down_until:
            raise StoreUnavailable("the outbox is unreachable (test outage)")
        return self.inner.claim_due(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_ten_second_store_outage_while_settling_sends_nothing_twice(store: Store, sandbox: RunningSandbox
                                                                      , evented: bool) -> None:
    lease_s = 12.0  # outlives the outage; giving up on the settle would resend once it runs out
    flaky = OutageStore(store, outage_s=10.0)
    lead_ids = [insert(store, create_call(caller_id=f"+1555123{i:04d}").to_dict()) for i in range(6)]
    workers = [dispatcher(flaky, sandbox, evented=evented, owner=f"w{n}", lease_s=lease_s, poll_interval_s=0.2)  # type: ignore[arg-type]
               for n in (1, 2)]
    for worker in workers:
        worker.start()
    try:
        assert eventually(lambda: all(store.get(i).status == "delivered" for i in lead_ids), limit_s=60)
        time.sleep(lease_s + 2)  # a delivery left unrecorded would be claimed and sent again by now
    finally:
        for worker in workers:
            worker.stop(5)
    assert flaky.failed_settles > 0
    sent = [r["lead_id"] for r in received(sandbox)]
    assert sorted(sent) == sorted(lead_ids), sent
    assert [store.get(i).attempts for i in lead_ids] == [1] * len(lead_ids)


def test_a_stopped_dispatcher_starts_again_and_delivers(store: Store, sandbox: RunningSandbox,
                                                       evented: bool) -> None:
    worker = dispatcher(store, sandbox, evented=evented)
    worker.start()
    first = insert(store, create_call().to_dict())
    assert eventually(lambda: store.get(first).status == "delivered")
    worker.stop(5)
    second = insert(store, create_call(caller_id="+15551230002").to_dict())
    worker.start()
    assert eventually(lambda: store.get(second).status == "delivered")
    worker.stop(5)
    assert [r["lead_id"] for r in received(sandbox)] == [first, second]


def test_a_call_still_in_flight_when_a_stop_gives_up_waiting_is_still_recorded(
        store: Store, sandbox: RunningSandbox, evented: bool) -> None:
    set_behaviour(sandbox, delay_ms=1500)
    lead_id = insert(store, create_call().to_dict())
    worker = dispatcher(store, sandbox, evented=evented)
    delivery = hand_over(worker, store, lead_id)
    worker.stop(0.3)  # gives up waiting while Trackdrive still holds the call
    assert delivery.result(timeout=30).status == 201
    assert eventually(lambda: store.get(lead_id).status == "delivered")
    assert store.get(lead_id).lease_owner is None


def test_an_open_breaker_defers_a_new_lead_without_sending_it(store: Store, sandbox: RunningSandbox,
                                                              evented: bool) -> None:
    set_behaviour(sandbox, fail_rate=1.0)  # every call a 5xx: two in a row open the breaker
    breakers = Breakers(BreakerSettings(failures=2, cooldown_s=600.0))
    worker = dispatcher(store, sandbox, evented=evented, breakers=breakers,
                        policy=RetryPolicy(delays=(600.0,), jitter=0.0))
    try:
        failing = [insert(store, create_call(caller_id=f"+1555123000{n}").to_dict()) for n in range(2)]
        for lead_id in failing:
            assert hand_over(worker, store, lead_id).result(timeout=30).reason == "server_error"
        paused = insert(store, create_call(caller_id="+15551230009").to_dict())
        assert hand_over(worker, store, paused).result(timeout=30) is None
        assert eventually(lambda: store.get(paused).lease_owner is None)
        waiting = store.get(paused)
        assert (waiting.status, waiting.attempts) == ("queued", 0)
        assert waiting.next_attempt_at > time.time() + 60
        assert len(received(sandbox)) == 2
    finally:
        worker.stop(5)
