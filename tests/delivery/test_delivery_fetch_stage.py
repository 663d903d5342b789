"""The fetch stage's seam: a lead stored ``fetching`` is resolved by the delivery worker, then sent.

The resolver here is a stand-in; what matters is the worker's side through the
real SQLite outbox and the real sandbox: resolved leads are delivered at once,
a fetch that must wait keeps the lead ``fetching``, a refusal after the fetch
is kept as ``rejected`` and frees the dedupe key.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from relay.delivery.client import TrackdriveClient
from relay.delivery.dispatcher import Dispatcher
from relay.delivery.outcome import Failed, RetryLater
from relay.delivery.resolve import Resolution, Resolved
from relay.delivery.retry import RetryPolicy
from relay.sandbox.server import RunningSandbox
from relay.store import open_store
from relay.store.base import Lead, Received, Store

from delivery_fakes import TOKEN, TOKEN_ENV, create_call, received


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'relay.db'}")
    yield opened
    opened.close()


class Resolver:
    """Answers from a script keyed by the notification's body."""

    def __init__(self, answers: dict[bytes, Resolved]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def resolve(self, lead: Lead) -> Resolved:
        self.asked.append(lead.id)
        return self.answers[lead.body]


def notification(store: Store, body: bytes, key: str | None = None) -> str:
    lead, created = store.insert(Received(
        source="meta", received_at=time.time(), method="POST", content_type="application/json",
        query="", headers={}, body=body, client_addr="127.0.0.1", status="fetching",
        dedupe_key=key, dedupe_window_s=3600.0 if key else 0.0))
    assert created
    return lead.id


def worker(store: Store, sandbox: RunningSandbox, resolver: Resolver) -> Dispatcher:
    client = TrackdriveClient(sandbox.url, env={TOKEN_ENV: TOKEN})
    return Dispatcher(store, client, RetryPolicy(delays=(60.0,), jitter=0.0), owner="w1", concurrency=4,
                      poll_interval_s=0.02, resolver=resolver)


def test_a_resolved_lead_is_sent_at_once_and_keeps_what_was_fetched(store: Store, sandbox: RunningSandbox) -> None:
    call = create_call().to_dict()
    resolver = Resolver({b"n1": Resolution("queued", call, None, {"field_data": ["x"]}, "v7")})
    lead_id = notification(store, b"n1")
    dispatcher = worker(store, sandbox, resolver)
    assert dispatcher.poll_once() == 1
    deadline = time.monotonic() + 30
    while store.get(lead_id).status != "delivered" and time.monotonic() < deadline:  # type: ignore[union-attr]
        time.sleep(0.02)
    dispatcher.stop(5)
    lead = store.get(lead_id)
    assert lead is not None and (lead.status, lead.mapping_version) == ("delivered", "v7")
    assert lead.fetched == {"field_data": ["x"]} and lead.call == call
    assert [r["lead_id"] for r in received(sandbox)] == [lead_id]


def test_a_fetch_that_must_wait_keeps_the_lead_fetching(store: Store, sandbox: RunningSandbox) -> None:
    resolver = Resolver({b"n2": RetryLater("rate_limited", 429, "slow down", 30.0)})
    lead_id = notification(store, b"n2")
    dispatcher = worker(store, sandbox, resolver)
    dispatcher.poll_once()
    dispatcher.stop(5)
    lead = store.get(lead_id)
    assert lead is not None and lead.status == "fetching" and lead.next_attempt_at is not None
    assert lead.next_attempt_at >= time.time() + 25  # Retry-After is a floor
    assert [a.reason for a in store.attempts(lead_id)] == ["rate_limited"]
    assert received(sandbox) == []


def test_a_fetch_that_can_never_work_is_a_dead_letter(store: Store, sandbox: RunningSandbox) -> None:
    resolver = Resolver({b"n3": Failed("vendor_unauthorized", 401, "token expired")})
    lead_id = notification(store, b"n3")
    dispatcher = worker(store, sandbox, resolver)
    dispatcher.poll_once()
    dispatcher.stop(5)
    lead = store.get(lead_id)
    assert lead is not None and lead.status == "dead"
    assert store.attempts(lead_id)[-1].reason == "vendor_unauthorized"


def test_a_refusal_after_the_fetch_is_kept_and_frees_the_key(store: Store, sandbox: RunningSandbox) -> None:
    refusal = {"code": "lead_refused", "rule": "required", "field": "caller_id", "message": "no phone"}
    resolver = Resolver({b"n4": Resolution("rejected", None, refusal, {"field_data": []}, "v7")})
    lead_id = notification(store, b"n4", key="leadgen-4")
    dispatcher = worker(store, sandbox, resolver)
    dispatcher.poll_once()
    dispatcher.stop(5)
    lead = store.get(lead_id)
    assert lead is not None and lead.status == "rejected" and lead.error == refusal
    assert store.dedupe_holder("meta", "leadgen-4", time.time()) is None
    assert received(sandbox) == []


def test_without_a_resolver_a_fetching_lead_waits(store: Store, sandbox: RunningSandbox) -> None:
    lead_id = notification(store, b"n5")
    client = TrackdriveClient(sandbox.url, env={TOKEN_ENV: TOKEN})
    dispatcher = Dispatcher(store, client, RetryPolicy(delays=(60.0,), jitter=0.0), owner="w1", concurrency=2)
    dispatcher.poll_once()
    dispatcher.stop(5)
    lead: Any = store.get(lead_id)
    assert lead.status == "fetching" and store.attempts(lead_id)[-1].reason == "no_resolver"
