"""The outbox contract: every backend must pass all of it."""
from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from relay.errors import StoreUnavailable
from relay.store import new_lead_id, open_store
from relay.store.base import AuditEntry, Lead, LeadQuery, PendingStats, Received, Settlement, Store
from relay.store.rows import new_lead_row
from relay.store.sql import SqlStore

if TYPE_CHECKING:
    from tests.store.conftest import Backend

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
DAY = 86_400.0
CALL = {"action": "create_lead", "method": "POST", "path": "/api/v1/leads",
        "query": {"lead_token": "${ACME_LEAD_TOKEN}"}, "body": {"caller_id": "+15555550100"},
        "base_url": None, "secrets": {"lead_token": "ACME_LEAD_TOKEN"}, "route": None}


def received(**overrides: Any) -> Received:
    values: dict[str, Any] = dict(
        source="acme", received_at=T0, method="POST", content_type="application/json",
        query="a=1&b=%2B2", headers={"User-Agent": "acme-hooks/2", "X-Event": "lead"},
        body=b'{"phone": "5555550100"}', client_addr="203.0.113.7", status="queued",
        call=CALL, error=None, mapping_version="v1", request_id="req-1")
    values.update(overrides)
    return Received(**values)


def insert(store: Store, **overrides: Any) -> Lead:
    lead, created = store.insert(received(**overrides))
    assert created
    return lead


def retry_at(at: float, next_attempt_at: float, **overrides: Any) -> Settlement:
    return Settlement(result="retry", at=at, next_attempt_at=next_attempt_at, **overrides)


# --- insert and read back ---

def test_insert_then_get_returns_every_field(store: Store) -> None:
    body = bytes(range(256)) + b"\r\n\x00tail"
    lead = insert(store, body=body, dedupe_key="evt-1", dedupe_window_s=60)
    fetched = store.get(lead.id)
    assert fetched == lead
    assert fetched.body == body
    assert (fetched.source, fetched.status, fetched.received_at) == ("acme", "queued", T0)
    assert (fetched.method, fetched.content_type, fetched.query) == (
        "POST", "application/json", "a=1&b=%2B2")
    assert fetched.headers == {"User-Agent": "acme-hooks/2", "X-Event": "lead"}
    assert fetched.client_addr == "203.0.113.7"
    assert fetched.call == CALL and fetched.error is None
    assert (fetched.mapping_version, fetched.dedupe_key, fetched.request_id) == (
        "v1", "evt-1", "req-1")
    assert (fetched.attempts, fetched.lease_owner, fetched.delivered_at) == (0, None, None)


def test_empty_body_and_refusal_roundtrip(store: Store) -> None:
    error = {"code": "lead_refused", "field": "caller_id", "rule": "phone", "paths": ["$.phone"]}
    lead = insert(store, body=b"", status="rejected", call=None, error=error)
    fetched = store.get(lead.id)
    assert fetched is not None
    assert (fetched.body, fetched.status, fetched.call, fetched.error) == (
        b"", "rejected", None, error)


def test_get_unknown_id_is_none(store: Store) -> None:
    assert store.get(new_lead_id()) is None


def test_migrate_twice_is_harmless(store: Store) -> None:
    lead = insert(store)
    store.migrate()
    assert store.get(lead.id) == lead


# --- dedupe ---

def test_repeat_inside_window_returns_first_lead_and_writes_nothing(store: Store) -> None:
    first = insert(store, dedupe_key="evt-1", dedupe_window_s=600)
    again, created = store.insert(received(received_at=T0 + 599, body=b"other",
                                           dedupe_key="evt-1", dedupe_window_s=600))
    assert not created
    assert again == first
    assert [lead.id for lead in store.list()] == [first.id]


def test_repeat_outside_window_creates_a_new_lead_that_the_key_then_names(store: Store) -> None:
    first = insert(store, dedupe_key="evt-1", dedupe_window_s=600)
    second = insert(store, received_at=T0 + 600, dedupe_key="evt-1", dedupe_window_s=600)
    assert second.id != first.id
    third, created = store.insert(received(received_at=T0 + 700, dedupe_key="evt-1",
                                           dedupe_window_s=600))
    assert not created and third.id == second.id


def test_dedupe_keys_are_per_source(store: Store) -> None:
    first = insert(store, dedupe_key="evt-1", dedupe_window_s=600)
    other = insert(store, source="globex", dedupe_key="evt-1", dedupe_window_s=600)
    assert other.id != first.id


def test_no_window_means_no_dedupe(store: Store) -> None:
    insert(store, dedupe_key="evt-1", dedupe_window_s=0)
    insert(store, dedupe_key="evt-1", dedupe_window_s=0)
    assert len(store.list()) == 2


def test_concurrent_repeats_from_threads_make_one_lead(backend: Backend) -> None:
    stores = [backend.open() for _ in range(2)]  # two handles, like two processes
    barrier = threading.Barrier(16)
    results: list[tuple[Lead, bool]] = []

    def send(index: int) -> None:
        barrier.wait()
        results.append(stores[index % 2].insert(
            received(dedupe_key="evt-race", dedupe_window_s=600)))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(created for _, created in results) == 1
    assert len({lead.id for lead, _ in results}) == 1
    assert len(stores[0].list()) == 1
    for opened in stores:
        opened.close()


# --- claims ---

def test_claim_leases_a_due_lead_to_one_owner(store: Store) -> None:
    lead = insert(store)
    claimed = store.claim(lead.id, "w1", 60, T0 + 1)
    assert claimed is not None
    assert (claimed.lease_owner, claimed.lease_until) == ("w1", T0 + 61)
    assert store.claim(lead.id, "w2", 60, T0 + 2) is None
    assert store.claim_due("w2", 10, 60, T0 + 2) == []


def test_claim_skips_leads_that_are_not_deliverable(store: Store) -> None:
    insert(store, status="rejected", call=None, error={"code": "lead_refused"})
    insert(store, status="dropped", call=None, error={"reason": "test lead"})
    later = insert(store, received_at=T0 + 100)
    assert store.claim_due("w1", 10, 60, T0 + 50) == []
    assert store.claim(later.id, "w1", 60, T0 + 50) is None


def test_claim_due_takes_oldest_due_first_up_to_limit(store: Store) -> None:
    leads = [insert(store, received_at=T0 + i) for i in range(5)]
    first = store.claim_due("w1", 2, 60, T0 + 10)
    assert [lead.id for lead in first] == [leads[0].id, leads[1].id]
    assert all(lead.lease_owner == "w1" for lead in first)
    rest = store.claim_due("w2", 10, 60, T0 + 10)
    assert [lead.id for lead in rest] == [lead.id for lead in leads[2:]]


def test_expired_lease_can_be_taken_over_and_old_owner_cannot_settle(store: Store) -> None:
    lead = insert(store)
    assert store.claim(lead.id, "crashed", 10, T0) is not None
    assert store.claim_due("w2", 10, 10, T0 + 9) == []
    [taken] = store.claim_due("w2", 10, 10, T0 + 10)
    assert taken.id == lead.id and taken.lease_owner == "w2"
    assert not store.settle(lead.id, "crashed", Settlement("delivered", at=T0 + 11))
    assert store.settle(lead.id, "w2", Settlement("delivered", at=T0 + 11))


def test_settle_by_non_owner_changes_nothing(store: Store) -> None:
    lead = insert(store)
    store.claim(lead.id, "w1", 60, T0)
    assert not store.settle(lead.id, "w2", Settlement("delivered", at=T0 + 1))
    assert not store.settle(new_lead_id(), "w1", Settlement("delivered", at=T0 + 1))
    after = store.get(lead.id)
    assert after is not None
    assert (after.status, after.attempts, after.lease_owner) == ("queued", 0, "w1")
    assert store.attempts(lead.id) == []


def test_settle_many_settles_each_lead_as_settle_would(store: Store) -> None:
    delivered, retried, lost = insert(store), insert(store), insert(store)
    for lead in (delivered, retried, lost):
        store.claim(lead.id, "w1", 60, T0)
    store.claim(lost.id, "w2", 60, T0 + 120)  # its lease expired and another worker took it
    results = store.settle_many("w1", [
        (delivered.id, Settlement("delivered", at=T0 + 1, response_status=201, response_body="{}")),
        (retried.id, retry_at(T0 + 1, T0 + 31)),
        (lost.id, Settlement("delivered", at=T0 + 1)),
    ])
    assert results == [True, True, False]
    statuses = [(lead.status, lead.attempts, lead.lease_owner)
                for lead in map(store.get, (delivered.id, retried.id, lost.id)) if lead is not None]
    assert statuses == [("delivered", 1, None), ("retry", 1, None), ("queued", 0, "w2")]
    assert [len(store.attempts(lead.id)) for lead in (delivered, retried, lost)] == [1, 1, 0]
    assert store.settle_many("w1", []) == []


def test_claim_exclusive_across_threads(backend: Backend) -> None:
    seed = backend.open()
    ids = {insert(seed, received_at=T0 + i).id for i in range(60)}
    stores = [backend.open() for _ in range(3)]
    barrier = threading.Barrier(8)
    claimed: list[str] = []

    def work(index: int) -> None:
        barrier.wait()
        while batch := stores[index % 3].claim_due(f"w{index}", 3, 600, T0 + 100):
            claimed.extend(lead.id for lead in batch)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Counter(claimed) == Counter(ids)
    for opened in (seed, *stores):
        opened.close()


def _claim_in_process(url: str, owner: str, barrier: Any, results: Any) -> None:
    store = open_store(url, migrate=False)
    barrier.wait()
    claimed: list[str] = []
    while batch := store.claim_due(owner, 2, 600, T0 + 100):
        claimed.extend(lead.id for lead in batch)
    store.close()
    results.put(claimed)


def test_claim_exclusive_across_processes(backend: Backend, store: Store) -> None:
    ids = {insert(store, received_at=T0 + i).id for i in range(60)}
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(4), context.Queue()
    workers = [context.Process(target=_claim_in_process,
                               args=(backend.url, f"p{i}", barrier, results)) for i in range(4)]
    for worker in workers:
        worker.start()
    claimed = [lead_id for _ in workers for lead_id in results.get(timeout=120)]
    for worker in workers:
        worker.join()
        assert worker.exitcode == 0
    assert Counter(claimed) == Counter(ids)


# --- settling ---

def test_delivered_records_response_and_clears_lease(store: Store) -> None:
    lead = insert(store)
    store.claim(lead.id, "w1", 60, T0)
    assert store.settle(lead.id, "w1", Settlement("delivered", at=T0 + 2, response_status=201,
                                                   response_body='{"success":true}',
                                                   latency_s=0.25))
    after = store.get(lead.id)
    assert after is not None
    assert (after.status, after.delivered_at, after.attempts) == ("delivered", T0 + 2, 1)
    assert (after.response_status, after.response_body) == (201, '{"success":true}')
    assert (after.lease_owner, after.lease_until) == (None, None)
    assert store.attempts(lead.id) == [Settlement("delivered", at=T0 + 2, response_status=201,
                                                  response_body='{"success":true}',
                                                  latency_s=0.25)]
    assert store.claim(lead.id, "w1", 60, T0 + DAY) is None


def test_retry_makes_lead_due_at_next_attempt(store: Store) -> None:
    lead = insert(store)
    store.claim(lead.id, "w1", 60, T0)
    assert store.settle(lead.id, "w1", retry_at(T0 + 1, T0 + 31, response_status=503,
                                                reason="http_503", latency_s=1.5))
    after = store.get(lead.id)
    assert after is not None
    assert (after.status, after.attempts, after.next_attempt_at) == ("retry", 1, T0 + 31)
    assert after.lease_owner is None and after.response_status == 503
    assert store.claim_due("w2", 10, 60, T0 + 30) == []
    [again] = store.claim_due("w2", 10, 60, T0 + 31)
    assert again.id == lead.id
    store.settle(lead.id, "w2", retry_at(T0 + 32, T0 + 150, reason="timeout"))
    assert store.get(lead.id).attempts == 2  # type: ignore[union-attr]
    assert [a.reason for a in store.attempts(lead.id)] == ["http_503", "timeout"]
    assert store.attempts(lead.id)[0].next_attempt_at == T0 + 31


def test_dead_is_terminal(store: Store) -> None:
    lead = insert(store)
    store.claim(lead.id, "w1", 60, T0)
    assert store.settle(lead.id, "w1", Settlement("dead", at=T0 + 1, response_status=422,
                                                   response_body='{"errors":["dnc"]}',
                                                   reason="rejected"))
    after = store.get(lead.id)
    assert after is not None
    assert (after.status, after.attempts, after.next_attempt_at) == ("dead", 1, None)
    assert store.claim_due("w1", 10, 60, T0 + DAY) == []


def test_settle_rejects_a_retry_without_a_time(store: Store) -> None:
    lead = insert(store)
    store.claim(lead.id, "w1", 60, T0)
    with pytest.raises(ValueError):
        store.settle(lead.id, "w1", Settlement("retry", at=T0 + 1))


def test_long_response_body_is_truncated_to_64_kib(store: Store) -> None:
    lead = insert(store)
    store.claim(lead.id, "w1", 60, T0)
    store.settle(lead.id, "w1", Settlement("dead", at=T0 + 1, response_body="é" * 40_000))
    stored = store.get(lead.id).response_body  # type: ignore[union-attr]
    assert stored is not None and len(stored.encode("utf-8")) == 64 * 1024
    assert store.attempts(lead.id)[0].response_body == stored


def test_release_gives_the_lead_back_at_once(store: Store) -> None:
    lead = insert(store)
    store.claim(lead.id, "w1", 600, T0)
    assert not store.release(lead.id, "w2")
    assert store.release(lead.id, "w1")
    assert store.claim(lead.id, "w2", 60, T0 + 1) is not None
    assert store.attempts(lead.id) == []


# --- operator actions ---

def _dead(store: Store, **overrides: Any) -> Lead:
    lead = insert(store, **overrides)
    assert store.claim(lead.id, "w1", 60, lead.received_at) is not None
    assert store.settle(lead.id, "w1", Settlement("dead", at=lead.received_at + 1,
                                                   reason="rejected"))
    return lead


def test_requeue_makes_dead_letters_due_and_keeps_history(store: Store) -> None:
    lead = _dead(store)
    assert store.requeue([lead.id], now=T0 + 500) == 1
    after = store.get(lead.id)
    assert after is not None
    assert (after.status, after.next_attempt_at, after.attempts) == ("queued", T0 + 500, 0)
    assert [a.result for a in store.attempts(lead.id)] == ["dead"]
    assert store.claim_due("w1", 10, 60, T0 + 500)[0].id == lead.id


def test_requeue_filters(store: Store) -> None:
    acme = [_dead(store) for _ in range(2)]
    globex = _dead(store, source="globex")
    insert(store, status="rejected", call=None, error={"code": "lead_refused"})
    assert store.requeue([], now=T0) == 0
    assert store.requeue(source="globex", now=T0) == 1
    assert store.get(globex.id).status == "queued"  # type: ignore[union-attr]
    assert store.requeue([acme[0].id, globex.id], now=T0) == 1
    assert store.requeue(now=T0) == 1
    assert [lead.status for lead in store.list(status="dead")] == []
    assert len(store.list(status="rejected")) == 1


def test_remap_replaces_the_mapping_result(store: Store) -> None:
    lead = insert(store, status="rejected", call=None, error={"code": "lead_refused"})
    assert store.remap(lead.id, "queued", CALL, None, "v2", T0 + 100)
    after = store.get(lead.id)
    assert after is not None
    assert (after.status, after.call, after.error, after.mapping_version) == (
        "queued", CALL, None, "v2")
    assert store.claim_due("w1", 10, 60, T0 + 100)[0].id == lead.id
    assert not store.remap(new_lead_id(), "queued", CALL, None, "v2", T0 + 100)


def test_remap_to_refused_or_dropped(store: Store) -> None:
    lead = _dead(store)
    error = {"code": "lead_refused", "field": "caller_id"}
    assert store.remap(lead.id, "rejected", None, error, "v3", T0 + 5)
    assert store.get(lead.id).error == error  # type: ignore[union-attr]
    assert store.remap(lead.id, "dropped", None, {"reason": "test"}, "v3", T0 + 6)
    assert store.get(lead.id).status == "dropped"  # type: ignore[union-attr]
    assert store.claim_due("w1", 10, 60, T0 + DAY) == []


def test_remap_leaves_a_lead_being_delivered_alone(store: Store) -> None:
    lead = insert(store)
    store.claim(lead.id, "w1", 60, T0)
    assert not store.remap(lead.id, "rejected", None, {"code": "x"}, "v2", T0 + 1)
    assert store.get(lead.id).status == "queued"  # type: ignore[union-attr]


def test_purge_deletes_old_rows_with_their_attempts_and_keys(store: Store) -> None:
    old = insert(store, dedupe_key="evt-1", dedupe_window_s=10 * DAY)
    store.claim(old.id, "w1", 60, T0)
    store.settle(old.id, "w1", Settlement("delivered", at=T0 + 1))
    old_dead = _dead(store)
    recent = insert(store, received_at=T0 + 40 * DAY)
    store.claim(recent.id, "w1", 60, T0 + 40 * DAY)
    store.settle(recent.id, "w1", Settlement("delivered", at=T0 + 40 * DAY))

    assert store.purge(T0 + 30 * DAY) == 1
    assert store.get(old.id) is None and store.attempts(old.id) == []
    assert store.get(old_dead.id) is not None and store.get(recent.id) is not None
    again, created = store.insert(received(received_at=T0 + 2, dedupe_key="evt-1",
                                           dedupe_window_s=10 * DAY))
    assert created and again.id != old.id
    assert store.purge(T0 + 30 * DAY, ("dead",)) == 1
    assert store.purge(T0 + 30 * DAY, ()) == 0


def test_counts_by_utc_day_source_and_status(store: Store) -> None:
    day1, day2 = T0, T0 + DAY  # 2023-11-14 and 2023-11-15 (UTC)
    insert(store, received_at=day1)
    insert(store, received_at=day1 + 1)
    insert(store, received_at=day1, source="globex")
    insert(store, received_at=day2, status="rejected", call=None, error={"code": "x"})
    counted = {(c.day, c.source, c.status): c.count for c in store.counts()}
    assert counted == {("2023-11-14", "acme", "queued"): 2, ("2023-11-14", "globex", "queued"): 1,
                       ("2023-11-15", "acme", "rejected"): 1}
    since_day2 = store.counts(since=day2 - 100)
    assert [(c.day, c.count) for c in since_day2] == [("2023-11-15", 1)]
    assert [c.day for c in store.counts(until=day2 - 100)] == ["2023-11-14", "2023-11-14"]


def test_pending_stats(store: Store) -> None:
    assert store.pending_stats(T0) == PendingStats(pending=0, oldest_received_at=None, dead=0)
    insert(store, received_at=T0 + 5)
    waiting = insert(store, received_at=T0 + 10)
    store.claim(waiting.id, "w1", 60, T0 + 20)
    store.settle(waiting.id, "w1", retry_at(T0 + 21, T0 + 60))
    _dead(store, received_at=T0 + 1)
    insert(store, received_at=T0, status="rejected", call=None, error={"code": "x"})
    stats = store.pending_stats(T0 + 30)
    assert (stats.pending, stats.oldest_received_at, stats.dead) == (2, T0 + 5, 1)


def test_list_is_newest_first_with_filters_and_limit(store: Store) -> None:
    a1 = insert(store, received_at=T0 + 1)
    g1 = insert(store, received_at=T0 + 2, source="globex")
    a2 = insert(store, received_at=T0 + 3, status="rejected", call=None, error={"code": "x"})
    assert [lead.id for lead in store.list()] == [a2.id, g1.id, a1.id]
    assert [lead.id for lead in store.list(source="acme")] == [a2.id, a1.id]
    assert [lead.id for lead in store.list(status="queued")] == [g1.id, a1.id]
    assert [lead.id for lead in store.list(status="queued", source="acme")] == [a1.id]
    assert [lead.id for lead in store.list(limit=1)] == [a2.id]


def test_check_writable_passes_on_a_healthy_store(store: Store) -> None:
    store.check_writable()
    store.check_writable()


def test_lead_ids_are_unique_sortable_and_url_safe() -> None:
    ids = [new_lead_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(len(i) == 26 and i.isalnum() and i.isupper() for i in ids)


def test_lead_ids_sort_by_creation_time() -> None:
    times = [1_700_000_000.000, 1_700_000_000.001, 1_700_000_001.5, 4_000_000_000.0]
    ids = [new_lead_id(at) for at in times]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_requeue_never_takes_a_lead_from_a_live_lease(store: Store) -> None:
    lead = insert(store)
    store.claim(lead.id, "w1", 60, T0)
    store.settle(lead.id, "w1", retry_at(T0 + 1, T0 + 10))
    store.claim(lead.id, "w2", 60, T0 + 10)
    assert store.requeue([lead.id], status="retry", now=T0 + 20) == 0
    assert store.requeue([lead.id], status="retry", now=T0 + 70) == 1
    after = store.get(lead.id)
    assert after is not None and (after.status, after.lease_owner) == ("queued", None)


# --- stored already leased (the receiving process delivers it itself) ---

def test_a_lead_stored_leased_belongs_to_its_owner_until_the_lease_expires(store: Store) -> None:
    lead = insert(store, lease_owner="w1", lease_until=T0 + 60)
    assert (lead.lease_owner, lead.lease_until) == ("w1", T0 + 60)
    assert store.claim(lead.id, "w2", 60, T0 + 1) is None
    assert store.claim_due("w2", 10, 60, T0 + 1) == []
    assert store.settle(lead.id, "w1", Settlement("delivered", at=T0 + 2))
    assert store.get(lead.id).status == "delivered"


def test_a_stored_lease_left_by_a_crash_is_taken_over(store: Store) -> None:
    lead = insert(store, lease_owner="crashed", lease_until=T0 + 60)
    [taken] = store.claim_due("survivor", 10, 60, T0 + 61)
    assert (taken.id, taken.lease_owner) == (lead.id, "survivor")


def test_only_a_queued_lead_is_stored_leased(store: Store) -> None:
    lead = insert(store, status="rejected", call=None, error={"code": "lead_refused"},
                  lease_owner="w1", lease_until=T0 + 60)
    assert (lead.lease_owner, lead.lease_until) == (None, None)


# --- batches: one request, several leads ---

def _batch(store: Store, *items: Received) -> list[Lead]:
    results = store.insert_batch(items)
    assert all(created for _, created in results)
    return [lead for lead, _ in results]


def test_a_batch_is_stored_in_order_and_shares_the_first_leads_id(store: Store) -> None:
    leads = _batch(store, *(received(request_id=f"r{i}", batch_index=i, batch_size=3)
                            for i in range(3)))
    assert [lead.request_id for lead in leads] == ["r0", "r1", "r2"]
    assert len({lead.id for lead in leads}) == 3
    assert {lead.batch_id for lead in leads} == {leads[0].id}
    assert [(lead.batch_index, lead.batch_size) for lead in leads] == [(0, 3), (1, 3), (2, 3)]
    assert [store.get(lead.id) for lead in leads] == leads
    assert {lead.id for lead in store.list(batch_id=leads[0].id)} == {lead.id for lead in leads}
    assert store.list(batch_id="elsewhere") == []


def test_a_given_batch_id_is_kept_and_a_lone_lead_is_its_own_batch(store: Store) -> None:
    [given] = _batch(store, received(batch_id="B-1"))
    alone = insert(store)
    assert given.batch_id == "B-1"
    assert (alone.batch_id, alone.batch_index, alone.batch_size, alone.fetched) == (
        alone.id, 0, 1, None)
    assert store.insert_batch([]) == []


def test_a_batch_is_written_whole_or_not_at_all(store: Store) -> None:
    broken = received(source=None)  # refused by the leads.source NOT NULL column
    with pytest.raises(StoreUnavailable):
        store.insert_batch([received(), broken, received()])
    assert store.list() == []


def test_a_repeat_inside_one_batch_is_a_duplicate_of_the_accepted_first(store: Store) -> None:
    [(first, created), (again, repeated)] = store.insert_batch(
        [received(dedupe_key="evt-1", dedupe_window_s=600),
         received(dedupe_key="evt-1", dedupe_window_s=600, request_id="req-2")])
    assert created and not repeated and again == first
    assert [lead.id for lead in store.list()] == [first.id]


def test_a_refused_first_in_a_batch_leaves_the_key_to_the_next(store: Store) -> None:
    refused, accepted = _batch(
        store, received(status="rejected", call=None, error={"code": "x"},
                        dedupe_key="evt-1", dedupe_window_s=600),
        received(dedupe_key="evt-1", dedupe_window_s=600))
    assert refused.id != accepted.id
    assert store.dedupe_holder("acme", "evt-1", T0) == accepted.id


# --- dedupe: only an accepted lead takes the key ---

@pytest.mark.parametrize("status", ["rejected", "dropped"])
def test_a_refused_or_dropped_lead_is_stored_without_taking_the_key(store: Store,
                                                                    status: str) -> None:
    refused = insert(store, status=status, call=None, error={"code": "x"},
                     dedupe_key="evt-1", dedupe_window_s=600)
    assert store.get(refused.id) == refused
    assert store.dedupe_holder("acme", "evt-1", T0) is None


def test_the_corrected_resend_of_a_refused_request_is_accepted(store: Store) -> None:
    insert(store, status="rejected", call=None, error={"code": "lead_refused"},
           dedupe_key="evt-1", dedupe_window_s=600)
    corrected = insert(store, received_at=T0 + 5, dedupe_key="evt-1", dedupe_window_s=600)
    assert corrected.status == "queued"
    again, created = store.insert(received(received_at=T0 + 10, dedupe_key="evt-1",
                                           dedupe_window_s=600))
    assert not created and again.id == corrected.id


def test_a_live_key_makes_any_repeat_a_duplicate_whatever_its_status(store: Store) -> None:
    first = insert(store, status="fetching", call=None, dedupe_key="evt-1", dedupe_window_s=600)
    assert store.dedupe_holder("acme", "evt-1", T0 + 1) == first.id
    again, created = store.insert(received(received_at=T0 + 1, status="rejected", call=None,
                                           dedupe_key="evt-1", dedupe_window_s=600))
    assert not created and again == first
    assert len(store.list()) == 1


def test_dedupe_holder_names_only_a_live_key(store: Store) -> None:
    lead = insert(store, dedupe_key="evt-1", dedupe_window_s=600)
    assert store.dedupe_holder("acme", "evt-1", T0 + 599) == lead.id
    assert store.dedupe_holder("acme", "evt-1", T0 + 600) is None
    assert store.dedupe_holder("globex", "evt-1", T0) is None


# --- fetching: stored raw, fetched and mapped by the worker ---

def _fetching(store: Store, **overrides: Any) -> Lead:
    return insert(store, **{"status": "fetching", "call": None, **overrides})


def test_a_fetching_lead_is_claimed_and_counted_as_pending(store: Store) -> None:
    lead = _fetching(store)
    assert store.pending_stats(T0) == PendingStats(pending=1, oldest_received_at=T0, dead=0)
    [claimed] = store.claim_due("w1", 10, 60, T0)
    assert (claimed.id, claimed.status, claimed.lease_owner) == (lead.id, "fetching", "w1")
    assert store.claim(lead.id, "w2", 60, T0 + 1) is None
    assert store.release(lead.id, "w1")
    assert store.claim(lead.id, "w2", 60, T0 + 1) is not None


def test_a_fetching_lead_may_be_stored_leased(store: Store) -> None:
    lead = _fetching(store, lease_owner="w1", lease_until=T0 + 60)
    assert (lead.lease_owner, lead.lease_until) == ("w1", T0 + 60)
    assert store.claim_due("w2", 10, 60, T0 + 1) == []


def test_a_fetch_to_retry_stays_fetching_and_a_dead_one_dies(store: Store) -> None:
    lead = _fetching(store)
    store.claim(lead.id, "w1", 60, T0)
    assert store.settle(lead.id, "w1", retry_at(T0 + 1, T0 + 30, reason="fetch_timeout"))
    after = store.get(lead.id)
    assert after is not None
    assert (after.status, after.attempts, after.next_attempt_at) == ("fetching", 1, T0 + 30)
    assert store.claim_due("w1", 10, 60, T0 + 29) == []
    [again] = store.claim_due("w1", 10, 60, T0 + 30)
    assert store.settle(again.id, "w1", Settlement("dead", at=T0 + 31, reason="fetch_failed"))
    assert store.get(lead.id).status == "dead"  # type: ignore[union-attr]
    assert [a.result for a in store.attempts(lead.id)] == ["retry", "dead"]


def test_resolve_to_queued_keeps_the_lease_for_the_same_worker(store: Store) -> None:
    lead = _fetching(store)
    store.claim(lead.id, "w1", 60, T0)
    fetched = {"lead": {"phone": "5555550100", "name": "Ann"}}
    assert store.resolve(lead.id, "w1", status="queued", call=CALL, error=None,
                         fetched=fetched, mapping_version="v2", now=T0 + 2)
    after = store.get(lead.id)
    assert after is not None
    assert (after.status, after.call, after.fetched, after.mapping_version) == (
        "queued", CALL, fetched, "v2")
    assert (after.lease_owner, after.lease_until, after.next_attempt_at) == ("w1", T0 + 60, T0 + 2)
    assert store.claim_due("w2", 10, 60, T0 + 3) == []
    assert store.settle(lead.id, "w1", Settlement("delivered", at=T0 + 4))


def test_resolve_needs_the_lease_on_a_fetching_lead(store: Store) -> None:
    lead = _fetching(store)
    store.claim(lead.id, "w1", 60, T0)
    kwargs: dict[str, Any] = dict(status="queued", call=CALL, error=None, fetched={},
                                  mapping_version="v2", now=T0 + 1)
    assert not store.resolve(lead.id, "w2", **kwargs)
    assert not store.resolve(new_lead_id(), "w1", **kwargs)
    assert store.resolve(lead.id, "w1", **kwargs)
    assert not store.resolve(lead.id, "w1", **kwargs)  # queued now, no longer fetching
    queued = insert(store)
    store.claim(queued.id, "w1", 60, T0)
    assert not store.resolve(queued.id, "w1", **kwargs)
    with pytest.raises(ValueError):
        store.resolve(lead.id, "w1", **{**kwargs, "call": None})


@pytest.mark.parametrize("status", ["rejected", "dropped"])
def test_resolve_to_refused_lets_go_and_releases_the_key(store: Store, status: str) -> None:
    lead = _fetching(store, dedupe_key="evt-1", dedupe_window_s=600)
    store.claim(lead.id, "w1", 60, T0)
    error = {"code": "lead_refused", "field": "caller_id"}
    assert store.resolve(lead.id, "w1", status=status, call=None, error=error,
                         fetched={"lead": {}}, mapping_version="v2", now=T0 + 1)
    after = store.get(lead.id)
    assert after is not None
    assert (after.status, after.error, after.fetched) == (status, error, {"lead": {}})
    assert (after.lease_owner, after.lease_until) == (None, None)
    assert store.dedupe_holder("acme", "evt-1", T0 + 2) is None
    resent = insert(store, received_at=T0 + 2, status="fetching", call=None,
                    dedupe_key="evt-1", dedupe_window_s=600)
    assert resent.id != lead.id
    assert store.claim_due("w1", 10, 60, T0 + 2)[0].id == resent.id


# --- remap (replay) and dedupe keys ---

def test_remap_to_accepted_takes_the_key_and_to_refused_releases_it(store: Store) -> None:
    lead = insert(store, status="rejected", call=None, error={"code": "x"},
                  dedupe_key="evt-1", dedupe_window_s=600)
    assert store.remap(lead.id, "queued", CALL, None, "v2", T0 + 100, dedupe_window_s=600)
    assert store.dedupe_holder("acme", "evt-1", T0 + 699) == lead.id
    assert store.dedupe_holder("acme", "evt-1", T0 + 700) is None
    assert store.remap(lead.id, "dropped", None, {"reason": "test"}, "v3", T0 + 101)
    assert store.dedupe_holder("acme", "evt-1", T0 + 102) is None


def test_remap_without_a_window_takes_no_key(store: Store) -> None:
    lead = insert(store, status="rejected", call=None, error={"code": "x"}, dedupe_key="evt-1")
    assert store.remap(lead.id, "queued", CALL, None, "v2", T0 + 1)
    assert store.dedupe_holder("acme", "evt-1", T0 + 2) is None


def test_remap_to_fetching_makes_the_lead_due_for_the_worker(store: Store) -> None:
    lead = _dead(store, dedupe_key="evt-1", dedupe_window_s=600)
    assert store.remap(lead.id, "fetching", None, None, "v2", T0 + 50, dedupe_window_s=600)
    [claimed] = store.claim_due("w1", 10, 60, T0 + 50)
    assert (claimed.id, claimed.status, claimed.attempts) == (lead.id, "fetching", 0)
    assert store.dedupe_holder("acme", "evt-1", T0 + 60) == lead.id
    with pytest.raises(ValueError):
        store.remap(lead.id, "delivered", None, None, "v2", T0 + 51)


# --- migration 2 on a database made before it ---

def test_migration_2_makes_each_existing_lead_a_batch_of_one(backend: Backend) -> None:
    store = open_store(backend.url, migrate=False)
    assert isinstance(store, SqlStore)
    store.migrations = store.migrations[:1]  # the database as migration 1 left it
    store.migrate()
    old = new_lead_row(new_lead_id(T0), received())
    columns = [name for name in old if name not in ("batch_id", "batch_index", "batch_size",
                                                    "fetched_json", "caller_id", "email")]
    store._write(lambda tx: tx.run(
        f"INSERT INTO leads ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})",
        {name: old[name] for name in columns}))
    del store.migrations  # back to every migration
    store.migrate()
    assert store.schema_version() == max(version for version, _ in store.migrations)  # every later one too
    lead = store.get(old["id"])
    assert lead is not None
    assert (lead.batch_id, lead.batch_index, lead.batch_size, lead.fetched) == (
        old["id"], 0, 1, None)
    assert store.list(batch_id=old["id"]) == [lead]
    assert insert(store).batch_size == 1
    store.close()


# --- the console: search, activity, counts by day in a zone, duplicates, audit, delete ---

def test_migration_3_makes_existing_leads_searchable(backend: Backend) -> None:
    store = open_store(backend.url, migrate=False)
    assert isinstance(store, SqlStore)
    store.migrations = store.migrations[:2]  # the database as migration 2 left it
    store.migrate()
    old = new_lead_row(new_lead_id(T0), received(call=call_for("+15125550147", "Dana@Example.com")))
    columns = [name for name in old if name not in ("caller_id", "email")]
    store._write(lambda tx: tx.run(
        f"INSERT INTO leads ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})",
        {name: old[name] for name in columns}))
    del store.migrations
    store.migrate()
    assert [lead.id for lead in store.search(LeadQuery(caller_id="+15125550147"))] == [old["id"]]
    assert [lead.id for lead in store.search(LeadQuery(email="dana@example.com"))] == [old["id"]]
    store.close()


def call_for(phone: str, email: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"caller_id": phone}
    if email is not None:
        body["email"] = email
    return {**CALL, "body": body}


def test_search_matches_the_normalised_contact_of_the_call(store: Store) -> None:
    wanted = insert(store, call=call_for("+15125550147", " Dana@Example.COM "))
    insert(store, call=call_for("+15125550148"), received_at=T0 + 1)
    insert(store, status="rejected", call=None, error={"code": "lead_refused"}, received_at=T0 + 2)
    assert store.get(wanted.id).caller_id == "+15125550147"
    assert store.get(wanted.id).email == "dana@example.com"
    assert [lead.id for lead in store.search(LeadQuery(caller_id="+15125550147"))] == [wanted.id]
    assert [lead.id for lead in store.search(LeadQuery(email="dana@example.com"))] == [wanted.id]
    assert store.search(LeadQuery(email="nobody@example.com")) == []


def test_search_pages_by_keyset_newest_first_without_gaps(store: Store) -> None:
    # Several leads in the same instant: the id breaks the tie, so no page loses one.
    ids = [insert(store, received_at=T0 + (index // 3)).id for index in range(10)]
    seen: list[str] = []
    after = None
    while True:
        page = store.search(LeadQuery(source="acme", after=after), limit=4)
        if not page:
            break
        seen.extend(lead.id for lead in page)
        after = (page[-1].received_at, page[-1].id)
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))
    assert seen == [lead.id for lead in sorted((store.get(i) for i in ids),
                                               key=lambda lead: (lead.received_at, lead.id), reverse=True)]


def test_search_filters_by_status_source_and_time(store: Store) -> None:
    early = insert(store, received_at=T0)
    late = insert(store, received_at=T0 + DAY, source="other")
    insert(store, received_at=T0 + DAY, status="rejected", call=None)
    assert [lead.id for lead in store.search(LeadQuery(since=T0 + 1))] != []
    assert [lead.id for lead in store.search(LeadQuery(status="queued", since=T0 + 1))] == [late.id]
    assert [lead.id for lead in store.search(LeadQuery(until=T0 + 1))] == [early.id]
    assert [lead.id for lead in store.search(LeadQuery(source="other"))] == [late.id]
    assert [lead.id for lead in store.search(LeadQuery(ids=(early.id, "nope")))] == [early.id]


def test_remap_updates_the_searchable_contact(store: Store) -> None:
    lead = insert(store, status="rejected", call=None, error={"code": "lead_refused"})
    assert store.remap(lead.id, "queued", call_for("+15125550199", "A@B.example"), None, "v2", T0 + 5)
    assert [found.id for found in store.search(LeadQuery(caller_id="+15125550199"))] == [lead.id]
    assert store.get(lead.id).email == "a@b.example"


def test_duplicates_are_counted_by_day_in_a_time_zone(store: Store) -> None:
    # 2023-11-15 03:00 UTC is still 2023-11-14 in Chicago (UTC-6).
    at = 1_700_017_200.0
    insert(store, received_at=at, dedupe_key="evt-1", dedupe_window_s=DAY)
    for offset in (1, 2):
        _, created = store.insert(received(received_at=at + offset, dedupe_key="evt-1", dedupe_window_s=DAY))
        assert not created
    utc = {(c.day, c.status): c.count for c in store.daily_counts("UTC")}
    assert utc == {("2023-11-15", "queued"): 1, ("2023-11-15", "duplicate"): 2}
    chicago = {(c.day, c.status): c.count for c in store.daily_counts("America/Chicago")}
    assert chicago == {("2023-11-14", "queued"): 1, ("2023-11-14", "duplicate"): 2}
    assert store.daily_counts("UTC", since=at + DAY) == []


def test_activity_per_source_since_a_time(store: Store) -> None:
    insert(store, received_at=T0 - DAY)  # before the window: only the last-lead time sees it
    insert(store, received_at=T0 + 10)
    insert(store, received_at=T0 + 20, status="rejected", call=None, dedupe_key="k", dedupe_window_s=0)
    insert(store, received_at=T0 + 30, dedupe_key="k2", dedupe_window_s=DAY)
    store.insert(received(received_at=T0 + 40, dedupe_key="k2", dedupe_window_s=DAY))
    [acme, quiet] = store.activity(T0, ["acme", "quiet"])
    assert acme.source == "acme" and acme.by_status == {"queued": 2, "rejected": 1}
    assert acme.duplicates == 1 and acme.last_received_at == T0 + 30
    assert acme.oldest_pending_at == T0 - DAY
    assert (quiet.source, quiet.by_status, quiet.last_received_at) == ("quiet", {}, None)


def test_delete_removes_leads_attempts_and_keys(store: Store) -> None:
    gone = insert(store, dedupe_key="evt-9", dedupe_window_s=DAY)
    kept = insert(store)
    store.settle(gone.id, "nobody", Settlement(result="dead", at=T0))  # not leased: ignored
    assert store.delete([gone.id, gone.id, "missing"]) == 1
    assert store.get(gone.id) is None and store.get(kept.id) is not None
    assert store.dedupe_holder("acme", "evt-9", T0) is None
    assert store.delete([]) == 0


def test_audit_log_keeps_who_what_and_how_many(store: Store) -> None:
    store.record_audit(AuditEntry(at=T0, actor="dana (admin) from 127.0.0.1", action="retry",
                                  selection="status=dead source=acme", lead_count=3))
    store.record_audit(AuditEntry(at=T0 + 1, actor="dana", action="purge", selection="id=X", lead_count=1,
                                  detail="purged 1"))
    [newest, oldest] = store.audit_log()
    assert (newest.action, newest.lead_count, newest.detail) == ("purge", 1, "purged 1")
    assert (oldest.actor, oldest.selection, oldest.at) == ("dana (admin) from 127.0.0.1",
                                                           "status=dead source=acme", T0)
    assert newest.seq > oldest.seq
    assert len(store.audit_log(limit=1)) == 1
