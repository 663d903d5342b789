"""Retention and erasure, on every backend: redact keeps the row without personal data; forget erases."""
from __future__ import annotations

from relay.store.base import Settlement, Store
from tests.store.test_contract import CALL, DAY, T0, insert


def delivered(store: Store, **overrides: object) -> str:
    lead = insert(store, **overrides)
    claimed = store.claim(lead.id, "w1", 60, lead.received_at)
    assert claimed is not None
    assert store.settle(lead.id, "w1", Settlement("delivered", T0 + 1, 201, '{"caller": "+15555550100"}'))
    return lead.id


def test_redact_blanks_personal_data_of_old_leads_by_status_and_keeps_the_row(store: Store) -> None:
    old = delivered(store, dedupe_key="5555550100", dedupe_window_s=30 * DAY)
    recent = delivered(store, received_at=T0 + 20 * DAY, body=b'{"phone": "5555550101"}')
    dropped = insert(store, status="dropped", call=None).id
    assert store.redact({"delivered": T0 + 10 * DAY}, now=T0 + 40 * DAY) == 1

    lead = store.get(old)
    assert lead is not None and lead.status == "delivered" and lead.attempts == 1
    assert (lead.body, lead.query, lead.headers, lead.call, lead.response_body, lead.dedupe_key,
            lead.client_addr) == (b"", "", {}, None, None, None, "")
    assert [a.response_body for a in store.attempts(old)] == [None]
    assert store.redacted_at(old) == T0 + 40 * DAY
    assert store.dedupe_holder("acme", "5555550100", T0 + 1) is None
    assert store.get(recent).body == b'{"phone": "5555550101"}' and store.redacted_at(recent) is None
    assert store.get(dropped).body and store.redacted_at(dropped) is None  # its status was not named
    assert store.redact({"delivered": T0 + 10 * DAY}, now=T0 + 41 * DAY) == 0  # once only


def test_forget_erases_every_trace_of_a_phone_or_an_email(store: Store) -> None:
    by_phone = delivered(store, body=b'{"phone": "(555) 555-0142", "email": "ann@example.com"}',
                         dedupe_key="k1", dedupe_window_s=DAY)
    by_query = insert(store, body=b"{}", query="tel=%2B1+555+555+0142", call=None, status="dropped").id
    by_email = insert(store, body=b'{"email": "BOB@Example.com"}').id
    by_call = insert(store, body=b"{}", call={**CALL, "body": {"caller_id": "+15555550142"}}).id
    other = insert(store, body=b'{"phone": "5555550177"}').id

    gone = store.forget(phone="+1 555 555 0142")
    assert set(gone.lead_ids) == {by_phone, by_query, by_call}
    assert gone.counts == {"leads": 3, "attempts": 1, "dedupe_keys": 1}
    assert store.get(by_phone) is None and store.attempts(by_phone) == []
    assert store.dedupe_holder("acme", "k1", T0) is None

    gone = store.forget(email="bob@example.com")
    assert gone.lead_ids == (by_email,)
    assert store.get(other) is not None
    assert store.forget(phone="5555550999").lead_ids == ()


def test_take_turn_gives_one_caller_per_interval(store: Store) -> None:
    assert store.take_turn("retention", "w1", 3600, T0)
    assert not store.take_turn("retention", "w2", 3600, T0 + 10)
    assert store.take_turn("retention", "w2", 3600, T0 + 3600)
