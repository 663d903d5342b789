"""Leads that must be fetched, end to end: a real gunicorn relay, the sandbox as Graph API,
HubSpot CRM and Trackdrive, a real SQLite outbox.

A signed Meta notification is answered at once; each of its leads is then read from the
Graph API stand-in and sent to the Trackdrive stand-in on its own.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from relay.store import open_store
from relay.store.base import Lead
from tests.support.stack import SHIPPED_SECRETS, SIGNING_SECRET, Stack, wait_until

FINAL = ("delivered", "dead", "rejected", "dropped")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("fetch"), env_overrides={
        "RELAY_RETRY_DELAYS": ",".join(["0.2", "0.5"] + ["1"] * 30), "RELAY_RETRY_JITTER": "0.1",
        "RELAY_LEASE_SECONDS": "3"}).start()
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def calm_vendors(stack: Stack) -> None:
    stack.set_vendors(delay_ms=0, fail_rate=0.0, rate_429=0.0, token_expired=False)


def leadgen_ids(count: int) -> list[str]:
    base = uuid.uuid4().int % 10**12
    return [str(10**15 + base * 100 + i) for i in range(count)]


def notification(ids: list[str], page_id: str = "104857392011234") -> bytes:
    changes = [{"field": "leadgen", "value": {"leadgen_id": lead_id, "page_id": page_id,
                                              "form_id": "881234567890123", "created_time": 1764240363}}
               for lead_id in ids]
    return json.dumps({"object": "page", "entry": [{"id": page_id, "time": 1764240365,
                                                    "changes": changes}]}).encode()


def post_meta(stack: Stack, body: bytes) -> requests.Response:
    signature = hmac.new(SIGNING_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return requests.post(f"{stack.url}/hooks/facebook-leadgen", data=body, timeout=10, headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={signature}"})


def lead_ids_of(answer: requests.Response) -> list[str]:
    body = answer.json()
    return [entry["lead_id"] for entry in body["leads"]] if "leads" in body else [body["lead_id"]]


def settled(stack: Stack, lead_ids: list[str]) -> list[Lead]:
    store = open_store(stack.database_url)
    try:
        def all_final() -> list[Lead] | None:
            leads = [store.get(lead_id) for lead_id in lead_ids]
            done = all(lead is not None and lead.status in FINAL for lead in leads)
            return [lead for lead in leads if lead is not None] if done else None
        found = wait_until(all_final)
        assert found, f"leads never settled: {[getattr(store.get(i), 'status', None) for i in lead_ids]}"
        return found  # type: ignore[no-any-return]
    finally:
        store.close()


def calls_for(stack: Stack, lead_ids: list[str]) -> Counter[str]:
    """How many calls Trackdrive accepted for each lead."""
    wanted = set(lead_ids)
    return Counter(record["lead_id"] for record in stack.received()
                   if record["lead_id"] in wanted and record["answer"]["fate"] == "accepted")


def attempts(stack: Stack, lead_id: str) -> list[Any]:
    store = open_store(stack.database_url)
    try:
        return store.attempts(lead_id)
    finally:
        store.close()


def test_a_signed_notification_with_two_leads_becomes_two_calls(stack: Stack) -> None:
    ids = leadgen_ids(2)
    answer = post_meta(stack, notification(ids))
    assert answer.status_code == 202, answer.text
    assert [entry["status"] for entry in answer.json()["leads"]] == ["fetching", "fetching"]
    lead_ids = lead_ids_of(answer)
    leads = settled(stack, lead_ids)
    assert [lead.status for lead in leads] == ["delivered", "delivered"]
    assert calls_for(stack, lead_ids) == Counter({lead_id: 1 for lead_id in lead_ids})
    sent = {record["lead_id"]: record["params"] for record in stack.received() if record["lead_id"] in lead_ids}
    assert sorted(params["data"]["facebook_lead_id"] for params in sent.values()) == sorted(ids)
    assert all(params["data"]["facebook_page_id"] == "104857392011234" for params in sent.values())
    # what the Graph API answered is kept with the lead; the token never is
    assert leads[0].fetched["id"] in ids
    database = Path(stack.database_url.removeprefix("sqlite:///")).read_bytes()
    assert SHIPPED_SECRETS["FACEBOOK_PAGE_TOKEN"].encode() not in database


def test_an_expired_token_is_a_dead_letter_naming_the_variable(stack: Stack) -> None:
    stack.set_vendors(token_expired=True)
    lead_id, = lead_ids_of(post_meta(stack, notification(leadgen_ids(1))))
    lead, = settled(stack, [lead_id])
    assert lead.status == "dead"
    last = attempts(stack, lead_id)[-1]
    assert last.reason == "vendor_unauthorized"
    assert "FACEBOOK_PAGE_TOKEN" in (last.response_body or "") and "expired" in (last.response_body or "")
    assert SHIPPED_SECRETS["FACEBOOK_PAGE_TOKEN"] not in stack.logs()
    assert calls_for(stack, [lead_id]) == Counter()


def test_a_failing_graph_api_still_delivers_every_lead_exactly_once(stack: Stack) -> None:
    stack.set_vendors(fail_rate=0.3, rate_429=0.1, retry_after=0.2)
    lead_ids: list[str] = []
    for _ in range(5):
        answer = post_meta(stack, notification(leadgen_ids(4)))
        assert answer.status_code == 202, answer.text
        lead_ids += lead_ids_of(answer)
    leads = settled(stack, lead_ids)
    assert {lead.status for lead in leads} == {"delivered"}
    assert calls_for(stack, lead_ids) == Counter({lead_id: 1 for lead_id in lead_ids})
    answers = requests.get(f"{stack.sandbox_url}/_sandbox/vendors", timeout=10).json()["answers"]
    assert answers.get("graph 500", 0) > 0  # the faults did happen


def test_kill_9_while_leads_are_fetching_loses_none(stack: Stack) -> None:
    stack.set_vendors(delay_ms=2000)
    lead_ids = lead_ids_of(post_meta(stack, notification(leadgen_ids(6))))
    store = open_store(stack.database_url)
    try:
        assert wait_until(lambda: all(getattr(store.get(i), "lease_owner", None) for i in lead_ids))
    finally:
        store.close()
    assert stack.relay is not None
    stack.relay.kill()
    stack.set_vendors(delay_ms=0)
    stack.start_relay()
    leads = settled(stack, lead_ids)
    assert {lead.status for lead in leads} == {"delivered"}
    assert calls_for(stack, lead_ids) == Counter({lead_id: 1 for lead_id in lead_ids})


def test_a_notification_without_ids_is_a_clear_stored_refusal(stack: Stack) -> None:
    body = json.dumps({"object": "page", "entry": [{"id": "1", "changes": [
        {"field": "leadgen", "value": {"page_id": "1"}}]}]}).encode()
    answer = post_meta(stack, body)
    assert answer.status_code == 422, answer.text
    entry, = answer.json()["leads"]
    assert entry["status"] == "rejected" and "leadgen_id" in json.dumps(entry)


def test_an_unknown_lead_is_a_dead_letter_saying_so(stack: Stack) -> None:
    lead_id, = lead_ids_of(post_meta(stack, notification(["not-a-lead-of-this-page"], page_id="999")))
    lead, = settled(stack, [lead_id])
    assert lead.status == "dead"
    assert attempts(stack, lead_id)[-1].reason == "vendor_not_found"


def test_a_fetched_lead_without_phone_or_email_is_kept_rejected(stack: Stack) -> None:
    leadgen_id, = leadgen_ids(1)
    requests.post(f"{stack.sandbox_url}/_sandbox/vendors/leads", timeout=10, json={"graph": {leadgen_id: {
        "id": leadgen_id, "field_data": [{"name": "first_name", "values": ["Nophone"]}]}}}).raise_for_status()
    lead_id, = lead_ids_of(post_meta(stack, notification([leadgen_id])))
    lead, = settled(stack, [lead_id])
    assert lead.status == "rejected"
    assert lead.error is not None and (lead.error["field"], lead.error["rule"]) == ("caller_id", "required")
    assert lead.fetched["id"] == leadgen_id


def test_hubspot_creation_events_are_fetched_from_the_crm(stack: Stack) -> None:
    base = uuid.uuid4().int % 10**9
    events = [{"eventId": base + i, "portalId": 44112233, "subscriptionType": "contact.creation",
               "objectId": 10**10 + base + i} for i in range(2)]
    answer = requests.post(f"{stack.url}/hooks/hubspot-contacts", json=events, timeout=10,
                           params={"key": SHIPPED_SECRETS["HUBSPOT_WEBHOOK_KEY"]})
    assert answer.status_code == 202, answer.text
    lead_ids = lead_ids_of(answer)
    assert [lead.status for lead in settled(stack, lead_ids)] == ["delivered", "delivered"]
    assert calls_for(stack, lead_ids) == Counter({lead_id: 1 for lead_id in lead_ids})
