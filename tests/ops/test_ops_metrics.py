"""Request outcomes, delivery attempts and outbox gauges as Prometheus sees them."""
from __future__ import annotations

import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from relay import metrics
from relay.metrics import RELAY_REGISTRY
from relay.metrics_dir import wipe_multiprocess_dir
from relay.store.base import PendingStats


def value(name: str, **labels: str) -> float:
    return RELAY_REGISTRY.get_sample_value(name, labels) or 0.0


def scraped(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


OUTCOME_REQUESTS = [
    ("queued", lambda c: c.post("/hooks/acme", json={"phone": "+15125550147"})),
    ("rejected", lambda c: c.post("/hooks/acme", json={"email": "a@example.com"})),
    ("dropped", lambda c: c.post("/hooks/acme", json={"phone": "+15125550147", "email": "qa@example.test"})),
    ("malformed", lambda c: c.post("/hooks/acme", data="{oops", content_type="application/json")),
    ("unsupported", lambda c: c.post("/hooks/acme", data="x", content_type="text/csv")),
    ("too_large", lambda c: c.post("/hooks/acme", data=b"x" * (257 * 1024),
                                   content_type="application/x-www-form-urlencoded")),
    ("unauthorized", lambda c: c.post("/hooks/guarded", json={"phone": "+15125550147"})),
]


@pytest.mark.parametrize("outcome, send", OUTCOME_REQUESTS, ids=[o for o, _ in OUTCOME_REQUESTS])
def test_each_request_is_counted_once_under_its_outcome(client, outcome: str, send):
    source = "guarded" if outcome == "unauthorized" else "acme"
    before = value("relay_requests_total", source=source, outcome=outcome)
    acks_before = value("relay_ack_seconds_count", source=source)
    send(client)
    assert value("relay_requests_total", source=source, outcome=outcome) == before + 1
    assert value("relay_ack_seconds_count", source=source) == acks_before + 1


def test_a_repeat_is_counted_as_duplicate(make_app, acme):
    from relay.mapping.model import InboundSettings

    acme.inbound = InboundSettings(idempotency_window_s=3600)
    client = make_app(acme).test_client()
    before = value("relay_requests_total", source="acme", outcome="duplicate")
    for _ in range(2):
        client.post("/hooks/acme", json={"phone": "+15125550147", "event_id": "e-1"})
    assert value("relay_requests_total", source="acme", outcome="duplicate") == before + 1


def test_unknown_sources_share_one_label(client):
    before = value("relay_requests_total", source=metrics.UNKNOWN_SOURCE, outcome="unknown_source")
    client.post("/hooks/anything-at-all", json={})
    client.post("/hooks/something-else", json={})
    assert value("relay_requests_total", source=metrics.UNKNOWN_SOURCE, outcome="unknown_source") == before + 2
    assert RELAY_REGISTRY.get_sample_value("relay_requests_total",
                                           {"source": "anything-at-all", "outcome": "unknown_source"}) is None


def test_non_hook_requests_are_not_counted_as_leads(client):
    total_before = sum(s.value for f in RELAY_REGISTRY.collect() if f.name == "relay_requests"
                       for s in f.samples if s.name == "relay_requests_total")
    client.get("/healthz")
    client.get("/readyz")
    total_after = sum(s.value for f in RELAY_REGISTRY.collect() if f.name == "relay_requests"
                      for s in f.samples if s.name == "relay_requests_total")
    assert total_after == total_before


def test_outbox_gauges_are_read_from_the_store_at_scrape_time(client):
    for phone in ("+15125550147", "+15125550148", "+15125550149"):
        client.post("/hooks/acme", json={"phone": phone})
    samples = scraped(client)
    assert samples[("relay_outbox_pending", ())] == 3
    assert samples[("relay_outbox_dead", ())] == 0
    assert samples[("relay_outbox_oldest_pending_age_seconds", ())] >= 0
    assert ("relay_requests_total", (("outcome", "queued"), ("source", "acme"))) in samples


def test_oldest_pending_age_is_zero_when_nothing_waits():
    gauges = {g.name: g.samples[0].value for g in metrics.outbox_gauges(PendingStats(0, None, 4), now=100.0)}
    assert gauges == {"relay_outbox_pending": 0, "relay_outbox_oldest_pending_age_seconds": 0.0,
                      "relay_outbox_dead": 4}
    aged = {g.name: g.samples[0].value for g in metrics.outbox_gauges(PendingStats(2, 40.0), now=100.0)}
    assert aged["relay_outbox_oldest_pending_age_seconds"] == 60.0


def test_a_failing_store_leaves_the_gauges_out_instead_of_failing_the_scrape():
    class Broken:
        def pending_stats(self, now: float):
            raise RuntimeError("disk gone")

    assert list(metrics.OutboxCollector(Broken()).collect()) == []  # type: ignore[arg-type]


def test_delivery_attempts_and_latency():
    before = value("relay_delivery_attempts_total", source="ops-acme", result="delivered", reason="")
    latency_before = value("relay_delivery_latency_seconds_count", source="ops-acme")
    received = time.time() - 2.0
    metrics.record_attempt("ops-acme", "retry", "server_error", received_at=received, settled_at=time.time())
    metrics.record_attempt("ops-acme", "dead", "retries_exhausted:server_error")
    metrics.record_attempt("ops-acme", "delivered", "", received_at=received, settled_at=received + 2.0)
    assert value("relay_delivery_attempts_total", source="ops-acme", result="delivered", reason="") == before + 1
    assert value("relay_delivery_attempts_total", source="ops-acme", result="dead", reason="server_error") >= 1
    assert value("relay_delivery_latency_seconds_count", source="ops-acme") == latency_before + 1
    assert value("relay_delivery_latency_seconds_bucket", source="ops-acme", le="2.5") >= 1


def test_the_reload_counter_exists_for_the_reloader():
    before = value("relay_mapping_reload_errors_total", source="ops-broken")
    metrics.MAPPING_RELOAD_ERRORS.labels("ops-broken").inc()
    assert value("relay_mapping_reload_errors_total", source="ops-broken") == before + 1


def test_ack_buckets_resolve_milliseconds():
    assert metrics.ACK_BUCKETS[0] <= 0.001 and 0.005 in metrics.ACK_BUCKETS


def test_a_new_run_starts_from_an_empty_metrics_dir(tmp_path):
    directory = tmp_path / "prometheus"
    wipe_multiprocess_dir(str(directory))  # creates it when missing
    (directory / "counter_123.db").write_bytes(b"stale")
    (directory / "notes.txt").write_text("not ours")
    wipe_multiprocess_dir(str(directory))
    assert sorted(p.name for p in directory.iterdir()) == ["notes.txt"]
